"""One run at a time (issue 13, defect 8): a second run, or a run meeting a process that has the warehouse file
open (an analyst's read-only connection), is refused with one line, and the refusal is in the audit trail."""

import subprocess
import sys
import time

import duckdb
import pytest
from typer.testing import CliRunner

import warehouse
from pipelines.cli import app
from pipelines.settings import Settings
from pipelines.stages import begin_run, end_run


@pytest.fixture
def settings(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    settings.protect_data()
    warehouse.connect(settings.warehouse).close()
    return settings


def _hold(code: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", code + "\nprint('ready', flush=True)\nimport time\n"
                                "time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def _release(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def _runs(settings):
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.sql("select flow, status, failed_stage, error from audit.run order by started_at").fetchall()
    finally:
        con.close()


def test_a_second_run_is_refused_in_one_line_and_recorded(settings):
    holder = _hold(f"import warehouse; warehouse.acquire_run_lock({str(settings.warehouse)!r}, 'nightly')")
    try:
        result = CliRunner().invoke(app, ["run", "--data-dir", str(settings.data_dir)])
        assert result.exit_code == 1
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "another familylink run holds the warehouse (nightly started" in lines[0]
        assert CliRunner().invoke(app, ["publish", "--data-dir", str(settings.data_dir)]).exit_code == 1
    finally:
        _release(holder)
    # the next run to take the lock files the refusals in audit.run
    run_id = begin_run(settings, "nightly")
    end_run(settings, run_id, "completed")
    runs = _runs(settings)
    assert [(flow, status) for flow, status, _, _ in runs] == [("nightly", "refused"), ("publish", "refused"),
                                                                ("nightly", "completed")]
    assert "another familylink run" in runs[0][3]


def test_a_killed_run_leaves_no_lock_behind(settings):
    holder = _hold(f"import warehouse; warehouse.acquire_run_lock({str(settings.warehouse)!r}, 'nightly')")
    _release(holder)
    run_id = begin_run(settings, "nightly")
    end_run(settings, run_id, "completed")
    assert _runs(settings)[-1][:2] == ("nightly", "completed")


def test_an_analysts_connection_to_the_working_warehouse_gives_one_line_not_a_traceback(settings):
    analyst = _hold(f"import duckdb; con = duckdb.connect({str(settings.warehouse)!r}, read_only=True)")
    try:
        time.sleep(0.2)
        result = CliRunner().invoke(app, ["run", "--data-dir", str(settings.data_dir)])
        assert result.exit_code == 1
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "open in another process" in lines[0] and "published snapshot" in lines[0]
    finally:
        _release(analyst)
    run_id = begin_run(settings, "nightly")
    end_run(settings, run_id, "completed")
    assert [status for _, status, _, _ in _runs(settings)] == ["refused", "completed"]
