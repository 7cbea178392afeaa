"""Lineage and the published pointer are committed with the run that completes (issue 13, defect 10)."""

import shutil

import duckdb
import polars as pl
import pytest

import warehouse
from pipelines.settings import Settings
from pipelines.stages import begin_run, end_run, run_nightly
from linkage_models import assign_person_ids, run_lineage


def _assign(settings, run_id, clusters):
    con = warehouse.connect(settings.warehouse)
    try:
        with warehouse.transaction(con):
            assign_person_ids(con, clusters, run_id)
    finally:
        con.close()


def _clusters(groups: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame({"source": ["health"] * len(groups), "record_id": list(groups),
                         "cluster_id": list(groups.values())})


def test_ids_and_lineage_of_a_killed_run_never_count_and_the_next_run_reports_the_real_changes(tmp_path):
    """Issue 13, defect 10: ids and lineage commit with the run that completes. A killed run's merge stays
    pending (never under the abandoned run); the next run compares against the last committed ids."""
    settings = Settings(data_dir=tmp_path / "data")
    first = begin_run(settings, "nightly")
    _assign(settings, first, _clusters({"a": "x", "b": "y", "c": "z"}))  # three persons: 1, 2, 3
    end_run(settings, first, "completed")

    killed = begin_run(settings, "nightly")
    _assign(settings, killed, _clusters({"a": "x", "b": "x", "c": "z"}))  # a and b merge
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:  # before the kill: the merge is pending, nothing official
        assert con.sql("select run_id, event from linkage.id_lineage_pending").fetchall() == [(killed, "merge")]
        assert con.execute("select count(*) from audit.id_lineage where run_id = ?", [killed]).fetchall() == [(0,)]
    finally:
        con.close()
    warehouse.release_run_lock(settings.warehouse)  # the process was killed: the OS drops its lock

    following = begin_run(settings, "nightly")
    _assign(settings, following, _clusters({"a": "x", "b": "x", "c": "q", "d": "q"}))  # the same merge; d joins c
    assert run_lineage_events(settings, following) == [("merge", 1, 2)]  # reported while it runs
    end_run(settings, following, "completed")
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        runs = dict(con.sql("select run_id, status from audit.run").fetchall())
        lineage = con.sql("select run_id, event, id, related_id from audit.id_lineage order by all").fetchall()
        pending = con.sql("select count(*) from linkage.id_lineage_pending").fetchall()
        committed = dict(con.sql("select record_id, person_id from linkage.person_cluster_committed").fetchall())
    finally:
        con.close()
    assert runs == {first: "completed", killed: "abandoned", following: "completed"}
    # the first run's three new ids, then the following run's merge: nothing filed under the killed run
    assert [row for row in lineage if row[0] != first] == [(following, "merge", 1, 2)]
    assert pending == [(0,)] and committed == {"a": 1, "b": 1, "c": 3, "d": 3}


def test_a_failed_run_leaves_the_committed_ids_as_they_were(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    first = begin_run(settings, "nightly")
    _assign(settings, first, _clusters({"a": "x", "b": "y"}))
    end_run(settings, first, "completed")
    failed = begin_run(settings, "nightly")
    _assign(settings, failed, _clusters({"a": "x", "b": "x"}))
    end_run(settings, failed, "failed", "publish", "disk full")
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        committed = dict(con.sql("select record_id, person_id from linkage.person_cluster_committed").fetchall())
        filed = con.execute("select count(*) from audit.id_lineage where run_id = ?", [failed]).fetchall()
    finally:
        con.close()
    assert committed == {"a": 1, "b": 2} and filed == [(0,)]


def run_lineage_events(settings, run_id):
    con = warehouse.connect(settings.warehouse)
    try:
        return sorted(run_lineage(con, run_id).select("event", "id", "related_id").rows())
    finally:
        con.close()


@pytest.mark.slow
def test_a_snapshot_is_published_only_by_a_run_that_completes(published_city, tmp_path, monkeypatch):
    original, _ = published_city
    shutil.copytree(original.data_dir, tmp_path / "data")
    settings = Settings(data_dir=tmp_path / "data", pseudonymisation_key="test-key")
    # a newer housing extract (one tenancy fewer): with nothing changed no snapshot would be built at all (issue 14)
    current = sorted((settings.landing / "housing").glob("*.txt"))[-1]
    lines = current.read_text(encoding="utf-8").splitlines(keepends=True)
    current.with_name("tenancy_members_20261215.txt").write_text("".join(lines[:-1]), encoding="utf-8")
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    before = con.sql("select snapshot_id from audit.snapshot where status = 'published'").fetchall()
    con.close()

    import reports

    def report_crashes(*args, **kwargs):  # the run dies after its snapshot is built and exported
        raise OSError("disk full")

    monkeypatch.setattr(reports, "write_run_report", report_crashes)
    summary = run_nightly(settings)
    assert not summary.ok and summary.failed_stage == "report"
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        assert con.sql("select snapshot_id from audit.snapshot where status = 'published'").fetchall() == before
        built = con.execute("select status from audit.snapshot where snapshot_id = ?",
                            [summary.publish.snapshot_id]).fetchall()
        run = con.execute("select status from audit.run where run_id = ?", [summary.run_id]).fetchall()
    finally:
        con.close()
    assert built == [("ready",)] and run == [("failed",)]

    monkeypatch.undo()
    again = run_nightly(settings)
    assert again.ok, again.failure
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        statuses = dict(con.sql("select snapshot_id, status from audit.snapshot").fetchall())
        publisher = con.sql("select r.status from audit.snapshot as s join audit.run as r using (run_id) "
                            "where s.status = 'published'").fetchall()
    finally:
        con.close()
    assert statuses[summary.publish.snapshot_id] == "failed"
    assert not (settings.snapshots / summary.publish.snapshot_id).exists()
    assert statuses[again.publish.snapshot_id] == "published" and publisher == [("completed",)]


def test_the_next_run_repairs_a_pointer_left_behind_by_a_kill_after_the_commit(tmp_path):
    """Killed between committing its completion (snapshot published in the warehouse) and rewriting
    snapshots/current.json: the next run points the file at the published snapshot."""
    import json

    from warehouse._golden import write_current_pointer

    settings = Settings(data_dir=tmp_path / "data")
    run = begin_run(settings, "nightly")
    con = warehouse.connect(settings.warehouse)
    try:
        con.execute("select 1 from audit.snapshot limit 0")
        con.execute("insert into audit.snapshot (snapshot_id, run_id, status, created_at) values "
                    "('snapshot_000001', ?, 'superseded', now()), ('snapshot_000002', ?, 'published', now())",
                    [run, run])
    finally:
        con.close()
    end_run(settings, run, "completed")
    write_current_pointer(settings.snapshots, "snapshot_000001")  # what the killed process left on disk
    following = begin_run(settings, "nightly")
    end_run(settings, following, "failed", "ingest", "nothing to do")
    pointer = json.loads((settings.snapshots / "current.json").read_text(encoding="utf-8"))
    assert pointer["snapshot_id"] == "snapshot_000002"
