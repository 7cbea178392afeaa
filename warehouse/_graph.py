"""Build the household graph (graph.*) from staging, person clusters and address matches.

Inputs (all in the warehouse): staging.*, linkage.person_cluster (source, record_id, person_id,
match_probability, cluster_size), linkage.address_match (address_key, uprn, match_method, match_score),
linkage.gazetteer, linkage.source_trust. The SQL files in warehouse/sql/graph/ are named after the table
each builds and run in the order below; household ids are assigned in Python between two of them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl

from warehouse._db import transaction

from linkage_models._stable_ids import assign_stable_ids

_SQL = Path(__file__).parent / "sql" / "graph"
_BEFORE_HOUSEHOLD_IDS = ("address", "record_link", "person", "person_address", "relationship", "household_member")
_AFTER_HOUSEHOLD_IDS = ("household",)


def _run_sql(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute((_SQL / f"{name}.sql").read_text(encoding="utf-8"))


def record_lineage(con: duckdb.DuckDBPyConnection, run_id: str, kind: str, lineage: pl.DataFrame) -> None:
    con.execute(
        """
        create table if not exists audit.id_lineage (
            run_id varchar, kind varchar, event varchar, id bigint, related_id bigint, members bigint,
            recorded_at timestamp default current_timestamp
        )
        """
    )
    if lineage.height:
        frame = lineage.select(
            pl.lit(run_id).alias("run_id"), pl.lit(kind).alias("kind"), "event", "id", "related_id",
            pl.col("members").cast(pl.Int64),
        )
        con.register("_lineage", frame)
        con.execute("insert into audit.id_lineage (run_id, kind, event, id, related_id, members) select * from _lineage")
        con.unregister("_lineage")


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
    previous = con.sql(
        "select cast(person_id as varchar) as member, household_id as id from linkage.household_assignment_previous"
    ).pl()
    result = assign_stable_ids(current, previous, next_id(con, "household"))
    assignment = result.group_ids.select(pl.col("group").alias("household_key"), pl.col("id").alias("household_id"))
    con.register("_assignment", assignment)
    con.execute("create or replace table linkage.household_assignment as select * from _assignment")
    con.unregister("_assignment")
    advance_sequence(con, "household", result.group_ids["id"])
    record_lineage(con, run_id, "household", result.lineage)


def build_graph(
    con: duckdb.DuckDBPyConnection, *, run_id: str, model_version: str, as_of: dt.date
) -> dict[str, int]:
    """Rebuild graph.* in one transaction; returns row counts per table."""
    with transaction(con):
        con.execute("set variable run_id = ?", [run_id])
        con.execute("set variable model_version = ?", [model_version])
        con.execute("set variable as_of = ?", [as_of])
        for name in _BEFORE_HOUSEHOLD_IDS:
            _run_sql(con, name)
        assign_household_ids(con, run_id)
        for name in _AFTER_HOUSEHOLD_IDS:
            _run_sql(con, name)
        # what the next run compares against
        con.execute(
            "create or replace table linkage.household_assignment_previous as "
            "select person_id, household_id from graph.household_member"
        )
    tables = ("address", "record_link", "person", "person_address", "relationship", "household", "household_member")
    return {t: con.execute(f"select count(*) from graph.{t}").fetchall()[0][0] for t in tables}


def assign_person_ids(con: duckdb.DuckDBPyConnection, clusters: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """clusters: source, record_id, cluster_id[, match_probability]. Writes linkage.person_cluster.

    Previous ids come from the last assignment, so ids persist from run to run.
    """
    members = clusters.with_columns((pl.col("source") + ":" + pl.col("record_id")).alias("member"))
    # the last assignment (linkage.person_cluster) is what ids continue from; a warehouse that only has a
    # published graph continues from graph.record_link
    previous = pl.DataFrame(schema={"member": pl.String, "id": pl.Int64})
    for table in ("linkage.person_cluster", "graph.record_link"):
        schema, name = table.split(".")
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
        ).fetchall()[0][0]
        if exists:
            previous = con.sql(f"select source || ':' || record_id as member, person_id as id from {table}").pl()
            break
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
