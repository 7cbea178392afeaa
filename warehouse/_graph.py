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

from linkage_models import assign_household_ids
from warehouse._db import transaction

_SQL = Path(__file__).parent / "sql" / "graph"
_BEFORE_HOUSEHOLD_IDS = ("address", "record_link", "person", "person_address", "relationship", "household_member")
_AFTER_HOUSEHOLD_IDS = ("household",)


def _run_sql(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute((_SQL / f"{name}.sql").read_text(encoding="utf-8"))


def build_graph(
    con: duckdb.DuckDBPyConnection, *, run_id: str, model_version: str, as_of: dt.date, engine=None
) -> dict[str, int]:
    """Rebuild graph.* in one transaction; returns row counts per table. Household ids are assigned on `engine`
    (linkage_models/_engine.py; the warehouse's DuckDB by default)."""
    with transaction(con):
        con.execute("set variable run_id = ?", [run_id])
        con.execute("set variable model_version = ?", [model_version])
        con.execute("set variable as_of = ?", [as_of])
        for name in _BEFORE_HOUSEHOLD_IDS:
            _run_sql(con, name)
        assign_household_ids(con, run_id, engine)
        for name in _AFTER_HOUSEHOLD_IDS:
            _run_sql(con, name)
        # what the next run compares against
        con.execute(
            "create or replace table linkage.household_assignment_previous as "
            "select person_id, household_id from graph.household_member"
        )
    tables = ("address", "record_link", "person", "person_address", "relationship", "household", "household_member")
    return {t: con.execute(f"select count(*) from graph.{t}").fetchall()[0][0] for t in tables}
