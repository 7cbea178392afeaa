"""The practitioner service's store on a real PostgreSQL server, started by the test on loopback
(Debian's postgresql package, installed by `make system-deps`): the same code and migrations as SQLite."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from practitioner import add_user, build_context
from practitioner.audit.service import Actor, AuditWriter, verify_chain
from practitioner.auth import service as auth
from practitioner.referrals.service import link_referral
from tests._ports import free_port
from tests.test_practitioner_city import city_settings

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgres_url():
    binaries = _bin()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries missing (make system-deps installs them)")
    root = Path(tempfile.mkdtemp(prefix="familylink-pg-"))
    data = root / "data"
    port = free_port()
    # initdb refuses to run as root: run the server as an unprivileged user that owns the folder
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
        root.chmod(0o700)
        as_user = ["runuser", "-u", "nobody", "--"]
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True, cwd="/")  # noqa: E731
    run(str(binaries / "initdb"), "-D", str(data), "-U", "familylink", "--auth=trust", "-E", "UTF8")
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "30",
        "-o", f"-k {root} -p {port} -h 127.0.0.1", "start")
    try:
        yield f"postgresql+psycopg://familylink@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, cwd="/")
        shutil.rmtree(root, ignore_errors=True)


def test_service_store_on_postgresql(postgres_url, practitioner_city):
    settings = city_settings(practitioner_city.data_dir, practitioner_database_url=postgres_url)
    ctx = build_context(settings)  # runs the Alembic migrations on PostgreSQL
    assert ctx.engine.dialect.name == "postgresql"
    tables = set(sa.inspect(ctx.engine).get_table_names())
    assert {"app_user", "role", "app_session", "audit_event", "alert", "consent", "referral"} <= tables

    add_user(ctx.engine, "pg-user", display_name="P", agency="Health", password="a long enough password")
    user_id = auth.check_password(ctx.engine, "pg-user", "a long enough password", lockout_attempts=5, lockout_minutes=15)
    token = auth.start_session(ctx.engine, user_id, idle_minutes=30, max_hours=10)
    assert auth.resolve_session(ctx.engine, token, idle_minutes=30).role.name == "practitioner"

    # two writers (as two service processes would be) append concurrently: one unbroken chain
    writers = [AuditWriter(ctx.engine), AuditWriter(ctx.engine)]

    failures: list[BaseException] = []

    def burst(writer: AuditWriter, n: int) -> None:
        try:
            for i in range(n):
                writer.write(Actor("pg-user", "practitioner", "Health", "Safeguarding enquiry"), "search",
                             fields="name", person_ids=[str(i)])
        except BaseException as error:  # a lost audit row must fail the test, not die with its thread
            failures.append(error)

    threads = [threading.Thread(target=burst, args=(w, 25)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    check = verify_chain(ctx.engine)
    assert check.ok and check.rows == 50
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with ctx.engine.begin() as conn:
            conn.execute(sa.text("delete from audit_event where seq = 1"))

    # a referral linked with the store on PostgreSQL
    ctx.index.refresh()
    extract = next((practitioner_city.data_dir / "landing" / "health").glob("*.parquet"))
    row = pl.read_parquet(extract).filter(pl.col("confidential") == "N").cast(pl.String).row(3, named=True)
    with ctx.index.current.cursor() as cur:
        expected = cur.execute("select person_id from record where source = 'health' and record_id = ?",
                               [row["patient_id"]]).fetchall()[0][0]
    row["patient_id"] = "PG-REF-1"
    outcome = link_referral(ctx.engine, ctx.index.current, contracts_dir=settings.contracts_dir,
                            models_dir=settings.models, source="health", row=row, received_by="pg-user",
                            threshold=settings.match_threshold)
    assert outcome.person_id == expected
    with ctx.engine.connect() as conn:
        assert conn.execute(sa.text("select person_id from referral where record_id = 'PG-REF-1'")).scalar() == expected
