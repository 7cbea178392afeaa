"""The synthetic city: deterministic, readable in every declared format, noisy as configured, truth complete."""

import hashlib
from pathlib import Path

import polars as pl
import pytest

from sources.synthetic import CityConfig, NoiseConfig, generate_city

PEOPLE = 3000


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    out = tmp_path_factory.mktemp("city")
    return generate_city(out, CityConfig(people=PEOPLE, seed=7))


def _file(city, source: str) -> Path:
    return next(path for name, path in city.files.items() if name.startswith(f"landing/{source}/"))


def _valid_nhs(values: list[str]) -> list[bool]:
    result = []
    for v in values:
        if len(v) != 10 or not v.isdigit():
            result.append(False)
            continue
        check = 11 - sum(int(d) * w for d, w in zip(v[:9], range(10, 1, -1))) % 11
        check = 0 if check == 11 else check
        result.append(check != 10 and check == int(v[9]))
    return result


def test_same_seed_gives_byte_identical_files(city, tmp_path):
    again = generate_city(tmp_path, CityConfig(people=PEOPLE, seed=7))
    assert again.sha256 == city.sha256
    other = generate_city(tmp_path / "other", CityConfig(people=PEOPLE, seed=8))
    assert other.sha256["landing/health/gp_register_20261101.parquet"] != city.sha256[
        "landing/health/gp_register_20261101.parquet"]


def test_extracts_are_taken_on_different_dates(city):
    stamps = {name.split("_")[-1].split(".")[0] for name in city.files if name.startswith("landing/")}
    assert len(stamps) >= 5  # weekly, monthly and termly cycles
    easy = CityConfig.easy()
    assert easy.extract_offsets == {} and len(easy.sources) == 5


def test_every_agency_file_reads_in_its_declared_format(city):
    police_bytes = _file(city, "police").read_bytes()
    assert b"\r\n" in police_bytes
    police = pl.read_csv(police_bytes.decode("cp1252").encode(), infer_schema=False)
    assert police.columns[:6] == ["NOMINAL_ID", "SURNAME", "FORENAMES", "ALIASES", "DOB", "ALT_DOB"]
    probation = pl.read_excel(_file(city, "probation"), sheet_name="Caseload")
    assert probation.columns[0] == "CRN" and probation.schema["DATE_OF_BIRTH"] == pl.Date
    housing = pl.read_csv(_file(city, "housing"), separator=";", infer_schema=False)
    assert housing.columns[:3] == ["TenancyRef", "PersonRef", "UPRN"] and "NINumber" in housing.columns
    health = pl.read_parquet(_file(city, "health"))
    assert health.columns[:3] == ["patient_id", "nhs_number", "given_name"]
    education_bytes = _file(city, "education").read_bytes()
    assert education_bytes.startswith(b"\xef\xbb\xbf")
    education = pl.read_csv(education_bytes[3:], infer_schema=False)
    assert education.columns[0] == "PupilID" and "Parent1Name" in education.columns and "NHSNumber" in education.columns
    social = pl.read_csv(_file(city, "social_care"), infer_schema=False)
    assert social.columns[0] == "ChildID" and {"LegalStatus", "SocialWorker", "CarerName"} <= set(social.columns)
    benefits = pl.read_csv(_file(city, "benefits"), infer_schema=False)
    assert benefits.columns[:3] == ["ClaimRef", "NINO", "ClaimantName"]
    for name, frame in [("police", police), ("probation", probation), ("housing", housing), ("health", health),
                        ("education", education), ("social_care", social), ("benefits", benefits)]:
        key = next(k for k in city.row_counts if k.startswith(f"landing/{name}/"))
        assert frame.height == city.row_counts[key] > 0, name


def test_truth_accounts_for_every_record(city):
    truth = pl.read_parquet(city.out_dir / "truth" / "records.parquet")
    persons = pl.read_parquet(city.out_dir / "truth" / "persons.parquet")
    subjects = truth.filter(pl.col("record_role") == "subject")
    assert subjects.height == sum(v for k, v in city.row_counts.items() if k.startswith("landing/"))
    assert truth.select(pl.struct("source", "record_id").is_unique().all()).item()
    assert truth["person_id"].is_in(persons["person_id"].implode()).all()
    # residents' household ids agree with where they live; people who died or left belong to none
    joined = truth.join(persons.select("person_id", pl.col("household_id").alias("hh"), "status"), on="person_id")
    residents = joined.filter(pl.col("status") == "resident")
    assert (residents["household_id"] == residents["hh"]).all()
    gone = joined.filter(pl.col("status") != "resident")
    assert gone.height > 0 and (gone["household_id"] == gone["person_id"] + 1_000_000_000).all()
    parents = truth.filter(pl.col("record_role") == "parent_carer")
    assert parents.height > 0 and parents["record_id"].str.contains(r"-(P|C)1$").all()


def test_noise_log_explains_every_noise_kind_of_every_record(city):
    truth = pl.read_parquet(city.out_dir / "truth" / "records.parquet")
    log = pl.read_parquet(city.out_dir / "truth" / "noise_log.parquet")
    assert set(log.columns) == {"source", "record_id", "field", "kind"}
    from_truth = truth.select("source", "record_id", pl.col("noise").alias("kind")).explode("kind").drop_nulls().unique()
    from_log = log.select("source", "record_id", "kind").unique()
    assert from_truth.sort(pl.all()).equals(from_log.sort(pl.all()))
    kinds = set(log["kind"])
    expected = {"typo_insert", "typo_delete", "typo_transpose", "typo_substitute", "typo_first_letter", "phonetic",
                "nickname", "transliteration", "diacritics_dropped", "maiden_name", "dob_transposed", "dob_digit",
                "dob_jan1", "stale_address", "flat_described", "street_misspelt", "postcode_wrong_unit",
                "locality_for_town", "duplicate", "duplicate_dob_month", "duplicate_surname_letter",
                "phone_of_parent", "phone_household_landline", "deceased_or_left", "carer_child_surname",
                "surname_convention", "middle_initial", "address_out_of_area"}
    assert expected <= kinds, expected - kinds


def test_nhs_numbers_valid_unless_deliberately_corrupted(city):
    health = pl.read_parquet(_file(city, "health"))
    truth = pl.read_parquet(city.out_dir / "truth" / "records.parquet").filter(pl.col("source") == "health")
    frame = health.join(truth, left_on="patient_id", right_on="record_id")
    corrupted = frame["noise"].list.contains("nhs_mistyped") | frame["noise"].list.contains("nhs_missing") | frame["unusable"]
    valid = pl.Series(_valid_nhs(frame["nhs_number"].to_list()))
    assert valid.filter(~corrupted).all()  # a valid-but-wrong number still passes the check (that is the danger)
    assert not valid.filter(frame["noise"].list.contains("nhs_mistyped") & ~frame["noise"].list.contains("nhs_missing")).any()


def test_noise_falls_unevenly_on_agencies_and_people(tmp_path):
    noise = NoiseConfig().scaled(3)
    generate_city(tmp_path, CityConfig(people=PEOPLE, seed=11, noise=noise))
    truth = pl.read_parquet(tmp_path / "truth" / "records.parquet").filter(pl.col("record_role") == "subject")
    typo = pl.col("noise").list.eval(pl.element().str.starts_with("typo_")).list.any()
    by_source = truth.group_by("source").agg(typo.mean().alias("rate")).sort("source")
    rate = dict(by_source.iter_rows())
    # police records are noisier than the GP register by the configured factor (2.0 / 0.6), within sampling error
    assert rate["police"] > 2 * rate["health"]
    expected = noise.typo * noise.source_error["health"]
    assert abs(rate["health"] - expected) < 0.35 * expected, (rate["health"], expected)
    # a minority of people carry most of the errors
    per_person = truth.group_by("person_id").agg(pl.col("noise").list.len().sum().alias("n")).sort("n", descending=True)
    top = per_person.head(int(per_person.height * 0.15))["n"].sum()
    assert top > 0.4 * per_person["n"].sum()
    # duplicates: about 4% on the GP register, far more among police nominals
    dup = truth.group_by("source").agg(pl.col("noise").list.contains("duplicate").mean().alias("d"))
    dup = dict(dup.iter_rows())
    assert 0.02 < dup["health"] < 0.07 and dup["police"] > 2 * dup["health"]


def test_households_moves_and_hard_cases_are_coherent(city):
    persons = pl.read_parquet(city.out_dir / "truth" / "persons.parquet")
    residence = pl.read_parquet(city.out_dir / "truth" / "residence.parquet")
    rel = pl.read_parquet(city.out_dir / "truth" / "relationships.parquet")
    # residence periods of one person never overlap, and the open one is the current address
    r = residence.sort("person_id", "from").with_columns(pl.col("to").shift(1).over("person_id").alias("prev_to"))
    assert r.filter(pl.col("prev_to").is_not_null() & (pl.col("from") <= pl.col("prev_to"))).height == 0
    current = residence.filter(pl.col("to").is_null()).join(persons.select("person_id", "uprn"), on="person_id")
    assert current.height == persons.height and (current["uprn"] == current["uprn_right"]).all()
    # about a fifth of households moved in the last three years, private renters far more than owners
    movers = persons.filter(pl.col("role") != "resident").group_by("household_id").agg(
        pl.col("tenure").first(), (pl.col("moved_in") < pl.date(2026, 11, 1)).any().alias("moved"))
    share = movers.group_by("tenure").agg(pl.col("moved").mean())
    share = dict(share.iter_rows())
    assert share["private_rent"] > 2 * share["owner"]
    # parents are at least 15 years older than their children
    dob = persons.select("person_id", "date_of_birth")
    pc = rel.filter(pl.col("relationship") == "parent_of").join(dob, on="person_id").join(
        dob, left_on="related_person_id", right_on="person_id", suffix="_child")
    assert ((pc["date_of_birth_child"] - pc["date_of_birth"]).dt.total_days() >= 15 * 365).all()
    communal = persons.filter(pl.col("role") == "resident").group_by("uprn").agg(pl.len(), pl.col("household_id").n_unique())
    assert communal["len"].max() >= 5 and (communal["len"] == communal["household_id"]).all()
    children = persons.filter(pl.col("role") == "child")
    assert 0.01 < children["is_twin"].mean() < 0.06  # about 3% of children are twins (or triplets)
    assert persons["middle_name"].ne("").mean() > 0.3
    assert persons["last_name"].str.contains("-").sum() > 0  # double-barrelled
    assert persons["ethnic_group"].n_unique() >= 8
    truth = pl.read_parquet(city.out_dir / "truth" / "records.parquet")
    assert truth["noise"].list.contains("other_surname").sum() > 0  # a child under two surnames
    police = pl.read_csv(_file(city, "police").read_bytes().decode("cp1252").encode(), infer_schema=False)
    assert (police["ADDRESS"].str.starts_with("NFA")).sum() > 0
    assert (police["SEX"] == "M").mean() > 0.7  # nominals are mostly male
    assert police["DOB"].str.starts_with("01/01/").mean() > 0.01  # default dates of birth
    assert (police["ALIASES"] != "").mean() > 0.1 and (police["ALT_DOB"] != "").mean() > 0.05
    benefits = pl.read_csv(_file(city, "benefits"), infer_schema=False)
    assert (benefits["DateOfBirth"].fill_null("") == "").mean() > 0.05  # no date of birth on some rows
    health = pl.read_parquet(_file(city, "health"))
    ghosts = truth.filter((pl.col("source") == "health") & pl.col("noise").list.contains("deceased_or_left"))
    assert 0.005 < ghosts.height / health.height < 0.08  # GP list inflation
    single_source = truth.group_by("person_id").agg(pl.col("source").n_unique()).filter(pl.col("source") == 1)
    assert single_source.height > 0


def test_cross_source_postcodes_disagree_far_more_than_the_easy_city(city, tmp_path):
    def disagreement(out: Path) -> float:
        truth = pl.read_parquet(out / "truth" / "records.parquet").filter(
            (pl.col("record_role") == "subject") & pl.col("uprn_recorded").is_not_null())
        pairs = truth.join(truth, on="person_id", suffix="_b").filter(pl.col("source") < pl.col("source_b"))
        return float((pairs["uprn_recorded"] != pairs["uprn_recorded_b"]).mean())

    generate_city(tmp_path, CityConfig.easy(people=PEOPLE, seed=7))
    assert disagreement(city.out_dir) > 1.5 * disagreement(tmp_path)


def test_generator_never_reads_the_linkers_reference_tables():
    package = Path(__file__).resolve().parent.parent / "sources" / "synthetic"
    for path in package.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "nicknames.csv" not in text and "parent.parent / \"reference\"" not in text, path.name


def test_every_generated_file_is_listed_with_its_checksum(city):
    for name, path in city.files.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == city.sha256[name]
