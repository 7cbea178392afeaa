"""The smaller defects of issue 13 (item 13): placeholder and future dates, a 10× bigger extract, very long
strings and NUL bytes, a missing sheet, an unknown --source, and the policy for a missing agency file."""

import datetime as dt
import json
import shutil

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.settings import Settings
from pipelines.stages import run_ingest, run_nightly
from sources import canonical
from sources._standardise import standardise_person_records
from tests._city import generated_city, landing_copy, read_sql


@pytest.mark.parametrize("dob, kept, flag", [
    (dt.date(1900, 1, 1), dt.date(1900, 1, 1), ["date_of_birth_placeholder"]),
    # before the earliest date or in the future: cleared as well
    (dt.date(1899, 12, 31), None, ["date_of_birth_placeholder", "date_of_birth_out_of_bounds"]),
    (dt.date(9999, 12, 31), None, ["date_of_birth_placeholder", "date_of_birth_out_of_bounds"]),
    (dt.date(1901, 2, 3), dt.date(1901, 2, 3), []),
    (dt.date(1985, 1, 1), dt.date(1985, 1, 1), []),
])
def test_placeholder_dates_of_birth_are_flagged(dob, kept, flag):
    records = canonical.conform(pl.DataFrame({"source": ["health"], "record_id": ["h1"], "record_role": ["subject"],
                                              "date_of_birth": [dob]}), canonical.PERSON_RECORD)
    out = standardise_person_records(records, as_of=dt.date(2026, 11, 1))
    assert out["date_of_birth"][0] == kept
    assert out["quality_flags"][0].to_list() == flag


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return generated_city(tmp_path_factory, people=800, seed=11)


@pytest.fixture
def settings(city, tmp_path):
    return landing_copy(city, tmp_path)


def _sql(settings, sql, params=()):
    return read_sql(settings, sql, params)


def test_future_event_dates_are_cleared_and_flagged(settings):
    police = next((settings.landing / "police").glob("*.csv"))
    lines = police.read_bytes().decode("cp1252").splitlines(keepends=True)
    row = next(i for i, line in enumerate(lines[1:], start=1) if line.count("/") >= 4)
    fields = lines[row].rstrip("\r\n").split(",")
    key = fields[0]
    header = lines[0].rstrip("\r\n").split(",")
    incident = header.index("INCIDENT_DATE") - len(header)  # from the end: the address holds commas
    fields[incident] = "01/01/2030"
    lines[row] = ",".join(fields) + "\n"
    police.write_bytes("".join(lines).encode("cp1252"))
    (load,) = run_ingest(settings, only=["police"])
    assert load.status == "loaded", load.message
    assert _sql(settings, "select count(*) from staging.event where source = 'police' and event_date > date "
                          "'2026-11-01'") == [(0,)]
    assert _sql(settings, "select list_contains(quality_flags, 'event_date_future') from staging.person_record "
                          "where source = 'police' and record_id = ?", [key]) == [(True,)]


def test_an_extract_ten_times_bigger_than_the_last_is_rejected(settings):
    run_ingest(settings, only=["health"])
    extract = next((settings.landing / "health").glob("*.parquet"))
    frame = pl.read_parquet(extract)
    bigger = pl.concat([frame.with_columns(pl.col("patient_id") + f"-{i}") for i in range(11)])
    bigger.write_parquet(extract.with_name("gp_register_20261108.parquet"))
    (load,) = run_ingest(settings, only=["health"])
    assert load.status == "rejected" and "row count grew" in load.message and "10 times" in load.message


def test_very_long_strings_and_nul_bytes_are_limited_and_flagged(settings):
    extract = next((settings.landing / "health").glob("*.parquet"))
    frame = pl.read_parquet(extract)
    ids = frame["patient_id"].head(2).to_list()
    frame = frame.with_columns(
        pl.when(pl.col("patient_id") == ids[0]).then(pl.lit("A" * 100_000))
        .when(pl.col("patient_id") == ids[1]).then(pl.lit("Ro\x00se"))
        .otherwise(pl.col("given_name")).alias("given_name"))
    frame.write_parquet(extract)
    (load,) = run_ingest(settings, only=["health"])
    assert load.status == "loaded", load.message
    rows = _sql(settings, "select record_id, length(first_name), first_name, list_contains(quality_flags, "
                          "'text_limited') from staging.person_record where source = 'health' and record_id in (?, ?) "
                          "order by record_id", ids)
    assert rows == [(ids[0], 4000, "A" * 4000, True)]
    # a NUL byte means a damaged cell: that row is quarantined naming the column, the rest of the file is kept
    assert _sql(settings, "select record_id, reasons from quarantine.row where source = 'health' and "
                          "list_contains(reasons, 'NUL byte in column given_name')") == [
        (ids[1], ["NUL byte in column given_name"])]
    assert load.rows_read == load.rows_staged + load.rows_quarantined
    assert _sql(settings, "select max(length(payload::varchar)) < 10000, bool_or(contains(payload::varchar, "
                          "chr(0))) from raw.row") == [(True, False)]


def test_a_nul_byte_in_a_csv_quarantines_its_row_not_the_file(settings):
    police = next((settings.landing / "police").glob("*.csv"))
    lines = police.read_bytes().split(b"\n")
    header = lines[0].rstrip(b"\r").split(b",")
    key = lines[5].split(b",")[0].decode()
    surname = header.index(b"SURNAME")
    fields = lines[5].split(b",")
    fields[surname] = fields[surname][:2] + b"\x00" + fields[surname][2:]
    lines[5] = b",".join(fields)
    police.write_bytes(b"\n".join(lines))
    (load,) = run_ingest(settings, only=["police"])
    assert load.status == "loaded", load.message
    quarantined = _sql(settings, "select record_id, row_number, file_name, reasons from quarantine.row "
                                 "where list_contains(reasons, 'NUL byte in column SURNAME')")
    assert [(r[0], r[1]) for r in quarantined] == [(key, 6)] and quarantined[0][2].endswith(police.name)
    assert load.rows_staged == load.rows_read - 1 and load.rows_quarantined == 1
    assert _sql(settings, "select count(*) from staging.person_record where source = 'police' and record_id = ?",
                [key]) == [(0,)]


def test_a_missing_sheet_is_named(settings):
    extract = next((settings.landing / "probation").glob("*.xlsx"))
    pl.read_excel(extract, sheet_name="Caseload").write_excel(extract, worksheet="Sheet1")
    (load,) = run_ingest(settings, only=["probation"])
    assert load.status == "rejected"
    assert "no sheet named 'Caseload'" in load.message and "'Sheet1'" in load.message


def test_an_unknown_source_is_an_error(settings):
    result = CliRunner().invoke(app, ["ingest", "--source", "polise", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 1 and "no contract for source(s) polise" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["stop", "publish_last_good"])
def test_a_missing_agency_file_follows_the_configured_policy(published_city, tmp_path, policy):
    original, _ = published_city
    shutil.copytree(original.data_dir, tmp_path / "data")
    settings = Settings(data_dir=tmp_path / "data", pseudonymisation_key="test-key", missing_extract_policy=policy)
    for extract in (settings.landing / "housing").iterdir():
        extract.unlink()
    before = _sql(settings, "select snapshot_id from audit.snapshot where status = 'published'")
    summary = run_nightly(settings)
    published = _sql(settings, "select snapshot_id, parquet_dir from audit.snapshot where status = 'published'")
    if policy == "stop":
        assert not summary.ok and summary.failed_stage == "ingest" and "housing missing" in summary.failure
        assert [p[0] for p in published] == [b[0] for b in before]
        return
    assert summary.ok, summary.failure
    assert published[0][0] != before[0][0]
    manifest = json.loads((tmp_path / "data" / "snapshots" / published[0][0] / "manifest.json").read_text())
    assert list(manifest["sources_not_refreshed"]) == ["housing"]
    assert "No new extract from housing" in summary.markdown
    assert _sql(settings, "select count(*) from staging.person_record where source = 'housing'")[0][0] > 0


def test_a_placeholder_date_of_birth_is_no_evidence_for_linking():
    """Flagged and kept in staging, but null in the model's input: two strangers "born" 1900-01-01 neither
    share a date-of-birth block nor score on it (one input select serves the nightly and the service)."""
    import duckdb

    from linkage_models import FIXED_IDENTIFIERS, input_select

    records = standardise_person_records(canonical.conform(pl.DataFrame({
        "source": ["health", "police", "police"], "record_id": ["h1", "p1", "p2"], "record_role": ["subject"] * 3,
        "first_name": ["Ann", "Bob", "Cy"], "last_name": ["Ash", "Birch", "Cole"],
        "date_of_birth": [dt.date(1900, 1, 1), dt.date(1900, 1, 1), dt.date(1984, 5, 6)]}), canonical.PERSON_RECORD),
        as_of=dt.date(2026, 11, 1))
    assert records["quality_flags"].to_list()[:2] == [["date_of_birth_placeholder"]] * 2
    con = duckdb.connect()
    con.register("records", records)
    rows = con.sql(f"select record_id, date_of_birth from ({input_select('records', FIXED_IDENTIFIERS)}) "
                   "order by record_id").fetchall()
    assert rows == [("h1", None), ("p1", None), ("p2", dt.date(1984, 5, 6))]
    blocked = con.sql(f"with i as ({input_select('records', FIXED_IDENTIFIERS)}) select count(*) from i as l "
                      "join i as r on l.date_of_birth = r.date_of_birth and l.unique_id < r.unique_id").fetchall()
    assert blocked == [(0,)]


def test_an_unchanged_extract_is_skipped_only_under_the_same_contract_and_settings(settings, tmp_path):
    """Issue 13, defect 9: what decides an extract's outcome is its checksum *and* the contract and settings it
    was loaded under. The same file under the same contract and settings is `unchanged` (skipped, recorded);
    a changed contract or setting reads it again."""
    import yaml

    contracts = tmp_path / "contracts"
    shutil.copytree(canonical.__file__.rsplit("/", 1)[0] + "/contracts", contracts)
    settings = Settings(data_dir=settings.data_dir, contracts_dir=contracts)
    statuses = [run_ingest(settings, only=["health"])[0].status, run_ingest(settings, only=["health"])[0].status]
    health = contracts / "health.yaml"
    contract = yaml.safe_load(health.read_text(encoding="utf-8"))
    contract["max_quarantined_share"] = 0.4
    health.write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    statuses.append(run_ingest(settings, only=["health"])[0].status)
    statuses.append(run_ingest(settings, only=["health"])[0].status)
    looser = Settings(data_dir=settings.data_dir, contracts_dir=contracts, max_row_count_drop=0.8)
    statuses.append(run_ingest(looser, only=["health"])[0].status)
    assert statuses == ["loaded", "unchanged", "loaded", "unchanged", "loaded"]
    assert _sql(settings, "select status from audit.file_manifest where source = 'health' order by recorded_at") == [
        (s,) for s in ["superseded", "unchanged", "superseded", "unchanged", "loaded"]]
    assert _sql(settings, "select count(*) = count(distinct row_number) from raw.row where source = 'health'") == [
        (True,)]
