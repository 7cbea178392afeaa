"""Erasure and rectification reach every table and the next snapshot, and are audited without personal data."""

import datetime as dt

import pytest

import warehouse
from tests._small_city import CLUSTERS, load_small_city
from warehouse._erasure import erase_record, rectify_record, apply_rectifications
from warehouse._golden import publish_snapshot, purge_snapshots
from linkage_models import assign_person_ids
from warehouse._graph import build_graph

KEY = b"k"


@pytest.fixture
def con(tmp_path):
    con = warehouse.connect(":memory:")
    load_small_city(con)
    con.execute("insert into raw.row values ('police', 'sha', 2, 'p1', '{\"SURNAME\": \"SMITH\"}')")
    con.execute("insert into quarantine.row (run_id, source, file_name, file_sha256, row_number, record_id, reasons) "
                "values ('r0', 'police', 'f.csv', 'sha0', 9, 'p1', ['no name'])")
    assign_person_ids(con, CLUSTERS, run_id="r1")
    build_graph(con, run_id="r1", model_version="m1", as_of=dt.date(2026, 11, 1))
    return con


def _publish(con, tmp_path):
    return publish_snapshot(con, run_id="r", model_version="m1", as_of=dt.date(2026, 11, 1),
                            snapshots_dir=tmp_path, pseudonymisation_key=KEY, retention_days=30)


def _tables_mentioning(con, value):
    hits = []
    for schema, table in con.execute(
        "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
    ).fetchall():
        n = con.execute(f'select count(*) from "{schema}"."{table}" t where contains(cast(t as varchar), ?)',
                        [value]).fetchall()[0][0]
        if n:
            hits.append(f"{schema}.{table}")
    return hits


def test_erasure_reaches_every_table_and_old_snapshots(con, tmp_path):
    first = _publish(con, tmp_path)
    assert {"staging.person_record", f"{first.snapshot_id}.person"} <= set(_tables_mentioning(con, "12/345678A"))
    result = erase_record(con, "police", "p1", actor="dpo", reason="SAR erasure request 42")
    assert {"raw.row", "staging.person_record", "staging.involvement", "quarantine.row",
            "linkage.person_cluster", "graph.record_link", f"{first.snapshot_id}.person_source_link"} <= set(
        result.rows_deleted)
    build_graph(con, run_id="r2", model_version="m1", as_of=dt.date(2026, 11, 1))
    second = _publish(con, tmp_path)
    purged = purge_snapshots(con, [k.split(".")[0] for k in result.rows_deleted if k.startswith("snapshot_")],
                             reason="erasure")
    assert purged == [first.snapshot_id]
    assert not first.parquet_dir.exists()
    assert second.parquet_dir.exists()
    # the police record, its PNC id and its worker are gone from every table
    assert _tables_mentioning(con, "12/345678A") == []
    assert _tables_mentioning(con, "PC Officer") == []
    log = con.sql("select action, object, purpose, cast(detail as varchar) from audit.access_log").fetchall()
    assert log[0][:3] == ("erase", "police:p1", "SAR erasure request 42")
    assert "12/345678A" not in log[0][3]


def test_rectification_carries_into_next_snapshot_and_survives_reload(con, tmp_path):
    _publish(con, tmp_path)
    changed = rectify_record(con, "health", "h3", "date_of_birth", "2012-04-03", actor="dpo",
                             reason="parent reported wrong date")
    assert changed == 1
    _publish(con, tmp_path)
    dob = con.sql("select date_of_birth from golden.person p join golden.person_source_link l using (person_id) "
                  "where l.record_id = 'h3'").fetchall()[0][0]
    # education still says 2012-03-04: one vote each, health (trust 1) wins with the corrected value
    assert dob == dt.date(2012, 4, 3)
    # a new load puts the wrong value back; the stored correction is re-applied
    con.execute("update staging.person_record set date_of_birth = date '2012-03-04' where record_id = 'h3'")
    assert apply_rectifications(con) == 1
    assert con.sql("select date_of_birth from staging.person_record where record_id = 'h3'").fetchall()[0][0] == \
        dt.date(2012, 4, 3)
    detail = con.sql("select cast(detail as varchar) from audit.access_log where action = 'rectify'").fetchall()[0][0]
    assert "2012" not in detail


def test_rectifying_a_key_field_is_refused(con):
    with pytest.raises(ValueError, match="record_id"):
        rectify_record(con, "health", "h3", "record_id", "x", actor="dpo", reason="no")
