"""Agency records of the synthetic city: who each agency knows, when, at which address, with which errors.

The rates below are the realistic profile's defaults; docs/synthetic-city.md gives each one's published
source (or says there is none and why the value was chosen). Errors vary by agency (custody and street
records are noisier than GP registers) and by person (a minority carry most errors), and every change made
to a record is logged as (record, field, kind) so that evaluation can explain misses by cause.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields, replace

import numpy as np
import polars as pl

from sources.synthetic import _noise as nz

_ABBREVIATIONS = {" Road": " Rd", " Street": " St", " Avenue": " Ave", " Lane": " Ln", " Close": " Cl",
                  " Crescent": " Cres", " Drive": " Dr", " Gardens": " Gdns", " Place": " Pl", " Terrace": " Terr"}
_ORDINAL = ["Ground Floor", "First Floor", "Second Floor", "Third Floor", "Fourth Floor", "Fifth Floor",
            "Sixth Floor", "Seventh Floor", "Eighth Floor"]
_OUT_OF_AREA = [("LS6", "Leeds"), ("M14", "Manchester"), ("B11", "Birmingham"), ("BD8", "Bradford"),
                ("LE2", "Leicester"), ("NG7", "Nottingham"), ("S2", "Sheffield"), ("E7", "London"), ("CV1", "Coventry")]

SOURCES = ("police", "probation", "housing", "health", "education", "social_care", "benefits")


@dataclass(frozen=True)
class NoiseConfig:
    """Base rate of each kind of noise, per record where it can apply; multiplied by the agency's and the
    person's error factor (see `source_error` and `error_prone_*`)."""

    # names
    typo: float = 0.04
    phonetic: float = 0.015
    nickname: float = 0.15  # of records whose first name has a nickname
    # of records whose name has another romanisation: calibrated to the published finding that missed matches are
    # about twice as common for ethnic-minority names (docs/synthetic-city.md)
    transliteration: float = 0.8
    spelling: float = 0.12  # of records whose name has another common spelling (Stephen/Steven, Clarke/Clark)
    diacritics_dropped: float = 0.7  # of records whose name has diacritics (police systems: always, cp1252)
    middle_name_as_first: float = 0.02
    middle_initial: float = 0.08  # forenames written with a middle initial ("John P")
    initial_only: float = 0.01  # forename only as an initial
    double_barrel_half: float = 0.4  # of records of people with a double-barrelled surname
    maiden_name: float = 0.3  # of records of women who changed surname on marriage
    previous_surname: float = 0.4  # of records of children whose surname changed
    surname_convention: float = 0.7  # of records of people whose surname differs by naming convention
    name_swap: float = 0.01
    infant_placeholder: float = 0.5  # of health records of babies under three months ("Baby", "Unborn")
    case_whitespace: float = 0.05
    # dates of birth
    dob_transposed: float = 0.02  # of records whose day is 12 or less
    dob_digit: float = 0.01
    dob_year_off: float = 0.008
    dob_default: float = 0.03  # in sources that enter unknown dates as 1 January (police, housing, benefits)
    dob_placeholder: float = 0.004  # 1900-01-01 in those sources
    missing_field: float = 0.03
    # addresses
    postcode_typo: float = 0.01
    postcode_wrong_unit: float = 0.02  # a real postcode of a neighbouring unit
    postcode_missing: float = 0.03
    house_number_missing: float = 0.03
    street_misspelt: float = 0.03
    flat_described: float = 0.5  # of flats: "2nd Floor Flat" / "8B" instead of "Flat 2"
    building_name_only: float = 0.3  # of named houses: the name without the street line
    locality_for_town: float = 0.25
    address_abbreviated: float = 0.15
    # identifiers and contacts
    nhs_missing: float = 0.05
    nhs_mistyped: float = 0.01
    nhs_valid_wrong: float = 0.002  # one wrong digit that still passes the check digit
    nhs_shared: float = 0.001  # another household member's NHS number
    pnc_wrong_nominal: float = 0.005
    phone_missing: float = 0.1
    typo_kinds: tuple = nz.TYPO_KINDS  # which keyboard slips occur (the easy city: substitutions only)
    duplicate_differences: int = 2  # a duplicate differs from the first entry in this many ways (1 or 2)
    household_phones: bool = True  # children's records carry a parent's mobile or the landline; numbers change
    carer_child_surname: float = 0.5  # of parent/carer records whose surname differs from the child's
    # duplicates within one system, per source (GP lists ~4%; police systems far more)
    duplicate: float = 1.0  # a multiplier over `duplicate_by_source`
    unusable: float = 0.005
    # who carries errors
    error_prone_share: float = 0.15
    error_prone_factor: float = 4.0
    source_error: dict = field(default_factory=lambda: {
        "health": 0.6, "education": 0.7, "benefits": 0.8, "housing": 1.0, "social_care": 1.0,
        "probation": 1.3, "police": 2.0})
    duplicate_by_source: dict = field(default_factory=lambda: {
        "health": 0.04, "police": 0.12, "housing": 0.02, "education": 0.01, "social_care": 0.03,
        "probation": 0.01, "benefits": 0.02})
    # address lag: mean days before an agency records a move (health: a mixture, see `_lag_days`)
    address_lag: bool = True  # agencies record moves late, or keep the address of the last contact (see _LAG)

    def scaled(self, factor: float) -> "NoiseConfig":
        """Every rate times `factor` (capped at 1); the structure (who is error-prone, lags) unchanged."""
        skip = {"error_prone_share", "error_prone_factor", "source_error", "duplicate_by_source",
                "address_lag", "diacritics_dropped", "infant_placeholder", "typo_kinds", "duplicate_differences",
                "household_phones"}
        return replace(self, **{f.name: min(1.0, getattr(self, f.name) * factor) for f in fields(self)
                                if f.name not in skip})

    @classmethod
    def easy(cls) -> "NoiseConfig":
        """The old, easy city: uniform errors, prompt address updates, few duplicates. For fast tests only."""
        return cls(typo=0.03, phonetic=0.0, nickname=0.05, transliteration=0.0, surname_convention=0.0, spelling=0.0, middle_name_as_first=0.0,
                   middle_initial=0.0, initial_only=0.0, double_barrel_half=0.0, previous_surname=0.0,
                   infant_placeholder=0.0, dob_transposed=0.01, dob_digit=0.0, dob_year_off=0.01, dob_default=0.0,
                   dob_placeholder=0.0, postcode_typo=0.02, postcode_wrong_unit=0.0, postcode_missing=0.0,
                   house_number_missing=0.0, street_misspelt=0.0, flat_described=0.0, locality_for_town=0.0,
                   nhs_mistyped=0.02, nhs_valid_wrong=0.0, nhs_shared=0.0, pnc_wrong_nominal=0.0, phone_missing=0.03,
                   household_phones=False, carer_child_surname=0.0, typo_kinds=("typo_substitute",),
                   duplicate_differences=1,
                   error_prone_share=0.0, error_prone_factor=1.0,
                   source_error={s: 1.0 for s in SOURCES},
                   duplicate_by_source={s: 0.02 for s in SOURCES},
                   address_lag=False)


# ------------------------------------------------------------------------------------------- residence
def assign_addresses(rng: np.random.Generator, persons: pl.DataFrame, llpg: pl.DataFrame, as_of: dt.date,
                     needs: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Current UPRN per household, moves in the last three years by tenure, residence history.

    Moved in the last three years (English Housing Survey): about 10% of owners, 15% of social renters and 50%
    of private renters — about a fifth of households overall. Families with multiple needs move far more
    (evictions, temporary accommodation, refuges): 60% (no published rate; chosen). A quarter of movers came
    from outside the city (their previous address is not in the gazetteer).
    """
    homes = llpg.filter(~pl.col("is_communal"))["uprn"].to_numpy()
    communal = llpg.filter(pl.col("is_communal")).select("uprn", "classification_code")
    households = persons.filter(pl.col("role") != "resident").group_by("household_id").agg(
        pl.col("tenure").first()).sort("household_id")
    h = households.height
    chosen = rng.permutation(homes)[:h]
    tenure = households["tenure"].to_numpy()
    moved = rng.random(h) < np.select([tenure == "private_rent", tenure == "social_rent"], [0.5, 0.15], 0.10)
    if needs is not None:
        flagged = households.join(needs.select("household_id", "has_needs"), on="household_id", how="left", maintain_order="left")[
            "has_needs"].fill_null(False).to_numpy()
        moved |= flagged & (rng.random(h) < 0.6)
    from_outside = rng.random(h) < 0.25
    previous = np.where(from_outside, -1, rng.choice(homes, h))
    move_days = rng.integers(1, 3 * 365, h)
    # an earlier move too: private renters stay about two years a tenancy (EHS: 4 years' average residence,
    # many far shorter), families with needs move repeatedly; others seldom
    again = moved & (rng.random(h) < np.where(tenure == "private_rent", 0.4, 0.15))
    if needs is not None:
        again |= moved & flagged & (rng.random(h) < 0.5)
    earlier_days = move_days + rng.integers(60, 900, h)
    earlier = np.where(rng.random(h) < 0.25, -1, rng.choice(homes, h))
    hh_frame = pl.DataFrame({"household_id": households["household_id"], "uprn_current": chosen,
                             "uprn_previous": np.where(moved, previous, 0), "moved_days_ago": np.where(moved, move_days, 0),
                             "uprn_previous2": np.where(again, earlier, 0),
                             "moved_days_ago2": np.where(again, earlier_days, 0)})
    residents = persons.filter(pl.col("role") == "resident").select("person_id", "household_id", "household_type")
    code = {"care_home": "RI01", "hostel": "RI02A", "student_halls": "RI03"}
    picks = []
    for kind, cls in code.items():
        places = communal.filter(pl.col("classification_code") == cls)["uprn"].to_numpy()
        subset = residents.filter(pl.col("household_type") == kind)
        picks.append(subset.with_columns(pl.Series("uprn_current", rng.choice(places, subset.height)))
                     .select("household_id", "uprn_current"))
    communal_hh = pl.concat(picks).with_columns(pl.lit(0, pl.Int64).alias("uprn_previous"),
                                                pl.lit(0, pl.Int64).alias("moved_days_ago"),
                                                pl.lit(0, pl.Int64).alias("uprn_previous2"),
                                                pl.lit(0, pl.Int64).alias("moved_days_ago2"))
    hh_frame = pl.concat([hh_frame.cast({"uprn_current": pl.Int64, "uprn_previous": pl.Int64, "moved_days_ago": pl.Int64,
                                         "uprn_previous2": pl.Int64, "moved_days_ago2": pl.Int64}),
                          communal_hh.cast({"uprn_current": pl.Int64})], how="vertical_relaxed")
    end = pl.lit(as_of)
    persons = persons.join(hh_frame, on="household_id", maintain_order="left")
    # young adults move on their own, far more often than families (house-share turnover, first homes):
    # 70% of sharers and half of single people under 35 moved in on their own in the last three years
    n = persons.height
    role, age = persons["role"].to_numpy(), persons["age"].to_numpy()
    alone = ((role == "sharer") & (rng.random(n) < 0.7)) | ((role == "single") & (age < 35) & (rng.random(n) < 0.5))
    own_days = rng.integers(1, 3 * 365, n)
    own_previous = np.where(rng.random(n) < 0.3, -1, rng.choice(homes, n))
    # young adults (17-24) still counted in the family household (resident at least half the time) but living
    # part of the year elsewhere (study, work, a partner's): 60% registered at that other address somewhere
    term = (role == "child") & (age >= 17) & (age <= 24) & (rng.random(n) < 0.6)
    persons = persons.with_columns(
        pl.Series("uprn_term", np.where(term, rng.choice(homes, n), 0)),
        pl.when(pl.Series(alone)).then(pl.Series(own_previous)).otherwise(pl.col("uprn_previous")).alias("uprn_previous"),
        pl.when(pl.Series(alone)).then(pl.Series(own_days)).otherwise(pl.col("moved_days_ago")).alias("moved_days_ago"),
        pl.when(pl.Series(alone)).then(0).otherwise(pl.col("uprn_previous2")).alias("uprn_previous2"),
        pl.when(pl.Series(alone)).then(0).otherwise(pl.col("moved_days_ago2")).alias("moved_days_ago2"),
    ).with_columns(
        (end - pl.duration(days=pl.col("moved_days_ago"))).alias("moved_in"),
        (end - pl.duration(days=pl.col("moved_days_ago2"))).alias("moved_in2"),
        # an out-of-area previous address: a made-up street in another town
        pl.Series("out_of_area", rng.integers(0, len(_OUT_OF_AREA), persons.height)),
    )
    current = persons.select(
        "person_id", pl.col("uprn_current").alias("uprn"),
        pl.when(pl.col("moved_days_ago") > 0).then(pl.col("moved_in")).otherwise(
            pl.max_horizontal(pl.col("date_of_birth"), pl.lit(as_of) - pl.duration(days=3650))
        ).alias("from"),
        pl.lit(None, pl.Date).alias("to"),
    )
    twice = pl.col("moved_days_ago2") > 0
    before = persons.filter(pl.col("moved_days_ago") > 0).select(
        "person_id", pl.when(pl.col("uprn_previous") > 0).then(pl.col("uprn_previous")).alias("uprn"),
        pl.max_horizontal(pl.col("date_of_birth"), pl.when(twice).then(pl.col("moved_in2"))
                          .otherwise(pl.col("moved_in") - pl.duration(days=2000))).alias("from"),
        (pl.col("moved_in") - pl.duration(days=1)).alias("to"),
    )
    earliest = persons.filter(twice).select(
        "person_id", pl.when(pl.col("uprn_previous2") > 0).then(pl.col("uprn_previous2")).alias("uprn"),
        pl.max_horizontal(pl.col("date_of_birth"), pl.col("moved_in2") - pl.duration(days=2000)).alias("from"),
        (pl.col("moved_in2") - pl.duration(days=1)).alias("to"),
    )
    residence = pl.concat([current, before, earliest]).filter(pl.col("from") <= pl.col("to").fill_null(pl.lit(as_of)))
    return persons, residence.sort("person_id", "from")


def plant_needs(rng: np.random.Generator, persons: pl.DataFrame) -> pl.DataFrame:
    households = persons.filter(pl.col("role") != "resident").group_by("household_id").agg(
        (pl.col("role") == "child").sum().alias("children")).sort("household_id")
    n = households.height
    flagged = rng.random(n) < 0.08
    children = households["children"].to_numpy() > 0
    needs = {
        "crime_asb": flagged & (rng.random(n) < 0.55),
        "education": flagged & children & (rng.random(n) < 0.6),
        "worklessness": flagged & (rng.random(n) < 0.6),
        "domestic_abuse": flagged & (rng.random(n) < 0.3),
        "health": flagged & (rng.random(n) < 0.4),
        "child_in_need": flagged & children & (rng.random(n) < 0.35),
    }
    return households.select("household_id").with_columns(
        pl.Series("has_needs", flagged), *[pl.Series(k, v) for k, v in needs.items()]
    )


def mark_leavers(rng: np.random.Generator, persons: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """People who died or left the city in the last two years: no longer residents, still on some registers.

    About 1% of residents die each year (older people far more), and a few per cent of young adults leave;
    GP lists carry such people for months to years (list inflation, about 4% nationally).
    """
    n = persons.height
    age = persons["age"].to_numpy()
    died = rng.random(n) < np.where(age >= 80, 0.10, np.where(age >= 65, 0.02, 0.001))
    left = ~died & (rng.random(n) < np.where((age >= 18) & (age <= 35), 0.06, 0.01))
    days = rng.integers(1, 730, n)
    status = np.where(died, "died", np.where(left, "left", "resident"))
    return persons.with_columns(
        pl.Series("status", status),
        pl.when(pl.Series(status != "resident")).then(pl.lit(as_of) - pl.duration(days=pl.Series(days)))
        .otherwise(None).cast(pl.Date).alias("status_date"),
    )


def select_records(rng: np.random.Generator, persons: pl.DataFrame, needs: pl.DataFrame,
                   sources: tuple[str, ...]) -> pl.DataFrame:
    """Which agency knows whom: one row per (source, person) with the person's base values."""
    p = persons.join(needs, on="household_id", how="left", maintain_order="left").with_columns(
        pl.col(c).fill_null(False) for c in ("has_needs", "crime_asb", "education", "worklessness",
                                             "domestic_abuse", "health", "child_in_need")
    )
    n = p.height
    age = p["age"].to_numpy()
    role = p["role"].to_numpy()
    sex = p["sex"].to_numpy()
    htype = p["household_type"].to_numpy()
    has_needs = p["has_needs"].to_numpy()
    crime = p["crime_asb"].to_numpy() | p["domestic_abuse"].to_numpy()
    status = p["status"].to_numpy() if "status" in p.columns else np.full(n, "resident")
    gone = status != "resident"
    r = rng.random((8, n))
    hh_ids = p["household_id"].to_numpy()
    tenancy_draw = rng.random(hh_ids.max() + 1)
    tenant = (p["tenure"].to_numpy() == "social_rent") | (has_needs & (tenancy_draw[hh_ids] < 0.5))
    tenant &= role != "resident"
    # police nominals are mostly male (Home Office arrest statistics: about 85% of arrests are of males)
    male = np.where(sex == "M", 1.7, 0.35)
    police = (age >= 10) & (r[2] < np.minimum(1.0, male * np.where(crime, 0.5, np.where(htype == "hostel", 0.12, 0.02))))
    working_age = (age >= 18) & (age < 66)
    knows = {
        # died: removed from the GP list within weeks, but a third linger; left: most stay registered
        "health": (r[0] < np.where(has_needs, 0.97, 0.92)) & np.where(
            status == "died", r[5] < 0.3, np.where(status == "left", r[5] < 0.8, True)),
        "education": (age >= 4) & (age <= 18) & (r[1] < np.where(age >= 16, 0.8, 0.97)) & (~gone | (r[5] < 0.2)),
        "housing": tenant & (~gone | (r[5] < 0.2)),
        "police": police & (~gone | (r[5] < 0.3)),
        "probation": police & (age >= 18) & (r[3] < np.where(crime, 0.3, 0.08)) & ~gone,
        # children in need and their families (about 3% of children, far more in families with needs)
        "social_care": (age < 18) & (role == "child") & np.where(p["child_in_need"].to_numpy(), r[4] < 0.9, r[4] < 0.01)
        & (~gone | (r[6] < 0.2)),
        # out-of-work benefits: most working-age adults of workless households, a few others
        "benefits": working_age & (r[7] < np.where(p["worklessness"].to_numpy(), 0.85, 0.05)) & (~gone | (r[6] < 0.3)),
    }
    frames = [p.filter(pl.Series(knows[src])).with_columns(pl.lit(src).alias("source")) for src in sources]
    return pl.concat(frames)


# How long each agency takes to record a move: (share told within weeks, mean days if so, mean days if not).
# Health: about 40% of movers still at the old address six months on (ONS, GP registration lag); the other
# agencies have no published figure: schools hear at the next data collection or never, benefit claimants
# must report changes but a fifth do not promptly. Police, probation and social care hold the address given
# at the last contact (incident, sentence, referral), updated afterwards in half of cases.
_LAG = {"health": (0.45, 15, 570), "education": (0.6, 60, 400), "benefits": (0.8, 30, 365),
        "housing": (1.0, 10, 10), "police": (1.0, 0, 0), "probation": (0.5, 30, 0), "social_care": (0.5, 30, 0)}
CONTACT_SOURCES = {"police": 700, "probation": 900, "social_care": 900}  # days back the last contact can be


def _lag_days(rng: np.random.Generator, records: pl.DataFrame, noise: NoiseConfig) -> np.ndarray:
    """Days between a move and the agency recording it (0 where the profile has no lag)."""
    n = records.height
    fast_share, fast_mean, slow_mean = (per_source(records["source"], {s: v[i] for s, v in _LAG.items()},
                                                   1.0 if i == 0 else 0.0) for i in range(3))
    fast = rng.random(n) < fast_share
    wait = np.where(fast, rng.exponential(np.maximum(fast_mean, 1.0)), rng.exponential(np.maximum(slow_mean, 1.0)))
    return (wait if noise.address_lag else np.zeros(n)).astype(np.int64)


def per_source(source: pl.Series, values: dict, default: float) -> np.ndarray:
    """A per-agency number for every record (vectorised lookup)."""
    return source.replace_strict({k: float(v) for k, v in values.items()}, default=float(default),
                                 return_dtype=pl.Float64).to_numpy()


def _error_factor(rng: np.random.Generator, records: pl.DataFrame, noise: NoiseConfig) -> np.ndarray:
    """Per record: the agency's factor times the person's (a minority of people carry most errors)."""
    persons = records["person_id"].to_numpy()
    draw = np.random.default_rng(np.random.PCG64(int(persons.max()) + 7)).random(persons.max() + 1)
    prone = draw[persons] < noise.error_prone_share
    rest = (1 - noise.error_prone_share * noise.error_prone_factor) / max(1e-9, 1 - noise.error_prone_share)
    person = np.where(prone, noise.error_prone_factor, max(rest, 0.1))
    return person * per_source(records["source"], noise.source_error, 1.0)


def duplicate_records(rng: np.random.Generator, records: pl.DataFrame, noise: NoiseConfig) -> pl.DataFrame:
    """The same person entered twice in one system. A duplicate exists because the system's own search missed
    the first entry, so the second differs in two ways among: a surname letter, the date of birth a month out,
    an old address, a nickname. `duplicate_kind` is a bit mask of them (1, 2, 4, 8; 0: not a duplicate)."""
    rate = per_source(records["source"], noise.duplicate_by_source, 0.02) * noise.duplicate
    dup = records.filter(pl.Series(rng.random(records.height) < rate))
    first = rng.integers(0, 4, dup.height)
    second = (first + rng.integers(1, 4, dup.height)) % 4
    kind = (1 << first) | ((1 << second) if noise.duplicate_differences > 1 else 0)
    return pl.concat([records.with_columns(pl.lit(0, pl.Int8).alias("duplicate_kind")),
                      dup.with_columns(pl.Series("duplicate_kind", kind.astype(np.int8)))])


class NoiseLog:
    """Every change made to every record: (row, field, kind). Turned into truth columns at the end."""

    def __init__(self, n: int):
        self.n = n
        self.entries: list[tuple[str, str, np.ndarray]] = []

    def add(self, kind: str, field_name: str, mask: np.ndarray) -> None:
        if mask.any():
            self.entries.append((kind, field_name, mask))

    def kinds(self) -> pl.Series:
        """Per row, the list of noise kinds applied (deduplicated, in order of application)."""
        rows = [np.nonzero(m)[0] for _, _, m in self.entries]
        long = pl.DataFrame({
            "row": np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64),
            "order": np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)]) if rows else np.zeros(0, dtype=np.int64),
        }, schema={"row": pl.Int64, "order": pl.Int64})
        names = pl.Series([k for k, _, _ in self.entries], dtype=pl.String)
        per_row = long.sort("row", "order").with_columns(pl.col("order").map_batches(
            lambda s: names.gather(s), return_dtype=pl.String).alias("kind")).group_by("row", maintain_order=True).agg(
            pl.col("kind").unique(maintain_order=True))
        full = pl.DataFrame({"row": np.arange(self.n, dtype=np.int64)}).join(per_row, on="row", how="left",
                                                                             maintain_order="left")
        return full.select(pl.col("kind").fill_null(pl.lit([], pl.List(pl.String))).alias("noise"))["noise"]

    def frame(self, keys: pl.DataFrame) -> pl.DataFrame:
        parts = [keys.filter(pl.Series(m)).with_columns(pl.lit(f).alias("field"), pl.lit(k).alias("kind"))
                 for k, f, m in self.entries]
        if not parts:
            return keys.head(0).with_columns(pl.lit("").alias("field"), pl.lit("").alias("kind"))
        return pl.concat(parts)


def apply_noise(rng: np.random.Generator, records: pl.DataFrame, noise: NoiseConfig, log: NoiseLog,
                as_of: dt.date) -> pl.DataFrame:
    """Names, dates of birth, identifiers and contacts as each agency holds them (vectorised)."""
    n = records.height
    src = records["source"].to_numpy()
    factor = _error_factor(rng, records, noise)

    def mask(rate: float, eligible: np.ndarray | bool = True) -> np.ndarray:
        return (rng.random(n) < np.minimum(1.0, rate * factor)) & eligible

    def flat(rate: float, eligible: np.ndarray | bool = True) -> np.ndarray:
        return (rng.random(n) < rate) & eligible

    first, middle, last = records["first_name"], records["middle_name"], records["last_name"]
    dup = records["duplicate_kind"].to_numpy()
    age = records["age"].to_numpy()

    # surnames people are known by: maiden, a child's previous or other parent's, half a double-barrel
    m = flat(noise.maiden_name, records["maiden_name"].to_numpy() != "")
    last = _where(m, records["maiden_name"], last)
    log.add("maiden_name", "last_name", m)
    m = flat(noise.previous_surname, records["previous_surname"].to_numpy() != "")
    last = _where(m, records["previous_surname"], last)
    log.add("previous_surname", "last_name", m)
    m = flat(noise.surname_convention, records["alternate_surname"].to_numpy() != "")
    last = _where(m, records["alternate_surname"], last)
    log.add("surname_convention", "last_name", m)
    m = (records["other_parent_surname"].to_numpy() != "") & (src == "education")
    last = _where(m, records["other_parent_surname"], last)
    log.add("other_surname", "last_name", m)
    barrel = last.str.contains("-", literal=True).fill_null(False).to_numpy()
    m = flat(noise.double_barrel_half, barrel)
    half = pl.Series(np.where(rng.random(n) < 0.5, last.str.split("-").list.first().to_numpy(),
                              last.str.split("-").list.last().to_numpy()))
    last = _where(m, half, last)
    log.add("double_barrel_half", "last_name", m)
    # first names: known by the middle name, a nickname, another romanisation
    m = mask(noise.middle_name_as_first, middle.to_numpy() != "")
    first = _where(m, middle, first)
    log.add("middle_name_as_first", "first_name", m)
    for kind, rate in (("nickname", noise.nickname), ("transliteration", noise.transliteration),
                       ("spelling", noise.spelling)):
        for fname in ("first_name", "last_name"):
            if kind == "nickname" and fname == "last_name":
                continue
            values = first if fname == "first_name" else last
            eligible = nz.has_variant(values, kind) & ((dup & 8) == 0 if kind == "nickname" else True)
            changed_values, changed = nz.name_variant(values, flat(rate, eligible), rng.integers(0, 1000, n), kind)
            log.add(kind, fname, changed)
            if fname == "first_name":
                first = changed_values
            else:
                last = changed_values
    # duplicates of kind 4: a nickname or other form of the first name on the second entry
    values, changed = nz.name_variant(first, (dup & 8) > 0, rng.integers(0, 1000, n), "nickname")
    first = values
    log.add("duplicate_first_name", "first_name", changed)
    # infants registered before naming
    m = flat(noise.infant_placeholder, (src == "health") & (age == 0) & (records["days_old"].to_numpy() < 90))
    unborn = m & (records["days_old"].to_numpy() < 21)
    first = _where(m, pl.Series(np.where(unborn, "Unborn", np.where(rng.random(n) < 0.8, "Baby", "Unknown"))), first)
    log.add("infant_placeholder", "first_name", m)
    # keyboard and ear
    which = rng.random(n) < 0.5
    m = mask(noise.typo)
    allowed = np.array([nz.TYPO_KINDS.index(k) for k in noise.typo_kinds])
    kinds = allowed[rng.integers(0, len(allowed), n)]
    letters = rng.choice(np.array(list("abcdefghiklmnoprstuwy")), n)
    first_new, c1 = nz.typo(first, m & which, kinds, rng.random(n), letters)
    last_new, c2 = nz.typo(last, m & ~which, kinds, rng.random(n), letters)
    for i, kind in enumerate(nz.TYPO_KINDS):
        log.add(kind, "first_name", c1 & (kinds == i))
        log.add(kind, "last_name", c2 & (kinds == i))
    # a re-keyed duplicate's changed surname letter
    last_new, c3 = nz.typo(last_new, (dup & 1) > 0, np.full(n, 3), rng.random(n), letters)
    log.add("duplicate_surname_letter", "last_name", c3)
    m = mask(noise.phonetic)
    first_new, c1 = nz.phonetic(first_new, m & which, rng.random(n))
    last_new, c2 = nz.phonetic(last_new, m & ~which, rng.random(n))
    log.add("phonetic", "first_name", c1)
    log.add("phonetic", "last_name", c2)
    first, last = first_new, last_new
    # forenames with a middle initial, or only an initial
    m = mask(noise.middle_initial, (middle.to_numpy() != "") & np.isin(src, ["police", "housing", "benefits", "probation"]))
    first = _where(m, first + " " + middle.str.slice(0, 1), first)
    log.add("middle_initial", "first_name", m)
    m = mask(noise.initial_only, first.str.len_chars().fill_null(0).to_numpy() > 1)
    first = _where(m, first.str.slice(0, 1), first)
    log.add("initial_only", "first_name", m)
    # forename and surname swapped: most often where the family name comes first or the convention is unclear
    swap_prone = np.isin(records["ethnic_group"].to_numpy(), ["chinese", "somali", "arab", "muslim_south_asian"])
    m = mask(noise.name_swap * np.where(swap_prone, 5, 1))
    first, last = _where(m, last, first), _where(m, first, last)
    log.add("name_swap", "first_name", m)
    # diacritics: police systems (cp1252, older software) always fold; others at the configured rate
    has = nz.has_diacritics(first) | nz.has_diacritics(last)
    m = has & ((src == "police") | flat(noise.diacritics_dropped))
    first = _where(m, nz.fold_diacritics(first), first)
    last = _where(m, nz.fold_diacritics(last), last)
    log.add("diacritics_dropped", "name", m)
    m = mask(noise.case_whitespace)
    first, _ = nz.case_whitespace(first, m)
    last, _ = nz.case_whitespace(last, m)
    log.add("case_whitespace", "name", m)

    # dates of birth
    dob = records["date_of_birth"]
    m = flat(noise.infant_placeholder) & (first == "Unborn").fill_null(False).to_numpy()
    dob = _where(m, (dob.cast(pl.Int32) + pl.Series(rng.integers(-14, 15, n).astype(np.int32))).cast(pl.Date), dob)  # the expected date
    log.add("expected_date_of_birth", "date_of_birth", m & (first == "Unborn").fill_null(False).to_numpy())
    dob, c = nz.dob_transposed(dob, mask(noise.dob_transposed))
    log.add("dob_transposed", "date_of_birth", c)
    dob, c = nz.dob_digit(dob, mask(noise.dob_digit), rng.integers(0, 7, n), rng.integers(0, 10, n))
    log.add("dob_digit", "date_of_birth", c)
    dob, c = nz.dob_year_off(dob, mask(noise.dob_year_off), rng.random(n) < 0.5, as_of.year)
    log.add("dob_year_off", "date_of_birth", c)
    dob, c = nz.dob_month_off(dob, (dup & 2) > 0, rng.random(n) < 0.5)
    log.add("duplicate_dob_month", "date_of_birth", c)
    documented = records["documented_jan1"].to_numpy() & np.isin(src, ["benefits", "health", "housing"]) & flat(0.7)
    dob, c = nz.dob_default(dob, documented, np.zeros(n, dtype=bool))
    log.add("dob_documented_jan1", "date_of_birth", c)
    defaults = np.isin(src, ["police", "housing", "benefits"])
    placeholder = flat(noise.dob_placeholder / max(noise.dob_default, 1e-9), defaults)
    dob, c = nz.dob_default(dob, mask(noise.dob_default, defaults), placeholder)
    log.add("dob_placeholder", "date_of_birth", c & placeholder)
    log.add("dob_jan1", "date_of_birth", c & ~placeholder)

    # missing fields (one of date of birth, address, phone); benefits lists often lack dates of birth
    missing = mask(noise.missing_field)
    what = rng.integers(0, 3, n)
    dob_missing = (missing & (what == 0)) | ((src == "benefits") & flat(0.15))
    log.add("missing_field", "date_of_birth", dob_missing)
    log.add("missing_field", "address", missing & (what == 1))

    # identifiers
    nhs = records["nhs_number"]
    household_nhs = records.select(pl.col("nhs_number").shift(1).over("household_id").fill_null(pl.col("nhs_number")))["nhs_number"]
    m = flat(noise.nhs_shared) & (household_nhs != nhs).fill_null(False).to_numpy()
    nhs = _where(m, household_nhs, nhs)
    log.add("nhs_shared", "nhs_number", m)
    nhs, c = nz.nhs_mistyped(nhs, mask(noise.nhs_valid_wrong), rng.integers(0, 9, n), np.ones(n, dtype=bool))
    log.add("nhs_valid_wrong", "nhs_number", c)
    mistyped = mask(noise.nhs_mistyped)
    nhs, c = nz.nhs_mistyped(nhs, mistyped, rng.integers(0, 9, n), np.zeros(n, dtype=bool))
    log.add("nhs_mistyped", "nhs_number", c)
    nhs_missing = mask(noise.nhs_missing)
    nhs = _where(nhs_missing, pl.Series([""] * n), nhs)
    log.add("nhs_missing", "nhs_number", nhs_missing)
    pnc = records["pnc_id"]
    m = mask(noise.pnc_wrong_nominal, src == "police")
    pnc = _where(m, pnc.shift(1).fill_null(pnc), pnc)
    log.add("pnc_wrong_nominal", "pnc_id", m)

    # phones: adults their own mobile (the old number in older records), else the landline; children a
    # parent's mobile or the landline
    stale = records["address_stale"].to_numpy()
    has_own = (records["mobile"] != "").to_numpy()
    has_old = (records["mobile_old"] != "").to_numpy()
    has_landline = (records["landline"] != "").to_numpy()
    has_parent = (records["parent_mobile"].fill_null("") != "").to_numpy()
    # which number the record holds: 0 own mobile, 1 old mobile, 2 landline, 3 a parent's mobile, 4 none
    adult = np.where(has_old & (stale | (rng.random(n) < 0.4)), 1, np.where(has_own, 0, 4))
    adult = np.where((adult == 4) | ((rng.random(n) < 0.2) & has_landline), np.where(has_landline, 2, 4), adult)
    child = np.where(has_parent & (~has_landline | (rng.random(n) < 0.6)), 3, np.where(has_landline, 2, 4))
    which = np.where(age >= 16, adult, np.where(has_own, 0, child))
    if not noise.household_phones:  # the easy city: a record holds only the person's own current mobile
        which = np.where(has_own, 0, 4)
    phone_missing = (missing & (what == 2)) | mask(noise.phone_missing)
    which = np.where(phone_missing, 4, which)
    log.add("phone_old_number", "phone", which == 1)
    log.add("phone_of_parent", "phone", (which == 3) & (age < 16))
    log.add("phone_household_landline", "phone", which == 2)
    log.add("phone_missing", "phone", phone_missing)
    phone = pl.DataFrame({"w": which, "own": records["mobile"], "old": records["mobile_old"],
                          "landline": records["landline"], "parent": records["parent_mobile"]}).select(
        pl.when(pl.col("w") == 0).then(pl.col("own")).when(pl.col("w") == 1).then(pl.col("old"))
        .when(pl.col("w") == 2).then(pl.col("landline")).when(pl.col("w") == 3).then(pl.col("parent"))
        .otherwise(pl.lit("")).fill_null("").alias("phone"))["phone"]

    return records.with_columns(
        first.alias("first_name"), last.alias("last_name"), dob.alias("date_of_birth"),
        pl.Series("nhs_number", nhs), pl.Series("pnc_id", pnc),
        pl.Series("nhs_valid", ~mistyped & ~nhs_missing),
        pl.Series("dob_missing", dob_missing),
        pl.Series("address_missing", missing & (what == 1)),
        pl.Series("phone", phone),
        pl.Series("factor", factor),
    )


def make_unusable(rng: np.random.Generator, records: pl.DataFrame, rate: float, log: NoiseLog) -> pl.DataFrame:
    """Rows corrupted beyond use on purpose: no name at all, or no usable date of birth and no identifier."""
    n = records.height
    m = rng.random(n) < rate
    kind = rng.integers(0, 3, n)
    no_name = m & (kind == 0)
    no_dob = m & (kind >= 1)
    impossible = m & (kind == 2)
    log.add("unusable_no_name", "name", no_name)
    log.add("unusable_no_date_of_birth", "date_of_birth", no_dob)
    return records.with_columns(
        pl.when(pl.Series(no_name)).then(pl.lit("")).otherwise(pl.col("first_name")).alias("first_name"),
        pl.when(pl.Series(no_name)).then(pl.lit("")).otherwise(pl.col("last_name")).alias("last_name"),
        (pl.col("dob_missing") | pl.Series(no_dob & ~impossible)).alias("dob_missing"),
        pl.Series("dob_impossible", impossible),
        (pl.col("nhs_valid") & ~pl.Series(no_dob)).alias("nhs_valid"),
        pl.Series("ids_removed", no_dob),
        pl.when(pl.Series(no_dob)).then(pl.lit("")).otherwise(pl.col("nhs_number")).alias("nhs_number"),
        # nothing else to link on either: no address, phone or email
        (pl.col("address_missing") | pl.Series(no_dob)).alias("address_missing"),
        pl.when(pl.Series(no_dob)).then(pl.lit("")).otherwise(pl.col("phone")).alias("phone"),
        pl.when(pl.Series(no_dob)).then(pl.lit("")).otherwise(pl.col("email")).alias("email"),
    )


def address_parts(rng: np.random.Generator, records: pl.DataFrame, llpg: pl.DataFrame, noise: NoiseConfig,
                  log: NoiseLog) -> pl.DataFrame:
    """The address each record states, typed the way councils receive addresses.

    `line1` (flat and building), `line2` (the street line when the building has a name), `locality_or_town`,
    `postcode`; out-of-area previous addresses are rendered from a made-up street in another town.
    """
    n = records.height
    factor = records["factor"].to_numpy()
    g = llpg.select(
        pl.col("uprn").alias("uprn_recorded"),
        pl.col("sao_text").str.extract(r"(\d+)").cast(pl.Int64).alias("flat_no"),
        pl.col("pao_start_number").alias("number"),
        pl.when(pl.col("pao_text") != "").then(pl.col("pao_text")).alias("house_name"),
        pl.col("street_description").alias("street"),
        pl.col("locality"),
        pl.col("postcode").alias("true_postcode"),
        pl.col("neighbour_postcode"),
    )
    r = records.join(g, on="uprn_recorded", how="left", maintain_order="left")

    def mask(rate: float, eligible=True) -> np.ndarray:
        return (rng.random(n) < np.minimum(1.0, rate * factor)) & eligible

    known = r["uprn_recorded"].is_not_null().to_numpy()
    flat_no = r["flat_no"].to_numpy()
    is_flat = known & ~np.isnan(flat_no.astype(float))
    described = mask(noise.flat_described, is_flat) & (rng.random(n) < 1.0)
    style = rng.integers(0, 2, n)
    log.add("flat_described", "address", described)
    street = r["street"]
    m = mask(noise.street_misspelt, known)
    street, c = nz.typo(street, m, rng.integers(0, 4, n), rng.random(n), rng.choice(np.array(list("aeiourst")), n))
    log.add("street_misspelt", "address", c)
    no_number = mask(noise.house_number_missing, known & ~is_flat)
    log.add("house_number_missing", "address", no_number)
    number = r["number"].cast(pl.String)
    flat_int = np.nan_to_num(flat_no.astype(float)).astype(np.int64)
    letter = _pick(list("ABCDEFGHJK"), np.clip(flat_int - 1, 0, 9))
    ordinal = _pick([o + " Flat" for o in _ORDINAL], np.clip((flat_int + 1) // 2, 0, 8))
    flat_text = pl.DataFrame({"d": described, "s": style, "o": ordinal, "f": flat_int}).select(
        pl.when(~pl.col("d")).then("Flat " + pl.col("f").cast(pl.String))
        .when(pl.col("s") == 0).then(pl.col("o")).otherwise(pl.lit("")).alias("v"))["v"]
    frame = pl.DataFrame({"flat": flat_text, "number": number, "letter": letter, "street": street,
                          "house_name": r["house_name"], "is_flat": is_flat, "described": described,
                          "style": style, "no_number": no_number})
    building = (
        pl.when(pl.col("house_name").is_not_null()).then(pl.col("house_name"))
        .when(pl.col("no_number")).then(pl.col("street"))
        .when(pl.col("is_flat") & pl.col("described") & (pl.col("style") == 1))
        .then(pl.col("number") + pl.col("letter") + " " + pl.col("street"))
        .otherwise(pl.col("number") + " " + pl.col("street"))
    )
    line1 = pl.when(pl.col("is_flat") & ~(pl.col("described") & (pl.col("style") == 1))).then(
        pl.col("flat") + ", " + building).otherwise(building)
    line2 = pl.when(pl.col("house_name").is_not_null()).then(pl.col("number") + " " + pl.col("street"))
    lines = frame.select(line1.alias("line1"), line2.alias("line2"))
    # a house name given without its street line in a third of cases: building name only
    name_only = mask(noise.building_name_only, r["house_name"].is_not_null().to_numpy())
    log.add("building_name_only", "address", name_only)
    abbreviate = mask(noise.address_abbreviated, known)
    log.add("address_abbreviated", "address", abbreviate)
    l1 = lines["line1"]
    for full, short in _ABBREVIATIONS.items():
        l1 = _where(abbreviate, l1.str.replace(full, short, literal=True), l1)
    # postcodes: a swapped inward pair, a neighbouring unit's real postcode, or none
    true_pc = r["true_postcode"]
    swapped = true_pc.str.slice(0, true_pc.str.len_chars() - 2) + true_pc.str.slice(-1, 1) + true_pc.str.slice(-2, 1)
    typo = mask(noise.postcode_typo, known) & (swapped != true_pc).fill_null(False).to_numpy()
    wrong_unit = mask(noise.postcode_wrong_unit, known) & ~typo
    pc_missing = mask(noise.postcode_missing, known) & ~typo & ~wrong_unit
    postcode = _where(typo, swapped, true_pc)
    postcode = _where(wrong_unit, r["neighbour_postcode"], postcode)
    postcode = _where(pc_missing, pl.repeat(None, n, dtype=pl.String, eager=True), postcode)
    log.add("postcode_typo", "postcode", typo)
    log.add("postcode_wrong_unit", "postcode", wrong_unit)
    log.add("postcode_missing", "postcode", pc_missing)
    locality = mask(noise.locality_for_town, known)
    log.add("locality_for_town", "address", locality)
    locality_name = r["locality"].fill_null("").str.to_titlecase()
    town = pl.DataFrame({"m": locality, "l": locality_name}).select(
        pl.when(pl.col("m") & (pl.col("l") != "")).then(pl.col("l")).otherwise(pl.lit("Ashford Vale")).alias("v"))["v"]
    # out of area (a previous address in another town)
    outside = r["address_outside"].to_numpy()
    area = r["out_of_area"].to_numpy() % len(_OUT_OF_AREA)
    unit_letters = list("ABDEFGHJLNPQRSTUWXYZ")
    out_line = pl.Series(rng.integers(1, 120, n)).cast(pl.String) + " " + _pick(
        ["High Street", "Church Lane", "Station Road", "Park Avenue", "Victoria Road"], rng.integers(0, 5, n))
    out_pc = (_pick([a for a, _ in _OUT_OF_AREA], area) + " " + pl.Series(rng.integers(1, 9, n)).cast(pl.String)
              + _pick(unit_letters, rng.integers(0, 20, n)) + _pick(unit_letters, rng.integers(0, 20, n)))
    addr_missing = r["address_missing"].to_numpy()
    null = pl.repeat(None, n, dtype=pl.String, eager=True)
    line1 = _where(addr_missing, null, _where(outside, out_line, l1))
    line2 = _where(addr_missing | outside | name_only, null, lines["line2"])
    postcode = _where(addr_missing, null, _where(outside, out_pc, postcode))
    return r.with_columns(
        line1.alias("line1"), line2.alias("line2"), pl.Series("line1_name_only", name_only),
        _where(outside, _pick([t for _, t in _OUT_OF_AREA], area), town).alias("town"), postcode.alias("postcode"),
    )


def contact_person_names(rng: np.random.Generator, first: pl.Series, last: pl.Series, child_last: pl.Series,
                         noise: NoiseConfig) -> tuple[pl.Series, pl.Series, pl.Series]:
    """A parent/carer as a school or social worker records them: often under the child's surname, often as
    an initial ("Mrs J Smith"), sometimes by a nickname or with a slip. Returns first, last and the kinds."""
    n = len(first)
    log = NoiseLog(n)
    differs = (child_last != last).fill_null(False).to_numpy()
    m = (rng.random(n) < noise.carer_child_surname) & differs
    last = _where(m, child_last, last)
    log.add("carer_child_surname", "last_name", m)
    first, c = name_variant_masked(rng, first, noise.nickname, "nickname")
    log.add("nickname", "first_name", c)
    m = rng.random(n) < 0.15 * (noise.initial_only > 0)
    first = _where(m, first.str.slice(0, 1), first)
    log.add("initial_only", "first_name", m)
    kinds = rng.integers(0, len(nz.TYPO_KINDS), n)
    which = rng.random(n) < 0.5
    m = rng.random(n) < noise.typo
    letters = rng.choice(np.array(list("abcdefghiklmnoprstuwy")), n)
    first, c1 = nz.typo(first, m & which, kinds, rng.random(n), letters)
    last, c2 = nz.typo(last, m & ~which, kinds, rng.random(n), letters)
    for i, kind in enumerate(nz.TYPO_KINDS):
        log.add(kind, "first_name", c1 & (kinds == i))
        log.add(kind, "last_name", c2 & (kinds == i))
    return first, last, log.kinds()


def name_variant_masked(rng: np.random.Generator, values: pl.Series, rate: float, kind: str) -> tuple[pl.Series, np.ndarray]:
    n = len(values)
    eligible = nz.has_variant(values, kind)
    return nz.name_variant(values, (rng.random(n) < rate) & eligible, rng.integers(0, 1000, n), kind)


def _pick(values: list[str], index: np.ndarray) -> pl.Series:
    """values[index] for every row, built in polars (no numpy string arrays)."""
    return pl.Series(values, dtype=pl.String).gather(pl.Series(np.asarray(index, dtype=np.int64)))


def _where(mask: np.ndarray, new, old) -> pl.Series:
    new_s = new if isinstance(new, pl.Series) else pl.Series(new)
    old_s = old if isinstance(old, pl.Series) else pl.Series(old)
    return pl.DataFrame({"m": mask, "n": new_s, "o": old_s}).select(
        pl.when(pl.col("m")).then(pl.col("n")).otherwise(pl.col("o")).alias("v"))["v"]


def dob_text(fmt: str) -> pl.Expr:
    """Date of birth as the source writes it; impossible dates are written as 31 February."""
    year = pl.col("date_of_birth").dt.year().cast(pl.String)
    bad = {"%d/%m/%Y": pl.lit("31/02/") + year, "%Y%m%d": year + "0231", "%Y-%m-%d": year + "-02-31",
           "%d-%b-%Y": pl.lit("31-Feb-") + year, "%d.%m.%Y": pl.lit("31.02.") + year}[fmt]
    return (
        pl.when(pl.col("dob_missing")).then(pl.lit(""))
        .when(pl.col("dob_impossible")).then(bad)
        .otherwise(pl.col("date_of_birth").dt.strftime(fmt))
    )
