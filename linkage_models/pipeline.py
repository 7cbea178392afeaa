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

import warehouse
import polars as pl

from typing import TYPE_CHECKING

from linkage_models._model_builder import ModelBuildError
from linkage_models._person_model import predict_and_cluster, train_person_model

if TYPE_CHECKING:  # settings are passed in by pipelines/, never imported from it at run time
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


def train(con: duckdb.DuckDBPyConnection, settings: Settings, settings_file: Path | None = None) -> str:
    """Train a model version from the staged records (or from a pinned settings file); one-line ModelError
    when there is too little data."""
    check_staged_sources(con, settings.contracts_dir)
    with engine_for(settings) as engine:
        try:
            return train_person_model(con, settings.models, settings_path=settings_file, engine=engine).version
        except ModelBuildError as exc:
            raise ModelError(str(exc)) from None


@contextmanager
def engine_for(settings: Settings):
    """The engine `settings.engine` names, closed (its exchanged files deleted) when the step ends."""
    from linkage_models._engine import EngineError, open_engine

    try:
        engine = open_engine(settings)
    except EngineError as exc:
        raise ModelError(str(exc)) from None
    try:
        yield engine
    finally:
        engine.close()


def check_staged_sources(con: duckdb.DuckDBPyConnection, contracts_dir: Path) -> dict:
    """The contracts in force, after checking that every staged source has one: a run must not link or publish
    records under another installation's contracts (trust ranks, retention, lawful basis)."""
    from sources import load_contracts

    contracts = load_contracts(contracts_dir)
    staged = [r[0] for r in con.execute(
        "select distinct source from staging.person_record order by source").fetchall()]
    unknown = [s for s in staged if s not in contracts]
    if unknown:
        raise ModelError(
            f"staged source(s) {', '.join(unknown)} have no contract in {contracts_dir}: the records were ingested "
            f"under other contracts; pass the same --contracts to every command (or set contracts_dir once)")
    return contracts


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


def link_persons(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, engine=None) -> dict:
    """Predict with the approved model, cluster, and give every cluster its stable person id, on `engine` (or
    the one the settings name, for this step only)."""
    from linkage_models._stable_ids import assign_person_ids

    version, path = approved_model(settings)
    if engine is None:
        with engine_for(settings) as engine:
            return link_persons(con, settings, run_id, engine)
    result = predict_and_cluster(con, path, settings.match_threshold, engine=engine)
    with _timed("stable person ids"):
        assigned = assign_person_ids(con, result.clusters, run_id, engine)
        _record_overmerge_flags(con, run_id, result.flags)
    from linkage_models._stable_ids import run_lineage

    lineage = run_lineage(con, run_id).filter(pl.col("kind") == "person").group_by("event").len().rows()
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
    """The linked records (source, record_id, cluster_id) and the truth, ids as text; a one-line ModelError when
    the truth is missing, lacks a required column or shares no record with the warehouse."""
    from linkage_models.evaluate import TruthError, read_truth

    path = truth_dir / "records.parquet"
    if not path.exists():
        raise ModelError(f"no ground truth at {path}: evaluation needs a truth file with the columns source, "
                         "record_id and person_id (the synthetic city writes one)")
    if not warehouse.table_exists(con, "linkage.person_cluster"):
        raise ModelError("no person links in this warehouse yet: run `familylink link` (or `familylink run`) first")
    try:
        truth = read_truth(path)
    except TruthError as exc:
        raise ModelError(str(exc)) from None
    clusters = con.sql("select source, record_id, cast(person_id as varchar) as cluster_id from linkage.person_cluster").pl()
    if truth.join(clusters, on=["source", "record_id"], how="semi").is_empty():
        raise ModelError(f"none of the {truth.height:,} records in {path} is among the {clusters.height:,} linked "
                         "records: its source and record_id must be the agencies' own (compared as text)")
    return clusters, truth


def evaluate_persons(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> dict:
    """Person-link quality on the records in both the truth and the warehouse, and under `coverage` how far the
    two cover each other (linkage_models.evaluate.truth_coverage)."""
    from linkage_models.evaluate import person_link_quality, truth_coverage

    clusters, truth = _clusters_and_truth(con, truth_dir)
    quarantined = con.sql("select source, record_id from quarantine.row where record_id is not null").pl() \
        if warehouse.table_exists(con, "quarantine.row") else None
    return {**person_link_quality(clusters, truth), "coverage": truth_coverage(clusters, truth, quarantined)}


def evaluate_persons_by_source_pair(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> pl.DataFrame:
    from linkage_models.evaluate import person_link_quality_by_source_pair

    return person_link_quality_by_source_pair(*_clusters_and_truth(con, truth_dir))


def evaluate_link_errors(con: duckdb.DuckDBPyConnection, truth_dir: Path, top: int = 10) -> pl.DataFrame | None:
    """The largest classes of missed and false links by cause, or None when the truth has no noise to class
    them by (only the synthetic city's truth has)."""
    from linkage_models.evaluate import has_values, link_errors_by_cause

    clusters, truth = _clusters_and_truth(con, truth_dir)
    if not has_values(truth, "noise"):
        return None
    return link_errors_by_cause(clusters, truth, top=top)


def link_all(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> dict:
    """The nightly link stage: addresses → UPRN, persons → stable ids, then the household graph."""
    from linkage_models._address import gazetteer_basis, load_gazetteer, match_addresses, matched_basis
    from warehouse._graph import build_graph

    contracts = check_staged_sources(con, settings.contracts_dir)
    trust = pl.DataFrame({"source": list(contracts), "trust_rank": [c.trust_rank for c in contracts.values()]})
    con.register("_trust", trust)
    con.execute("create or replace table linkage.source_trust as select * from _trust")
    con.unregister("_trust")
    from sources import GazetteerError, find_gazetteer, load_gazetteer_contract, read_gazetteer

    try:
        contract = load_gazetteer_contract(settings.gazetteer_contract)
        found = find_gazetteer(settings.reference, contract)
        # the same gazetteer file, contract and rules as last night: its loaded copy and last night's address
        # matches stand, and only addresses not seen before are matched
        basis = gazetteer_basis(settings.gazetteer_contract, found)
        unchanged = matched_basis(con) == basis
        gazetteer = None if unchanged else read_gazetteer(settings.reference, contract)
    except GazetteerError as error:
        raise ModelError(f"gazetteer: {error}") from None
    where = found or settings.reference / contract.file_pattern
    with _timed("addresses"):
        # the gazetteer is optional: without it (or with an empty one) no address gets a UPRN and households
        # are formed from the normalised address and postcode; the run summary says so
        if unchanged:
            properties = con.execute("select count(*) from linkage.gazetteer").fetchone()[0]
        else:
            properties = load_gazetteer(con, gazetteer)
        methods = match_addresses(con, basis)
    if found is None:
        gazetteer_note = (f"no gazetteer at {where}: households formed from the sources' UPRNs, else the normalised "
                          f"address and postcode (the address alone where it names a house number)")
    elif properties == 0:
        gazetteer_note = (f"the gazetteer at {where} is empty: households formed from the sources' UPRNs, else the "
                          f"normalised address and postcode (the address alone where it names a house number)")
    else:
        gazetteer_note = None
    if gazetteer_note:
        log.warning(gazetteer_note)
    # one engine for persons and households: on Spark, one session for the pairs, both stable ids and the graph
    with engine_for(settings) as engine:
        with _timed("persons"):
            persons = link_persons(con, settings, run_id, engine)
        as_of = con.execute("select max(extract_date) from audit.current_extract").fetchall()[0][0] or dt.date.today()
        with _timed("graph"):
            counts = build_graph(con, run_id=run_id, model_version=persons["model_version"], as_of=as_of,
                                 engine=engine)
    addressed = warehouse.uprn_match_rate(con)["records_with_address"]
    if addressed and not counts["household"]:  # said, not left for an analyst to find in an empty table
        note = (f"{addressed:,} records carry an address but none placed anyone in a household: no UPRN matched and "
                f"no address names a house number with a postcode")
        log.warning(note)
        gazetteer_note = f"{gazetteer_note}; {note}" if gazetteer_note else note
    # link rate per source: the share of its records whose person another source also knows
    cross = dict(con.execute(
        """
        with per_person as (select person_id, count(distinct source) as sources from graph.record_link group by 1)
        select r.source, avg((p.sources > 1)::int) from graph.record_link as r join per_person as p using (person_id)
        group by 1 order by 1
        """).fetchall())
    return {**persons, "linked_to_another_source": cross, "gazetteer_note": gazetteer_note, "households": counts["household"], "graph_counts": counts,
            # one definition everywhere (warehouse.UPRN_MATCH_RATE_DEFINITION): records, not distinct addresses
            "uprn_matched_share": warehouse.uprn_match_rate(con)["share"]}
