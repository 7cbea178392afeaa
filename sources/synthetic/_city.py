"""Build the synthetic city and write each agency's extract in its own format, plus ground truth."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import xlsxwriter

from sources.synthetic import _extracts as ex
from sources.synthetic import _population as pop
from sources.synthetic._extracts import NoiseConfig

_PNC = r"^\d{2}/\d{6}[A-Z]$"


# Realistic extract dates: days before the city's reference date (weekly, monthly and termly cycles)
_EXTRACT_OFFSETS = {"health": 0, "social_care": 1, "housing": 2, "police": 6, "benefits": 20, "probation": 31,
                    "education": 31}


@dataclass(frozen=True)
class CityConfig:
    """What to build. The default profile is the realistic one; `CityConfig.easy(...)` keeps the old, easy city
    (five agencies, one extract date, uniform errors) for fast tests of mechanics."""

    people: int = 20000
    seed: int = 42
    extract_date: dt.date = dt.date(2026, 11, 1)  # the city's reference date (the newest extract)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    sources: tuple[str, ...] = ex.SOURCES
    extract_offsets: dict = field(default_factory=lambda: dict(_EXTRACT_OFFSETS))
    leavers: bool = True  # people who died or left the city, still on some registers
    profile: str = "realistic"

    @classmethod
    def easy(cls, **kwargs) -> "CityConfig":
        base = dict(noise=NoiseConfig.easy(), sources=("police", "probation", "housing", "health", "education"),
                    extract_offsets={}, leavers=False, profile="easy")
        return cls(**{**base, **kwargs})


@dataclass
class CityManifest:
    out_dir: Path
    files: dict[str, Path]
    row_counts: dict[str, int]
    sha256: dict[str, str]
    seconds: float

    @property
    def records(self) -> int:
        return sum(v for k, v in self.row_counts.items() if k.startswith("landing/"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ids(rng: np.random.Generator, n: int, prefix: str, width: int, start: int = 1) -> np.ndarray:
    order = rng.permutation(n) + start
    return np.char.add(prefix, np.char.zfill(order.astype(str), width))


def generate_city(out_dir: Path, config: CityConfig) -> CityManifest:
    started = time.perf_counter()
    rng = np.random.default_rng(np.random.PCG64(config.seed))
    as_of = config.extract_date
    persons, relationships = pop.population(rng, config.people, as_of)
    persons = ex.mark_leavers(rng, persons, as_of) if config.leavers else persons.with_columns(
        pl.lit("resident").alias("status"), pl.lit(None, pl.Date).alias("status_date"))
    llpg = pop.gazetteer(rng, int(persons["household_id"].n_unique() * 1.0), max(6, config.people // 2000))
    needs = ex.plant_needs(rng, persons)
    persons, residence = ex.assign_addresses(rng, persons, llpg, as_of, needs)
    base = ex.select_records(rng, persons, needs, config.sources).sort("source", "person_id")
    base = _at_extract_dates(rng, base, persons, config)
    base = ex.duplicate_records(rng, base, config.noise)
    # a duplicate entered from an old letter keeps the previous address
    base = base.with_columns(
        pl.when(((pl.col("duplicate_kind") & 4) > 0) & (pl.col("uprn_previous") != 0))
        .then(pl.when(pl.col("uprn_previous") > 0).then(pl.col("uprn_previous"))).otherwise(pl.col("uprn_recorded"))
        .alias("uprn_recorded"),
        ((((pl.col("duplicate_kind") & 4) > 0) & (pl.col("uprn_previous") < 0)) | pl.col("address_outside")).alias("address_outside"),
        ((((pl.col("duplicate_kind") & 4) > 0) & (pl.col("uprn_previous") != 0)) | pl.col("address_stale")).alias("address_stale"),
    )
    ids = []
    for source in config.sources:
        count = base.filter(pl.col("source") == source).height
        ids.append(pl.Series(_WRITERS[source].ids(rng, count)))
    base = base.sort("source", maintain_order=True)
    order = {s: i for i, s in enumerate(config.sources)}
    base = base.with_columns(pl.col("source").replace_strict(order).alias("_o")).sort("_o", maintain_order=True).drop("_o")
    base = base.with_columns(pl.concat(ids).alias("record_id") if ids else pl.lit(None, pl.String).alias("record_id"))
    log = ex.NoiseLog(base.height)
    log.add("duplicate", "record", base["duplicate_kind"].to_numpy() > 0)
    log.add("stale_address", "address", base["address_stale"].to_numpy())
    log.add("address_out_of_area", "address", base["address_outside"].to_numpy())
    log.add("address_term_time", "address", base["address_term_time"].to_numpy())
    log.add("deceased_or_left", "record", base["status"].to_numpy() != "resident")
    noisy = ex.apply_noise(rng, base, config.noise, log, as_of)
    noisy = ex.make_unusable(rng, noisy, config.noise.unusable, log)
    noisy = ex.address_parts(rng, noisy, llpg, config.noise, log)
    noisy = noisy.with_columns(pl.Series("r", rng.random(noisy.height)), pl.Series("r2", rng.random(noisy.height)),
                               log.kinds().alias("noise"))

    landing = out_dir / "landing"
    truth_dir = out_dir / "truth"
    for d in (landing, truth_dir, out_dir / "reference"):
        d.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    truths = []
    for source in config.sources:
        records = noisy.filter(pl.col("source") == source)
        stamp = (as_of - dt.timedelta(days=config.extract_offsets.get(source, 0))).strftime("%Y%m%d")
        path, truth = _WRITERS[source](records, landing / source, stamp, rng, persons, config.noise)
        files[f"landing/{source}/{path.name}"] = path
        truths.append(truth)

    # the gazetteer as the LLPG custodian exports it (NLPG DTF), and the ONS-style postcode → ward lookup
    dtf_path = out_dir / "reference" / f"llpg_dtf_{as_of.strftime('%Y%m%d')}.csv"
    dtf_path.write_bytes(pop.nlpg_dtf(llpg, as_of, rng).encode("utf-8"))
    files[f"reference/{dtf_path.name}"] = dtf_path
    lookup_path = out_dir / "reference" / "postcode_lookup.csv"
    pop.postcode_lookup(llpg).write_csv(lookup_path)
    files["reference/postcode_lookup.csv"] = lookup_path
    # people who died or left belong to no current household: each gets a household id of their own
    current_household = pl.when(pl.col("status") == "resident").then(pl.col("household_id")).otherwise(
        pl.col("person_id") + 1_000_000_000).alias("household_id")
    truth = pl.concat(truths, how="diagonal_relaxed").join(
        persons.select("person_id", current_household, "uprn_current"), on="person_id", how="left"
    ).join(noisy.select("source", "record_id", pl.col("uprn_at_date").alias("uprn_at_extract"), "extract_date"),
           on=["source", "record_id"], how="left"
    ).select("source", "record_id", "person_id", "household_id", "uprn_recorded", "uprn_current", "uprn_at_extract",
             "extract_date", "noise", "unusable", "unusable_reason", "record_role")
    contacts = truth.filter(pl.col("record_role") != "subject").select("source", "record_id", pl.col("noise").alias("kind")) \
        .explode("kind").drop_nulls("kind").with_columns(
            pl.when(pl.col("kind").str.contains("surname")).then(pl.lit("last_name")).otherwise(pl.lit("first_name")).alias("field"))
    noise_log = pl.concat([log.frame(noisy.select("source", "record_id")),
                           contacts.select("source", "record_id", "field", "kind")])
    outputs = {
        "truth/records.parquet": truth.sort("source", "record_id"),
        "truth/noise_log.parquet": noise_log.sort("source", "record_id", "field", "kind"),
        "truth/persons.parquet": persons.drop("uprn_previous", "moved_days_ago", "uprn_previous2", "moved_days_ago2", "moved_in2",
                                              "out_of_area", "mobile_old", "uprn_term")
        .rename({"uprn_current": "uprn"}),
        "truth/households.parquet": persons.filter(pl.col("status") == "resident").group_by("household_id").agg(
            pl.col("household_type").first(), pl.col("tenure").first(), pl.col("uprn_current").first().alias("uprn"),
            pl.len().alias("members")
        ).sort("household_id"),
        "truth/household_membership.parquet": _membership(persons, residence),
        "truth/relationships.parquet": relationships.sort("person_id", "related_person_id"),
        "truth/residence.parquet": residence,
        "truth/needs.parquet": needs,
    }
    for name, frame in outputs.items():
        path = out_dir / name
        frame.write_parquet(path, statistics=False)
        files[name] = path
    row_counts = {}
    for name, path in files.items():
        if name.startswith("landing/"):
            row_counts[name] = truth.filter((pl.col("source") == name.split("/")[1])
                                            & (pl.col("record_role") == "subject")).height
        elif name in outputs:
            row_counts[name] = outputs[name].height
        elif name.startswith("reference/llpg"):
            row_counts[name] = llpg.height
        else:
            row_counts[name] = llpg["postcode"].n_unique()
    sha = {name: _sha(path) for name, path in files.items()}
    manifest = CityManifest(out_dir, files, row_counts, sha, time.perf_counter() - started)
    noise = asdict(config.noise)
    (truth_dir / "city.json").write_text(json.dumps({
        "seed": config.seed, "people": config.people, "extract_date": as_of.isoformat(), "profile": config.profile,
        "sources": list(config.sources), "extract_offsets": config.extract_offsets,
        "noise": noise, "row_counts": row_counts, "sha256": sha,
    }, indent=2, sort_keys=True, default=str), encoding="utf-8")
    return manifest


def _at_extract_dates(rng: np.random.Generator, base: pl.DataFrame, persons: pl.DataFrame, config: CityConfig
                      ) -> pl.DataFrame:
    """Each record as its agency holds it on its own extract date: the address it has recorded (moves reach
    each agency after its own lag; police keep the address given at the incident), a parent's mobile for
    children, the child's age in days."""
    as_of = config.extract_date
    n = base.height
    offsets = pl.col("source").replace_strict(config.extract_offsets, default=0, return_dtype=pl.Int64)
    # the last contact (incident, sentence, referral) for agencies that hold the address given then
    reach = pl.Series(base["source"]).replace_strict(ex.CONTACT_SOURCES, default=0, return_dtype=pl.Int64).to_numpy()
    contact_days = (rng.random(n) * reach).astype(np.int64)
    updated_since = rng.random(n) < ex.per_source(base["source"], {s: v[0] for s, v in ex._LAG.items()}, 1.0)
    lag = ex._lag_days(rng, base, config.noise)
    lag = np.where((reach > 0) & ~updated_since & config.noise.address_lag, contact_days, np.where(reach > 0, 0, lag))
    parents = persons.filter(pl.col("role").is_in(["parent1", "parent2", "single"]) & (pl.col("mobile") != "")) \
        .group_by("household_id").agg(pl.col("mobile").first().alias("parent_mobile"))
    base = base.join(parents, on="household_id", how="left", maintain_order="left").with_columns(
        (pl.lit(as_of) - pl.duration(days=offsets)).alias("extract_date"),
        pl.Series("contact_days", contact_days),
    ).with_columns(
        pl.when(pl.col("source") == "police")
        .then(pl.col("extract_date") - pl.duration(days=pl.col("contact_days")))
        .otherwise(pl.col("extract_date") - pl.duration(days=pl.Series(lag))).alias("address_date"),
        (pl.col("extract_date") - pl.col("date_of_birth")).dt.total_days().alias("days_old"),
    )
    moved = pl.col("moved_days_ago") > 0
    before_move = moved & (pl.col("address_date") < pl.col("moved_in"))
    at_date = moved & (pl.col("extract_date") < pl.col("moved_in"))
    # the address before the last move, or before the one before that
    earlier = (pl.col("moved_days_ago2") > 0) & (pl.col("address_date") < pl.col("moved_in2"))
    earlier_at_date = (pl.col("moved_days_ago2") > 0) & (pl.col("extract_date") < pl.col("moved_in2"))
    previous_uprn = pl.when(earlier).then(pl.col("uprn_previous2")).otherwise(pl.col("uprn_previous"))
    previous = pl.when(previous_uprn > 0).then(previous_uprn)
    previous_at_date = pl.when(earlier_at_date).then(pl.col("uprn_previous2")).otherwise(pl.col("uprn_previous"))
    # a young adult's other address reaches the agencies they deal with themselves (GP, police, benefits)
    term = (pl.col("uprn_term") > 0) & pl.col("source").is_in(["health", "police", "benefits"]) & pl.Series(
        rng.random(n) < 0.8)
    return base.with_columns(
        pl.when(term).then(pl.col("uprn_term")).when(before_move).then(previous).otherwise(pl.col("uprn_current"))
        .alias("uprn_recorded"),
        term.alias("address_term_time"),
        pl.when(at_date).then(pl.when(previous_at_date > 0).then(previous_at_date)).otherwise(pl.col("uprn_current"))
        .alias("uprn_at_date"),
        (before_move & (previous_uprn < 0)).alias("address_outside"),
        (before_move & ~at_date).alias("address_stale"),
    ).filter(pl.col("days_old") >= 0)


def _membership(persons: pl.DataFrame, residence: pl.DataFrame) -> pl.DataFrame:
    """The household each person belonged to, and when: from the start of their residence history to the
    day they died or left (open-ended for residents). Households move together in this city."""
    start = residence.group_by("person_id").agg(pl.col("from").min())
    return persons.select("person_id", "household_id", "status", "status_date").join(start, on="person_id").select(
        "person_id", "household_id", "from", pl.col("status_date").alias("to"), "status").sort("person_id")


# --------------------------------------------------------------------------------------------- truth
def _truth(records: pl.DataFrame, has_identifier: pl.Expr, *, has_contact: pl.Expr | None = None) -> pl.DataFrame:
    """Apply the minimum-data rule on the final values, as validation does by default: a name, and at least one
    of date of birth, identifier, address or postcode, phone or email (docs/synthetic-city.md)."""
    name_blank = (pl.col("first_name").str.strip_chars().fill_null("") == "") & (
        pl.col("last_name").str.strip_chars().fill_null("") == "")
    no_dob = pl.col("dob_missing") | pl.col("dob_impossible")
    address = ~pl.col("address_missing") & (pl.col("line1").is_not_null() | pl.col("postcode").is_not_null())
    if "nfa" in records.columns:
        address = address & ~pl.col("nfa")
    contact = has_contact if has_contact is not None else pl.lit(False)
    nothing = no_dob & ~has_identifier & ~address & ~contact
    return records.with_columns(
        (name_blank | nothing).alias("unusable"),
        pl.when(name_blank).then(pl.lit("no name"))
        .when(nothing).then(pl.lit("no date of birth, identifier, address or contact")).alias("unusable_reason"),
        pl.lit("subject").alias("record_role"),
    ).select("source", "record_id", "person_id", "uprn_recorded", "noise", "unusable", "unusable_reason",
             "record_role")


def _address_line(records: pl.DataFrame) -> pl.Expr:
    """One free-text line as a call handler types it: "Flat 2, 8 Oak Close, Brookside AV3 4PL"."""
    return pl.when(pl.col("line1").is_null()).then(pl.lit("")).otherwise(
        pl.concat_str([pl.col("line1"), pl.col("line2"), pl.col("town")], separator=", ", ignore_nulls=True)
        + " " + pl.col("postcode").fill_null(""))


# ------------------------------------------------------------------------------------------- sources
def _police(records: pl.DataFrame, folder: Path, stamp: str, rng, persons, noise) -> tuple[Path, pl.DataFrame]:
    n = records.height
    nfa = (rng.random(n) < np.where(records["household_type"].to_numpy() == "hostel", 0.3, 0.04))
    has_pnc = (rng.random(n) < 0.6) & ~records["ids_removed"].to_numpy()
    incident = np.where(records["domestic_abuse"].to_numpy() & (records["age"].to_numpy() >= 18) & (rng.random(n) < 0.6),
                        "Domestic abuse",
                        rng.choice(np.array(["Violence", "Theft", "Criminal damage", "ASB", "Drugs", "Burglary"]), n))
    records = records.with_columns(pl.Series("nfa", nfa), pl.Series("has_pnc", has_pnc),
                                   pl.when(pl.Series(nfa)).then(None).otherwise(pl.col("uprn_recorded")).alias("uprn_recorded"))
    # aliases are other names the person has used: another surname, another forename, or both
    # (a quarter of nominals; the error-prone more often); alternative dates of birth on about 15%
    other_last = pl.Series(rng.permutation(records["last_name"].to_numpy()))
    other_first = pl.Series(rng.permutation(records["first_name"].to_numpy()))
    records = records.with_columns(other_last.alias("_ol"), other_first.alias("_of"),
                                   pl.Series("_alias_kind", rng.integers(0, 3, n)),
                                   pl.Series("_has_alias", rng.random(n) < np.minimum(0.9, 0.25 * records["factor"].to_numpy())),
                                   pl.Series("_alt_days", rng.integers(-400, 400, n)),
                                   pl.Series("_has_alt", rng.random(n) < 0.15))
    alias_last = pl.when(pl.col("_alias_kind") != 1).then(pl.col("_ol")).otherwise(pl.col("last_name"))
    alias_first = pl.when(pl.col("_alias_kind") != 0).then(pl.col("_of")).otherwise(pl.col("first_name"))
    alias = pl.when(pl.col("_has_alias")).then(
        alias_last.str.to_uppercase() + ", " + alias_first.str.to_uppercase()).otherwise(pl.lit(""))
    alt_dob = pl.when(pl.col("_has_alt") & pl.col("date_of_birth").is_not_null() & ~pl.col("dob_missing")).then(
        (pl.col("date_of_birth") + pl.duration(days=pl.col("_alt_days"))).dt.strftime("%d/%m/%Y")).otherwise(pl.lit(""))
    frame = records.select(
        pl.col("record_id").alias("NOMINAL_ID"),
        pl.col("last_name").str.to_uppercase().alias("SURNAME"),
        pl.col("first_name").alias("FORENAMES"),
        alias.alias("ALIASES"),
        ex.dob_text("%d/%m/%Y").alias("DOB"),
        alt_dob.alias("ALT_DOB"),
        pl.col("sex").alias("SEX"),
        pl.when(pl.col("nfa")).then(pl.lit("NFA")).otherwise(_address_line(records)).alias("ADDRESS"),
        pl.when(pl.col("has_pnc")).then(pl.col("pnc_id")).otherwise(pl.lit("")).alias("PNC_ID"),
        pl.Series("INCIDENT_TYPE", incident),
        (pl.col("extract_date") - pl.duration(days=pl.col("contact_days"))).dt.strftime("%d/%m/%Y").alias("INCIDENT_DATE"),
        pl.concat_str(pl.lit("PC "), pl.col("last_name").str.strip_chars().str.slice(0, 1), pl.lit(". Officer")).alias("OIC_NAME"),
        pl.lit("01632 960000").alias("OIC_PHONE"),
    ).sort("NOMINAL_ID")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"nominals_{stamp}.csv"
    text = frame.write_csv(line_terminator="\r\n", quote_style="necessary")
    path.write_bytes(text.encode("cp1252", errors="replace"))
    truth = _truth(records, pl.col("has_pnc"))
    return path, truth


_police.ids = lambda rng, n: _ids(rng, n, "N", 7)


def _probation(records, folder, stamp, rng, persons, noise):
    n = records.height
    nfa = rng.random(n) < 0.08
    records = records.with_columns(pl.Series("nfa", nfa),
                                   pl.when(pl.Series(nfa)).then(None).otherwise(pl.col("uprn_recorded")).alias("uprn_recorded"))
    frame = records.select(
        pl.col("record_id").alias("CRN"),
        pl.when(pl.col("r") < 0.9).then(pl.col("pnc_id")).otherwise(pl.lit("")).alias("PNC_NUMBER"),
        pl.col("first_name").alias("FIRST_NAME"),
        pl.col("last_name").alias("LAST_NAME"),
        pl.when(pl.col("dob_missing") | pl.col("dob_impossible")).then(None).otherwise(pl.col("date_of_birth")).alias("DATE_OF_BIRTH"),
        pl.when(pl.col("sex") == "M").then(pl.lit("Male")).otherwise(pl.lit("Female")).alias("GENDER"),
        pl.when(pl.col("nfa")).then(pl.lit("")).otherwise(pl.col("line1").fill_null("")).alias("ADDRESS_LINE1"),
        pl.when(pl.col("nfa")).then(pl.lit("")).otherwise(pl.col("line2").fill_null("")).alias("ADDRESS_LINE2"),
        pl.when(pl.col("nfa")).then(pl.lit("")).otherwise(pl.col("town")).alias("TOWN"),
        pl.when(pl.col("nfa")).then(pl.lit("")).otherwise(pl.col("postcode").fill_null("")).alias("POSTCODE"),
        pl.when(pl.col("nfa")).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("NFA"),
        pl.when(pl.col("r2") < 0.5).then(pl.lit("Community Order")).otherwise(pl.lit("Licence")).alias("SENTENCE_TYPE"),
        (pl.col("extract_date") - pl.duration(days=pl.col("contact_days"))).alias("SENTENCE_START"),
        pl.lit("Sam Probation Officer").alias("OFFENDER_MANAGER"),
        pl.lit("om.team@probation.example").alias("OM_EMAIL"),
        pl.lit("01632 960111").alias("OM_PHONE"),
    ).sort("CRN")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"caseload_{stamp}.xlsx"
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    workbook.set_properties({"created": dt.datetime(2026, 1, 1)})
    sheet = workbook.add_worksheet("Caseload")
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    for c, name in enumerate(frame.columns):
        sheet.write_string(0, c, name)
    for r, row in enumerate(frame.iter_rows(), start=1):
        for c, value in enumerate(row):
            if isinstance(value, dt.date):
                sheet.write_datetime(r, c, dt.datetime(value.year, value.month, value.day), date_format)
            elif value not in (None, ""):
                sheet.write_string(r, c, value)
    workbook.close()
    return path, _truth(records, pl.lit(True))


_probation.ids = lambda rng, n: np.char.add("X", np.char.zfill((rng.permutation(n) + 100001).astype(str), 6))


def _housing(records, folder, stamp, rng, persons, noise):
    rel = {"parent1": "Self", "single": "Self", "parent2": "Partner", "grandparent": "Parent", "sharer": "Other"}
    lead_pos = records.with_columns(
        pl.col("person_id").rank("ordinal").over("household_id").alias("rank_in_hh")
    )
    records = lead_pos.with_columns(
        pl.when(pl.col("rank_in_hh") == 1).then(pl.lit("Self"))
        .when(pl.col("role") == "child").then(pl.when(pl.col("sex") == "M").then(pl.lit("Son")).otherwise(pl.lit("Daughter")))
        .otherwise(pl.col("role").replace_strict(rel, default="Other")).alias("relationship"),
    )
    frame = records.select(
        pl.concat_str(pl.lit("T"), pl.col("household_id").cast(pl.String).str.zfill(7)).alias("TenancyRef"),
        pl.col("record_id").alias("PersonRef"),
        pl.when(pl.col("r") < 0.92).then(pl.col("uprn_at_date").cast(pl.String)).otherwise(pl.lit("")).alias("UPRN"),
        pl.when(pl.col("rank_in_hh") == 1).then(pl.lit("Lead tenant"))
        .when(pl.col("role") == "parent2").then(pl.lit("Joint tenant")).otherwise(pl.lit("Household member")).alias("Role"),
        pl.col("relationship").alias("RelationshipToLead"),
        pl.when(pl.col("age") < 18).then(pl.lit("")).when(pl.col("sex") == "M").then(pl.lit("Mr")).otherwise(pl.lit("Ms")).alias("Title"),
        pl.col("first_name").alias("Forename"),
        pl.col("last_name").alias("Surname"),
        ex.dob_text("%Y-%m-%d").alias("DateOfBirth"),
        pl.when((pl.col("age") >= 16) & (pl.col("r2") < 0.3) & ~pl.col("ids_removed")).then(pl.col("ni_number"))
        .otherwise(pl.lit("")).alias("NINumber"),
        pl.col("line1").fill_null("").alias("AddressLine1"),
        pl.concat_str([pl.col("line2"), pl.col("town")], separator=", ", ignore_nulls=True).alias("AddressLine2"),
        pl.col("postcode").fill_null("").alias("Postcode"),
        (pl.lit(dt.date(2026, 11, 1)) - pl.duration(days=(pl.col("r2") * 3000).cast(pl.Int64))).dt.strftime("%Y-%m-%d").alias("TenancyStart"),
        pl.lit("").alias("TenancyEnd"),
        pl.when(pl.col("age") < 16).then(pl.lit("")).when(pl.col("worklessness") & (pl.col("age") < 66)).then(pl.lit("Unemployed"))
        .when(pl.col("age") >= 66).then(pl.lit("Retired")).otherwise(pl.lit("Employed")).alias("EmploymentStatus"),
        pl.when(pl.col("crime_asb") & (pl.col("rank_in_hh") == 1)).then(pl.lit("ASB") + pl.col("household_id").cast(pl.String)).otherwise(pl.lit("")).alias("ASBCaseRef"),
        pl.when(pl.col("crime_asb") & (pl.col("rank_in_hh") == 1)).then(pl.lit("2026-03-01")).otherwise(pl.lit("")).alias("ASBCaseOpened"),
        pl.lit("Alex Housing Officer").alias("HousingOfficer"),
        pl.lit("01632 960222").alias("OfficerPhone"),
        pl.col("phone").alias("ContactPhone"),
    ).sort("TenancyRef", "PersonRef")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tenancy_members_{stamp}.txt"
    frame.write_csv(path, separator=";")
    # the landlord's UPRN is the tenancy's, whatever address text was typed
    records = records.with_columns(pl.col("uprn_at_date").alias("uprn_recorded"))
    return path, _truth(records, (pl.col("age") >= 16) & (pl.col("r2") < 0.3) & ~pl.col("ids_removed"),
                        has_contact=pl.col("phone") != "")


_housing.ids = lambda rng, n: _ids(rng, n, "HP", 8)


def _health(records, folder, stamp, rng, persons, noise):
    needs = pl.when(pl.col("health") & (pl.col("r") < 0.7)).then(
        pl.when(pl.col("r2") < 0.5).then(pl.lit("mental health")).otherwise(pl.lit("substance misuse;mental health"))
    ).otherwise(pl.lit(""))
    frame = records.select(
        pl.col("record_id").alias("patient_id"),
        pl.col("nhs_number"),
        pl.col("first_name").alias("given_name"),
        pl.col("last_name").alias("family_name"),
        ex.dob_text("%Y%m%d").alias("birth_date"),
        pl.when(pl.col("sex") == "M").then(pl.lit("1")).otherwise(pl.lit("2")).alias("gender"),
        pl.col("line1").fill_null("").alias("address_1"),
        pl.col("line2").fill_null("").alias("address_2"),
        pl.col("town").alias("address_3"),
        pl.col("postcode").fill_null("").alias("postcode"),
        pl.col("phone").alias("phone"),
        pl.lit("Y0").alias("gp_practice_code") + (pl.col("household_id") % 12).cast(pl.String),
        pl.lit("Vale Medical Centre").alias("gp_practice_name"),
        (pl.lit(dt.date(2026, 11, 1)) - pl.duration(days=(pl.col("r2") * 5000).cast(pl.Int64))).dt.strftime("%Y%m%d").alias("registration_date"),
        pl.when(pl.col("age") < 5).then(pl.lit("Pat Health Visitor")).otherwise(pl.lit("")).alias("health_visitor"),
        pl.when((pl.col("age") >= 5) & (pl.col("age") <= 18)).then(pl.lit("Chris School Nurse")).otherwise(pl.lit("")).alias("school_nurse"),
        pl.lit("01632 960333").alias("professional_phone"),
        needs.alias("health_needs"),
    ).sort("patient_id")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"gp_register_{stamp}.parquet"
    frame.write_parquet(path, statistics=False)
    return path, _truth(records, pl.col("nhs_valid") & (pl.col("nhs_number") != ""), has_contact=pl.col("phone") != "")


_health.ids = lambda rng, n: _ids(rng, n, "G", 8)


def _education(records, folder, stamp, rng, persons, noise):
    parents = persons.filter(pl.col("role") == "parent1").select(
        "household_id", pl.col("person_id").alias("parent_person_id"), pl.col("first_name").alias("p_first"),
        pl.col("last_name").alias("p_last"), pl.col("sex").alias("p_sex"),
        pl.when(pl.col("mobile") != "").then(pl.col("mobile")).otherwise(pl.col("landline")).alias("p_phone"),
        pl.col("uprn_current").alias("p_uprn"))
    records = records.join(parents, on="household_id", how="left", maintain_order="left")
    p_first, p_last, p_noise = ex.contact_person_names(rng, records["p_first"].fill_null(""), records["p_last"].fill_null(""),
                                                       records["last_name"].str.strip_chars(), noise)
    records = records.with_columns(p_first.alias("p_first_rec"), p_last.alias("p_last_rec"), p_noise.alias("p_noise")).with_columns(
        pl.lit("").alias("upn_blank"),
        ((pl.col("r") < 0.97) & ~pl.col("ids_removed")).alias("has_upn"),
        ((pl.col("r2") < 0.15) & pl.col("nhs_valid") & (pl.col("nhs_number") != "")).alias("has_nhs"),
    )
    bad_attendance = pl.col("education")
    frame = records.select(
        pl.col("record_id").alias("PupilID"),
        pl.when(pl.col("has_upn")).then(pl.col("upn")).otherwise(pl.lit("")).alias("UPN"),
        pl.when(pl.col("has_nhs")).then(pl.col("nhs_number")).otherwise(pl.lit("")).alias("NHSNumber"),
        pl.col("last_name").alias("LegalSurname"),
        pl.col("first_name").alias("Forename"),
        pl.lit("").alias("PreferredSurname"),
        ex.dob_text("%d-%b-%Y").alias("DOB"),
        pl.col("sex").alias("Gender"),
        pl.lit("Ashford Vale Academy").alias("SchoolName"),
        pl.lit("140000").alias("SchoolURN"),
        pl.when(bad_attendance).then(70 + pl.col("r2") * 19).otherwise(91 + pl.col("r2") * 9).round(1).cast(pl.String).alias("AttendancePct"),
        pl.when(bad_attendance & (pl.col("r2") < 0.5)).then(pl.lit("2")).otherwise(pl.lit("0")).alias("FixedExclusions"),
        pl.when(bad_attendance & (pl.col("r2") < 0.05)).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("PermanentExclusion"),
        pl.when(bad_attendance & (pl.col("r2") < 0.5)).then(pl.lit("12-Sep-2026")).otherwise(pl.lit("")).alias("LastExclusionDate"),
        pl.when(pl.col("r") < 0.12).then(pl.lit("K")).otherwise(pl.lit("N")).alias("SENStatus"),
        pl.col("line1").fill_null("").alias("AddressLine1"),
        pl.col("line2").fill_null("").alias("AddressLine2"),
        pl.col("town").alias("AddressLine3"),
        pl.col("postcode").fill_null("").alias("Postcode"),
        pl.when(pl.col("p_first").is_null()).then(pl.lit("")).otherwise(
            pl.when(pl.col("p_sex") == "F").then(pl.lit("Mrs ")).otherwise(pl.lit("Mr ")) + pl.col("p_first_rec") + " " + pl.col("p_last_rec")
        ).alias("Parent1Name"),
        pl.when(pl.col("p_first").is_null()).then(pl.lit("")).when(pl.col("p_sex") == "F").then(pl.lit("Mother")).otherwise(pl.lit("Father")).alias("Parent1Relationship"),
        pl.col("p_phone").fill_null("").alias("Parent1Phone"),
        pl.lit("Jo Designated Teacher").alias("SchoolContactName"),
        pl.lit("safeguarding@avacademy.example").alias("SchoolContactEmail"),
    ).sort("PupilID")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pupils_{stamp}.csv"
    path.write_bytes(b"\xef\xbb\xbf" + frame.write_csv().encode("utf-8"))
    subjects = _truth(records, pl.col("has_upn") | pl.col("has_nhs"))
    return path, pl.concat([subjects, _carer_truth(records, "education", "-P1", "parent_person_id", "p_noise")],
                           how="diagonal_relaxed")


def _carer_truth(records: pl.DataFrame, source: str, suffix: str, person: str, noise: str) -> pl.DataFrame:
    """Truth rows for the parent/carer each record names (a record of its own: record id + suffix)."""
    return records.filter(pl.col(person).is_not_null()).select(
        pl.lit(source).alias("source"), (pl.col("record_id") + suffix).alias("record_id"),
        pl.col(person).alias("person_id"), pl.col("uprn_recorded"), pl.col(noise).alias("noise"),
        pl.lit(False).alias("unusable"), pl.lit(None, pl.String).alias("unusable_reason"),
        pl.lit("parent_carer").alias("record_role"),
    )


_education.ids = lambda rng, n: _ids(rng, n, "P", 7)


def _social_care(records, folder, stamp, rng, persons, noise):
    """Children's social care (CIN census style): the child, one parent/carer, the social worker, legal status."""
    carers = persons.filter(pl.col("role").is_in(["parent1", "single"])).select(
        "household_id", pl.col("person_id").alias("carer_person_id"), pl.col("first_name").alias("c_first"),
        pl.col("last_name").alias("c_last"), pl.col("sex").alias("c_sex"), pl.col("date_of_birth").alias("c_dob"),
        pl.when(pl.col("mobile") != "").then(pl.col("mobile")).otherwise(pl.col("landline")).alias("c_phone"),
        pl.col("email").alias("c_email"))
    records = records.join(carers, on="household_id", how="left", maintain_order="left")
    c_first, c_last, c_noise = ex.contact_person_names(rng, records["c_first"].fill_null(""), records["c_last"].fill_null(""),
                                                       records["last_name"].str.strip_chars(), noise)
    records = records.with_columns(c_first.alias("c_first_rec"), c_last.alias("c_last_rec"), c_noise.alias("c_noise")).with_columns(
        ((pl.col("r") < 0.7) & pl.col("nhs_valid") & (pl.col("nhs_number") != "")).alias("has_nhs"),
        ((pl.col("r2") < 0.4) & (pl.col("age") >= 4) & ~pl.col("ids_removed")).alias("has_upn"),
    )
    status = pl.when(pl.col("r2") < 0.6).then(pl.lit("CIN")).when(pl.col("r2") < 0.85).then(pl.lit("CP Plan")) \
        .when(pl.col("r2") < 0.95).then(pl.lit("CLA S20")).otherwise(pl.lit("CLA S31"))
    frame = records.select(
        pl.col("record_id").alias("ChildID"),
        pl.col("first_name").alias("Forename"),
        pl.col("last_name").alias("Surname"),
        ex.dob_text("%d/%m/%Y").alias("DOB"),
        pl.when(pl.col("sex") == "M").then(pl.lit("Male")).otherwise(pl.lit("Female")).alias("Gender"),
        pl.when(pl.col("has_nhs")).then(pl.col("nhs_number")).otherwise(pl.lit("")).alias("NHSNumber"),
        pl.when(pl.col("has_upn")).then(pl.col("upn")).otherwise(pl.lit("")).alias("UPN"),
        pl.concat_str([pl.col("line1"), pl.col("line2"), pl.col("town")], separator=", ", ignore_nulls=True)
        .fill_null("").alias("Address"),
        pl.col("postcode").fill_null("").alias("Postcode"),
        status.alias("LegalStatus"),
        (pl.col("extract_date") - pl.duration(days=pl.col("contact_days"))).dt.strftime("%d/%m/%Y").alias("ReferralDate"),
        pl.lit("Morgan Social Worker").alias("SocialWorker"),
        pl.lit("Children's Services Team 2").alias("Team"),
        pl.lit("01632 960444").alias("SWPhone"),
        pl.when(pl.col("c_first").is_null()).then(pl.lit("")).otherwise(pl.col("c_first_rec") + " " + pl.col("c_last_rec")).alias("CarerName"),
        pl.when(pl.col("c_first").is_null()).then(pl.lit("")).when(pl.col("c_sex") == "F").then(pl.lit("Mother"))
        .otherwise(pl.lit("Father")).alias("CarerRelationship"),
        pl.when(pl.col("c_dob").is_not_null() & (pl.col("r") < 0.6)).then(pl.col("c_dob").dt.strftime("%d/%m/%Y"))
        .otherwise(pl.lit("")).alias("CarerDOB"),
        pl.col("c_phone").fill_null("").alias("CarerPhone"),
        pl.col("c_email").fill_null("").alias("CarerEmail"),
    ).sort("ChildID")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"cin_census_{stamp}.csv"
    frame.write_csv(path)
    subjects = _truth(records, pl.col("has_nhs") | pl.col("has_upn"))
    return path, pl.concat([subjects, _carer_truth(records, "social_care", "-C1", "carer_person_id", "c_noise")],
                           how="diagonal_relaxed")


_social_care.ids = lambda rng, n: _ids(rng, n, "CS", 7)


def _benefits(records, folder, stamp, rng, persons, noise):
    """An out-of-work benefits list (DWP data share style): NI number, name in one field, address; dates of
    birth missing for some rows."""
    records = records.with_columns(((pl.col("r") < 0.95) & ~pl.col("ids_removed")).alias("has_ni"))
    kind = pl.when(pl.col("r2") < 0.7).then(pl.lit("Universal Credit")).when(pl.col("r2") < 0.85) \
        .then(pl.lit("ESA")).otherwise(pl.lit("JSA"))
    frame = records.select(
        pl.col("record_id").alias("ClaimRef"),
        pl.when(pl.col("has_ni")).then(pl.col("ni_number")).otherwise(pl.lit("")).alias("NINO"),
        (pl.col("last_name").str.to_uppercase() + ", " + pl.col("first_name")).alias("ClaimantName"),
        ex.dob_text("%d.%m.%Y").alias("DateOfBirth"),
        pl.col("line1").fill_null("").alias("AddressLine1"),
        pl.col("line2").fill_null("").alias("AddressLine2"),
        pl.col("town").fill_null("").alias("Town"),
        pl.col("postcode").fill_null("").alias("Postcode"),
        kind.alias("BenefitType"),
        (pl.col("extract_date") - pl.duration(days=(pl.col("r") * 1500).cast(pl.Int64))).dt.strftime("%d.%m.%Y").alias("ClaimStart"),
        pl.lit("Jordan Work Coach").alias("WorkCoach"),
        pl.lit("Ashford Vale Jobcentre").alias("JobcentreOffice"),
        pl.col("phone").alias("Phone"),
        pl.col("email").alias("Email"),
    ).sort("ClaimRef")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ow_benefits_{stamp}.csv"
    frame.write_csv(path)
    return path, _truth(records, pl.col("has_ni"), has_contact=(pl.col("phone") != "") | (pl.col("email") != ""))


_benefits.ids = lambda rng, n: _ids(rng, n, "UC", 8)

_WRITERS = {"police": _police, "probation": _probation, "housing": _housing, "health": _health,
            "education": _education, "social_care": _social_care, "benefits": _benefits}
