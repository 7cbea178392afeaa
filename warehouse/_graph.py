"""Build the household graph (graph.*) from staging, person clusters and address matches.

Inputs (all in the warehouse): staging.*, linkage.person_cluster (source, record_id, person_id,
match_probability, cluster_size), linkage.address_match (address_key, uprn, match_method, match_score),
linkage.gazetteer, linkage.source_trust. The SQL files in warehouse/sql/graph/ are named after the table
each builds and run in the order below; household ids are assigned in Python between two of them. Each file
holds `create or replace table graph.<t> as <query>` statements only, in DuckDB's SQL, so an engine can run
the queries elsewhere (linkage_models/_engine.py `run_script`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import duckdb
import polars as pl

from linkage_models import DuckDBEngine, assign_household_ids
from warehouse._db import transaction

log = logging.getLogger("familylink.link")
_SQL = Path(__file__).parent / "sql" / "graph"
_BEFORE_HOUSEHOLD_IDS = ("address", "record_link", "person", "person_address", "relationship", "household_member")
_AFTER_HOUSEHOLD_IDS = ("household",)


def _sql(name: str) -> str:
    return (_SQL / f"{name}.sql").read_text(encoding="utf-8")


def build_graph(
    con: duckdb.DuckDBPyConnection, *, run_id: str, model_version: str, as_of: dt.date, engine=None
) -> dict[str, int]:
    """Rebuild graph.* in one transaction; returns row counts per table. The SQL files and the household ids
    run on `engine` (linkage_models/_engine.py: the warehouse's DuckDB by default; on Spark the same files,
    translated, with the tables they read sent as Parquet and graph.* written back inside this transaction)."""
    started = time.perf_counter()
    engine = engine or DuckDBEngine()
    variables = {"run_id": run_id, "model_version": model_version, "as_of": as_of}
    with transaction(con):
        for name, value in variables.items():
            con.execute(f"set variable {name} = ?", [value])
        try:
            for name in _BEFORE_HOUSEHOLD_IDS:
                engine.run_script(con, _sql(name), variables)
            assign_household_ids(con, run_id, engine)
            for name in _AFTER_HOUSEHOLD_IDS:
                engine.run_script(con, _sql(name), variables)
        finally:
            engine.end_scripts(con)
        # what the next run compares against
        con.execute(
            "create or replace table linkage.household_assignment_previous as "
            "select person_id, household_id from graph.household_member"
        )
    log.info("graph built on %s in %.1f s", engine.name, time.perf_counter() - started)
    tables = ("address", "record_link", "person", "person_address", "relationship", "household", "household_member")
    return {t: con.execute(f"select count(*) from graph.{t}").fetchall()[0][0] for t in tables}
