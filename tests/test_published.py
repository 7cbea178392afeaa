"""The analysts' published database and the data dictionary (issue 14): one registry (warehouse/published.yaml)
drives the snapshot's tables, the analysts' DuckDB file with its comments, the Parquet field metadata and
docs/data-dictionary.md; an analyst holding the published database open never blocks a nightly run."""

import dataclasses
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests._small_city import linked_small_city, publish_small_city
from warehouse import DATA_DICTIONARY_PATH, data_dictionary_markdown, dictionary
from warehouse._golden import PublishError, current_snapshot


@pytest.fixture
def con():
    return linked_small_city()


_publish = publish_small_city


def test_the_data_dictionary_document_is_generated_from_the_registry():
    assert DATA_DICTIONARY_PATH.read_text(encoding="utf-8") == data_dictionary_markdown(), \
        "docs/data-dictionary.md is out of step with warehouse/published.yaml: run `familylink dictionary`"


def test_a_published_column_without_a_description_stops_the_publish(con, tmp_path, monkeypatch):
    first = _publish(con, tmp_path)
    assert dictionary().missing_descriptions(con, first.snapshot_id) == []
    # the same registry with one column's description taken away
    registry = dictionary()
    person = registry.tables["pseudonymised.person"]
    shorter = dataclasses.replace(person, columns={k: v for k, v in person.columns.items() if k != "age_band"})
    undescribed = dataclasses.replace(registry, tables={**registry.tables, "pseudonymised.person": shorter})
    monkeypatch.setattr("warehouse._golden.dictionary", lambda: undescribed)
    con.execute("update staging.person_record set last_name = 'Changed' where record_id = 'h1'")
    with pytest.raises(PublishError, match=r"pseudonymised.person.age_band: no description"):
        _publish(con, tmp_path)
    assert current_snapshot(con) == first.snapshot_id


def test_the_analysts_database_holds_only_described_published_tables(con, tmp_path):
    result = _publish(con, tmp_path)
    current = tmp_path / "current"
    assert current.is_symlink() and current.resolve() == result.parquet_dir.resolve()
    path = current / "analysts.duckdb"
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # read-only file
    analysts = duckdb.connect(str(path), read_only=True)
    try:
        tables = {f"{s}.{t}": comment for s, t, comment in analysts.sql(
            "select schema_name, table_name, comment from duckdb_tables() where not internal").fetchall()}
        expected = {t.name for t in dictionary().tables.values() if t.analysts}
        assert set(tables) == expected | {"main.snapshot"}
        assert "golden.person_record" not in tables  # identifiers for matching: the practitioner service only
        assert not {t.split(".")[0] for t in tables} & {"raw", "staging", "graph", "linkage", "audit", "quarantine"}
        assert all(tables.values())
        undescribed = analysts.sql("select schema_name, table_name, column_name from duckdb_columns() "
                                   "where not internal and (comment is null or comment = '')").fetchall()
        assert undescribed == []
        assert analysts.sql("select comment from duckdb_columns() where schema_name = 'pseudonymised' and "
                            "table_name = 'person' and column_name = 'age_band'").fetchall()[0][0].startswith("Age band")
        # relationships are published, with keys on the pseudonymised side
        assert analysts.sql("select relationship from golden.relationship").fetchall() == [("parent_of",)]
        assert analysts.sql("select count(*) from pseudonymised.relationship").fetchall() == [(1,)]
        # the pseudonymised involvement has the golden one's rows, and open/closed as stated
        assert analysts.sql("select count(*) from pseudonymised.involvement").fetchall() == \
            analysts.sql("select count(*) from golden.involvement").fetchall()
        assert sorted(analysts.sql("select is_open from pseudonymised.involvement").fetchall()) == [(False,), (True,)]
        about = dict(analysts.sql("select key, value from main.snapshot").fetchall())
        assert about["snapshot_id"] == result.snapshot_id and about["as_of"] == "2026-11-01"
    finally:
        analysts.close()
    # Parquet files are named after their views and carry each field's description
    for table in dictionary().tables.values():
        schema = pq.read_schema(current / table.schema / f"{table.view}.parquet")
        assert schema.metadata[b"familylink.table"].decode() == table.name
        assert all(field.metadata and field.metadata[b"description"] for field in schema), table.name


def test_nothing_changed_publishes_no_new_snapshot(con, tmp_path):
    first = _publish(con, tmp_path)
    again = _publish(con, tmp_path)
    assert again.unchanged_from == first.snapshot_id and again.snapshot_id == first.snapshot_id
    statuses = con.sql("select snapshot_id, status from audit.snapshot order by 1").fetchall()
    assert statuses == [(first.snapshot_id, "published"), ("snapshot_000002", "unchanged")]
    assert sorted(p.name for p in tmp_path.glob("snapshot_*")) == [first.snapshot_id]
    con.execute("update staging.person_record set last_name = 'Taylor', extract_date = date '2026-11-02' "
                "where record_id = 'h1'")
    changed = _publish(con, tmp_path)
    assert changed.unchanged_from is None and current_snapshot(con) == changed.snapshot_id == "snapshot_000003"


_ANALYST = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    print(con.sql("select count(*) from pseudonymised.person").fetchall()[0][0], flush=True)
    time.sleep(600)
""")


# an existing group that is not root's plays the analysts' role (a non-root user can only give files its own group)
ANALYSTS = "users" if os.geteuid() == 0 else __import__("grp").getgrgid(os.getegid()).gr_name


def _as_analyst(*command: str) -> subprocess.CompletedProcess:
    """Run a system command as an unprivileged member of the analysts' group only (the kernel checks the modes)."""
    done = subprocess.run(["setpriv", "--reuid=nobody", f"--regid={ANALYSTS}", "--clear-groups", *command],
                          capture_output=True)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout,
                                       done.stderr.decode("utf-8", errors="replace"))


def _mode(path) -> int:
    return os.stat(path).st_mode & 0o7777


@pytest.mark.slow
def test_an_analyst_holding_the_published_database_does_not_block_a_nightly_run(published_city):
    """Also: the run leaves the working warehouse owner-only and the new snapshot readable, read-only, by the
    analysts' group, and by nothing else (issue 14: the working warehouse is not readable by the analysts' role)."""
    import grp
    import tempfile

    from pipelines.settings import Settings
    from pipelines.stages import run_nightly

    original, first = published_city
    # outside pytest's owner-only temporary root, so another user can reach the data folder at all
    base = Path(tempfile.mkdtemp(prefix="familylink-analysts-"))
    base.chmod(0o711)
    previous_umask = os.umask(0o022)
    try:
        _analyst_beside_a_nightly(original, first, base, run_nightly, Settings, grp.getgrnam(ANALYSTS).gr_gid)
    finally:
        os.umask(previous_umask)
        shutil.rmtree(base, ignore_errors=True)


def _analyst_beside_a_nightly(original, first, base, run_nightly, Settings, analysts_gid):
    shutil.copytree(original.data_dir, base / "data", symlinks=True)
    settings = Settings(data_dir=base / "data", pseudonymisation_key="test-key", analysts_group=ANALYSTS)
    settings.protect_data()  # what every command and flow does at start
    # analysts open the published database through the `current` link, in their own process
    analyst = subprocess.Popen([sys.executable, "-c", _ANALYST, str(settings.snapshots / "current" / "analysts.duckdb")],
                               stdout=subprocess.PIPE, text=True)
    try:
        persons_seen = int(analyst.stdout.readline())
        assert persons_seen == first.publish.row_counts["pseudo_person"]
        # a newer housing extract (one tenancy fewer), so the run has a new snapshot to publish
        current = sorted((settings.landing / "housing").glob("*.txt"))[-1]
        lines = current.read_text(encoding="utf-8").splitlines(keepends=True)
        current.with_name("tenancy_members_20261215.txt").write_text("".join(lines[:-1]), encoding="utf-8")
        started = time.monotonic()
        summary = run_nightly(settings)
        assert summary.ok, summary.failure
        assert summary.publish.unchanged_from is None and summary.publish.snapshot_id != first.publish.snapshot_id
        assert analyst.poll() is None  # still connected, still reading its snapshot
        assert (settings.snapshots / "current").resolve().name == summary.publish.snapshot_id
        print(f"nightly beside an open analyst connection: {time.monotonic() - started:.1f} s")
    finally:
        analyst.kill()
        analyst.wait()
    # what the run created: the working warehouse owner-only, the new snapshot the analysts' group's, read-only
    data, snapshot = settings.data_dir, settings.snapshots / summary.publish.snapshot_id
    assert _mode(settings.warehouse) & 0o077 == 0 and _mode(settings.warehouse.parent) == 0o700
    assert _mode(data) == 0o701  # others may pass through to the snapshots folder, never list or read
    for folder in (settings.snapshots, snapshot, snapshot / "pseudonymised"):
        assert _mode(folder) == 0o2750 and os.stat(folder).st_gid == analysts_gid, folder
    assert _mode(snapshot / "analysts.duckdb") == 0o440 and os.stat(snapshot / "analysts.duckdb").st_gid == analysts_gid
    assert _mode(snapshot / "pseudonymised" / "person.parquet") == 0o640
    others = [str(p.relative_to(data)) for p in data.rglob("*") if not p.is_symlink()
              and settings.snapshots not in (p, *p.parents) and _mode(p) & 0o077]
    assert others == [], "outside the snapshots folder nothing is readable by the group or others"
    if os.geteuid() == 0:  # the kernel's answer for a member of the analysts' group only
        assert _as_analyst("head", "-c", "16", str(settings.snapshots / "current" / "analysts.duckdb")).returncode == 0
        assert _as_analyst("head", "-c", "16", str(snapshot / "pseudonymised" / "person.parquet")).returncode == 0
        denied = _as_analyst("head", "-c", "16", str(settings.warehouse))
        assert denied.returncode != 0 and "Permission denied" in denied.stderr
        assert _as_analyst("ls", str(data)).returncode != 0  # cannot even list the data folder
        assert _as_analyst("touch", str(snapshot / "x")).returncode != 0  # read-only


def test_a_data_folder_copied_without_its_links_still_switches_current(con, tmp_path):
    first = _publish(con, tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # follows links: `current` becomes a real folder
    assert (tmp_path / "b" / "current").is_dir() and not (tmp_path / "b" / "current").is_symlink()
    con.execute("update staging.person_record set last_name = 'Taylor', extract_date = date '2026-11-02' "
                "where record_id = 'h1'")
    second = _publish(con, tmp_path / "b")
    assert (tmp_path / "b" / "current").is_symlink()
    assert (tmp_path / "b" / "current").resolve().name == second.snapshot_id != first.snapshot_id
