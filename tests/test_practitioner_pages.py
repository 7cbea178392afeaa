"""The practitioner service in headless Chromium (Debian's package, over the DevTools protocol), served by
uvicorn on loopback: sign in, state a purpose, search, open a person, be refused another agency's
involvements without the role, break glass, see the alert and the audit rows; a shielded person stays
hidden; a sensitive service stays hidden without consent. Plus the HTTP-level guards (CSRF, headers, rate
limit, lockout) with a plain client."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tempfile
import threading
import time
import urllib.request

import httpx
import pytest

from practitioner import add_user, build_context, create_app
from tests._ports import free_port
from tests._chromium import FLAGS, chromium_path
from tests.test_practitioner_city import city_settings, shielded_record_id

pytestmark = [pytest.mark.slow, pytest.mark.integration]
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def service(practitioner_city, tmp_path_factory):
    import uvicorn

    store = tmp_path_factory.mktemp("pages-store") / "store.sqlite3"
    settings = city_settings(practitioner_city.data_dir, practitioner_database_url=f"sqlite:///{store}",
                             practitioner_rate_limit_per_minute=100000)
    ctx = build_context(settings)
    add_user(ctx.engine, "hv", display_name="Hana Health", agency="Health", role="practitioner", password=PASSWORD)
    add_user(ctx.engine, "mash", display_name="Mo Mash", agency="Children's Services", role="multi_agency",
             password=PASSWORD)
    add_user(ctx.engine, "ig", display_name="Ida IG", agency="Information Governance", role="ig_officer",
             password=PASSWORD)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, context=ctx), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", ctx
    server.should_exit = True
    thread.join(10)


class Browser:
    """A few DevTools calls: navigate, evaluate, fill a form and submit it, waiting for the next page."""

    def __init__(self, ws_url: str):
        self.ws_url = ws_url
        self.loop = asyncio.new_event_loop()
        self.loads = 0
        self.counter = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.loop.run_until_complete(self._connect())

    async def _connect(self):
        import websockets

        self.ws = await websockets.connect(self.ws_url, max_size=64 * 1024 * 1024)
        self.reader = self.loop.create_task(self._read())
        await self._call("Page.enable")
        await self._call("Runtime.enable")

    async def _read(self):
        async for raw in self.ws:
            message = json.loads(raw)
            if message.get("id") in self.pending:
                self.pending.pop(message["id"]).set_result(message)
            if message.get("method") == "Page.loadEventFired":
                self.loads += 1

    async def _call(self, method, **params):
        self.counter += 1
        future = self.loop.create_future()
        self.pending[self.counter] = future
        await self.ws.send(json.dumps({"id": self.counter, "method": method, "params": params}))
        message = await asyncio.wait_for(future, 30)
        if "error" in message:
            raise RuntimeError(message["error"])
        return message.get("result", {})

    def _wait_load(self, before: int):
        async def wait():
            deadline = time.monotonic() + 20
            while self.loads <= before:
                assert time.monotonic() < deadline, "page did not load"
                await asyncio.sleep(0.02)
        self.loop.run_until_complete(wait())

    def go(self, url: str):
        before = self.loads
        self.loop.run_until_complete(self._call("Page.navigate", url=url))
        self._wait_load(before)

    def js(self, expression: str):
        result = self.loop.run_until_complete(self._call("Runtime.evaluate", expression=expression, returnByValue=True))
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"].get("text"))
        return result.get("result", {}).get("value")

    def submit(self, form_id: str, fields: dict[str, str] | None = None, click: str | None = None):
        sets = "".join(f"document.getElementById({json.dumps(k)}).value = {json.dumps(v)};"
                       for k, v in (fields or {}).items())
        before = self.loads
        target = f"document.getElementById({json.dumps(click)}).click()" if click else \
            f"document.getElementById({json.dumps(form_id)}).requestSubmit()"
        self.js(sets + target)
        self._wait_load(before)

    def text(self) -> str:
        return self.js("document.body.innerText")

    def close(self):
        self.reader.cancel()
        self.loop.run_until_complete(self.ws.close())
        self.loop.close()


@pytest.fixture()
def browser():
    binary = chromium_path()
    if binary is None:
        pytest.skip("chromium not installed (make system-deps installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen([binary, *FLAGS, f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
                                    "--window-size=1280,1600", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                        pages = [t for t in json.load(response) if t.get("type") == "page"]
                    if pages:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "chromium did not start"
                time.sleep(0.2)
            b = Browser(pages[0]["webSocketDebuggerUrl"])
            yield b
            b.close()
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _sign_in(b: Browser, base: str, username: str):
    b.go(f"{base}/logout-page-does-not-exist")
    b.go(f"{base}/login")
    b.submit("login-form", {"username": username, "password": PASSWORD})
    assert b.js("location.pathname") == "/purpose"
    b.js("document.getElementById('purpose-first').checked = true")
    b.submit("purpose-form", {"purpose-detail": "REF-TEST"})
    assert b.js("location.pathname") == "/search"


def _sign_out(b: Browser):
    b.submit("logout", click="logout")


def _ids(b: Browser, selector: str, attribute: str) -> list[str]:
    return b.js(f"Array.from(document.querySelectorAll({json.dumps(selector)})).map(e => e.getAttribute({json.dumps(attribute)}))")


def _one(ctx, sql, params=()):
    with ctx.index.current.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


def test_practitioner_journey_in_chromium(service, browser, practitioner_city):
    base, ctx = service
    b = browser
    # people to look for, from the published snapshot
    known, first, last = _one(ctx, "select p.person_id, r.first_name_std, r.last_name_std from person p "
                                   "join record r using (person_id) where not p.shielded and p.person_id in "
                                   "(select person_id from involvement group by 1 having bool_or(agency = 'Health') "
                                   "and bool_or(agency <> 'Health')) and r.source = 'health' order by 1 limit 1")[0]
    stranger, s_first, s_last = _one(ctx, "select p.person_id, r.first_name_std, r.last_name_std from person p "
                                          "join record r using (person_id) where not p.shielded and p.person_id not in "
                                          "(select person_id from involvement where agency = 'Health') order by 1 limit 1")[0]

    # signed out: every page sends you to sign in
    b.go(f"{base}/search")
    assert b.js("location.pathname") == "/login"
    _sign_in(b, base, "hv")
    assert b.js("document.getElementById('purpose').innerText") == ctx.rules.purposes[0]

    b.submit("search-form", {"q-name": f"{first} {last}"})
    assert known in _ids(b, "tr.result", "data-person-id")
    b.go(f"{base}/person/{known}")
    agencies = set(_ids(b, "tr.involvement", "data-agency"))
    assert agencies == {"Health"}, agencies  # own agency only: the role covers no other agreements
    assert "not shown" in b.js("document.getElementById('withheld').innerText")
    page = b.text()
    assert "Events and case notes are never shown" in page

    # another agency's person: refused, then break glass with a reason
    b.go(f"{base}/person/{stranger}")
    assert b.js("document.getElementById('refused') !== null")
    assert _ids(b, "tr.involvement", "data-agency") == []
    b.submit("break-glass-form", {"break-glass-reason": "Child reported missing tonight; need the allocated worker"})
    assert b.js("location.pathname") == f"/person/{stranger}"
    assert b.js("document.getElementById('broke-glass') !== null")
    assert len(_ids(b, "tr.involvement", "data-agency")) > 0

    # a shielded person: a partial search does not reveal them
    record_id = shielded_record_id(practitioner_city)
    shielded, sh_first, sh_last = _one(ctx, "select person_id, first_name_std, last_name_std from record "
                                            "where source = 'health' and record_id = ?", [record_id])[0]
    b.go(f"{base}/search")
    b.submit("search-form", {"q-name": sh_last})
    assert shielded not in _ids(b, "tr.result", "data-person-id")
    b.go(f"{base}/person/{shielded}")
    assert b.js("document.getElementById('shielded') !== null")
    assert _ids(b, "tr.involvement", "data-agency") == []
    _sign_out(b)

    # a sensitive service (school nursing, configured) is hidden from another agency without consent
    sensitive_person = _one(ctx, "select person_id from involvement where service = 'School nursing' and person_id in "
                                 "(select person_id from person where not shielded) order by 1 limit 1")[0][0]
    _sign_in(b, base, "mash")
    b.submit("search-form", {"q-identifier": "", "q-name": f"{s_first} {s_last}"})
    b.go(f"{base}/person/{sensitive_person}")
    if b.js("document.getElementById('refused') !== null"):
        b.submit("break-glass-form", {"break-glass-reason": "Strategy meeting called at short notice today"})
    services = _ids(b, "tr.involvement", "data-service")
    assert services and "School nursing" not in services
    _sign_out(b)

    # the IG officer sees the alert and the audit rows
    _sign_in(b, base, "ig")
    b.go(f"{base}/ig")
    alerts = b.js("Array.from(document.querySelectorAll('tr.alert-row')).map(r => [r.dataset.kind, r.dataset.personId, r.dataset.user])")
    assert ["break_glass", stranger, "hv"] in alerts
    rows = b.js("Array.from(document.querySelectorAll('tr.audit-row')).map(r => [r.dataset.user, r.dataset.action, r.querySelector('.ids').innerText])")
    hv_actions = [a for u, a, _ in rows if u == "hv"]
    for action in ("login", "purpose", "search", "view", "view_refused", "break_glass"):
        assert action in hv_actions, action
    assert ["hv", "view", known] in rows
    assert b.js("document.getElementById('chain').dataset.ok") == "yes"
    # consent recorded → the sensitive service shows to the MASH officer
    b.submit("consent-form", {"consent-person": sensitive_person, "consent-service": "School nursing",
                              "consent-basis": "Parent's written consent, 2026-11-23"})
    _sign_out(b)
    _sign_in(b, base, "mash")
    b.go(f"{base}/person/{sensitive_person}")
    assert "School nursing" in _ids(b, "tr.involvement", "data-service")
    # no script on any page, and the policy forbids it
    assert b.js("document.scripts.length") == 0


def test_csrf_headers_rate_limit_and_lockout(service, practitioner_city, tmp_path):
    import uvicorn  # noqa: F401

    base, ctx = service
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        page = client.get("/login")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
        # a sign-in without the form's token is refused
        assert client.post("/login", data={"username": "hv", "password": PASSWORD}).status_code == 403
        token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)
        signed = client.post("/login", data={"username": "hv", "password": PASSWORD, "login_csrf": token})
        assert signed.status_code == 303 and signed.headers["location"] == "/purpose"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        # a form post without the session's CSRF token is refused
        assert client.post("/purpose", data={"purpose": ctx.rules.purposes[0]}).status_code == 403
        # no search before a purpose is stated
        assert client.get("/search").headers["location"] == "/purpose"

    # lockout after repeated failures, with an alert
    add_user(ctx.engine, "victim", display_name="V", agency="Police", password=PASSWORD)
    with httpx.Client(base_url=base) as client:
        for _ in range(ctx.rules.lockout_attempts):
            token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text).group(1)
            client.post("/login", data={"username": "victim", "password": "not the password", "login_csrf": token})
        token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text).group(1)
        refused = client.post("/login", data={"username": "victim", "password": PASSWORD, "login_csrf": token})
        assert "locked" in refused.text and "/purpose" not in str(refused.url)
    from practitioner.ig.service import alerts

    assert any(a["kind"] == "lockout" and a["username"] == "victim" for a in alerts(ctx.engine))

    # rate limit: a tight limit on a fresh app answers 429
    from fastapi.testclient import TestClient

    tight = city_settings(practitioner_city.data_dir, practitioner_database_url=f"sqlite:///{tmp_path / 'r.sqlite3'}",
                          practitioner_rate_limit_per_minute=5)
    with TestClient(create_app(tight, watch=False)) as client:
        codes = [client.get("/login").status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[-1] == 429
