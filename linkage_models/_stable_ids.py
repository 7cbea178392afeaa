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

from dataclasses import dataclass

import duckdb
import polars as pl

from warehouse import table_exists


@dataclass(frozen=True)
class IdAssignment:
    group_ids: pl.DataFrame  # group, id, is_new
    lineage: pl.DataFrame  # event (new|merge|split|retired), id, related_id, members


def assign_stable_ids(
    current: pl.DataFrame,
    previous: pl.DataFrame,
    next_id: int,
) -> IdAssignment:
    """current: member (str), group (any); previous: member (str), id (int). Returns each group's id."""
    current = current.select(pl.col("member").cast(pl.String), pl.col("group"))
    previous = previous.select(pl.col("member").cast(pl.String), pl.col("id").cast(pl.Int64))
    group_key = current.group_by("group").agg(pl.col("member").min().alias("group_key"))
    overlap = (
        current.join(previous, on="member", how="inner")
        .group_by("group", "id")
        .agg(pl.len().alias("shared"))
        .join(group_key, on="group")
    )

    # a group sharing members with one previous id only, which shares members with that group only, is a
    # mutual best at once: most groups on most nights. The loop below sorts only what is left.
    alone = overlap.filter((pl.len().over("group") == 1) & (pl.len().over("id") == 1))
    matched = [alone.select("group", "id")]
    remaining = overlap.join(alone.select("group"), on="group", how="anti")
    while remaining.height:
        best_for_id = remaining.sort(["shared", "group_key"], descending=[True, False]).group_by("id").first()
        best_for_group = remaining.sort(["shared", "id"], descending=[True, False]).group_by("group").first()
        mutual = best_for_id.join(best_for_group.select("group", "id"), on=["group", "id"], how="inner")
        if mutual.height == 0:  # cannot happen with strict tie-breaks, but never loop forever
            break
        matched.append(mutual.select("group", "id"))
        remaining = remaining.join(mutual.select("group"), on="group", how="anti").join(
            mutual.select("id"), on="id", how="anti"
        )

    kept = pl.concat(matched) if matched else pl.DataFrame(schema={"group": current.schema["group"], "id": pl.Int64})
    unmatched = group_key.join(kept, on="group", how="anti").sort("group_key")
    fresh = unmatched.with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + next_id).alias("id")
    ).select("group", "id")
    group_ids = pl.concat(
        [kept.with_columns(pl.lit(False).alias("is_new")), fresh.with_columns(pl.lit(True).alias("is_new"))]
    ).sort("id")

    lineage = _lineage(current, previous, group_ids)
    return IdAssignment(group_ids=group_ids, lineage=lineage)


def _lineage(current: pl.DataFrame, previous: pl.DataFrame, group_ids: pl.DataFrame) -> pl.DataFrame:
    now = current.join(group_ids.select("group", pl.col("id").alias("new_id")), on="group")
    moves = (
        now.join(previous.rename({"id": "old_id"}), on="member", how="inner")
        .filter(pl.col("old_id") != pl.col("new_id"))
        .group_by("old_id", "new_id")
        .agg(pl.len().alias("members"))
    )
    surviving = group_ids["id"].implode()
    new_ids = group_ids.filter(pl.col("is_new")).select("id")
    merges = moves.filter(pl.col("old_id").is_in(surviving).not_()).filter(
        ~pl.col("new_id").is_in(new_ids["id"].implode())
    )
    splits = moves.filter(pl.col("new_id").is_in(new_ids["id"].implode()) & pl.col("old_id").is_in(surviving))
    retired_ids = previous.select("id").unique().filter(~pl.col("id").is_in(surviving))
    retired_ids = retired_ids.join(moves.select(pl.col("old_id").alias("id")).unique(), on="id", how="anti")
    frames = [
        group_ids.filter(pl.col("is_new"))
        .join(splits.select(pl.col("new_id").alias("id")).unique(), on="id", how="anti")
        .select(pl.lit("new").alias("event"), "id", pl.lit(None, pl.Int64).alias("related_id"),
                pl.lit(None, pl.UInt32).alias("members")),
        merges.select(pl.lit("merge").alias("event"), pl.col("new_id").alias("id"),
                      pl.col("old_id").alias("related_id"), "members"),
        splits.select(pl.lit("split").alias("event"), pl.col("new_id").alias("id"),
                      pl.col("old_id").alias("related_id"), "members"),
        retired_ids.select(pl.lit("retired").alias("event"), "id", pl.lit(None, pl.Int64).alias("related_id"),
                           pl.lit(None, pl.UInt32).alias("members")),
    ]
    return pl.concat(frames).sort("event", "id", "related_id", nulls_last=True)


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


def advance_sequence(con: duckdb.DuckDBPyConnection, kind: str, ids: pl.Series) -> None:
    if ids.len() == 0:
        return
    highest = int(ids.max())
    con.execute(
        "insert into linkage.id_sequence values (?, ?) on conflict (kind) do update "
        "set last_id = greatest(linkage.id_sequence.last_id, excluded.last_id)",
        [kind, highest],
    )


def assign_household_ids(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    current = con.sql(
        "select cast(person_id as varchar) as member, household_key as \"group\" from graph.household_member"
    ).pl()
    con.execute("create table if not exists linkage.household_assignment_previous (person_id bigint, household_id bigint)")
    table = _previous(con, "household", ("linkage.household_assignment_previous",))
    previous = con.sql(f"select cast(person_id as varchar) as member, household_id as id from {table}").pl()
    result = assign_stable_ids(current, previous, next_id(con, "household"))
    assignment = result.group_ids.select(pl.col("group").alias("household_key"), pl.col("id").alias("household_id"))
    con.register("_assignment", assignment)
    con.execute("create or replace table linkage.household_assignment as select * from _assignment")
    con.unregister("_assignment")
    advance_sequence(con, "household", result.group_ids["id"])
    record_lineage(con, run_id, "household", result.lineage)


def assign_person_ids(con: duckdb.DuckDBPyConnection, clusters: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """clusters: source, record_id, cluster_id[, match_probability]. Writes linkage.person_cluster.

    Previous ids come from the last assignment, so ids persist from run to run.
    """
    members = clusters.with_columns((pl.col("source") + ":" + pl.col("record_id")).alias("member"))
    # the last committed assignment is what ids continue from (a killed run's assignment never counts); a
    # warehouse from before commits were kept continues from linkage.person_cluster, or the published graph
    previous = pl.DataFrame(schema={"member": pl.String, "id": pl.Int64})
    table = _previous(con, "person", ("linkage.person_cluster", "graph.record_link"))
    if table is not None:
        previous = con.sql(f"select source || ':' || record_id as member, person_id as id from {table}").pl()
    result = assign_stable_ids(members.select("member", pl.col("cluster_id").alias("group")), previous,
                               next_id(con, "person"))
    if "match_probability" not in members.columns:
        members = members.with_columns(pl.lit(None, pl.Float64).alias("match_probability"))
    person_cluster = (
        members.join(result.group_ids.select(pl.col("group").alias("cluster_id"), pl.col("id").alias("person_id")),
                     on="cluster_id")
        .with_columns(pl.len().over("person_id").alias("cluster_size"))
        .select("source", "record_id", "person_id", "match_probability", "cluster_size")
    )
    con.register("_person_cluster", person_cluster)
    con.execute("create or replace table linkage.person_cluster as select * from _person_cluster")
    con.unregister("_person_cluster")
    advance_sequence(con, "person", result.group_ids["id"])
    record_lineage(con, run_id, "person", result.lineage)
    return person_cluster
