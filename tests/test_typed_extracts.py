"""Typed Parquet columns are converted as the contract expects or rejected clearly (issue 13, defect 3), and
"already loaded" is judged within the source (defect 7)."""

import shutil

import duckdb
import polars as pl
import pytest

from pipelines.stages import run_ingest
from tests._city import generated_city, landing_copy


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return generated_city(tmp_path_factory, people=800, seed=9)


@pytest.fixture
def settings(city, tmp_path):
    return landing_copy(city, tmp_path)


def _one(settings, sql):
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.sql(sql).fetchall()[0]
    finally:
        con.close()


_FILLED = ("select count(date_of_birth), count(nhs_number), count(address_from) from staging.person_record "
           "where source = 'health'")


def test_typed_nhs_numbers_and_dates_keep_every_value(settings):
    (first,) = run_ingest(settings, only=["health"])
    assert first.status == "loaded"
    expected = _one(settings, _FILLED)
    assert min(expected) > 0
    extract = next((settings.landing / "health").glob("*.parquet"))
    text = pl.read_parquet(extract)
    typed = text.with_columns(
        pl.col("nhs_number").cast(pl.Int64, strict=False),
        pl.col("birth_date").str.strptime(pl.Date, "%Y%m%d", strict=False),
        pl.col("registration_date").str.strptime(pl.Datetime, "%Y%m%d", strict=False),
    )
    # an NHS number with a leading zero loses it as an integer; it must come back
    typed.write_parquet(extract.with_name("gp_register_20261108.parquet"))
    (load,) = run_ingest(settings, only=["health"])
    assert load.status == "loaded", load.message
    assert _one(settings, _FILLED) == expected


def test_dates_in_a_format_the_contract_does_not_declare_are_rejected_not_dropped(settings):
    run_ingest(settings, only=["health"])
    extract = next((settings.landing / "health").glob("*.parquet"))
    other = pl.read_parquet(extract).with_columns(
        pl.col("birth_date").str.strptime(pl.Date, "%Y%m%d", strict=False).dt.strftime("%d/%m/%Y"))
    other.write_parquet(extract.with_name("gp_register_20261108.parquet"))
    (load,) = run_ingest(settings, only=["health"])
    assert load.status == "rejected"
    assert "column birth_date" in load.message and "date formats %Y%m%d" in load.message


def test_a_column_of_fractions_where_text_is_expected_is_rejected(settings):
    extract = next((settings.landing / "health").glob("*.parquet"))
    frame = pl.read_parquet(extract).with_columns(pl.lit(1.5).alias("phone"))
    frame.write_parquet(extract)
    (load,) = run_ingest(settings, only=["health"])
    assert load.status == "rejected" and "column phone" in load.message and "floating-point" in load.message


def test_another_sources_file_is_not_reported_unchanged(settings):
    run_ingest(settings, only=["police"])
    police = next((settings.landing / "police").glob("*.csv"))
    shutil.copy(police, settings.landing / "probation" / "caseload_20261108.xlsx")
    (load,) = run_ingest(settings, only=["probation"])
    assert load.status == "rejected" and "XLSX" in load.message


# ------------------------------------------------------------------------ the landing folder (defect 4)
def _contracts_with(tmp_path, source: str, pattern: str):
    from pathlib import Path

    folder = tmp_path / "contracts"
    folder.mkdir()
    original = Path(__file__).resolve().parent.parent / "sources" / "contracts" / f"{source}.yaml"
    text = original.read_text(encoding="utf-8")
    old = next(line for line in text.splitlines() if line.startswith("file_pattern:"))
    (folder / f"{source}.yaml").write_text(text.replace(old, f'file_pattern: "{pattern}"'), encoding="utf-8")
    return folder


@pytest.mark.parametrize("pattern", ["../outside/nominals_*.csv", "{outside}/nominals_*.csv"])
def test_a_pattern_outside_the_landing_folder_is_refused(settings, tmp_path, pattern):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(next((settings.landing / "police").glob("*.csv")), outside / "nominals_20261108.csv")
    # the landing folder sits in data/, so ../outside from it would not reach tmp_path/outside: put it beside
    shutil.copytree(outside, settings.landing.parent / "outside")
    contracts = _contracts_with(tmp_path, "police", pattern.format(outside=outside))
    (load,) = run_ingest(settings.with_overrides(contracts_dir=contracts))
    assert load.status == "rejected" and "inside the landing folder" in load.message
    assert _one(settings, "select count(*) from staging.person_record") == (0,)


def test_a_symlink_to_a_file_outside_the_landing_folder_is_refused(settings, tmp_path):
    outside = tmp_path / "elsewhere.csv"
    shutil.copy(next((settings.landing / "police").glob("*.csv")), outside)
    (settings.landing / "police" / "nominals_20261108.csv").symlink_to(outside)
    (load,) = run_ingest(settings, only=["police"])
    assert load.status == "rejected" and "outside the landing folder" in load.message
    assert _one(settings, "select count(*) from staging.person_record") == (0,)
