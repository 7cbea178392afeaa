"""The synthetic city: deterministic, readable in every declared format, noisy as configured, truth complete."""

import datetime as dt
import hashlib

import numpy as np
import polars as pl
import pytest

from sources.synthetic import CityConfig, NoiseConfig, generate_city

PEOPLE = 3000


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    out = tmp_path_factory.mktemp("city")
    return generate_city(out, CityConfig(people=PEOPLE, seed=7))


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


def test_every_agency_file_reads_in_its_declared_format(city):
    landing = city.out_dir / "landing"
    police_bytes = (landing / "police" / "nominals_20261101.csv").read_bytes()
    assert b"\r\n" in police_bytes
    police = pl.read_csv(police_bytes.decode("cp1252").encode(), infer_schema=False)
    assert police.columns[:5] == ["NOMINAL_ID", "SURNAME", "FORENAMES", "ALIASES", "DOB"]
    probation = pl.read_excel(landing / "probation" / "caseload_20261101.xlsx", sheet_name="Caseload")
    assert probation.columns[0] == "CRN" and probation.schema["DATE_OF_BIRTH"] == pl.Date
    housing = pl.read_csv(landing / "housing" / "tenancy_members_20261101.txt", separator=";", infer_schema=False)
    assert housing.columns[:3] == ["TenancyRef", "PersonRef", "UPRN"]
    health = pl.read_parquet(landing / "health" / "gp_register_20261101.parquet")
    assert health.columns[:3] == ["patient_id", "nhs_number", "given_name"]
    education_bytes = (landing / "education" / "pupils_20261101.csv").read_bytes()
    assert education_bytes.startswith(b"\xef\xbb\xbf")
    education = pl.read_csv(education_bytes[3:], infer_schema=False)
    assert education.columns[0] == "PupilID" and "Parent1Name" in education.columns
    for name, frame in [("police", police), ("probation", probation), ("housing", housing), ("health", health),
                        ("education", education)]:
        assert frame.height == city.row_counts[f"landing/{name}/" + next(
            k.split("/")[-1] for k in city.row_counts if k.startswith(f"landing/{name}/"))]


def test_truth_is_complete_and_consistent(city):
    truth = pl.read_parquet(city.out_dir / "truth" / "records.parquet")
    persons = pl.read_parquet(city.out_dir / "truth" / "persons.parquet")
    subjects = truth.filter(pl.col("record_role") == "subject")
    assert subjects.height == sum(v for k, v in city.row_counts.items() if k.startswith("landing/"))
    assert truth.select(pl.struct("source", "record_id").is_unique().all()).item()
    assert truth["person_id"].is_in(persons["person_id"].implode()).all()
    # household ids agree with where people live at the extract date
    joined = truth.join(persons.select("person_id", pl.col("household_id").alias("hh")), on="person_id")
    assert (joined["household_id"] == joined["hh"]).all()
    parents = truth.filter(pl.col("record_role") == "parent_carer")
    assert parents.height > 0 and parents["record_id"].str.ends_with("-P1").all()


def test_nhs_numbers_valid_unless_deliberately_corrupted(city):
    health = pl.read_parquet(city.out_dir / "landing" / "health" / "gp_register_20261101.parquet")
    truth = pl.read_parquet(city.out_dir / "truth" / "records.parquet").filter(pl.col("source") == "health")
    frame = health.join(truth, left_on="patient_id", right_on="record_id")
    corrupted = frame["noise"].list.contains("nhs_mistyped") | frame["noise"].list.contains("nhs_missing") | frame["unusable"]
    valid = pl.Series(_valid_nhs(frame["nhs_number"].to_list()))
    assert valid.filter(~corrupted).all()
    assert not valid.filter(frame["noise"].list.contains("nhs_mistyped") & ~frame["noise"].list.contains("nhs_missing")).any()


def test_noise_rates_within_tolerance_of_configuration(tmp_path):
    noise = NoiseConfig().scaled(4)
    city = generate_city(tmp_path, CityConfig(people=PEOPLE, seed=11, noise=noise))
    truth = pl.read_parquet(tmp_path / "truth" / "records.parquet").filter(pl.col("record_role") == "subject")
    originals = truth.filter(~pl.col("noise").list.contains("duplicate"))
    n = originals.height
    for kind in ("typo", "missing_field", "case_whitespace", "postcode_typo", "name_swap", "dob_year_off"):
        rate = originals["noise"].list.contains(kind).sum() / n
        expected = getattr(noise, {"case_whitespace": "case_whitespace"}.get(kind, kind))
        assert abs(rate - expected) < 0.25 * expected + 0.005, (kind, rate, expected)
    dup_rate = truth["noise"].list.contains("duplicate").sum() / n
    assert abs(dup_rate - noise.duplicate) < 0.25 * noise.duplicate
    unusable_rate = truth["unusable"].mean()
    assert unusable_rate >= noise.unusable * 0.75


def test_households_moves_and_hard_cases_are_coherent(city):
    persons = pl.read_parquet(city.out_dir / "truth" / "persons.parquet")
    residence = pl.read_parquet(city.out_dir / "truth" / "residence.parquet")
    rel = pl.read_parquet(city.out_dir / "truth" / "relationships.parquet")
    # residence periods of one person never overlap, and the open one is the current address
    r = residence.sort("person_id", "from").with_columns(pl.col("to").shift(1).over("person_id").alias("prev_to"))
    assert r.filter(pl.col("prev_to").is_not_null() & (pl.col("from") <= pl.col("prev_to"))).height == 0
    current = residence.filter(pl.col("to").is_null()).join(persons.select("person_id", "uprn"), on="person_id")
    assert current.height == persons.height and (current["uprn"] == current["uprn_right"]).all()
    # parents are at least 15 years older than their children
    dob = persons.select("person_id", "date_of_birth")
    pc = rel.filter(pl.col("relationship") == "parent_of").join(dob, on="person_id").join(
        dob, left_on="related_person_id", right_on="person_id", suffix="_child")
    assert ((pc["date_of_birth_child"] - pc["date_of_birth"]).dt.total_days() >= 15 * 365).all()
    # communal establishments hold many unrelated residents, each their own household
    communal = persons.filter(pl.col("role") == "resident").group_by("uprn").agg(pl.len(), pl.col("household_id").n_unique())
    assert communal["len"].max() >= 5 and (communal["len"] == communal["household_id"]).all()
    assert persons["is_twin"].sum() >= 2
    assert persons["is_junior"].sum() >= 1 or PEOPLE < 5000
    truth = pl.read_parquet(city.out_dir / "truth" / "records.parquet")
    assert truth["noise"].list.contains("other_surname").sum() > 0  # a child under two surnames
    police = pl.read_csv((city.out_dir / "landing/police/nominals_20261101.csv").read_bytes().decode("cp1252").encode(),
                         infer_schema=False)
    assert (police["ADDRESS"] == "NFA").sum() > 0
    single_source = truth.group_by("person_id").agg(pl.col("source").n_unique()).filter(pl.col("source") == 1)
    assert single_source.height > 0
