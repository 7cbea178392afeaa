"""Erasure that sticks (issue 13, defect 1): a related person's columns leave the subject's received row and do
not come back with the next extract; Splink pair tables lose the record at once; orphan Parquet of a failed
publish is removed; no byte of an erased value survives in any file the product wrote; a mistaken erasure
changes nothing and a block can be lifted."""

import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.settings import Settings
from pipelines.stages import run_nightly
from tests._city import read_sql

pytestmark = pytest.mark.slow

# What the product writes: everything under the data folder except the agencies' deliveries (landing) and the
# synthetic city's ground truth (written by the generator for evaluation).
_NOT_WRITTEN_BY_THE_PRODUCT = ("landing", "truth")


@pytest.fixture()
def city(published_city, tmp_path):
    settings, _ = published_city
    shutil.copytree(settings.data_dir, tmp_path / "data")
    return Settings(data_dir=tmp_path / "data", pseudonymisation_key="test-key")


def _sql(settings, sql, params=()):
    return read_sql(settings, sql, params)


def _erase(settings, source, record_id, reason="SAR-1"):
    return CliRunner().invoke(app, ["erase", "--source", source, "--record-id", record_id, "--reason", reason,
                                    "--data-dir", str(settings.data_dir)])


def _tables_holding(settings, value: str) -> list[str]:
    tables = _sql(settings, "select table_schema, table_name from information_schema.tables "
                            "where table_type = 'BASE TABLE'")
    return [f"{schema}.{table}" for schema, table in tables
            if _sql(settings, f'select count(*) from "{schema}"."{table}" as t where contains(cast(t as varchar), ?)',
                    [value])[0][0]]


def _files_holding(settings, needle: bytes) -> list[str]:
    hits = []
    for path in sorted(Path(settings.data_dir).rglob("*")):
        rel = path.relative_to(settings.data_dir)
        if not path.is_file() or rel.parts[0] in _NOT_WRITTEN_BY_THE_PRODUCT:
            continue
        if needle in path.read_bytes():
            hits.append(str(rel))
    return hits


def test_erasing_a_related_person_blanks_them_in_the_subjects_row_and_they_stay_erased(city):
    # a pupil's parent with a phone number no other row has
    parent_id, name, phone = _sql(city, """
        select record_id, last_name, phone from staging.person_record
        where source = 'education' and record_role = 'parent_carer' and phone is not null
          and phone in (select phone from staging.person_record group by phone having count(*) = 1)
        order by record_id limit 1""")[0]
    pupil = parent_id.rsplit("-", 1)[0]
    unique_id = f"education:{parent_id}"
    assert _sql(city, "select count(*) from linkage.person_pairs where ? in (unique_id_l, unique_id_r)",
                [unique_id])[0][0] + _sql(city, "select count(*) from linkage.person_cluster where source = "
                                                "'education' and record_id = ?", [parent_id])[0][0] > 0

    result = _erase(city, "education", parent_id)
    assert result.exit_code == 0, result.output
    payload = json.loads(_sql(city, "select payload::varchar from raw.row where source = 'education' "
                                    "and record_key = ?", [pupil])[0][0])
    assert payload["Parent1Name"] == "" and payload["Parent1Phone"] == ""
    assert payload["PupilID"] == pupil, "the pupil's own data stays"
    for table in ("linkage.person_pairs", "person_linkage_edges"):
        exists = _sql(city, "select count(*) from information_schema.tables where table_schema || '.' || "
                            "table_name = ? or (table_schema = 'main' and table_name = ?)", [table, table])[0][0]
        if exists:
            assert _sql(city, f"select count(*) from {table} where ? in (unique_id_l, unique_id_r)",
                        [unique_id])[0][0] == 0, table
    assert not _files_holding(city, phone.encode())

    # a newer extract still names the parent: they are not staged, linked or kept again
    extract = next((city.landing / "education").glob("pupils_*.csv"))
    extract.with_name("pupils_20261201.csv").write_bytes(extract.read_bytes())
    summary = run_nightly(city)
    assert summary.ok, summary.failure
    assert _sql(city, "select count(*) from staging.person_record where source = 'education' and record_id = ?",
                [parent_id]) == [(0,)]
    assert _sql(city, "select count(*) from graph.record_link where source = 'education' and record_id = ?",
                [parent_id]) == [(0,)]
    assert _sql(city, "select count(*) from raw.row where contains(payload::varchar, ?)", [phone]) == [(0,)]
    assert _sql(city, "select count(*) from staging.person_record where source = 'education' and record_id = ?",
                [pupil]) == [(1,)]


def test_no_byte_of_an_erased_record_survives_in_any_file_the_product_wrote(city):
    source, record_id, pnc = _sql(city, """
        select r.source, r.record_id, r.pnc_id from staging.person_record as r
        join golden.person_source_link as l using (source, record_id)
        where r.source = 'police' and r.pnc_id is not null
          -- a value only this record holds (the city gives some people two police records with one PNC id)
          and (select count(*) from raw.row as w where contains(w.payload::varchar, r.pnc_id)) = 1
          and (select count(*) from staging.person_record as o where o.pnc_id = r.pnc_id) = 1
        order by r.record_id limit 1""")[0]
    needle = pnc.encode()
    # a publish killed during its Parquet export left this behind (status failed, no parquet_dir)
    published = _sql(city, "select snapshot_id from audit.snapshot where status = 'published'")[0][0]
    orphan = city.snapshots / "snapshot_000099"
    shutil.copytree(city.snapshots / published, orphan)
    con = duckdb.connect(str(city.warehouse))
    con.execute("insert into audit.snapshot (snapshot_id, run_id, status, created_at) "
                "values ('snapshot_000099', 'killed', 'failed', current_timestamp)")
    con.close()
    before = _files_holding(city, needle)
    assert "warehouse/familylink.duckdb" in before, before

    result = _erase(city, source, record_id)
    assert result.exit_code == 0, result.output
    assert not orphan.exists(), "orphan export of a failed publish removed"
    assert _tables_holding(city, pnc) == []
    assert _files_holding(city, needle) == []
    # the record id stays only where ids are kept on purpose: the block on later extracts and the audit log
    assert _sql(city, "select count(*) from audit.erased_record where erased_record_id = ?", [record_id]) == [(1,)]
    # the rewritten warehouse still works: constraints, views and the block on the erased record
    assert _sql(city, "select count(*) from golden.person")[0][0] > 0
    assert _sql(city, "select count(*) from audit.erased_record") == [(1,)]
    assert run_nightly(city).ok


def test_a_mistaken_erasure_changes_nothing_and_a_block_can_be_lifted(city):
    before = _sql(city, "select count(*) from audit.access_log")
    result = _erase(city, "health", "NO-SUCH-RECORD")
    assert result.exit_code == 1 and "no record health:NO-SUCH-RECORD" in result.output
    assert _sql(city, "select count(*) from audit.erased_record") == [(0,)]
    assert _sql(city, "select count(*) from audit.access_log") == before

    record_id = _sql(city, "select record_id from staging.person_record where source = 'health' "
                           "order by record_id limit 1")[0][0]
    assert _erase(city, "health", record_id).exit_code == 0
    lifted = CliRunner().invoke(app, ["lift-erasure-block", "--source", "health", "--record-id", record_id,
                                      "--reason", "wrong person", "--data-dir", str(city.data_dir)])
    assert lifted.exit_code == 0, lifted.output
    # the next extract that carries the record stages it again
    extract = next((city.landing / "health").glob("*.parquet"))
    pl.read_parquet(extract).write_parquet(extract.with_name("gp_register_20261201.parquet"))
    assert run_nightly(city).ok
    assert _sql(city, "select count(*) from staging.person_record where source = 'health' and record_id = ?",
                [record_id]) == [(1,)]
    assert _sql(city, "select action from audit.access_log where action like '%erasure%'") == \
        [("lift erasure block",)]
