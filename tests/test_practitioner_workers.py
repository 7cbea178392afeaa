"""The practitioner service as `familylink serve` runs it: a linker process and two web workers sharing one
read-only index file per snapshot and one store. What must hold across processes: referrals linked by the
linker process are found through every worker at once, the audit hash chain never forks under concurrent
writers, and rate limits count every worker's requests."""

from __future__ import annotations

import multiprocessing
import re
import time
from pathlib import Path

import httpx
import pytest

from practitioner import add_user, build_context
from practitioner.audit.service import Actor, AuditWriter, verify_chain
from tests._ports import free_port
from tests.test_practitioner_city import city_settings

pytestmark = pytest.mark.slow
PASSWORD = "a long enough password"


def _append_audit(url: str, rows: int, who: str, report: str) -> None:
    import traceback

    from practitioner._store import open_store

    try:
        writer = AuditWriter(open_store(url))
        for n in range(rows):
            writer.write(Actor(who, role="practitioner", agency="Health", purpose="test"), "search",
                         person_ids=[str(n)])
    except BaseException:
        Path(report).write_text(traceback.format_exc())  # the child's stderr is not captured under xdist
        raise


def test_audit_chain_holds_with_writers_in_several_processes(tmp_path):
    """Four processes append at once (as four web workers would): no row lost, no fork, the chain verifies."""
    from practitioner._store import open_store

    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    open_store(url).dispose()
    # spawned, as the service's workers are: a fork of a test process would inherit its threads and state
    spawn = multiprocessing.get_context("spawn")
    writers = [spawn.Process(target=_append_audit, args=(url, 40, f"worker{k}", str(tmp_path / f"worker{k}.err")))
               for k in range(4)]
    for process in writers:
        process.start()
    for k, process in enumerate(writers):
        process.join(180)
        error = tmp_path / f"worker{k}.err"
        assert process.exitcode == 0, error.read_text() if error.exists() else f"exit code {process.exitcode}"
    engine = open_store(url)
    check = verify_chain(engine)
    assert check.ok and check.rows == 160, check
    with engine.connect() as conn:
        seqs = [r[0] for r in conn.exec_driver_sql("select seq from audit_event order by seq")]
    assert seqs == list(range(1, 161))


def test_rate_limit_counts_every_worker(tmp_path):
    """Two limiters on their own engines (two workers) share one budget per key."""
    from practitioner._security import RateLimiter
    from practitioner._store import open_store

    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    first, second = RateLimiter(6, engine=open_store(url)), RateLimiter(6, engine=open_store(url))
    answers = [(first if n % 2 else second).allow("s:abc") for n in range(9)]
    assert answers == [True] * 6 + [False] * 3
    assert first.allow("s:other") and second.allow("s:other")


NEW_PERSON = {"given_name": "Oluwaseun", "family_name": "Brightwater-Okafor", "birth_date": "20190314", "gender": "1",
              "postcode": "AV1 9ZZ", "address_1": "99 Nowhere Lane"}


def _link_at_once(data_dir: str, store_url: str, record_id: str, lock, barrier, report: str) -> None:
    """One linker process: load the index and the compiled model, wait for the other, link one referral."""
    import json
    import traceback

    from practitioner.referrals.service import link_referral

    try:
        settings = city_settings(Path(data_dir), practitioner_database_url=store_url)
        ctx = build_context(settings)
        index = ctx.index.current
        barrier.wait(300)
        outcome = link_referral(ctx.engine, index, contracts_dir=settings.contracts_dir, models_dir=settings.models,
                                source="health", row=dict(NEW_PERSON, patient_id=record_id), received_by="hv",
                                threshold=settings.match_threshold, commit_lock=lock)
        Path(report).write_text(json.dumps({"person_id": outcome.person_id, "referral_id": outcome.referral_id}))
    except BaseException:
        Path(report).write_text(traceback.format_exc())
        raise


def test_two_linker_processes_give_one_new_person_one_id(practitioner_city, tmp_path):
    """Two linker processes each get a referral for the same new person at the same moment (each scores before
    either has committed): the second to commit takes in the first's referral under the shared lock and joins its
    provisional person, instead of making a second one."""
    import json

    from practitioner._store import open_store

    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    open_store(url).dispose()
    spawn = multiprocessing.get_context("spawn")
    lock, barrier = spawn.Lock(), spawn.Barrier(2)
    reports = [tmp_path / f"linker{k}.json" for k in range(2)]
    linkers = [spawn.Process(target=_link_at_once, args=(str(practitioner_city.data_dir), url, f"REF-TWICE-{k}", lock,
                                                         barrier, str(reports[k]))) for k in range(2)]
    for process in linkers:
        process.start()
    for k, process in enumerate(linkers):
        process.join(600)
        assert process.exitcode == 0, reports[k].read_text() if reports[k].exists() else f"exit {process.exitcode}"
    outcomes = sorted((json.loads(r.read_text()) for r in reports), key=lambda o: o["referral_id"])
    first = outcomes[0]["referral_id"]
    assert [o["person_id"] for o in outcomes] == [f"R{first}", f"R{first}"], outcomes


def _tree(pid: int) -> list[int]:
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [p for child in (task / "children").read_text().split() for p in _tree(int(child))]
        except OSError:
            continue
    return out


@pytest.fixture(scope="module")
def served(practitioner_city, tmp_path_factory):
    from practitioner import serve

    store = tmp_path_factory.mktemp("workers-store") / "store.sqlite3"
    settings = city_settings(practitioner_city.data_dir, practitioner_database_url=f"sqlite:///{store}",
                             practitioner_workers=2, practitioner_linkers=2)
    ctx = build_context(settings)
    add_user(ctx.engine, "mash", display_name="Mo Mash", agency="Health", role="multi_agency", password=PASSWORD)
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(target=serve, args=(settings,),
                                                           kwargs={"host": "127.0.0.1", "port": port})
    process.start()
    base = f"http://127.0.0.1:{port}"
    # four Python processes start (imports alone took 15 s each on a machine loaded by other jobs)
    deadline = time.monotonic() + 600
    try:
        while True:
            assert process.is_alive() and time.monotonic() < deadline, "the service did not start"
            try:
                if httpx.get(f"{base}/login", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield base, settings, ctx, process
    finally:  # SIGTERM: the supervisor stops the linker and the workers
        process.terminate()
        process.join(60)
    assert not process.is_alive()


def _signed_in(client: httpx.Client) -> str:
    token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "mash", "password": PASSWORD, "login_csrf": token})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/purpose").text).group(1)
    client.post("/purpose", data={"purpose": "Safeguarding enquiry", "csrf_token": csrf})
    return csrf


def test_workers_share_the_linker_and_the_overlay(served):
    base, settings, ctx, process = served
    assert len(_tree(process.pid)) == 5  # the supervisor, two linker processes, two web workers
    # a new connection per request ("Connection: close"): either worker may answer each one
    with httpx.Client(base_url=base, headers={"Connection": "close"}, timeout=120) as client:
        csrf = _signed_in(client)
        posted = client.post("/referrals", data={
            "csrf_token": csrf, "source": "health", "col__patient_id": "REF-WORKERS-1", "col__given_name": "Oluwaseun",
            "col__family_name": "Brightwater-Okafor", "col__birth_date": "20190314", "col__gender": "1",
            "col__postcode": "AV1 9ZZ", "col__address_1": "99 Nowhere Lane"})
        assert posted.status_code == 200, posted.text[-500:]
        provisional = re.search(r"/person/(R\d+)", posted.text).group(1)
        # every search opens a new connection, so both workers answer some of them: each finds it at once
        for _ in range(8):
            found = client.post("/search", data={"name": "Oluwaseun Brightwater-Okafor",
                                                 "date_of_birth": "14/03/2019", "csrf_token": csrf})
            assert found.status_code == 200 and f"/person/{provisional}" in found.text
        assert client.get(f"/person/{provisional}").status_code == 200
    # a worker that never saw the post (a follower of the linker's snapshot, filled from the store) finds it too
    from practitioner.search.schemas import SearchQuery
    from practitioner.search.service import search

    follower = build_context(settings, follow=True).index
    index = follower.current
    follower.sync(index)
    _, results = search(index, SearchQuery(name="Oluwaseun Brightwater-Okafor", date_of_birth="14/03/2019"))
    assert [r.person_id for r in results] == [provisional]
    # a worker never links: its overlay holds the referral without the model's input (the linkers' alone)
    assert index.con.execute("select count(*) from ov_person").fetchall() == [(1,)]
    assert index.con.execute("select count(*) from ov_model_input").fetchall() == [(0,)]
    check = verify_chain(ctx.engine)
    with ctx.engine.connect() as conn:
        actions = [r[0] for r in conn.exec_driver_sql("select action from audit_event order by seq")]
    assert check.ok and actions.count("search") == 8 and actions.count("referral") == 1
