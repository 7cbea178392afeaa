"""The practitioner service's logic without HTTP: search, the person page's rules, IG, audit, accounts,
real-time linking and its nightly reconciliation. Real DuckDB snapshot, real Splink model, real SQLite store."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import shutil
import socket
import threading

import polars as pl
import pytest
import sqlalchemy as sa

from practitioner import add_user, build_context, set_role
from practitioner.audit.service import Actor, verify_chain
from practitioner.auth import service as auth
from practitioner.ig.service import alerts, raise_alert, record_consent
from practitioner.person import service as person_service
from practitioner.referrals.service import link_referral, resolve_person_id
from practitioner.search.schemas import SearchQuery
from practitioner.search.service import search
from tests.test_practitioner_city import city_settings, shielded_record_id

pytestmark = pytest.mark.slow
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def shared_index(practitioner_city, tmp_path_factory):
    """One index for the module's read-only tests (loading it per test cost 1.5-5 s each)."""
    store = tmp_path_factory.mktemp("index-store") / "s.sqlite3"
    holder = build_context(city_settings(practitioner_city.data_dir, practitioner_database_url=f"sqlite:///{store}")).index
    holder.refresh()
    return holder


@pytest.fixture()
def ctx(practitioner_city, shared_index, tmp_path):
    """A fresh store (users, audit, alerts) per test over the shared index."""
    settings = city_settings(practitioner_city.data_dir, practitioner_database_url=f"sqlite:///{tmp_path / 's.sqlite3'}")
    context = build_context(settings)
    context.index = shared_index
    return context


def _principal(ctx, username, agency, role="practitioner", team=None):
    add_user(ctx.engine, username, display_name=username, agency=agency, role=role, team=team, password=PASSWORD)
    user_id = auth.check_password(ctx.engine, username, PASSWORD, lockout_attempts=5, lockout_minutes=15)
    token = auth.start_session(ctx.engine, user_id, idle_minutes=30, max_hours=10)
    principal = auth.resolve_session(ctx.engine, token, idle_minutes=30)
    auth.set_purpose(ctx.engine, principal.token_hash, "Safeguarding enquiry", None)
    return auth.resolve_session(ctx.engine, token, idle_minutes=30)


def _one(ctx, sql, params=()):
    with ctx.index.current.cursor() as cur:
        return cur.execute(sql, list(params)).fetchall()


def test_search_tolerates_nicknames_typos_accents_and_swapped_names(ctx):
    # persons with a forename to search by: standardisation drops a placeholder one ("Unborn", a title alone)
    rows = _one(ctx, "select person_id, first_name, last_name, date_of_birth from person "
                     "where length(last_name) >= 6 and date_of_birth is not null and not shielded "
                     "and person_id in (select person_id from name_key where first_std is not null) "
                     "order by person_id limit 25")
    assert rows
    index = ctx.index.current
    for person_id, first, last, dob in rows:
        typo = last[:2] + last[3] + last[2] + last[4:]  # two letters transposed
        accented = first.replace("e", "é", 1).replace("a", "á", 1)
        for query in (SearchQuery(name=f"{first} {last}"), SearchQuery(name=f"{last} {first}"),
                      SearchQuery(name=f"{last}, {first}"), SearchQuery(name=f"{first} {typo}", date_of_birth=str(dob.year)),
                      SearchQuery(name=f"{accented} {last}", date_of_birth=dob.strftime("%d/%m/%Y"))):
            _, results = search(index, query)
            assert person_id in [r.person_id for r in results], (person_id, query.model_fields_set)
        _, wrong_year = search(index, SearchQuery(name=f"{first} {last}", date_of_birth=str(dob.year + 3)))
        assert person_id not in [r.person_id for r in wrong_year]
        result = next(r for r in search(index, SearchQuery(name=f"{first} {last}"))[1] if r.person_id == person_id)
        postcode = _one(ctx, "select postcode from person where person_id = ?", [person_id])[0][0]
        assert result.birth_year == dob.year
        assert result.district == (postcode.split()[0] if postcode else None)  # the district only, never more


def test_a_placeholder_forename_searches_by_the_surname(ctx):
    """An unborn or unnamed baby's record keeps no forename for matching ("Baby", "Unborn" are cleared at ingest):
    a practitioner searching "Unborn Kwiatkowski" or "Baby Smith" is searching by the surname, and finds them."""
    from practitioner.search.service import parse

    parsed = parse(SearchQuery(name="Unborn Kwiatkowski"))
    assert (parsed.first, parsed.last) == (None, "kwiatkowski")
    assert (parse(SearchQuery(name="Mr Jones")).first, parse(SearchQuery(name="Baby of Smith")).last) == (None, "smith")
    rows = _one(ctx, "select person_id, last_std from name_key where first_std is null and last_std is not null "
                     "and person_id in (select person_id from person where not shielded) order by 1 limit 5")
    assert rows, "the city has records whose forename was a placeholder"
    for person_id, last in rows:
        for placeholder in ("Baby", "Unborn"):
            _, results = search(ctx.index.current, SearchQuery(name=f"{placeholder} {last}"))
            assert person_id in [r.person_id for r in results], (person_id, placeholder)


def test_search_by_nickname_reaches_the_formal_name(ctx):
    nicknames = {"william": "bill", "elizabeth": "liz", "robert": "bob", "thomas": "tom", "margaret": "maggie",
                 "james": "jim", "katherine": "kate", "michael": "mike", "richard": "dick", "edward": "ted"}
    rows = _one(ctx, "select k.person_id, k.formal, p.last_name from name_key k join person p using (person_id) "
                     f"where k.formal in ({', '.join('?' for _ in nicknames)}) and not p.shielded limit 5", nicknames)
    if not rows:
        pytest.skip("no formal names with a listed nickname in this city")
    for person_id, formal, last in rows:
        _, results = search(ctx.index.current, SearchQuery(name=f"{nicknames[formal]} {last}"))
        assert person_id in [r.person_id for r in results]


def test_search_by_identifier_and_postcode(ctx):
    person_id, nhs, postcode = _one(ctx, "select r.person_id, r.nhs_number, p.postcode from record r "
                                         "join person p using (person_id) where r.nhs_number is not null "
                                         "and not p.shielded limit 1")[0]
    _, results = search(ctx.index.current, SearchQuery(identifier=nhs[:3] + " " + nhs[3:6] + " " + nhs[6:]))
    assert [r.person_id for r in results] == [person_id]
    last = _one(ctx, "select last_name from person where person_id = ?", [person_id])[0][0]
    _, results = search(ctx.index.current, SearchQuery(name=last, postcode=postcode))
    assert person_id in [r.person_id for r in results]


def test_search_by_address(ctx):
    """Any part of the address, in any case and punctuation, finds the person; with a name it narrows; the
    results never show the address itself (only the postcode district)."""
    person_id, address, last = _one(ctx, "select person_id, address, last_name from person where not shielded "
                                         "and address is not null and last_name is not null and not provisional "
                                         "and regexp_matches(address, '^[0-9]+[ ,]') order by person_id limit 1")[0]
    street = ", ".join(address.split(",")[:1]) if "," in address else " ".join(address.split()[:3])
    typed = street.lower().replace(" ", "  ") + ","  # a practitioner types lower case, spacing and commas vary
    _, results = search(ctx.index.current, SearchQuery(address=typed))
    assert person_id in [r.person_id for r in results]
    _, narrowed = search(ctx.index.current, SearchQuery(address=typed, name=last))
    assert person_id in [r.person_id for r in narrowed] and len(narrowed) <= len(results)
    assert all(last.upper() in r.name.upper() for r in narrowed)
    assert street.upper() not in json.dumps([r.model_dump() for r in results]).upper()
    _, nobody = search(ctx.index.current, SearchQuery(address="999 Nonexistent Boulevard"))
    assert nobody == []


def test_break_glass_alert_is_emailed_without_the_reason(ctx):
    """The privacy officer's email goes through a real SMTP server on loopback; it carries ids, not the reason."""
    from aiosmtpd.controller import Controller

    received = []

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content.decode("utf-8")))
            return "250 OK"

    with socket.socket() as probe:  # aiosmtpd needs a fixed port: take a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(Sink(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        ctx.rules.alert_email, ctx.rules.smtp_host, ctx.rules.smtp_port = "privacy@council.example", "127.0.0.1", port
        person_id = _one(ctx, "select person_id from person where not shielded order by person_id limit 1")[0][0]
        alert_id = raise_alert(ctx.engine, ctx.rules, kind="break_glass", username="mash", person_id=person_id,
                               reason="child at immediate risk, out of hours", audit_seq=7)
    finally:
        smtp.stop()
    (sender, recipients, content), = received
    assert recipients == ["privacy@council.example"] and sender == "familylink@localhost"
    assert f"familylink alert #{alert_id}: break_glass" in content and person_id in content
    assert "risk" not in content  # the reason stays in the store, read on the IG page
    assert [a["delivery"] for a in alerts(ctx.engine, status="open") if a["id"] == alert_id] == ["email sent"]


def test_involvements_outside_the_role_are_withheld_and_break_glass_is_alerted(ctx):
    person_id = _one(ctx, "select person_id from involvement group by person_id "
                          "having bool_or(agency = 'Health') and bool_or(agency <> 'Health') "
                          "and person_id in (select person_id from person where not shielded) limit 1")[0][0]
    health = _principal(ctx, "hv", "Health")
    access, view = person_service.person_view(ctx.engine, ctx.index.current, health, person_id, sensitive=[], max_hours=10)
    assert access.reason == "relationship"
    assert {i.agency for i in view.involvements} == {"Health"}
    assert view.withheld_agencies > 0
    assert all(i.worker_role or i.service for i in view.involvements)

    mash = _principal(ctx, "mash", "Children's Services", role="multi_agency")
    stranger = _one(ctx, "select person_id from person where not shielded and person_id not in "
                         "(select person_id from involvement where agency = 'Children''s Services') limit 1")[0][0]
    access, view = person_service.person_view(ctx.engine, ctx.index.current, mash, stranger, sensitive=[], max_hours=10)
    assert not access.allowed and access.reason == "none" and view is None

    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ctx.rules.alert_webhook = f"http://127.0.0.1:{server.server_port}/alerts"
        seq = ctx.audit.write(Actor("mash", "multi_agency", "Children's Services", "Safeguarding enquiry"),
                              "break_glass", person_ids=[stranger])
        raise_alert(ctx.engine, ctx.rules, kind="break_glass", username="mash", person_id=stranger,
                    reason="child at immediate risk, out of hours", audit_seq=seq)
    finally:
        server.shutdown()
    access, view = person_service.person_view(ctx.engine, ctx.index.current, mash, stranger, sensitive=[], max_hours=10)
    assert access.allowed and access.broke_glass
    queued = alerts(ctx.engine, status="open")
    assert [(a["kind"], a["person_id"], a["audit_seq"]) for a in queued] == [("break_glass", stranger, seq)]
    assert queued[0]["delivery"] == "webhook 204"
    assert received == [{"alert_id": queued[0]["id"], "kind": "break_glass", "username": "mash",
                         "person_id": stranger, "audit_seq": seq, "at": received[0]["at"]}]
    assert "risk" not in json.dumps(received)  # the reason stays in the store, not in the alert sent out


def test_household_members_only_for_a_role_that_covers_households(ctx):
    person_id, household = _one(ctx, "select person_id, household_id from person where household_id in "
                                     "(select household_id from person group by 1 having count(*) >= 3) "
                                     "and not shielded limit 1")[0]
    health = _principal(ctx, "hv2", "Health")
    mash = _principal(ctx, "mash2", "Children's Services", role="multi_agency")
    seq = ctx.audit.write(Actor("hv2"), "break_glass")
    raise_alert(ctx.engine, ctx.rules, kind="break_glass", username="hv2", person_id=person_id, audit_seq=seq)
    seq = ctx.audit.write(Actor("mash2"), "break_glass")
    raise_alert(ctx.engine, ctx.rules, kind="break_glass", username="mash2", person_id=person_id, audit_seq=seq)
    _, health_view = person_service.person_view(ctx.engine, ctx.index.current, health, person_id, sensitive=[], max_hours=10)
    _, mash_view = person_service.person_view(ctx.engine, ctx.index.current, mash, person_id, sensitive=[], max_hours=10)
    assert health_view.household == []
    expected = {r[0] for r in _one(ctx, "select person_id from person where household_id = ? and person_id <> ? "
                                        "and not shielded", [household, person_id])}
    assert {m.person_id for m in mash_view.household} == expected
    assert "address" not in mash_view.household[0].model_dump()


def test_shielded_person_is_found_only_by_an_exact_search_and_shows_nothing(ctx, practitioner_city):
    record_id = shielded_record_id(practitioner_city)
    person_id, = _one(ctx, "select person_id from record where source = 'health' and record_id = ?", [record_id])[0]
    # the name as the shielded record itself holds it (what a practitioner who knows the person would type)
    first, last, dob, postcode = _one(ctx, "select first_name_std, last_name_std, date_of_birth, postcode from record "
                                           "where source = 'health' and record_id = ?", [record_id])[0]
    assert _one(ctx, "select shielded from person where person_id = ?", [person_id])[0][0] is True
    index = ctx.index.current
    for partial in (SearchQuery(name=last), SearchQuery(name=last, postcode=postcode),
                    SearchQuery(name=f"{first} {last}", date_of_birth=str(dob.year)),
                    SearchQuery(date_of_birth=dob.strftime("%d/%m/%Y"))):
        assert person_id not in [r.person_id for r in search(index, partial)[1]]
    _, exact = search(index, SearchQuery(name=f"{first} {last}", date_of_birth=dob.strftime("%d/%m/%Y")))
    hit = [r for r in exact if r.person_id == person_id]
    assert len(hit) == 1 and hit[0].shielded and hit[0].district is None and hit[0].agency_count is None
    mash = _principal(ctx, "mash3", "Children's Services", role="multi_agency")
    access, view = person_service.person_view(ctx.engine, index, mash, person_id, sensitive=[], max_hours=10)
    assert access.reason == "shielded" and view is None


def test_sensitive_service_hidden_without_consent(ctx):
    person_id = _one(ctx, "select person_id from involvement where service = 'School nursing' and person_id in "
                          "(select person_id from person where not shielded) limit 1")[0][0]
    mash = _principal(ctx, "mash4", "Children's Services", role="multi_agency")
    seq = ctx.audit.write(Actor("mash4"), "break_glass")
    raise_alert(ctx.engine, ctx.rules, kind="break_glass", username="mash4", person_id=person_id, audit_seq=seq)
    sensitive = ["school nursing"]
    _, view = person_service.person_view(ctx.engine, ctx.index.current, mash, person_id, sensitive=sensitive, max_hours=10)
    assert "School nursing" not in {i.service for i in view.involvements}
    health = _principal(ctx, "hv4", "Health")  # the service's own agency knows its own involvement
    _, own = person_service.person_view(ctx.engine, ctx.index.current, health, person_id, sensitive=sensitive, max_hours=10)
    assert "School nursing" in {i.service for i in own.involvements}
    record_consent(ctx.engine, person_id=person_id, service="School nursing", recorded_by="ig", basis="written consent")
    _, view = person_service.person_view(ctx.engine, ctx.index.current, mash, person_id, sensitive=sensitive, max_hours=10)
    assert "School nursing" in {i.service for i in view.involvements}


def test_a_role_maps_to_the_agencies_of_its_sharing_agreements(ctx):
    set_role(ctx.engine, "police_and_housing", agencies=["Police", "Housing"])
    person_id = _one(ctx, "select person_id from involvement group by person_id having bool_or(agency = 'Housing') "
                          "and bool_or(agency = 'Health') and person_id in (select person_id from person where not shielded) "
                          "limit 1")[0][0]
    officer = _principal(ctx, "pc", "Police", role="police_and_housing")
    seq = ctx.audit.write(Actor("pc"), "break_glass")
    raise_alert(ctx.engine, ctx.rules, kind="break_glass", username="pc", person_id=person_id, audit_seq=seq)
    rows = person_service.involvements_of(ctx.index.current, [person_id])
    filtered = person_service.filter_involvements(officer, rows, broke_glass=False, sensitive=[], consents=set())
    assert {i.agency for i in filtered.shown} <= {"Police", "Housing"} and "Housing" in {i.agency for i in filtered.shown}
    assert filtered.withheld_agencies == sum(1 for r in rows if r["agency"] not in ("Police", "Housing"))


def test_roles_seed_while_another_process_seeds_and_keep_edits(tmp_path):
    """Every worker process seeds the default roles when it starts. When another process adds the roles just before
    this one writes them (the race two workers starting together run), seeding must not fail; and a role edited by
    the IG lead is never put back to its default."""
    import sqlite3

    import sqlalchemy as sa

    from practitioner._store import open_store
    from practitioner.auth.service import DEFAULT_ROLES, get_role, list_roles, seed_roles

    path = tmp_path / "store.sqlite3"
    engine = open_store(f"sqlite:///{path}")
    set_role(engine, "practitioner", agencies=["Health"], description="edited")
    set_role(engine, "practitioner", agencies=["Health", "Housing"], description="edited twice")
    raced = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def other_process_seeds_first(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO ROLE") and not raced:
            raced.append(statement)
            other = sqlite3.connect(path)
            with other:
                for name in DEFAULT_ROLES:
                    other.execute("insert or ignore into role (name, agencies, household, break_glass, ig_officer, "
                                  "referrals) values (?, '[]', 0, 1, 0, 0)", (name,))
            other.close()

    seed_roles(engine)
    assert raced, "seeding wrote no role, so the race was not run"
    assert {r.name for r in list_roles(engine)} == set(DEFAULT_ROLES)
    edited = get_role(engine, "practitioner")
    assert (edited.agencies, edited.description) == (("Health", "Housing"), "edited twice")


def test_audit_is_append_only_and_tamper_evident(ctx):
    for n in range(5):
        ctx.audit.write(Actor("hv", "practitioner", "Health", "Safeguarding enquiry"), "search",
                        fields="name", person_ids=[str(n)])
    check = verify_chain(ctx.engine)
    assert check.ok and check.rows == 5
    with pytest.raises(sa.exc.DatabaseError):
        with ctx.engine.begin() as conn:
            conn.execute(sa.text("update audit_event set person_ids = '[\"99\"]' where seq = 3"))
    with pytest.raises(sa.exc.DatabaseError):
        with ctx.engine.begin() as conn:
            conn.execute(sa.text("delete from audit_event where seq = 5"))
    with ctx.engine.begin() as conn:  # someone with file access removes the trigger and edits a row
        conn.execute(sa.text("drop trigger audit_event_no_update"))
        conn.execute(sa.text("update audit_event set person_ids = '[\"99\"]' where seq = 3"))
    check = verify_chain(ctx.engine)
    assert not check.ok and check.first_bad_seq == 3


def test_passwords_lockout_and_session_expiry(ctx):
    add_user(ctx.engine, "lock", display_name="L", agency="Health", password=PASSWORD)
    with pytest.raises(ValueError):
        add_user(ctx.engine, "weak", display_name="W", agency="Health", password="short")
    stored = ctx.engine.connect().execute(sa.text("select password_hash from app_user where username = 'lock'")).scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    for _ in range(4):
        with pytest.raises(auth.AuthError):
            auth.check_password(ctx.engine, "lock", "wrong password!", lockout_attempts=5, lockout_minutes=15)
    with pytest.raises(auth.AccountLocked):
        auth.check_password(ctx.engine, "lock", "wrong password!", lockout_attempts=5, lockout_minutes=15)
    with pytest.raises(auth.AuthError, match="locked"):
        auth.check_password(ctx.engine, "lock", PASSWORD, lockout_attempts=5, lockout_minutes=15)
    auth.update_user(ctx.engine, "lock", locked_until=None, failed_logins=0)
    user_id = auth.check_password(ctx.engine, "lock", PASSWORD, lockout_attempts=5, lockout_minutes=15)
    token = auth.start_session(ctx.engine, user_id, idle_minutes=30, max_hours=10)
    assert auth.resolve_session(ctx.engine, token, idle_minutes=30).username == "lock"
    assert auth.resolve_session(ctx.engine, token + "x", idle_minutes=30) is None
    with ctx.engine.begin() as conn:  # idle for 31 minutes
        conn.execute(sa.text("update app_session set last_seen = :t"),
                     {"t": dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=31)})
    assert auth.resolve_session(ctx.engine, token, idle_minutes=30) is None
    token = auth.start_session(ctx.engine, user_id, idle_minutes=30, max_hours=10)
    auth.update_user(ctx.engine, "lock", role="multi_agency")  # a changed role ends sessions at once
    assert auth.resolve_session(ctx.engine, token, idle_minutes=30) is None


def test_rate_limiter():
    from practitioner._security import RateLimiter

    limiter = RateLimiter(per_minute=5)
    assert [limiter.allow("a") for _ in range(6)] == [True] * 5 + [False]
    assert limiter.allow("b")


def test_served_connections_send_without_waiting_for_acks():
    """The workers' shared socket gives connections with TCP_NODELAY (uvicorn's own left each keep-alive response
    waiting 40 ms for the client's delayed ACK)."""
    import asyncio

    from practitioner._workers import listening_socket

    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen = []

    async def main() -> None:
        def on_connection(reader, writer) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connection, sock=sock)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    asyncio.run(main())
    assert sock.proto == socket.IPPROTO_TCP and seen == [1]


def test_referrals_link_in_real_time_and_the_nightly_keeps_their_ids(practitioner_city, tmp_path, caplog):
    """A referral for a known person and one for a new person: found at once with the right ids; after the
    agency's next extract carries them and the nightly runs, the ids hold (a provisional id resolves). The nightly's
    publish prepared the service's files (`serve --prepare`): the service switches on them without building."""
    import logging

    from pipelines.stages import run_nightly
    from practitioner._index import index_file, read_pointer

    data = tmp_path / "city"
    shutil.copytree(practitioner_city.data_dir, data, ignore=shutil.ignore_patterns("practitioner"))
    settings = city_settings(data)
    ctx = build_context(settings)
    ctx.index.refresh()
    extract = next((data / "landing" / "health").glob("*.parquet"))
    frame = pl.read_parquet(extract)
    shielded = shielded_record_id(practitioner_city)
    known = frame.filter(pl.col("confidential") == "N", pl.col("nhs_number").is_not_null()).row(7, named=True)
    known_person = _one(ctx, "select person_id from record where source = 'health' and record_id = ?",
                        [known["patient_id"]])[0][0]
    as_referral = {k: (None if v is None else str(v)) for k, v in known.items()}
    as_referral["patient_id"] = "REF-KNOWN-1"
    as_referral["phone"] = None  # a new record is never a copy: some fields are missing
    newcomer = dict(as_referral, patient_id="REF-NEW-1", given_name="Oluwaseun", family_name="Brightwater-Okafor",
                    birth_date="20190314", nhs_number=None, address_1="99 Nowhere Lane", postcode="AV1 9ZZ")

    first = link_referral(ctx.engine, ctx.index.current, contracts_dir=settings.contracts_dir,
                          models_dir=settings.models, source="health", row=as_referral, received_by="hv",
                          threshold=settings.match_threshold)
    second = link_referral(ctx.engine, ctx.index.current, contracts_dir=settings.contracts_dir,
                           models_dir=settings.models, source="health", row=newcomer, received_by="hv",
                           threshold=settings.match_threshold)
    assert first.person_id == known_person and not first.provisional and first.match_probability >= 0.99
    assert second.provisional and second.person_id == f"R{second.referral_id}"
    # searchable at once, with the right ids
    _, found = search(ctx.index.current, SearchQuery(name="Oluwaseun Brightwater-Okafor", date_of_birth="14/03/2019"))
    assert [r.person_id for r in found] == [second.person_id] and found[0].provisional
    rows = person_service.involvements_of(ctx.index.current, [known_person])
    assert "REF-KNOWN-1" in {r["record_id"] for r in rows}  # its involvements show on the person page at once
    # the same record again is not linked twice
    again = link_referral(ctx.engine, ctx.index.current, contracts_dir=settings.contracts_dir,
                          models_dir=settings.models, source="health", row=newcomer, received_by="hv",
                          threshold=settings.match_threshold)
    assert again.already_known and again.person_id == second.person_id

    # the agency's next extract carries both records; the nightly run links them in bulk
    next_extract = extract.with_name(extract.name.replace("20261101", "20261102"))
    assert next_extract != extract
    new_rows = pl.DataFrame([as_referral, newcomer], schema={c: pl.String for c in frame.columns})
    pl.concat([frame.cast(pl.String), new_rows]).cast(frame.schema, strict=False).write_parquet(next_extract)
    extract.unlink()
    summary = run_nightly(settings)
    assert summary.ok, summary.failure
    prepared = index_file(settings.practitioner_index_dir, read_pointer(settings.snapshots))
    keys = list(prepared.parent.glob(f"{prepared.stem}.keys-*.duckdb"))
    assert prepared.exists() and len(keys) == 1  # built by the publish, before the service looks
    built_at = [prepared.stat().st_mtime_ns, keys[0].stat().st_mtime_ns]
    with caplog.at_level(logging.INFO, logger="familylink.practitioner"):
        assert ctx.index.refresh()  # the service switches to the new snapshot and reconciles
    assert not [r for r in caplog.records if " built in " in r.getMessage()]
    assert [prepared.stat().st_mtime_ns, keys[0].stat().st_mtime_ns] == built_at
    with ctx.engine.connect() as conn:
        outcomes = dict(conn.execute(sa.text("select record_id, outcome from referral")).all())
        nightly_new = conn.execute(sa.text("select nightly_person_id from referral where record_id = 'REF-NEW-1'")).scalar()
    assert outcomes == {"REF-KNOWN-1": "kept", "REF-NEW-1": "confirmed"}
    with ctx.engine.connect() as conn:  # once reconciled, the store keeps ids only
        assert [json.loads(r) if isinstance(r, str) else r
                for (r,) in conn.execute(sa.text("select record from referral")).all()] == [{}, {}]
    assert _one(ctx, "select person_id from record where record_id = 'REF-KNOWN-1'")[0][0] == known_person
    assert resolve_person_id(ctx.engine, second.person_id) == nightly_new
    _, found = search(ctx.index.current, SearchQuery(name="Oluwaseun Brightwater-Okafor", date_of_birth="14/03/2019"))
    assert [r.person_id for r in found] == [nightly_new] and not found[0].provisional
    assert shielded  # the shielded record stayed in the extract untouched


def test_search_scores_names_as_duckdb_does(ctx):
    """A search scores its candidates' names in Python (jellyfish): the Jaro-Winkler similarity DuckDB gives, to
    the last digits, on the test city's names against each other, against typos of them and on the edge cases."""
    import random

    from jellyfish import jaro_winkler_similarity

    names = [r[0] for r in _one(ctx, "select distinct first_std from name_key where first_std is not null "
                                     "union select distinct last_std from name_key where last_std is not null")]
    rnd = random.Random(3)
    typos = [n[:i] + n[i + 1] + n[i] + n[i + 2:] for n in names if len(n) > 2 for i in [rnd.randrange(len(n) - 1)]]
    typos += [n[:-1] for n in names] + ["", "a", "é", "mohammed", "muhammad", "o'neil"]
    pairs = [(rnd.choice(names), rnd.choice(names + typos)) for _ in range(20000)] + list(zip(names, typos))
    scored = _one(ctx, "select a, b, jaro_winkler_similarity(a, b) from (select unnest(?::varchar[]) as a, "
                       "unnest(?::varchar[]) as b)", [[a for a, _ in pairs], [b for _, b in pairs]])
    assert len(scored) == len(pairs) > 20000
    assert max(abs(jaro_winkler_similarity(a, b) - s) for a, b, s in scored) < 1e-12


def test_query_keys_in_python_equal_the_index_keys(ctx):
    """A search keys its names in Python (no database round trip): the same key the index was built with, for every
    name in the test city and the hard cases (doubled letters, transliterations, one letter, no consonants)."""
    from practitioner._index import phonetic, phonetic_sql

    names = [r[0] for r in _one(ctx, "select distinct first_std from name_key where first_std is not null "
                                     "union select distinct last_std from name_key where last_std is not null")]
    names += ["mohammed", "muhammad", "mohamed", "smtih", "lloyd", "a", "aeiou", "o'neil", "szczepanski", ""]
    keyed = _one(ctx, f"select n, {phonetic_sql('n')} from unnest(?::varchar[]) as t(n)", [names])
    assert len(keyed) == len(names) > 100
    assert all(phonetic(n) == key for n, key in keyed), [(n, key, phonetic(n)) for n, key in keyed if phonetic(n) != key][:5]
    assert phonetic("mohammed") == phonetic("muhammad") == phonetic("mohamed")


def test_blocking_keys_find_exactly_the_pairs_of_each_rule():
    """A referral's key look-ups find the records Splink's blocking rule pairs it with, no more (every extra
    candidate costs the linker's CPU) and no fewer — for a rule of equalities and for the undated name rule
    (`not both dated`), whose stored and looked-up keys differ."""
    import duckdb

    from practitioner.referrals._scoring import equality_columns, key_sql

    rule = ('l.first_name_formal = r.first_name_formal and l.last_name_std = r.last_name_std and '
            '(l.date_of_birth is null or r.date_of_birth is null)')
    rules = [equality_columns('(l."postcode" = r."postcode")'), equality_columns(rule)]
    assert rules == [["postcode"], ["first_name_formal", "last_name_std", "?date_of_birth"]]
    con = duckdb.connect()
    con.execute("create table r as select * from (values ('a', 'ann', 'lee', date '2001-02-03', 'X1'), "
                "('b', 'ann', 'lee', null, 'X2'), ('c', 'ann', 'lee', date '1970-05-06', 'X3'), "
                "('d', 'ann', 'lee', null, 'X1'), ('e', 'bob', 'lee', null, 'X4'), ('f', 'ann', 'lee', null, null)) "
                "as t(unique_id, first_name_formal, last_name_std, date_of_birth, postcode)")
    con.execute(f"create table stored as {key_sql(rules, 'r')}")
    for (probe,) in con.execute("select unique_id from r").fetchall():
        found = {u for (u,) in con.execute(
            f"select distinct s.unique_id from ({key_sql(rules, '(select * from r where unique_id = $1)', probe=True)}) "
            "as p join stored as s using (key) where s.unique_id <> $1", [probe]).fetchall()}
        expected = {u for (u,) in con.execute(
            f"select r.unique_id from r as l, r where l.unique_id = $1 and r.unique_id <> $1 and "
            f"(l.postcode = r.postcode or ({rule}))", [probe]).fetchall()}
        assert found == expected, probe


def test_compiled_link_scores_equal_splink_predict_between(ctx):
    """The linker's compiled statement (pairs by key look-up + Splink's own scoring SQL) gives, record for record,
    the pairs and match weights Splink's predict_between gives against the whole index."""
    index = ctx.index.current
    linker = index.linker
    assert linker is not None and linker._statement is not None  # compiled, not the slow fallback
    con = index.con
    with index.overlay_lock:
        # a sample, and records without a date of birth with a dated namesake: the model's undated name rule
        # (`not both dated`) is split into stored and looked-up keys, which must find exactly Splink's pairs
        con.execute("create or replace table _as_new as select * replace ('new-' || unique_id as unique_id) "
                    "from snap.model_input using sample reservoir(15 rows) repeatable (5)")
        con.execute("insert into _as_new select * replace ('new-' || unique_id as unique_id) from snap.model_input "
                    "where unique_id in (select u.unique_id from snap.model_input as u join snap.model_input as d "
                    "using (first_name_formal, last_name_std) where u.date_of_birth is null and "
                    "d.date_of_birth is not null order by 1 limit 5)")
        assert any("?date_of_birth" in rule for rule in linker.rules)
        try:
            expected: dict[str, dict[str, float]] = {}
            result = linker.linker.inference.predict_between(
                linker.db_api.register("model_input"), linker.db_api.register("_as_new"),
                threshold_match_probability=0.01, warning_mode="never")
            for left, right, weight in con.execute(f"select unique_id_l, unique_id_r, match_weight "
                                                   f"from {result.physical_name}").fetchall():
                expected.setdefault(right, {})[left] = weight
            con.execute(f"drop table {result.physical_name}")
            compared = 0
            for (new_id,) in con.execute("select unique_id from _as_new order by 1").fetchall():
                con.execute("delete from referral_new")
                con.execute("insert into referral_new by name select * from _as_new where unique_id = ?", [new_id])
                got = {left: weight for left, _, weight, _ in linker.pairs(con)}
                assert got.keys() == expected.get(new_id, {}).keys(), new_id
                assert all(abs(got[k] - expected[new_id][k]) < 1e-9 for k in got), new_id
                compared += len(got)
        finally:
            con.execute("delete from referral_new")
            con.execute("drop table if exists _as_new")
    assert compared >= 20  # every record at least finds itself under its new id
