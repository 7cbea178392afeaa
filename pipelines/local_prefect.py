"""A local Prefect server and process worker on 127.0.0.1, with familylink's deployments registered.

Used by `make serve` (runs until Ctrl-C) and by the integration test (starts, runs a deployment, stops).
Everything binds to loopback; nothing is fetched from the network. The Prefect UI (bundled in the wheel) is on
at the server's address; flow logs at INFO reach it (familylink logs ids and counts only), and a failed or
crashed flow run triggers the automation `familylink: a flow run failed`, which posts to the
`failure_webhook` setting when one is configured.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK_POOL = "familylink"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalPrefect:
    home: Path
    port: int = 4200
    work_pool: str = WORK_POOL
    extra_env: dict[str, str] = field(default_factory=dict)
    _server: subprocess.Popen | None = None
    _worker: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PREFECT_HOME": str(self.home),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_API_HOST": "127.0.0.1",
                "PREFECT_SERVER_API_PORT": str(self.port),
                # the UI is served by the same server at its root address (http://127.0.0.1:4200/)
                "PREFECT_UI_ENABLED": "true",
                "PREFECT_UI_API_URL": self.api_url,
                # flows log at INFO (counts, stages, ids — never personal data); familylink's own loggers too
                "PREFECT_LOGGING_LEVEL": "INFO",
                "PREFECT_LOGGING_EXTRA_LOGGERS": "familylink",
            }
        )
        env.update(self.extra_env)
        return env

    def _prefect(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "prefect", *args], cwd=REPO, env=self.env(), check=check, timeout=timeout,
            capture_output=True, text=True,
        )

    def start(self, timeout: float = 90) -> "LocalPrefect":
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "server.log", "w")
        self._server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise RuntimeError(f"Prefect server exited early; see {self.home / 'server.log'}")
            try:
                with urllib.request.urlopen(self.api_url + "/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"Prefect server not healthy after {timeout}s; see {self.home / 'server.log'}")

    def deploy(self) -> None:
        self._prefect("work-pool", "create", self.work_pool, "--type", "process", "--overwrite")
        result = self._prefect("--no-prompt", "deploy", "--all", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"prefect deploy failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")

    def configure_failure_notification(self, webhook: str | None) -> str | None:
        """The automation that reacts to a failed or crashed flow run of any familylink deployment. With a webhook
        it posts there (a Custom Webhook block); without one it is created anyway, so the UI's Automations page
        shows what would fire, and does nothing. Returns the automation's id."""
        result = subprocess.run([sys.executable, "-c", _AUTOMATION, webhook or ""], cwd=REPO, env=self.env(),
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"could not configure the failure automation:\n{result.stderr[-2000:]}")
        return result.stdout.strip() or None

    def start_worker(self) -> None:
        log = open(self.home / "worker.log", "w")
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", self.work_pool, "--limit", "1"],
            cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def run_deployment(self, name: str, parameters: dict | None = None, timeout: float = 600) -> str:
        """Trigger a deployment and wait for the flow run's final state; returns the state name."""
        args = ["deployment", "run", name, "--watch", "--watch-timeout", str(int(timeout))]
        for key, value in (parameters or {}).items():
            args += ["--param", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
        result = self._prefect(*args, check=False, timeout=timeout + 60)
        output = result.stdout + result.stderr
        # e.g. "Flow run finished successfully in 'Completed'." or "... finished in state 'Failed'"
        found = re.search(r"finished (?:successfully )?in (?:state )?'?(Completed|Failed|Crashed|Cancelled)", output)
        if found:
            return found.group(1)
        raise RuntimeError(f"could not read the flow run's final state from:\n{output[-3000:]}")

    @staticmethod
    def _stop(process: subprocess.Popen | None, timeout: float = 20) -> None:
        if process is None or process.poll() is not None:
            return
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=timeout / 3)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop(self) -> None:
        # the worker first (it needs a second signal to stop promptly), then the server
        self._stop(self._worker)
        self._stop(self._server)

    def __enter__(self) -> "LocalPrefect":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


AUTOMATION_NAME = "familylink: a flow run failed"
# Run in a child process with this server's PREFECT_API_URL (the Prefect client reads it at import).
_AUTOMATION = f"""
import sys
from prefect.automations import Automation, EventTrigger, Posture, SendNotification, DoNothing
from prefect.blocks.notifications import CustomWebhookNotificationBlock

webhook = sys.argv[1]
actions = [DoNothing()]
if webhook:
    block = CustomWebhookNotificationBlock(
        name="familylink-failure", url=webhook, method="POST",
        json_data={{"subject": "{{{{subject}}}}", "body": "{{{{body}}}}", "source": "familylink"}})
    block_id = block.save("familylink-failure", overwrite=True)
    actions = [SendNotification(
        block_document_id=block_id,
        subject="familylink: flow run {{{{ flow_run.name }}}} of {{{{ flow.name }}}} {{{{ flow_run.state.name }}}}",
        body=("Flow {{{{ flow.name }}}}, run {{{{ flow_run.name }}}} ({{{{ flow_run.id }}}}) ended "
              "{{{{ flow_run.state.name }}}}: {{{{ flow_run.state.message }}}}. The published snapshot was not "
              "changed. See the run in the Prefect UI and `familylink runs`."))]
try:  # configuring again replaces it
    Automation.read(name={AUTOMATION_NAME!r}).delete()
except Exception:  # none yet (Prefect raises ValueError / ObjectNotFound)
    pass
automation = Automation(
    name={AUTOMATION_NAME!r},
    description="A familylink flow run failed or crashed: notify the data team (setting failure_webhook).",
    trigger=EventTrigger(
        expect={{"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}},
        match={{"prefect.resource.id": "prefect.flow-run.*"}},
        match_related={{"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.familylink"}},
        posture=Posture.Reactive, threshold=1, within=0),
    actions=actions,
).create()
print(automation.id)
"""


def main() -> None:  # `make serve`
    port = int(os.environ.get("PREFECT_PORT", "4200"))
    os.umask(0o077)  # prefect.db holds run states and logs: owner-only, like everything under data/
    local = LocalPrefect(home=REPO / "data" / "prefect", port=port)
    print(f"Starting Prefect server on {local.api_url} ...")
    from pipelines.settings import get_settings

    webhook = get_settings().failure_webhook
    with local:
        local.deploy()
        local.configure_failure_notification(webhook)
        local.start_worker()
        print(f"Prefect UI: {local.ui_url}  (API {local.api_url}, work pool {local.work_pool})")
        print("Deployments: nightly (every day at 02:00 Europe/London, UK time), train-person-model, demo.")
        print(f"On a failed or crashed run: automation '{AUTOMATION_NAME}' "
              + (f"posts to {webhook}" if webhook else "does nothing yet (set failure_webhook / FAMILYLINK_FAILURE_WEBHOOK)"))
        print(f"Run one now:  PREFECT_API_URL={local.api_url} .venv/bin/prefect deployment run nightly/nightly")
        print("Ctrl-C stops the worker and the server.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
