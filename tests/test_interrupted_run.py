"""A nightly run killed midway (SIGKILL, no chance to clean up) never changes what was published, and the
next run completes. The run is a real `familylink run` process on a small synthetic city."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from tests._city import trained_city

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    settings = trained_city(tmp_path_factory.mktemp("interrupted"), people=2000, seed=13)
    assert _run(settings).returncode == 0
    return settings


def _command(settings) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "run", "--data-dir", str(settings.data_dir)]


def _env(settings) -> dict:
    return {**os.environ, "FAMILYLINK_PSEUDONYMISATION_KEY": "test-key"}


def _run(settings) -> subprocess.CompletedProcess:
    return subprocess.run(_command(settings), env=_env(settings), capture_output=True, text=True, timeout=600)


def _published(settings) -> dict:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        snapshot = con.sql("select snapshot_id, parquet_dir from audit.snapshot where status = 'published'").fetchall()
        tables = {t: con.sql(f"select count(*), sum(hash(columns(*))) from golden.{t}").fetchall()
                  for t in ("person", "household", "involvement", "person_source_link")}
    finally:
        con.close()
    return {"snapshot": snapshot, "tables": tables}


def _parquet_intact(parquet_dir: str) -> bool:
    manifest = json.loads((Path(parquet_dir) / "manifest.json").read_text())
    return all(hashlib.sha256((Path(parquet_dir) / f["file"]).read_bytes()).hexdigest() == f["sha256"]
               for f in manifest["files"].values())


def _new_extract(settings, date: str) -> None:
    """A newer housing extract (one tenancy fewer), so the next run has real work to do."""
    current = sorted((settings.landing / "housing").glob("*.txt"))[-1]
    lines = current.read_text(encoding="utf-8").splitlines(keepends=True)  # the housing contract says UTF-8
    current.with_name(f"tenancy_members_{date}.txt").write_text("".join(lines[:-1]), encoding="utf-8")


def _kill_when(settings, ready) -> int:
    process = subprocess.Popen(_command(settings), env=_env(settings), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if ready("".join(log)):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    return process.wait(60)


def _person_ids(settings) -> set[int]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return {r[0] for r in con.sql("select person_id from golden.person").fetchall()}
    finally:
        con.close()


@pytest.mark.parametrize("moment, date", [("link", "20261201"), ("publish", "20261202")])
def test_a_run_killed_midway_changes_nothing_published(city, moment, date):
    before = _published(city)
    ids_before = _person_ids(city)
    (snapshot_id, parquet_dir), = before["snapshot"]
    _new_extract(city, date)
    next_snapshot = city.snapshots / f"snapshot_{int(snapshot_id.split('_')[1]) + 1:06d}"
    if moment == "link":
        ready = lambda log: "link step addresses took" in log  # noqa: E731 - persons are being linked
    else:
        ready = lambda log: next_snapshot.exists()  # noqa: E731 - the new snapshot is being exported
    code = _kill_when(city, ready)
    assert code == -signal.SIGKILL, "the run finished before it could be killed"

    after = _published(city)
    if after["snapshot"] == before["snapshot"]:
        assert after == before  # the golden views still show the first snapshot, row for row
    else:  # killed after the switch: the new snapshot must then be whole
        (new_id, new_dir), = after["snapshot"]
        assert _parquet_intact(new_dir)
    assert _parquet_intact(parquet_dir)

    rerun = _run(city)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    con = duckdb.connect(str(city.warehouse), read_only=True)
    try:
        assert con.sql("select count(*) from audit.run where status = 'running'").fetchall() == [(0,)]
        assert con.sql("select count(*) from audit.run where status = 'abandoned'").fetchall()[0][0] >= 1
        # ids and lineage commit with the run that completes (issue 13, defect 10): nothing is filed under an
        # abandoned run, nothing is left pending, and the published snapshot's run completed
        assert con.sql("select count(*) from audit.id_lineage join audit.run using (run_id) "
                       "where audit.run.status <> 'completed'").fetchall() == [(0,)]
        assert con.sql("select count(*) from linkage.id_lineage_pending").fetchall() == [(0,)]
        assert con.sql("select r.status from audit.snapshot as s join audit.run as r using (run_id) "
                       "where s.status = 'published'").fetchall() == [("completed",)]
        rerun_id, = con.sql("select run_id from audit.run where status = 'completed' "
                            "order by started_at desc limit 1").fetchall()[0]
        lineage = con.execute("select event, id, related_id from audit.id_lineage where run_id = ? "
                              "and kind = 'person'", [rerun_id]).fetchall()
    finally:
        con.close()
    final = _published(city)
    assert final["snapshot"] != before["snapshot"] and _parquet_intact(final["snapshot"][0][1])
    # the completing run reports the real changes against what was published before the kill
    ids_after = _person_ids(city)
    gone = {related if event == "merge" else i for event, i, related in lineage if event in ("merge", "retired")}
    arrived = {i for event, i, _ in lineage if event in ("new", "split")}
    assert ids_before - ids_after <= gone and ids_after - ids_before <= arrived
