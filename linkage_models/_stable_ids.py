"""Stable person and household ids across nightly runs.

A run produces new groups (Splink clusters of source records, or households of persons). Each group
inherits the previous id that most of its members held, so ids survive re-runs, new records and
small changes. Everything about ids lives here: the rule, the id sequence, the lineage records, and
the two assignments the link stage makes (persons after clustering, households while the graph is
built). The rule, applied the same way to persons and households (docs/adr/0004-stable-ids.md):

1. Count, for every (new group, previous id) pair, how many members they share.
2. Match groups and previous ids one to one, best first: a pair is taken when it is the best for both
   sides (most shared members; ties go to the older, i.e. smaller, id and then to the group whose
   smallest member key sorts first). Repeat on what is left until nothing can be matched.
3. A group left without an id gets a new one from the sequence, in order of its smallest member key,
   so the same inputs always give the same ids.
4. Lineage: a previous id whose members now sit in a group that kept another id was *merged* into it;
   a group that got a new id while holding members of a surviving id was *split* from it; a previous
   id whose members are all gone is *retired*.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from linkage_models._engine import DuckDBEngine
from warehouse import table_exists

# The rule as SQL (DuckDB's dialect), one file per table it builds, read as `stable_<file name>`: the same files run
# on the warehouse's DuckDB and, translated by the engine, on Spark (docs/adr/0009-spark-engine.md)
log = logging.getLogger("familylink.link")
_SQL = Path(__file__).parent / "sql" / "stable_ids"
_TABLES = ("current_groups", "previous_ids", "next_id", "group_key", "overlap", "alone", "remaining", "mutual",
           "kept", "group_ids", "lineage")


def _sql(name: str) -> str:
    return (_SQL / f"{name}.sql").read_text(encoding="utf-8")


@dataclass(frozen=True)
class IdAssignment:
    group_ids: pl.DataFrame  # group, id, is_new
    lineage: pl.DataFrame  # event (new|merge|split|retired), id, related_id, members
    rounds: int = 0  # rounds of mutual best matching after the groups matched at once


def stable_ids(con: duckdb.DuckDBPyConnection, engine, current: str, previous: str, next_id: int) -> int:
    """The rule on `engine` (linkage_models/_engine.py), for the groups of the warehouse query `current` (member,
    group) against the ids of `previous` (member, id). Leaves the warehouse temp tables stable_group_ids (group,
    id, is_new) and stable_lineage (event, id, related_id, members); returns the number of matching rounds.

    The rounds (step 2 above) are driven from here, one query set per round, until no mutual best pair is left:
    on Spark each is a small job, so the groups matched at once ("alone", most of them) skip the rounds."""
    started = time.perf_counter()
    engine.upload(con, "stable_current_groups",
                  f'select cast(member as varchar) as member, "group" from ({current})')
    engine.upload(con, "stable_previous_ids",
                  f"select cast(member as varchar) as member, cast(id as bigint) as id from ({previous})")
    engine.materialize(con, "stable_next_id", f"select cast({int(next_id)} as bigint) as next_id", checkpoint=False)
    # checkpoint: what several queries or the next round read (the rest may stay a query on Spark)
    for name, checkpoint in (("group_key", False), ("overlap", True), ("alone", False), ("remaining", True)):
        engine.materialize(con, f"stable_{name}", _sql(name), checkpoint=checkpoint)
    engine.materialize(con, "stable_kept", 'select "group", id from stable_alone', checkpoint=False)
    rounds = 0
    while True:
        engine.materialize(con, "stable_mutual", _sql("mutual"))
        if engine.count(con, "stable_mutual") == 0:  # nothing left, or (not with strict tie-breaks) no mutual pair
            break
        rounds += 1
        engine.materialize(con, "stable_kept", _sql("kept_after_round"), checkpoint=False)
        engine.materialize(con, "stable_remaining", _sql("remaining_after_round"))
    engine.materialize(con, "stable_group_ids", _sql("group_ids"))
    engine.materialize(con, "stable_lineage", _sql("lineage"), checkpoint=False)
    engine.download(con, "stable_group_ids")
    engine.download(con, "stable_lineage")
    engine.drop(con, [f"stable_{t}" for t in _TABLES if t not in ("group_ids", "lineage")])
    log.info("stable ids on %s: %d matching rounds, %.1f s", engine.name, rounds, time.perf_counter() - started)
    return rounds


def _lineage_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("select event, id, related_id, members from stable_lineage "
                   "order by event, id, related_id nulls last").pl()


def _done(con: duckdb.DuckDBPyConnection, engine) -> None:
    engine.drop(con, ["stable_group_ids", "stable_lineage"])


def assign_stable_ids(current: pl.DataFrame, previous: pl.DataFrame, next_id: int, engine=None) -> IdAssignment:
    """current: member (str), group (any); previous: member (str), id (int). Returns each group's id, by the rule
    above on `engine` (DuckDB in memory by default)."""
    engine = engine or DuckDBEngine()
    con = duckdb.connect()
    try:
        con.register("_current", current.select(pl.col("member").cast(pl.String), pl.col("group")))
        con.register("_previous", previous.select(pl.col("member").cast(pl.String), pl.col("id").cast(pl.Int64)))
        rounds = stable_ids(con, engine, 'select member, "group" from _current', "select member, id from _previous",
                            next_id)
        group_ids = con.sql('select "group", id, is_new from stable_group_ids order by id').pl()
        lineage = _lineage_frame(con)
        _done(con, engine)
    finally:
        con.close()
    return IdAssignment(group_ids=group_ids, lineage=lineage, rounds=rounds)


# ---------------------------------------------------------------- the warehouse side: sequences, lineage
# A run's assignment and lineage are working state until the run completes (docs/adr/0004-stable-ids.md):
# assignments continue from the last *committed* one, lineage waits in linkage.id_lineage_pending, and
# `commit_assignment` — called in the transaction that records the run as completed — makes both official.
# A killed or failed run's assignment is simply not committed: the next run compares against the same
# committed ids and so reports the real changes, and audit.id_lineage never holds an incomplete run.
_LINEAGE_COLUMNS = """
    run_id varchar, kind varchar, event varchar, id bigint, related_id bigint, members bigint,
    recorded_at timestamp default current_timestamp
"""
_WORKING = {"person": "linkage.person_cluster", "household": "linkage.household_assignment_previous"}
_COMMITTED = {"person": "linkage.person_cluster_committed", "household": "linkage.household_assignment_committed"}


def _ensure_lineage_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create table if not exists audit.id_lineage ({_LINEAGE_COLUMNS})")
    con.execute(f"create table if not exists linkage.id_lineage_pending ({_LINEAGE_COLUMNS})")
    con.execute("create table if not exists linkage.id_assignment_run (kind varchar primary key, run_id varchar)")


def record_lineage(con: duckdb.DuckDBPyConnection, run_id: str, kind: str, lineage: pl.DataFrame) -> None:
    """File a run's merges, splits, new and retired ids as pending (see commit_assignment); the working
    assignment of `kind` is now this run's."""
    _ensure_lineage_tables(con)
    con.execute("delete from linkage.id_lineage_pending where run_id = ? and kind = ?", [run_id, kind])
    con.execute("insert into linkage.id_assignment_run values (?, ?) on conflict (kind) do update "
                "set run_id = excluded.run_id", [kind, run_id])
    if lineage.height:
        frame = lineage.select(
            pl.lit(run_id).alias("run_id"), pl.lit(kind).alias("kind"), "event", "id", "related_id",
            pl.col("members").cast(pl.Int64),
        )
        con.register("_lineage", frame)
        con.execute("insert into linkage.id_lineage_pending (run_id, kind, event, id, related_id, members) "
                    "select * from _lineage")
        con.unregister("_lineage")


def run_lineage(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """A run's lineage, pending (the run is still going) or committed: kind, event, id, related_id, members."""
    _ensure_lineage_tables(con)
    return con.sql(
        "select kind, event, id, related_id, members from linkage.id_lineage_pending where run_id = $run union all "
        "select kind, event, id, related_id, members from audit.id_lineage where run_id = $run",
        params={"run": run_id}).pl()


def discard_uncommitted(con: duckdb.DuckDBPyConnection) -> None:
    """At the start of a run: lineage left pending by runs that never completed is void (their assignment was
    never committed, so the new run compares against the same committed ids)."""
    _ensure_lineage_tables(con)
    con.execute("delete from linkage.id_lineage_pending")


def commit_assignment(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Make the assignments this run produced the ones later runs continue from, and its lineage official.
    Call inside the transaction that records the run as completed."""
    _ensure_lineage_tables(con)
    produced = dict(con.execute("select kind, run_id from linkage.id_assignment_run").fetchall())
    for kind, working in _WORKING.items():
        if produced.get(kind) == run_id and table_exists(con, working):
            con.execute(f"create or replace table {_COMMITTED[kind]} as select * from {working}")
    con.execute("insert into audit.id_lineage (run_id, kind, event, id, related_id, members, recorded_at) "
                "select run_id, kind, event, id, related_id, members, recorded_at from linkage.id_lineage_pending "
                "where run_id = ?", [run_id])
    con.execute("delete from linkage.id_lineage_pending where run_id = ?", [run_id])


def _previous(con: duckdb.DuckDBPyConnection, kind: str, fallbacks: tuple[str, ...]) -> str | None:
    """The table an assignment continues from: the committed one, or (a warehouse from before commits were
    kept) the working one and then the published graph."""
    for table in (_COMMITTED[kind], *fallbacks):
        if table_exists(con, table):
            return table
    return None


def next_id(con: duckdb.DuckDBPyConnection, kind: str) -> int:
    """Ids are never reused: the next id is past every id ever issued (kept in linkage.id_sequence)."""
    con.execute("create table if not exists linkage.id_sequence (kind varchar primary key, last_id bigint)")
    row = con.execute("select last_id from linkage.id_sequence where kind = ?", [kind]).fetchall()
    return (row[0][0] if row else 0) + 1


def advance_sequence(con: duckdb.DuckDBPyConnection, kind: str, highest: int | None) -> None:
    if highest is None:
        return
    con.execute(
        "insert into linkage.id_sequence values (?, ?) on conflict (kind) do update "
        "set last_id = greatest(linkage.id_sequence.last_id, excluded.last_id)",
        [kind, int(highest)],
    )


def _assigned(con: duckdb.DuckDBPyConnection, engine, kind: str, run_id: str) -> None:
    """After stable_ids: the sequence moves past the ids issued, the lineage waits for the run to commit."""
    advance_sequence(con, kind, con.execute("select max(id) from stable_group_ids").fetchall()[0][0])
    record_lineage(con, run_id, kind, _lineage_frame(con))
    _done(con, engine)


def assign_household_ids(con: duckdb.DuckDBPyConnection, run_id: str, engine=None) -> None:
    """Households (graph.household_member's household_key) → stable household ids in linkage.household_assignment."""
    engine = engine or DuckDBEngine()
    con.execute("create table if not exists linkage.household_assignment_previous (person_id bigint, household_id bigint)")
    table = _previous(con, "household", ("linkage.household_assignment_previous",))
    stable_ids(con, engine, 'select person_id as member, household_key as "group" from graph.household_member',
               f"select person_id as member, household_id as id from {table}", next_id(con, "household"))
    con.execute('create or replace table linkage.household_assignment as '
                'select "group" as household_key, id as household_id from stable_group_ids order by id')
    _assigned(con, engine, "household", run_id)


def assign_person_ids(con: duckdb.DuckDBPyConnection, clusters: pl.DataFrame, run_id: str, engine=None) -> pl.DataFrame:
    """clusters: source, record_id, cluster_id[, match_probability]. Writes linkage.person_cluster.

    Previous ids come from the last assignment, so ids persist from run to run.
    """
    engine = engine or DuckDBEngine()
    if "match_probability" not in clusters.columns:
        clusters = clusters.with_columns(pl.lit(None, pl.Float64).alias("match_probability"))
    # the last committed assignment is what ids continue from (a killed run's assignment never counts); a
    # warehouse from before commits were kept continues from linkage.person_cluster, or the published graph
    table = _previous(con, "person", ("linkage.person_cluster", "graph.record_link"))
    previous = (f"select source || ':' || record_id as member, person_id as id from {table}" if table is not None
                else "select cast(null as varchar) as member, cast(null as bigint) as id where false")
    con.register("_person_clusters", clusters.select("source", "record_id", "cluster_id", "match_probability"))
    try:
        stable_ids(con, engine,
                   "select source || ':' || record_id as member, cluster_id as \"group\" from _person_clusters",
                   previous, next_id(con, "person"))
        con.execute(
            """
            create or replace table linkage.person_cluster as
            select c.source, c.record_id, g.id as person_id, c.match_probability,
                   cast(count(*) over (partition by g.id) as uinteger) as cluster_size
            from _person_clusters as c inner join stable_group_ids as g on g."group" = c.cluster_id
            """)
    finally:
        con.unregister("_person_clusters")
    _assigned(con, engine, "person", run_id)
    return con.sql("select * from linkage.person_cluster").pl()
