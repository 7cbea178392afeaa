"""No cell value leaves the reader in an error (issue 13, defect 2): a stray quote in a police CSV row is
rejected with file and row only; the audit trail, the manifest, Prefect's database, logs, events and result
storage hold no value of that row after the failing run."""

import shutil
from pathlib import Path

import duckdb
import pytest

from sources._contract import load_contracts
from sources._readers import ExtractError, read_extract
from sources.synthetic import CityConfig, generate_city

CONTRACTS = Path(__file__).resolve().parent.parent / "sources" / "contracts"


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    out = tmp_path_factory.mktemp("city")
    generate_city(out, CityConfig(people=800, seed=5))
    return out


def _break_a_police_row(landing: Path) -> tuple[int, str, str]:
    """A stray quote before the sex (`sed 's/,M,/,"M,/'`); returns the row, its PNC id and address text."""
    extract = next((landing / "police").glob("nominals_*.csv"))
    lines = extract.read_bytes().decode("cp1252").splitlines(keepends=True)
    for i, line in enumerate(lines[1:], start=2):
        if ',M,"' in line:
            address = line.split(',M,"', 1)[1].split('"', 1)[0]
            pnc = line.split(',M,"', 1)[1].split('",', 1)[1].split(",")[0]
            lines[i - 1] = line.replace(",M,", ',"M,', 1)
            extract.write_bytes("".join(lines).encode("cp1252"))
            return i, pnc, address.split(",")[0]
    raise AssertionError("no row to break")


def test_a_stray_quote_is_reported_by_row_without_the_value(city, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(city / "landing", landing)
    row, pnc, address = _break_a_police_row(landing)
    contract = load_contracts(CONTRACTS)["police"]
    with pytest.raises(ExtractError) as caught:
        read_extract(next((landing / "police").glob("*.csv")), contract)
    assert caught.value.row == row
    assert address not in str(caught.value) and pnc not in str(caught.value)


def _files_holding(folder: Path, needles: list[bytes]) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


@pytest.fixture(scope="module")
def prefect_storage(tmp_path_factory):
    """A temporary Prefect server (its own SQLite database) and result storage folder for this module."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    storage = tmp_path_factory.mktemp("prefect-storage")
    with temporary_settings({PREFECT_SERVER_ANALYTICS_ENABLED: False, PREFECT_LOCAL_STORAGE_PATH: storage}):
        with prefect_test_harness(server_startup_timeout=90):
            yield storage


@pytest.mark.slow
def test_prefect_database_logs_and_results_hold_no_value_after_a_failing_run(city, tmp_path):
    """The failing flow runs in its own process with its own Prefect home (a temporary server and database), so
    what Prefect keeps can be searched whole, whatever other tests' harnesses are doing."""
    import os
    import subprocess
    import sys

    data = tmp_path / "data"
    shutil.copytree(city / "landing", data / "landing")
    row, pnc, address = _break_a_police_row(data / "landing")
    needles = [pnc.encode(), address.encode(), f'M,"{address}'.encode()]
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_LOCAL_STORAGE_PATH=str(home / "storage"), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90")
    code = ("import sys\nfrom pipelines.flows import ingest\nfrom pipelines.stages import StageFailure\n"
            "try:\n    ingest(data_dir=sys.argv[1])\nexcept StageFailure as error:\n    print('FAILED:', error)\n")
    out = subprocess.run([sys.executable, "-c", code, str(data)], env=env, capture_output=True, text=True,
                         timeout=600, cwd=Path(__file__).resolve().parent.parent)
    assert f"row {row}" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    for needle in needles:
        assert needle.decode() not in out.stdout + out.stderr
    assert _files_holding(home, [b"ingest-police"]), "the run was recorded in Prefect's database"
    assert _files_holding(home, needles) == []
    con = duckdb.connect(str(data / "warehouse" / "familylink.duckdb"), read_only=True)
    try:
        error = con.sql("select error from audit.run").fetchall()[0][0]
        manifest = con.sql("select status, message from audit.file_manifest where source = 'police'").fetchall()
    finally:
        con.close()
    assert "police" in error and address not in error and pnc not in error
    assert manifest[0][0] == "rejected" and f"row {row}" in manifest[0][1] and address not in manifest[0][1]


@pytest.mark.slow
def test_a_changed_setting_is_applied_by_the_next_flow_run_not_served_from_a_cache(city, tmp_path, prefect_storage,
                                                                                   monkeypatch):
    """Issue 13, defect 9: a rejected extract is not remembered: after the setting that rejected it changes,
    the next run evaluates it again and records it in the manifest."""
    from pipelines.flows import ingest
    from pipelines.settings import get_settings
    from pipelines.stages import StageFailure

    data = tmp_path / "data"
    shutil.copytree(city / "landing", data / "landing")
    get_settings.cache_clear()
    ingest(data_dir=str(data))
    police = next((data / "landing" / "police").glob("*.csv"))
    lines = police.read_bytes().splitlines(keepends=True)
    police.with_name("nominals_20261108.csv").write_bytes(b"".join(lines[: len(lines) // 4]))  # 75% fewer rows
    with pytest.raises(StageFailure, match="row count fell"):
        ingest(data_dir=str(data))
    monkeypatch.setenv("FAMILYLINK_MAX_ROW_COUNT_DROP", "0.9")
    get_settings.cache_clear()
    try:
        loads = {row["source"]: row["status"] for row in ingest(data_dir=str(data))}
    finally:
        get_settings.cache_clear()
    assert loads["police"] == "loaded"
    con = duckdb.connect(str(data / "warehouse" / "familylink.duckdb"), read_only=True)
    try:
        manifest = con.sql("select status from audit.file_manifest where source = 'police' "
                           "and file_name like '%20261108%' order by recorded_at").fetchall()
    finally:
        con.close()
    assert manifest == [("rejected",), ("loaded",)]
