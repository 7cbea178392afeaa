"""Retention from the source contracts reaches raw, quarantine and history rows of superseded extracts."""

import datetime as dt

import pytest

import warehouse
from warehouse._retention import apply_retention

NOW = dt.datetime(2026, 11, 22, 12, 0)


@pytest.fixture()
def con():
    con = warehouse.connect(":memory:")
    loads = [("old", NOW - dt.timedelta(days=400)), ("new", NOW - dt.timedelta(days=300))]
    for sha, at in loads:
        con.execute("insert into audit.file_manifest (run_id, source, file_name, file_sha256, status, recorded_at) "
                    "values ('r', 'health', 'f', ?, 'loaded', ?)", [sha, at])
        con.execute("insert into raw.row values ('health', ?, 1, 'k1', '{}')", [sha])
        con.execute("insert into quarantine.row (run_id, source, file_name, file_sha256, row_number, reasons) "
                    "values ('r', 'health', 'f', ?, 1, ['no name'])", [sha])
    con.execute("insert into audit.current_extract (source, file_name, file_sha256, extract_date, rows_read, loaded_run_id, "
                "loaded_at) values ('health', 'f', 'new', null, 1, 'r', ?)", [loads[1][1]])
    con.execute("insert into history.person_record (source, record_id, superseded_at) values ('health', 'k1', ?)",
                [loads[1][1]])
    yield con
    con.close()


def _left(con):
    return {t: con.execute(f"select list(distinct file_sha256 order by file_sha256) from {t}").fetchall()[0][0]
            for t in ("raw.row", "quarantine.row")} | {
        "history": con.execute("select count(*) from history.person_record").fetchall()[0][0]}


def test_superseded_extract_past_retention_is_deleted_and_audited(con):
    deleted = apply_retention(con, {"health": 180}, now=NOW)
    assert deleted == {"raw.row": 1, "quarantine.row": 1, "history.person_record": 1}
    assert _left(con) == {"raw.row": ["new"], "quarantine.row": ["new"], "history": 0}
    assert con.execute("select count(*) from audit.access_log where action = 'retention'").fetchall()[0][0] == 1


def test_nothing_goes_inside_the_retention_period_and_the_current_extract_always_stays(con):
    assert apply_retention(con, {"health": 365}, now=NOW) == {}
    assert apply_retention(con, {"health": 1}, now=NOW + dt.timedelta(days=3650))["raw.row"] == 1
    assert _left(con)["raw.row"] == ["new"]


def test_a_rejected_copy_of_the_current_extract_takes_none_of_its_rows(con):
    """A copy of the current extract under a name that gives no date is rejected with the same checksum: when
    the rejection ages out, the rows received with the loaded extract stay."""
    con.execute("insert into audit.file_manifest (run_id, source, file_name, file_sha256, status, recorded_at) "
                "values ('r', 'health', 'f2', 'new', 'rejected', ?)", [NOW - dt.timedelta(days=300)])
    apply_retention(con, {"health": 180}, now=NOW)
    assert _left(con) == {"raw.row": ["new"], "quarantine.row": ["new"], "history": 0}
