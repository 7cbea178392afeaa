"""Model lifecycle and the person-linking step the CLI and flows call.

Training writes a new model version; only `promote` makes a version the approved one, and the nightly
run predicts with the approved model only (it never retrains silently).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from linkage_models._person_model import predict_and_cluster, train_person_model
from pipelines.settings import Settings


log = logging.getLogger("familylink.link")


class ModelError(RuntimeError):

    message_is_safe = True  # names files, keys and ids, never values (warehouse.safe_error)
    stage = "link"


@contextmanager
def _timed(step: str):
    started = time.perf_counter()
    yield
    log.info("link step %s took %.1f s", step, time.perf_counter() - started)


def _person_dir(settings: Settings) -> Path:
    return settings.models / "person"


def train(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    return train_person_model(con, settings.models).version


def promote(settings: Settings, version: str) -> None:
    model = _person_dir(settings) / version / "model.duckdb.json"
    if not model.exists():
        raise ModelError(f"no trained person model version {version} under {_person_dir(settings)}")
    (_person_dir(settings) / "approved.json").write_text(json.dumps(
        {"version": version, "promoted_at": dt.datetime.now(dt.timezone.utc).isoformat()}, indent=2))


def approved_version(settings: Settings) -> str | None:
    pointer = _person_dir(settings) / "approved.json"
    return json.loads(pointer.read_text())["version"] if pointer.exists() else None


def approved_model(settings: Settings) -> tuple[str, Path]:
    version = approved_version(settings)
    if version is None:
        raise ModelError("no approved person model: run `familylink train`, review its charts, then "
                         "`familylink promote-model VERSION`")
    return version, _person_dir(settings) / version / "model.duckdb.json"


def link_persons(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> dict:
    """Predict with the approved model, cluster, and give every cluster its stable person id."""
    from warehouse._graph import assign_person_ids

    version, path = approved_model(settings)
    result = predict_and_cluster(con, path, settings.match_threshold)
    with _timed("stable person ids"):
        assigned = assign_person_ids(con, result.clusters, run_id)
        _record_overmerge_flags(con, run_id, result.flags)
    lineage = con.execute(
        "select event, count(*) from audit.id_lineage where run_id = ? and kind = 'person' group by event", [run_id]
    ).fetchall()
    return {
        "model_version": version, "records": assigned.height, "persons": assigned["person_id"].n_unique(),
        "scored_pairs": result.scored_pairs, "lineage": dict(lineage),
        "overmerge_flags": result.flags.select("cluster_key", "reason").n_unique(),
    }


def _record_overmerge_flags(con: duckdb.DuckDBPyConnection, run_id: str, flags: pl.DataFrame) -> None:
    """Keep which records the guard split or flagged in this run, with the person each now belongs to."""
    con.register("_flags", flags)
    try:
        con.execute(
            """
            insert into linkage.overmerge_flag (run_id, source, record_id, person_id, cluster_key, reason, action)
            select ?, f.source, f.record_id, c.person_id, f.cluster_key, f.reason, f.action
            from _flags as f left join linkage.person_cluster as c using (source, record_id)
            """,
            [run_id],
        )
    finally:
        con.unregister("_flags")


def _clusters_and_truth(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    if not (truth_dir / "records.parquet").exists():
        raise ModelError(f"no ground truth at {truth_dir}: evaluation needs the synthetic city's truth files")
    clusters = con.sql("select source, record_id, cast(person_id as varchar) as cluster_id from linkage.person_cluster").pl()
    return clusters, pl.read_parquet(truth_dir / "records.parquet")


def evaluate_persons(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> dict:
    from linkage_models.evaluate import person_link_quality

    return person_link_quality(*_clusters_and_truth(con, truth_dir))


def evaluate_persons_by_source_pair(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> pl.DataFrame:
    from linkage_models.evaluate import person_link_quality_by_source_pair

    return person_link_quality_by_source_pair(*_clusters_and_truth(con, truth_dir))


def link_all(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> dict:
    """The nightly link stage: addresses → UPRN, persons → stable ids, then the household graph."""
    from linkage_models._address import load_gazetteer, match_addresses
    from sources._contract import load_contracts
    from warehouse._graph import build_graph

    if settings.engine != "duckdb":
        raise ModelError(f"engine {settings.engine!r} is not available in this release: the link stage runs on "
                         "DuckDB (set engine: duckdb)")
    contracts = load_contracts(settings.contracts_dir)
    trust = pl.DataFrame({"source": list(contracts), "trust_rank": [c.trust_rank for c in contracts.values()]})
    con.register("_trust", trust)
    con.execute("create or replace table linkage.source_trust as select * from _trust")
    con.unregister("_trust")
    gazetteer = settings.reference / "llpg.csv"
    if not gazetteer.exists():
        raise ModelError(f"gazetteer not found at {gazetteer}")
    with _timed("addresses"):
        load_gazetteer(con, gazetteer)
        methods = match_addresses(con)
    with _timed("persons"):
        persons = link_persons(con, settings, run_id)
    as_of = con.execute("select max(extract_date) from audit.current_extract").fetchall()[0][0] or dt.date.today()
    with _timed("graph"):
        counts = build_graph(con, run_id=run_id, model_version=persons["model_version"], as_of=as_of)
    total = sum(methods.values())
    # link rate per source: the share of its records whose person another source also knows
    cross = dict(con.execute(
        """
        with per_person as (select person_id, count(distinct source) as sources from graph.record_link group by 1)
        select r.source, avg((p.sources > 1)::int) from graph.record_link as r join per_person as p using (person_id)
        group by 1 order by 1
        """).fetchall())
    return {**persons, "linked_to_another_source": cross, "households": counts["household"], "graph_counts": counts,
            "uprn_matched_share": 1 - methods.get("unmatched", 0) / total if total else 0.0}
