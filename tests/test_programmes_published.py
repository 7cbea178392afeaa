"""The programme tables in the analysts' published database (issue 16 item 7): every cohort, change, need and cost
table the registry (warehouse/published.yaml, `built_by: programmes`) marks for analysts is added to the same
snapshot's analysts.duckdb and Parquet after evaluation, described column by column, all or nothing; the
evidence (record ids) stays in the working warehouse."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

import warehouse
from linkage_models import assign_person_ids
from programmes import add_to_published_snapshot, evaluate_snapshot
from programmes._triage import record_triage
from tests._small_city import CLUSTERS, load_small_city
from warehouse import DictionaryError, dictionary
from warehouse._golden import make_current, publish_snapshot
from warehouse._graph import build_graph

AS_OF = dt.date(2026, 11, 1)
KEY = b"test-key-not-a-secret"
TF15 = "troubled_families_2015"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder) -> dict[str, str]:
    """Every file of a snapshot folder (hidden ones included) and its checksum."""
    return {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def published(tmp_path):
    """The small city published as the nightly does it (built and exported, not yet switched), with events that
    put the Smith family in the Troubled Families 2015-20 cohort (a child's absence and domestic abuse)."""
    con = warehouse.connect(":memory:")
    load_small_city(con)
    con.execute("insert into staging.event (source, record_id, event_type, event_date, value, detail) values "
                "('education', 'e1', 'attendance', date '2026-10-01', 80, null), "
                "('police', 'p1', 'domestic_abuse', date '2026-09-01', null, null)")
    assign_person_ids(con, CLUSTERS, run_id="r1")
    build_graph(con, run_id="r1", model_version="m1", as_of=AS_OF)
    result = publish_snapshot(con, run_id="r1", model_version="m1", as_of=AS_OF, snapshots_dir=tmp_path,
                              pseudonymisation_key=KEY, retention_days=30, switch=False)
    yield con, result
    con.close()


def test_cohort_tables_are_in_the_same_snapshots_analysts_database_described(published):
    con, result = published
    os.chmod(result.parquet_dir / "manifest.json", 0o640)  # as a deployment sharing snapshots with a group would
    analysts_mode = (result.parquet_dir / "analysts.duckdb").stat().st_mode
    summary = evaluate_snapshot(con, result.snapshot_id, as_of=AS_OF, pseudonymisation_key=KEY,
                                parquet_dir=result.parquet_dir)
    make_current(con, result.snapshot_id)  # the nightly switches after evaluation, in the run's transaction
    assert summary.programmes[TF15]["qualifying"] == 1
    registry = dictionary()
    for_analysts = {t.name for t in registry.after_publish.values() if t.analysts}
    assert for_analysts == {"golden.cohort", "golden.cohort_change", "golden.household_need", "golden.need_by_ward",
                            "golden.household_cost", "pseudonymised.cohort", "pseudonymised.household_need"}
    assert set(summary.parquet_files) == for_analysts | {"analysts_database"}

    path = result.parquet_dir / "analysts.duckdb"
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # still read-only
    # files added to the snapshot get the permissions publish gave its own files
    assert path.stat().st_mode == analysts_mode
    assert (result.parquet_dir / "golden" / "cohort.parquet").stat().st_mode & 0o777 == 0o640
    analysts = duckdb.connect(str(path), read_only=True)
    try:
        tables = {f"{s}.{t}": c for s, t, c in analysts.sql(
            "select schema_name, table_name, comment from duckdb_tables() where not internal").fetchall()}
        assert set(tables) == {t.name for t in registry.tables.values() if t.analysts} | for_analysts | {"main.snapshot"}
        assert "golden.cohort_evidence" not in tables  # record ids: the triage panel's, in the working warehouse
        assert all(tables.values())
        assert analysts.sql("select schema_name, table_name, column_name from duckdb_columns() where not internal "
                            "and (comment is null or comment = '')").fetchall() == []
        # the same rows as the warehouse's views of the snapshot, and the cohort joins the published households
        for name in for_analysts:
            assert sorted(map(str, analysts.sql(f"select * from {name}").fetchall())) == \
                sorted(map(str, con.sql(f"select * from {name}").fetchall())), name
        assert analysts.sql("select programme, criteria_met from golden.cohort join golden.household "
                            "using (household_id) where in_cohort").fetchall() == \
            [(TF15, ["domestic_abuse", "school_attendance"])]
        assert analysts.sql("select count(*) from pseudonymised.cohort join pseudonymised.household "
                            "using (household_key)").fetchall() == [(1,)]
        # every worked query of docs/programmes.md runs on the analysts' database (bar the working warehouse's
        # cohort-size history)
        text = (Path(__file__).parents[1] / "docs" / "programmes.md").read_text(encoding="utf-8")
        queries = [q.strip() for block in re.findall(r"```sql\n(.*?)```", text, re.S) for q in block.split(";")
                   if q.strip() and "programmes.evaluation" not in q]
        assert len(queries) >= 9
        for query in queries:
            analysts.sql(query).fetchall()
        no_ids = {r[0] for r in analysts.sql("select column_name from duckdb_columns() where schema_name = "
                                             "'pseudonymised' and table_name in ('cohort', 'household_need')").fetchall()}
        assert not no_ids & {"household_id", "person_id", "record_id", "triage_reason", "note"}
    finally:
        analysts.close()
    # Parquet named after the views, with descriptions; the manifest's checksums are the files'
    manifest = json.loads((result.parquet_dir / "manifest.json").read_text())
    for name in [*for_analysts, "golden.person", "analysts_database"]:
        entry = manifest["files"][name]
        assert _sha(result.parquet_dir / entry["file"]) == entry["sha256"], name
    schema = pq.read_schema(result.parquet_dir / "golden" / "cohort.parquet")
    assert schema.metadata[b"familylink.table"] == b"golden.cohort"
    assert all(f.metadata and f.metadata[b"description"] for f in schema)
    assert not (result.parquet_dir / "golden" / "cohort_evidence.parquet").exists()
    assert manifest["row_counts"]["cohort"] == 1
    assert not list(result.parquet_dir.rglob(".*.tmp"))


def test_a_re_evaluation_replaces_the_tables_whole_and_a_failure_changes_nothing(published):
    con, result = published
    folder = result.parquet_dir
    evaluate_snapshot(con, result.snapshot_id, as_of=AS_OF, pseudonymisation_key=KEY, parquet_dir=folder)
    make_current(con, result.snapshot_id)
    household = con.sql("select household_id from golden.cohort").fetchall()[0][0]
    # an analyst holding the published database open
    reader = duckdb.connect(str(folder / "analysts.duckdb"), read_only=True)
    before = _files(folder)
    record_triage(con, TF15, household, "removed", actor="panel", reason="moved_away")
    evaluate_snapshot(con, result.snapshot_id, as_of=AS_OF, pseudonymisation_key=KEY)  # warehouse rows only

    # a failure just before the files are swapped in: every file as it was, nothing left beside them
    with pytest.raises(DictionaryError, match="stopped before replacing"):
        add_to_published_snapshot(con, result.snapshot_id, folder, fail_before_replace=True)
    assert _files(folder) == before
    # a column the dictionary does not describe stops it before anything is written
    registry = dictionary()
    cohort = registry.after_publish["golden.cohort"]
    shorter = dataclasses.replace(cohort, columns={k: v for k, v in cohort.columns.items() if k != "in_cohort"})
    undescribed = dataclasses.replace(registry, after_publish={**registry.after_publish, "golden.cohort": shorter})
    with pytest.raises(DictionaryError, match=r"golden.cohort.in_cohort: no description"):
        warehouse.add_to_snapshot(con, result.snapshot_id, folder,
                                  {"golden.cohort": "select * from programmes.cohort"}, undescribed)
    assert _files(folder) == before

    add_to_published_snapshot(con, result.snapshot_id, folder)
    after = _files(folder)
    assert after["analysts.duckdb"] != before["analysts.duckdb"] and after["golden/cohort.parquet"] != \
        before["golden/cohort.parquet"]
    assert after["golden/person.parquet"] == before["golden/person.parquet"]  # publish's own files untouched
    # the open reader still reads the file it opened: the whole earlier database
    assert reader.sql("select in_cohort from golden.cohort").fetchall() == [(True,)]
    reader.close()  # (DuckDB shares one instance per path within a process: reconnect after closing)
    fresh = duckdb.connect(str(folder / "analysts.duckdb"), read_only=True)
    try:
        assert fresh.sql("select in_cohort, triage_decision, triage_reason from golden.cohort").fetchall() == \
            [(False, "removed", "moved_away")]
        assert fresh.sql("select count(*) from golden.cohort").fetchall() == [(1,)]  # replaced, not appended
        assert fresh.sql("select count(*) from golden.person").fetchall() == [(5,)]
    finally:
        fresh.close()
