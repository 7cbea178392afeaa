"""Lineage and the published pointer are committed with the run that completes (issue 13, defect 10)."""

import shutil

import duckdb
import polars as pl
import pytest

import warehouse
from pipelines.settings import Settings
from pipelines.stages import begin_run, end_run, run_nightly
from linkage_models._stable_ids import record_lineage


def test_merges_and_splits_of_a_killed_run_are_filed_under_the_next_run(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    killed = begin_run(settings, "nightly")
    con = warehouse.connect(settings.warehouse)
    record_lineage(con, killed, "person", pl.DataFrame({"event": ["merge"], "id": [7], "related_id": [9],
                                                        "members": [2]}))
    con.close()
    warehouse.release_run_lock(settings.warehouse)  # the process was killed: the OS drops its lock
    following = begin_run(settings, "nightly")
    end_run(settings, following, "completed")
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        runs = dict(con.sql("select run_id, status from audit.run").fetchall())
        lineage = con.sql("select run_id, event from audit.id_lineage").fetchall()
    finally:
        con.close()
    assert runs == {killed: "abandoned", following: "completed"}
    assert lineage == [(following, "merge")]


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
