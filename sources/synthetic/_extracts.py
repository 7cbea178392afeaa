"""Agency records of the synthetic city: who each agency knows, the noise of real systems, the file formats."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

_NICKNAMES = Path(__file__).resolve().parent.parent / "reference" / "nicknames.csv"
_ABBREVIATIONS = {" Road": " Rd", " Street": " St", " Avenue": " Ave", " Lane": " Ln", " Close": " Cl",
                  " Crescent": " Cres", " Drive": " Dr", " Gardens": " Gdns"}
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass(frozen=True)
class NoiseConfig:
    """Share of records that get each kind of noise (of those where it can apply)."""

    typo: float = 0.03
    nickname: float = 0.05
    name_swap: float = 0.01
    dob_transposed: float = 0.01
    dob_year_off: float = 0.01
    missing_field: float = 0.03
    stale_address: float = 0.3  # of records of people who moved
    postcode_typo: float = 0.02
    maiden_name: float = 0.3  # of records of women who changed surname on marriage
    case_whitespace: float = 0.05
    duplicate: float = 0.02
    nhs_mistyped: float = 0.02
    nhs_missing: float = 0.05
    address_abbreviated: float = 0.15
    unusable: float = 0.005

    def scaled(self, factor: float) -> "NoiseConfig":
        return NoiseConfig(**{k: min(1.0, v * factor) for k, v in self.__dict__.items()})


def _nicknames() -> dict[str, str]:
    frame = pl.read_csv(_NICKNAMES)
    mapping: dict[str, str] = {}
    for nick, formal in frame.iter_rows():
        mapping.setdefault(formal, nick)
    return mapping


def _mask(rng: np.random.Generator, n: int, rate: float, eligible: np.ndarray | None = None) -> np.ndarray:
    m = rng.random(n) < rate
    return m if eligible is None else m & eligible


def _typo(rng: np.random.Generator, values: pl.Series, mask: np.ndarray) -> pl.Series:
    """Replace one character in the middle of the name (a slip of the keyboard)."""
    letters = np.array(list("abcdefghijklmnoprstuw"))
    pos = rng.integers(1, 4, len(values))
    repl = rng.choice(letters, len(values))
    frame = pl.DataFrame({"v": values, "p": pos, "r": repl, "m": mask})
    out = frame.select(
        pl.when(pl.col("m") & (pl.col("v").str.len_chars() > pl.col("p") + 1))
        .then(pl.col("v").str.slice(0, pl.col("p")) + pl.col("r") + pl.col("v").str.slice(pl.col("p") + 1))
        .otherwise(pl.col("v"))
    )
    return out.to_series()


def assign_addresses(rng: np.random.Generator, persons: pl.DataFrame, llpg: pl.DataFrame, extract_date: dt.date
                     ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Current UPRN per person, moves in the last three years, residence history."""
    homes = llpg.filter(~pl.col("is_communal"))["uprn"].to_numpy()
    communal = llpg.filter(pl.col("is_communal")).select("uprn", "classification_code")
    households = persons.filter(pl.col("role") != "resident")["household_id"].unique().sort().to_numpy()
    chosen = rng.permutation(homes)[: len(households)]
    moved = rng.random(len(households)) < 0.15
    previous = rng.choice(homes, len(households))
    move_days = rng.integers(30, 3 * 365, len(households))
    hh_frame = pl.DataFrame({"household_id": households, "uprn_current": chosen,
                             "uprn_previous": np.where(moved, previous, 0), "moved_days_ago": np.where(moved, move_days, 0)})
    residents = persons.filter(pl.col("role") == "resident").select("person_id", "household_id", "household_type")
    code = {"care_home": "RI01", "hostel": "RI02A", "student_halls": "RI03"}
    picks = []
    for kind, cls in code.items():
        places = communal.filter(pl.col("classification_code") == cls)["uprn"].to_numpy()
        subset = residents.filter(pl.col("household_type") == kind)
        picks.append(subset.with_columns(pl.Series("uprn_current", rng.choice(places, subset.height)))
                     .select("household_id", "uprn_current"))
    communal_hh = pl.concat(picks).with_columns(pl.lit(0, pl.Int64).alias("uprn_previous"),
                                                pl.lit(0, pl.Int64).alias("moved_days_ago"))
    hh_frame = pl.concat([hh_frame.cast({"uprn_current": pl.Int64, "uprn_previous": pl.Int64, "moved_days_ago": pl.Int64}),
                          communal_hh.cast({"uprn_current": pl.Int64})], how="vertical_relaxed")
    end = pl.lit(extract_date)
    persons = persons.join(hh_frame, on="household_id").with_columns(
        (end - pl.duration(days=pl.col("moved_days_ago"))).alias("moved_in")
    )
    current = persons.select(
        "person_id", pl.col("uprn_current").alias("uprn"),
        pl.when(pl.col("moved_days_ago") > 0).then(pl.col("moved_in")).otherwise(
            pl.max_horizontal(pl.col("date_of_birth"), pl.lit(extract_date) - pl.duration(days=3650))
        ).alias("from"),
        pl.lit(None, pl.Date).alias("to"),
    )
    before = persons.filter(pl.col("moved_days_ago") > 0).select(
        "person_id", pl.col("uprn_previous").alias("uprn"),
        pl.max_horizontal(pl.col("date_of_birth"), pl.col("moved_in") - pl.duration(days=2000)).alias("from"),
        (pl.col("moved_in") - pl.duration(days=1)).alias("to"),
    )
    residence = pl.concat([current, before]).filter(pl.col("from") <= pl.col("to").fill_null(pl.lit(extract_date)))
    return persons, residence.sort("person_id", "from")


def plant_needs(rng: np.random.Generator, persons: pl.DataFrame) -> pl.DataFrame:
    households = persons.filter(pl.col("role") != "resident").group_by("household_id").agg(
        (pl.col("role") == "child").sum().alias("children")).sort("household_id")
    n = households.height
    flagged = rng.random(n) < 0.08
    needs = {
        "crime_asb": flagged & (rng.random(n) < 0.55),
        "education": flagged & (households["children"].to_numpy() > 0) & (rng.random(n) < 0.6),
        "worklessness": flagged & (rng.random(n) < 0.6),
        "domestic_abuse": flagged & (rng.random(n) < 0.3),
        "health": flagged & (rng.random(n) < 0.4),
    }
    return households.select("household_id").with_columns(
        pl.Series("has_needs", flagged), *[pl.Series(k, v) for k, v in needs.items()]
    )


def select_records(rng: np.random.Generator, persons: pl.DataFrame, needs: pl.DataFrame) -> pl.DataFrame:
    """Which agency knows whom: one row per (source, person) with the record's base values."""
    p = persons.join(needs, on="household_id", how="left").with_columns(
        pl.col(c).fill_null(False) for c in ("has_needs", "crime_asb", "education", "worklessness",
                                             "domestic_abuse", "health")
    )
    n = p.height
    age = p["age"].to_numpy()
    role = p["role"].to_numpy()
    htype = p["household_type"].to_numpy()
    has_needs = p["has_needs"].to_numpy()
    crime = p["crime_asb"].to_numpy() | p["domestic_abuse"].to_numpy()
    r = rng.random((5, n))
    # social tenancies are a household property
    hh_ids = p["household_id"].to_numpy()
    tenancy_draw = rng.random(hh_ids.max() + 1)
    tenant = np.where(has_needs, tenancy_draw[hh_ids] < 0.7, tenancy_draw[hh_ids] < 0.28) & (role != "resident")
    police = (age >= 12) & np.where(crime, r[2] < 0.55, np.where(htype == "hostel", r[2] < 0.12, r[2] < 0.025))
    knows = {
        "health": r[0] < np.where(has_needs, 0.97, 0.9),
        "education": (age >= 4) & (age <= 18) & (r[1] < 0.97),
        "housing": tenant,
        "police": police,
        "probation": police & (age >= 18) & (r[3] < np.where(crime, 0.3, 0.08)),
    }
    frames = [p.filter(pl.Series(mask)).with_columns(pl.lit(src).alias("source")) for src, mask in knows.items()]
    return pl.concat(frames)


def apply_noise(rng: np.random.Generator, records: pl.DataFrame, noise: NoiseConfig, extract_date: dt.date
                ) -> pl.DataFrame:
    """Vectorised noise; every applied kind is listed in the record's `noise` column."""
    n = records.height
    labels: dict[str, np.ndarray] = {}
    nick = _nicknames()
    first = records["first_name"]
    lower_first = first.str.to_lowercase()
    nick_values = lower_first.replace_strict(nick, default=None)
    m = _mask(rng, n, noise.nickname, nick_values.is_not_null().to_numpy())
    labels["nickname"] = m
    first = pl.Series(np.where(m, nick_values.fill_null("").str.to_titlecase().to_numpy(), first.to_numpy()))
    last = records["last_name"]
    maiden = records["maiden_name"].to_numpy()
    m = _mask(rng, n, noise.maiden_name, maiden != "")
    labels["maiden_name"] = m
    last = pl.Series(np.where(m, maiden, last.to_numpy()))
    # the two-surname child: education records the other parent's surname
    other = records["other_parent_surname"].to_numpy()
    two = (other != "") & (records["source"].to_numpy() == "education")
    labels["other_surname"] = two
    last = pl.Series(np.where(two, other, last.to_numpy()))
    m = _mask(rng, n, noise.typo)
    which = rng.random(n) < 0.5
    labels["typo"] = m
    first = _typo(rng, first, m & which)
    last = _typo(rng, last, m & ~which)
    m = _mask(rng, n, noise.name_swap)
    labels["name_swap"] = m
    first, last = pl.Series(np.where(m, last.to_numpy(), first.to_numpy())), pl.Series(np.where(m, first.to_numpy(), last.to_numpy()))

    dob = records["date_of_birth"]
    day, month, year = dob.dt.day().to_numpy(), dob.dt.month().to_numpy(), dob.dt.year().to_numpy()
    m = _mask(rng, n, noise.dob_transposed, (day <= 12) & (day != month))
    labels["dob_transposed"] = m
    day, month = np.where(m, month, day), np.where(m, day, month)
    m = _mask(rng, n, noise.dob_year_off)
    labels["dob_year_off"] = m
    shift = np.where(year >= extract_date.year - 1, -1, np.where(rng.random(n) < 0.5, -1, 1))
    year = np.where(m, year + shift, year)
    day = np.where((month == 2) & (day == 29), 28, day)
    new_dob = pl.DataFrame({"y": year, "m": month, "d": day}).select(pl.date("y", "m", "d")).to_series()

    missing = _mask(rng, n, noise.missing_field)
    missing_what = rng.integers(0, 3, n)  # 0 dob, 1 postcode/address, 2 phone
    labels["missing_field"] = missing
    moved = records["uprn_previous"].to_numpy() > 0
    # health and housing update addresses promptly; the other agencies keep the old one for a while
    stale = _mask(rng, n, noise.stale_address, moved & ~np.isin(records["source"].to_numpy(), ["health", "housing"]))
    labels["stale_address"] = stale
    nhs = records["nhs_number"].to_numpy().astype("<U10")
    mistyped = _mask(rng, n, noise.nhs_mistyped)
    labels["nhs_mistyped"] = mistyped & (records["source"].to_numpy() == "health")
    pos = rng.integers(0, 10, n)
    digit = rng.integers(0, 10, n).astype(str)
    nhs_list = nhs.view("<U1").reshape(n, 10).copy() if n else np.empty((0, 10), "<U1")
    old = nhs_list[np.arange(n), pos]
    digit = np.where(digit == old, np.where(old == "9", "0", (old.astype(int) + 1 if n else old).astype(str)), digit)
    nhs_list[np.arange(n), pos] = np.where(mistyped, digit, old)
    nhs = nhs_list.view("<U10").reshape(n) if n else nhs
    nhs_missing = _mask(rng, n, noise.nhs_missing)
    labels["nhs_missing"] = nhs_missing & (records["source"].to_numpy() == "health")
    nhs = np.where(nhs_missing, "", nhs)
    labels["case_whitespace"] = _mask(rng, n, noise.case_whitespace)
    labels["postcode_typo"] = _mask(rng, n, noise.postcode_typo)
    labels["address_abbreviated"] = _mask(rng, n, noise.address_abbreviated)

    out = records.with_columns(
        first.alias("first_name"), last.alias("last_name"), new_dob.alias("date_of_birth"),
        pl.Series("nhs_number", nhs), pl.Series("nhs_valid", ~mistyped & ~nhs_missing),
        pl.Series("dob_missing", missing & (missing_what == 0)),
        pl.Series("address_missing", missing & (missing_what == 1)),
        pl.Series("phone_missing", missing & (missing_what == 2)),
        pl.Series("stale", stale),
    )
    out = out.with_columns(
        pl.when(pl.col("stale")).then(pl.col("uprn_previous")).otherwise(pl.col("uprn_current")).alias("uprn_recorded"),
        pl.concat_list([pl.when(pl.Series(v)).then(pl.lit(k)) for k, v in labels.items()]).list.drop_nulls().alias("noise"),
        pl.Series("case_mess", labels["case_whitespace"]),
        pl.Series("postcode_typo", labels["postcode_typo"]),
        pl.Series("abbreviate", labels["address_abbreviated"]),
    )
    return out


def duplicate_records(rng: np.random.Generator, records: pl.DataFrame, rate: float) -> pl.DataFrame:
    """The same person entered twice in one system: a second record id, usually with a different slip."""
    dup = records.filter(pl.Series(rng.random(records.height) < rate))
    dup = dup.with_columns(pl.lit(True).alias("is_duplicate"),
                           pl.col("noise").list.concat(pl.lit(["duplicate"])).alias("noise"))
    dup = dup.with_columns(_typo(rng, dup["first_name"], rng.random(dup.height) < 0.5).alias("first_name"))
    return pl.concat([records.with_columns(pl.lit(False).alias("is_duplicate")), dup])


def make_unusable(rng: np.random.Generator, records: pl.DataFrame, rate: float) -> pl.DataFrame:
    """Rows corrupted beyond use on purpose: no name at all, or no usable date of birth and no identifier."""
    n = records.height
    m = rng.random(n) < rate
    kind = rng.integers(0, 3, n)
    no_name = m & (kind == 0)
    no_dob = m & (kind >= 1)
    impossible = m & (kind == 2)
    return records.with_columns(
        pl.when(pl.Series(no_name)).then(pl.lit("")).otherwise(pl.col("first_name")).alias("first_name"),
        pl.when(pl.Series(no_name)).then(pl.lit("")).otherwise(pl.col("last_name")).alias("last_name"),
        (pl.col("dob_missing") | pl.Series(no_dob & ~impossible)).alias("dob_missing"),
        pl.Series("dob_impossible", impossible),
        (pl.col("nhs_valid") & ~pl.Series(no_dob)).alias("nhs_valid"),
        pl.Series("ids_removed", no_dob),
        pl.when(pl.Series(no_dob)).then(pl.lit("")).otherwise(pl.col("nhs_number")).alias("nhs_number"),
    )


def address_parts(records: pl.DataFrame, llpg: pl.DataFrame) -> pl.DataFrame:
    g = llpg.select(
        pl.col("uprn").alias("uprn_recorded"),
        pl.when(pl.col("sao_text") != "").then(pl.col("sao_text").str.to_titlecase()).alias("flat"),
        pl.when(pl.col("pao_text") != "").then(pl.col("pao_text"))
        .otherwise(pl.col("pao_start_number").cast(pl.String) + " " + pl.col("street_description")).alias("building"),
        pl.when(pl.col("pao_text") != "").then(pl.col("pao_start_number").cast(pl.String) + " "
                                                + pl.col("street_description")).alias("street_line"),
        pl.col("postcode").alias("true_postcode"),
    )
    r = records.join(g, on="uprn_recorded", how="left")
    line1 = pl.when(pl.col("flat").is_not_null()).then(pl.col("flat") + ", " + pl.col("building")).otherwise(pl.col("building"))
    for full, short in _ABBREVIATIONS.items():
        line1 = pl.when(pl.col("abbreviate")).then(line1.str.replace(full, short, literal=True)).otherwise(line1)
    # postcode typo: swap the two letters of the inward code (keeps the format, changes the unit)
    postcode = pl.when(pl.col("postcode_typo")).then(
        pl.col("true_postcode").str.slice(0, pl.col("true_postcode").str.len_chars() - 2)
        + pl.col("true_postcode").str.slice(-1, 1) + pl.col("true_postcode").str.slice(-2, 1)
    ).otherwise(pl.col("true_postcode"))
    return r.with_columns(
        pl.when(pl.col("address_missing")).then(None).otherwise(line1).alias("line1"),
        pl.when(pl.col("address_missing")).then(None).otherwise(pl.col("street_line")).alias("line2"),
        pl.when(pl.col("address_missing")).then(None).otherwise(postcode).alias("postcode"),
    )


def messy(expr: pl.Expr) -> pl.Expr:
    """Case and whitespace mess on records flagged for it."""
    return pl.when(pl.col("case_mess")).then("  " + expr.str.to_uppercase() + " ").otherwise(expr)


def dob_text(fmt: str) -> pl.Expr:
    """Date of birth as the source writes it; impossible dates are written as 31 February."""
    impossible = {"%d/%m/%Y": "31/02/", "%Y%m%d": None, "%Y-%m-%d": None, "%d-%b-%Y": "31-Feb-"}
    year = pl.col("date_of_birth").dt.year().cast(pl.String)
    if fmt in ("%Y%m%d",):
        bad = year + "0231"
    elif fmt == "%Y-%m-%d":
        bad = year + "-02-31"
    else:
        bad = pl.lit(impossible[fmt]) + year
    return (
        pl.when(pl.col("dob_missing")).then(pl.lit(""))
        .when(pl.col("dob_impossible")).then(bad)
        .otherwise(pl.col("date_of_birth").dt.strftime(fmt))
    )
