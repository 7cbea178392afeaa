"""Ingest of the synthetic city into a real DuckDB file: nothing lost, exact quarantine, idempotent, superseding."""


import duckdb
import polars as pl
import pytest

from pipelines.stages import run_ingest
from tests._city import generated_city, landing_copy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return generated_city(tmp_path_factory, people=1500, seed=3)


@pytest.fixture
def settings(city, tmp_path):
    return landing_copy(city, tmp_path)


def _q(settings, sql):
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def test_every_row_staged_or_quarantined_and_quarantine_is_exactly_the_unusable_rows(settings, city):
    loads = run_ingest(settings)
    assert {l.source: l.status for l in loads} == dict.fromkeys(["benefits", "education", "health", "housing",
                                                                 "police", "probation", "social_care"], "loaded")
    manifest = _q(settings, "select * from audit.file_manifest where status = 'loaded'")
    assert (manifest["rows_read"] == manifest["rows_staged"] + manifest["rows_quarantined"]).all()
    raw = _q(settings, "select source, count(*) as n from raw.row group by source")
    assert dict(raw.iter_rows()) == dict(zip(manifest["source"], manifest["rows_read"]))
    truth = pl.read_parquet(city / "truth" / "records.parquet")
    unusable = truth.filter(pl.col("unusable")).select("source", "record_id").sort("source", "record_id")
    quarantined = _q(settings, "select source, record_id from quarantine.row order by all")
    assert unusable.height > 0
    # the generator marks a record without a date of birth or identifier unusable; the minimum data rule
    # (a name plus any of date of birth, identifier, address, postcode, phone, email) stages those that
    # still carry an address, so quarantine is the unusable records less those
    assert quarantined.height > 0 and quarantined.join(unusable, on=["source", "record_id"], how="anti").height == 0
    reasons = _q(settings, "select distinct unnest(reasons) as r from quarantine.row")["r"].to_list()
    assert set(reasons) <= {"no name", "no record id",
                            "none of date of birth, identifier, address, postcode, phone or email (minimum data for linking)"}
    subjects = truth.filter((pl.col("record_role") == "subject") & ~pl.col("unusable"))
    staged = _q(settings, "select count(*) as n from staging.person_record where record_role = 'subject'")["n"][0]
    assert staged == subjects.height + unusable.height - quarantined.height
    docs = [l.data_docs for l in loads]
    assert len(set(docs)) == 1 and docs[0].startswith(str(settings.reports)) and docs[0].endswith("validation.html")
    assert "familylink_health" in open(docs[0], encoding="utf-8").read()


def test_same_file_twice_changes_nothing(settings):
    run_ingest(settings)
    before = _q(settings, "select (select count(*) from raw.row) r, (select count(*) from staging.person_record) s,"
                          " (select count(*) from quarantine.row) q")
    second = run_ingest(settings)
    assert {l.status for l in second} == {"unchanged"}
    after = _q(settings, "select (select count(*) from raw.row) r, (select count(*) from staging.person_record) s,"
                         " (select count(*) from quarantine.row) q")
    assert before.equals(after)


def test_newer_extract_supersedes_and_history_is_kept(settings):
    run_ingest(settings, only=["police"])
    old = sorted((settings.landing / "police").glob("nominals_*.csv"))[-1]
    text = old.read_bytes().decode("cp1252").splitlines(keepends=True)
    newer = settings.landing / "police" / "nominals_20261208.csv"
    newer.write_bytes("".join(text[:-3]).encode("cp1252"))  # three nominals fewer a week later
    (load,) = run_ingest(settings, only=["police"])
    assert load.status == "loaded" and load.file_name.endswith("nominals_20261208.csv")
    staged = _q(settings, "select count(*) n from staging.person_record where source='police'")["n"][0]
    history = _q(settings, "select count(*) n from history.person_record where source='police'")["n"][0]
    assert staged == load.rows_staged and history > 0
    statuses = _q(settings, "select file_name, status from audit.file_manifest where source='police' order by 1")
    assert statuses["status"].to_list() == ["superseded", "loaded"]


@pytest.mark.parametrize("breakage", ["duplicate_keys", "row_drop", "missing_column", "ragged"])
def test_extract_level_failure_keeps_last_good_data(settings, breakage):
    run_ingest(settings, only=["housing"])
    staged_before = _q(settings, "select count(*) n from staging.person_record where source='housing'")["n"][0]
    old = sorted((settings.landing / "housing").glob("tenancy_members_*.txt"))[-1]
    lines = old.read_text(encoding="utf-8").splitlines(keepends=True)
    if breakage == "duplicate_keys":
        lines.append(lines[1])
    elif breakage == "row_drop":
        lines = lines[: len(lines) // 4]
    elif breakage == "missing_column":
        lines = [";".join(l.rstrip("\n").split(";")[:-1]) + "\n" for l in lines]
    else:
        lines.insert(5, "T1;P1;short\n")
    (settings.landing / "housing" / "tenancy_members_20261208.txt").write_text("".join(lines), encoding="utf-8")
    (load,) = run_ingest(settings, only=["housing"])
    assert load.status == "rejected" and "tenancy_members_20261208.txt" in load.message
    staged_after = _q(settings, "select count(*) n from staging.person_record where source='housing'")["n"][0]
    assert staged_after == staged_before
    current = _q(settings, "select file_name from audit.current_extract where source='housing'")["file_name"][0]
    assert current.endswith(old.name)
    if breakage in ("duplicate_keys", "row_drop"):  # a readable file: all its rows go to quarantine
        quarantined = _q(settings, "select count(*) n from quarantine.row where file_name like '%20261208%'")["n"][0]
        assert quarantined == len(lines) - 1
