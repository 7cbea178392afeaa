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


@dataclass(frozen=True)
class CityConfig:
    people: int = 20000
    seed: int = 42
    extract_date: dt.date = dt.date(2026, 11, 1)
    noise: NoiseConfig = field(default_factory=NoiseConfig)


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
    date = config.extract_date
    persons, relationships = pop.population(rng, config.people, date)
    llpg = pop.gazetteer(rng, int(persons["household_id"].n_unique() * 1.0), max(6, config.people // 2000))
    persons, residence = ex.assign_addresses(rng, persons, llpg, date)
    needs = ex.plant_needs(rng, persons)
    base = ex.select_records(rng, persons, needs)
    base = base.sort("source", "person_id")
    noisy = ex.apply_noise(rng, base, config.noise, date)
    noisy = ex.duplicate_records(rng, noisy, config.noise.duplicate)
    noisy = ex.make_unusable(rng, noisy, config.noise.unusable)
    noisy = ex.address_parts(noisy, llpg)
    noisy = noisy.with_columns(pl.Series("r", rng.random(noisy.height)), pl.Series("r2", rng.random(noisy.height)))

    stamp = date.strftime("%Y%m%d")
    landing = out_dir / "landing"
    truth_dir = out_dir / "truth"
    for d in (landing, truth_dir, out_dir / "reference"):
        d.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    truths = []
    writers = {"police": _police, "probation": _probation, "housing": _housing, "health": _health,
               "education": _education}
    for source, writer in writers.items():
        records = noisy.filter(pl.col("source") == source)
        records = records.with_columns(pl.Series("record_id", writer.ids(rng, records.height)))
        path, truth = writer(records, landing / source, stamp, rng, persons)
        files[f"landing/{source}/{path.name}"] = path
        truths.append(truth)

    llpg_path = out_dir / "reference" / "llpg.csv"
    llpg.write_csv(llpg_path)
    files["reference/llpg.csv"] = llpg_path
    truth = pl.concat(truths, how="diagonal_relaxed").join(
        persons.select("person_id", "household_id", "uprn_current"), on="person_id", how="left"
    ).select("source", "record_id", "person_id", "household_id", "uprn_recorded", "uprn_current", "noise",
             "unusable", "unusable_reason", "record_role")
    outputs = {
        "truth/records.parquet": truth.sort("source", "record_id"),
        "truth/persons.parquet": persons.drop("uprn_previous", "moved_days_ago").rename({"uprn_current": "uprn"}),
        "truth/households.parquet": persons.group_by("household_id").agg(
            pl.col("household_type").first(), pl.col("uprn_current").first().alias("uprn"), pl.len().alias("members")
        ).sort("household_id"),
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
        else:
            row_counts[name] = llpg.height
    sha = {name: _sha(path) for name, path in files.items()}
    manifest = CityManifest(out_dir, files, row_counts, sha, time.perf_counter() - started)
    (truth_dir / "city.json").write_text(json.dumps({
        "seed": config.seed, "people": config.people, "extract_date": date.isoformat(),
        "noise": asdict(config.noise), "row_counts": row_counts, "sha256": sha,
    }, indent=2, sort_keys=True), encoding="utf-8")
    return manifest


# --------------------------------------------------------------------------------------------- truth
def _truth(records: pl.DataFrame, has_identifier: pl.Expr, *, dob_unusable: pl.Expr | None = None) -> pl.DataFrame:
    """Apply THE rule on the final values (the same rule validation applies; docs/synthetic-city.md)."""
    name_blank = (pl.col("first_name").str.strip_chars().fill_null("") == "") & (
        pl.col("last_name").str.strip_chars().fill_null("") == "")
    no_dob = dob_unusable if dob_unusable is not None else (pl.col("dob_missing") | pl.col("dob_impossible"))
    return records.with_columns(
        (name_blank | (no_dob & ~has_identifier)).alias("unusable"),
        pl.when(name_blank).then(pl.lit("no name"))
        .when(no_dob & ~has_identifier).then(pl.lit("no date of birth or identifier")).alias("unusable_reason"),
        pl.lit("subject").alias("record_role"),
    ).select("source", "record_id", "person_id", "uprn_recorded", "noise", "unusable", "unusable_reason",
             "record_role")


def _address_line(records: pl.DataFrame) -> pl.Expr:
    return pl.when(pl.col("line1").is_null()).then(pl.lit("")).otherwise(
        ex.messy(pl.col("line1")) + ", Ashford Vale " + pl.col("postcode").fill_null(""))


# ------------------------------------------------------------------------------------------- sources
def _police(records: pl.DataFrame, folder: Path, stamp: str, rng, persons) -> tuple[Path, pl.DataFrame]:
    n = records.height
    nfa = (rng.random(n) < np.where(records["household_type"].to_numpy() == "hostel", 0.3, 0.04))
    has_pnc = (rng.random(n) < 0.6) & ~records["ids_removed"].to_numpy()
    incident = np.where(records["domestic_abuse"].to_numpy() & (records["age"].to_numpy() >= 18) & (rng.random(n) < 0.6),
                        "Domestic abuse",
                        rng.choice(np.array(["Violence", "Theft", "Criminal damage", "ASB", "Drugs", "Burglary"]), n))
    records = records.with_columns(pl.Series("nfa", nfa), pl.Series("has_pnc", has_pnc),
                                   pl.when(pl.Series(nfa)).then(None).otherwise(pl.col("uprn_recorded")).alias("uprn_recorded"))
    alias = pl.when(pl.col("r") < 0.1).then(pl.col("last_name").str.to_uppercase() + ", " + pl.col("first_name").str.to_uppercase()).otherwise(pl.lit(""))
    frame = records.select(
        pl.col("record_id").alias("NOMINAL_ID"),
        ex.messy(pl.col("last_name").str.to_uppercase()).alias("SURNAME"),
        ex.messy(pl.col("first_name")).alias("FORENAMES"),
        alias.alias("ALIASES"),
        ex.dob_text("%d/%m/%Y").alias("DOB"),
        pl.col("sex").alias("SEX"),
        pl.when(pl.col("nfa")).then(pl.lit("NFA")).otherwise(_address_line(records)).alias("ADDRESS"),
        pl.when(pl.col("has_pnc")).then(pl.col("pnc_id")).otherwise(pl.lit("")).alias("PNC_ID"),
        pl.Series("INCIDENT_TYPE", incident),
        (pl.lit(dt.date(2026, 10, 31)) - pl.duration(days=(pl.col("r2") * 700).cast(pl.Int64))).dt.strftime("%d/%m/%Y").alias("INCIDENT_DATE"),
        pl.concat_str(pl.lit("PC "), pl.col("last_name").str.slice(0, 1), pl.lit(". Officer")).alias("OIC_NAME"),
        pl.lit("01632 960000").alias("OIC_PHONE"),
    ).sort("NOMINAL_ID")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"nominals_{stamp}.csv"
    text = frame.write_csv(line_terminator="\r\n", quote_style="necessary")
    path.write_bytes(text.encode("cp1252", errors="replace"))
    truth = _truth(records, pl.col("has_pnc"))
    return path, truth


_police.ids = lambda rng, n: _ids(rng, n, "N", 7)


def _probation(records, folder, stamp, rng, persons):
    n = records.height
    nfa = rng.random(n) < 0.08
    records = records.with_columns(pl.Series("nfa", nfa),
                                   pl.when(pl.Series(nfa)).then(None).otherwise(pl.col("uprn_recorded")).alias("uprn_recorded"))
    frame = records.select(
        pl.col("record_id").alias("CRN"),
        pl.when(pl.col("r") < 0.9).then(pl.col("pnc_id")).otherwise(pl.lit("")).alias("PNC_NUMBER"),
        ex.messy(pl.col("first_name")).alias("FIRST_NAME"),
        ex.messy(pl.col("last_name")).alias("LAST_NAME"),
        pl.when(pl.col("dob_missing") | pl.col("dob_impossible")).then(None).otherwise(pl.col("date_of_birth")).alias("DATE_OF_BIRTH"),
        pl.when(pl.col("sex") == "M").then(pl.lit("Male")).otherwise(pl.lit("Female")).alias("GENDER"),
        pl.when(pl.col("nfa")).then(pl.lit("")).otherwise(pl.col("line1").fill_null("")).alias("ADDRESS_LINE1"),
        pl.lit("").alias("ADDRESS_LINE2"),
        pl.when(pl.col("nfa")).then(pl.lit("")).otherwise(pl.lit("Ashford Vale")).alias("TOWN"),
        pl.when(pl.col("nfa")).then(pl.lit("")).otherwise(pl.col("postcode").fill_null("")).alias("POSTCODE"),
        pl.when(pl.col("nfa")).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("NFA"),
        pl.when(pl.col("r2") < 0.5).then(pl.lit("Community Order")).otherwise(pl.lit("Licence")).alias("SENTENCE_TYPE"),
        (pl.lit(dt.date(2026, 10, 1)) - pl.duration(days=(pl.col("r2") * 900).cast(pl.Int64))).alias("SENTENCE_START"),
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


def _housing(records, folder, stamp, rng, persons):
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
        pl.when(pl.col("r") < 0.92).then(pl.col("uprn_current").cast(pl.String)).otherwise(pl.lit("")).alias("UPRN"),
        pl.when(pl.col("rank_in_hh") == 1).then(pl.lit("Lead tenant"))
        .when(pl.col("role") == "parent2").then(pl.lit("Joint tenant")).otherwise(pl.lit("Household member")).alias("Role"),
        pl.col("relationship").alias("RelationshipToLead"),
        pl.when(pl.col("age") < 18).then(pl.lit("")).when(pl.col("sex") == "M").then(pl.lit("Mr")).otherwise(pl.lit("Ms")).alias("Title"),
        ex.messy(pl.col("first_name")).alias("Forename"),
        ex.messy(pl.col("last_name")).alias("Surname"),
        ex.dob_text("%Y-%m-%d").alias("DateOfBirth"),
        pl.col("line1").fill_null("").alias("AddressLine1"),
        pl.lit("Ashford Vale").alias("AddressLine2"),
        pl.col("postcode").fill_null("").alias("Postcode"),
        (pl.lit(dt.date(2026, 11, 1)) - pl.duration(days=(pl.col("r2") * 3000).cast(pl.Int64))).dt.strftime("%Y-%m-%d").alias("TenancyStart"),
        pl.lit("").alias("TenancyEnd"),
        pl.when(pl.col("age") < 16).then(pl.lit("")).when(pl.col("worklessness") & (pl.col("age") < 66)).then(pl.lit("Unemployed"))
        .when(pl.col("age") >= 66).then(pl.lit("Retired")).otherwise(pl.lit("Employed")).alias("EmploymentStatus"),
        pl.when(pl.col("crime_asb") & (pl.col("rank_in_hh") == 1)).then(pl.lit("ASB") + pl.col("household_id").cast(pl.String)).otherwise(pl.lit("")).alias("ASBCaseRef"),
        pl.when(pl.col("crime_asb") & (pl.col("rank_in_hh") == 1)).then(pl.lit("2026-03-01")).otherwise(pl.lit("")).alias("ASBCaseOpened"),
        pl.lit("Alex Housing Officer").alias("HousingOfficer"),
        pl.lit("01632 960222").alias("OfficerPhone"),
        pl.when(pl.col("phone_missing")).then(pl.lit("")).otherwise(pl.col("phone")).alias("ContactPhone"),
    ).sort("TenancyRef", "PersonRef")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tenancy_members_{stamp}.txt"
    frame.write_csv(path, separator=";")
    records = records.with_columns(pl.col("uprn_current").alias("uprn_recorded"))
    return path, _truth(records, pl.lit(False))


_housing.ids = lambda rng, n: _ids(rng, n, "HP", 8)


def _health(records, folder, stamp, rng, persons):
    needs = pl.when(pl.col("health") & (pl.col("r") < 0.7)).then(
        pl.when(pl.col("r2") < 0.5).then(pl.lit("mental health")).otherwise(pl.lit("substance misuse;mental health"))
    ).otherwise(pl.lit(""))
    frame = records.select(
        pl.col("record_id").alias("patient_id"),
        pl.col("nhs_number"),
        ex.messy(pl.col("first_name")).alias("given_name"),
        ex.messy(pl.col("last_name")).alias("family_name"),
        ex.dob_text("%Y%m%d").alias("birth_date"),
        pl.when(pl.col("sex") == "M").then(pl.lit("1")).otherwise(pl.lit("2")).alias("gender"),
        pl.col("line1").fill_null("").alias("address_1"),
        pl.lit("").alias("address_2"),
        pl.lit("Ashford Vale").alias("address_3"),
        pl.col("postcode").fill_null("").alias("postcode"),
        pl.when(pl.col("phone_missing")).then(pl.lit("")).otherwise(pl.col("phone")).alias("phone"),
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
    return path, _truth(records, pl.col("nhs_valid") & (pl.col("nhs_number") != ""))


_health.ids = lambda rng, n: _ids(rng, n, "G", 8)


def _education(records, folder, stamp, rng, persons):
    parents = persons.filter(pl.col("role") == "parent1").select(
        "household_id", pl.col("person_id").alias("parent_person_id"), pl.col("first_name").alias("p_first"),
        pl.col("last_name").alias("p_last"), pl.col("sex").alias("p_sex"), pl.col("phone").alias("p_phone"),
        pl.col("uprn_current").alias("p_uprn"))
    records = records.join(parents, on="household_id", how="left").with_columns(
        pl.lit("").alias("upn_blank"),
        ((pl.col("r") < 0.97) & ~pl.col("ids_removed")).alias("has_upn"),
    )
    bad_attendance = pl.col("education")
    frame = records.select(
        pl.col("record_id").alias("PupilID"),
        pl.when(pl.col("has_upn")).then(pl.col("upn")).otherwise(pl.lit("")).alias("UPN"),
        ex.messy(pl.col("last_name")).alias("LegalSurname"),
        ex.messy(pl.col("first_name")).alias("Forename"),
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
        pl.lit("").alias("AddressLine2"),
        pl.lit("Ashford Vale").alias("AddressLine3"),
        pl.col("postcode").fill_null("").alias("Postcode"),
        pl.when(pl.col("p_first").is_null()).then(pl.lit("")).otherwise(
            pl.when(pl.col("p_sex") == "F").then(pl.lit("Mrs ")).otherwise(pl.lit("Mr ")) + pl.col("p_first") + " " + pl.col("p_last")
        ).alias("Parent1Name"),
        pl.when(pl.col("p_first").is_null()).then(pl.lit("")).when(pl.col("p_sex") == "F").then(pl.lit("Mother")).otherwise(pl.lit("Father")).alias("Parent1Relationship"),
        pl.col("p_phone").fill_null("").alias("Parent1Phone"),
        pl.lit("Jo Designated Teacher").alias("SchoolContactName"),
        pl.lit("safeguarding@avacademy.example").alias("SchoolContactEmail"),
    ).sort("PupilID")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pupils_{stamp}.csv"
    path.write_bytes(b"\xef\xbb\xbf" + frame.write_csv().encode("utf-8"))
    subjects = _truth(records, pl.col("has_upn"))
    parent_rows = records.filter(pl.col("parent_person_id").is_not_null()).select(
        pl.lit("education").alias("source"), (pl.col("record_id") + "-P1").alias("record_id"),
        pl.col("parent_person_id").alias("person_id"), pl.col("uprn_recorded"), pl.lit([], pl.List(pl.String)).alias("noise"),
        pl.lit(False).alias("unusable"), pl.lit(None, pl.String).alias("unusable_reason"),
        pl.lit("parent_carer").alias("record_role"),
    )
    return path, pl.concat([subjects, parent_rows], how="diagonal_relaxed")


_education.ids = lambda rng, n: _ids(rng, n, "P", 7)
