"""Integration: a real Prefect server on loopback, the deployments from prefect.yaml, a process worker, and
the nightly deployment run on a small synthetic city until it has published a snapshot."""

import duckdb
import pytest

from pipelines.local_prefect import LocalPrefect, free_port
from tests._city import trained_city

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return trained_city(tmp_path_factory.mktemp("prefect-city"), people=1500, seed=5)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    local = LocalPrefect(home=tmp_path_factory.mktemp("prefect-home"), port=free_port())
    with local:
        local.deploy()
        local.start_worker()
        yield local


def test_deployments_are_registered_with_the_nightly_schedule(prefect_server):
    for name in ("train-person-model/train-person-model", "demo/demo"):
        assert prefect_server._prefect("deployment", "inspect", name, check=False).returncode == 0, name
    shown = prefect_server._prefect("deployment", "inspect", "nightly/nightly").stdout
    assert "0 2 * * *" in shown and "Europe/London" in shown and "'familylink'" in shown


def test_nightly_deployment_runs_to_a_published_snapshot(prefect_server, city):
    state = prefect_server.run_deployment("nightly/nightly", {"data_dir": str(city.data_dir)}, timeout=600)
    assert state == "Completed", (prefect_server.home / "worker.log").read_text()[-3000:]
    con = duckdb.connect(str(city.warehouse), read_only=True)
    try:
        runs = con.sql("select status from audit.run where flow = 'nightly'").fetchall()
        published = con.sql("select snapshot_id from audit.snapshot where status = 'published'").fetchall()
        persons = con.sql("select count(*) from golden.person").fetchall()[0][0]
    finally:
        con.close()
    assert runs == [("completed",)]
    assert len(published) == 1 and persons > 1000
    assert list((city.reports).glob("*/report.html")), "the nightly writes its report"
