"""Integration: a real Prefect server on loopback, the deployments from prefect.yaml, a process worker, and
the nightly deployment run on a small synthetic city until it has published a snapshot; the Prefect UI seen in
headless Chromium; a failed run notifies the configured webhook."""

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest

from pipelines.local_prefect import AUTOMATION_NAME, LocalPrefect, free_port
from tests._chromium import chromium_path, open_page
from tests._city import trained_city

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return trained_city(tmp_path_factory.mktemp("prefect-city"), people=600, seed=5)  # small: Prefect is under test


@pytest.fixture(scope="module")
def webhook():
    """A local receiver standing in for the data team's Teams/Slack/alerting webhook."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            received.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/familylink-alerts", received
    server.shutdown()


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory, webhook):
    # the worker asks for scheduled runs every 2 s instead of 10: each deployment run starts sooner
    local = LocalPrefect(home=tmp_path_factory.mktemp("prefect-home"), port=free_port(),
                         extra_env={"PREFECT_WORKER_QUERY_SECONDS": "2"})
    with local:
        local.deploy()
        local.configure_failure_notification(webhook[0])
        local.start_worker()
        yield local


def _api(server: LocalPrefect, path: str, body: dict | None = None):
    request = urllib.request.Request(server.api_url + path, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"}, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


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
    import polars as pl

    people = pl.read_parquet(city.truth / "records.parquet")["person_id"].n_unique()
    assert len(published) == 1 and 0.8 * people < persons < 1.5 * people, (persons, people)
    assert list((city.reports).glob("*/report.html")), "the nightly writes its report"


@pytest.mark.skipif(chromium_path() is None, reason="chromium not installed (make system-deps installs it)")
def test_the_prefect_ui_shows_the_schedule_time_zone_and_a_completed_run_with_logs_and_artifacts(prefect_server):
    deployment = _api(prefect_server, "/deployments/name/nightly/nightly")
    page = open_page(f"{prefect_server.ui_url}deployments/deployment/{deployment['id']}?tab=Description",
                     {"text": "document.body.innerText"}, settle_s=30,
                     until="document.body.innerText.includes('Europe/London') "
                           "&& /0?2:00/.test(document.body.innerText)")
    text = page.values["text"]
    assert "nightly" in text and "Europe/London" in text, text[:2000]
    assert "02:00" in text or "2:00" in text, text[:2000]
    assert deployment["parameter_openapi_schema"]["properties"]["data_dir"]["description"]
    runs = _api(prefect_server, "/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
                                                      "deployments": {"id": {"any_": [deployment["id"]]}}, "limit": 1})
    assert runs, "no completed nightly run (test_nightly_deployment_runs_to_a_published_snapshot runs first)"
    run_page = open_page(f"{prefect_server.ui_url}runs/flow-run/{runs[0]['id']}", {"text": "document.body.innerText"},
                         settle_s=30, until="document.body.innerText.includes('completed: snapshot') "
                                            "&& document.body.innerText.includes('Completed')")
    shown = run_page.values["text"]
    assert "Completed" in shown and "completed: snapshot" in shown, shown[:3000]  # the flow's INFO log line
    assert "This run didn't generate logs" not in shown
    # the run's markdown summary, as the UI's Artifacts page shows it (counts and ids only)
    artifacts = open_page(f"{prefect_server.ui_url}artifacts/key/familylink-nightly-summary",
                          {"text": "document.body.innerText"}, settle_s=30,
                          until=f"document.body.innerText.includes('run summary (counts only)') && "
                                f"document.body.innerText.includes({json.dumps(runs[0]['name'])})").values["text"]
    assert "familylink nightly run summary (counts only)" in artifacts and runs[0]["name"] in artifacts, artifacts[:3000]


def test_a_failed_run_notifies_the_configured_webhook(prefect_server, webhook, tmp_path):
    url, received = webhook
    automation = [a for a in _api(prefect_server, "/automations/filter", {}) if a["name"] == AUTOMATION_NAME]
    assert automation and automation[0]["enabled"]
    empty = tmp_path / "no-extracts"
    empty.mkdir()
    state = prefect_server.run_deployment("nightly/nightly", {"data_dir": str(empty)}, timeout=300)
    assert state == "Failed"
    deadline = time.monotonic() + 90
    while not received and time.monotonic() < deadline:
        time.sleep(1)
    assert received, "the failure automation did not post to the webhook"
    message = received[0]
    assert message["source"] == "familylink" and "Failed" in message["subject"] and "nightly" in message["body"]
