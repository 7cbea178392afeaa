"""`familylink erase` on a published city: the record leaves every table and every snapshot that held it,
the audit log names ids only, and the next nightly does not bring it back from the unchanged or a new extract."""

import shutil

import duckdb
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.settings import Settings
from pipelines.stages import run_nightly

pytestmark = pytest.mark.slow


@pytest.fixture()
def city(published_city, tmp_path):
    settings, _ = published_city
    shutil.copytree(settings.data_dir, tmp_path / "data")
    # a copied data folder: purging must act on the copy's snapshots, never on the original's
    return Settings(data_dir=tmp_path / "data", pseudonymisation_key="test-key")


def _holding(settings, source, record_id) -> dict[str, int]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        tables = con.sql("""
            select table_schema, table_name, list(column_name) as cols from information_schema.columns
            join information_schema.tables using (table_schema, table_name)
            where table_type = 'BASE TABLE' group by all""").fetchall()
        found = {}
        for schema, table, cols in tables:
            for s_col, r_col in (("source", "record_id"), ("source_l", "record_id_l"), ("source_r", "record_id_r"),
                                 ("source", "record_key")):
                if s_col in cols and r_col in cols:
                    # a later extract's row for an erased record is kept as a bare placeholder (counted,
                    # no content): raw payload {"erased": true}, quarantine payload null
                    content = {"raw": " and payload->>'erased' is null",
                               "quarantine": " and payload is not null"}.get(schema, "") if table == "row" else ""
                    n = con.execute(f'select count(*) from "{schema}"."{table}" where {s_col} = ? and {r_col} = ?'
                                    + content, [source, record_id]).fetchall()[0][0]
                    if n:
                        found[f"{schema}.{table}"] = n
        return found
    finally:
        con.close()


@pytest.fixture()
def published_original(published_city):
    return published_city[0].snapshots


def test_erase_through_the_cli_reaches_everything_and_stays_erased(city, published_original):
    con = duckdb.connect(str(city.warehouse), read_only=True)
    source, record_id, person_id = con.sql(
        "select source, record_id, person_id from golden.person_source_link where source = 'health' "
        "order by record_id limit 1").fetchall()[0]
    old_snapshot = con.sql("select snapshot_id from audit.snapshot where status = 'published'").fetchall()[0][0]
    con.close()
    assert _holding(city, source, record_id)

    result = CliRunner().invoke(app, ["erase", "--source", source, "--record-id", record_id,
                                      "--reason", "SAR-2026-0001", "--data-dir", str(city.data_dir)])
    assert result.exit_code == 0, result.output
    assert _holding(city, source, record_id) == {}
    assert not (city.snapshots / old_snapshot).exists(), "the older snapshot holding the record is purged"
    assert (published_original / old_snapshot).exists(), "the folder the data was copied from is untouched"

    con = duckdb.connect(str(city.warehouse), read_only=True)
    try:
        log = con.sql("select object, purpose, detail::varchar from audit.access_log where action = 'erase'").fetchall()
    finally:
        con.close()
    assert log == [(f"{source}:{record_id}", "SAR-2026-0001", log[0][2])] and "rows_deleted" in log[0][2]

    # the next nightly reads the same extract (unchanged) and then a newer one that still carries the record
    assert run_nightly(city).ok
    assert _holding(city, source, record_id) == {}
    extract = next((city.landing / "health").glob("*.parquet"))
    import polars as pl

    newer = pl.read_parquet(extract)
    newer.head(newer.height - 1).write_parquet(extract.with_name("gp_register_20261201.parquet"))  # one leaver
    summary = run_nightly(city)
    assert summary.ok, summary.failure
    assert _holding(city, source, record_id) == {}
    health = next(l for l in summary.loads if l.source == "health")
    assert health.rows_read == health.rows_staged + health.rows_quarantined
    assert health.top_reasons.get("erased on request") == 1
