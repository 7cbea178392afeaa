"""Why the model scored a pair as it did: Splink's match-weight waterfall for pairs of source records.

Clerical review (reports/review.py) shows it beside the records so a reviewer sees which comparison pushed a pair
over or under the threshold. The pair is re-scored with the model version given (the approved one), over the same
Splink input and term frequencies the nightly run predicted with, so the final weight is the weight the run stored.
Only comparison labels and weights come back, never the values compared (`remove_sensitive_data`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from linkage_models._engine import DuckDBEngine
from linkage_models._model_builder import INPUT_TABLE, build_input
from linkage_models._person_model import make_linker, model_identifiers
from warehouse import table_exists

_LEFT, _RIGHT = "_explain_record_l", "_explain_record_r"


@dataclass(frozen=True)
class WaterfallStep:
    """One bar of the waterfall: the prior, one comparison's level (or its term-frequency adjustment), or the
    final score. `match_weight` is the bar's log2 Bayes factor; `cumulative` the running total after it."""

    comparison: str  # "Prior", a comparison's output name (tf_ prefix for term-frequency adjustments), "Final score"
    level: str  # the level's label for charts ("exact match", "Jaro-Winkler >= 0.92", ...)
    match_weight: float
    cumulative: float
    m_probability: float | None
    u_probability: float | None
    term_frequency_adjustment: bool


def explain_pairs(con: duckdb.DuckDBPyConnection, model_path: Path,
                  pairs: list[tuple[str, str]]) -> list[list[WaterfallStep]]:
    """The waterfall of each pair of Splink unique ids ("source:record_id"), in the order given; an empty list
    for a pair whose records are no longer staged. Comparisons whose level is null (no effect) are left out."""
    if not pairs:
        return []
    if not table_exists(con, f"main.{INPUT_TABLE}"):  # a warehouse linked before the input was kept: rebuild it once
        build_input(con, model_identifiers(model_path))
    model = json.loads(Path(model_path).read_text(encoding="utf-8"))
    # the waterfall needs the comparison vector and per-comparison weights kept in the scored rows
    model["retain_matching_columns"] = True
    model["retain_intermediate_calculation_columns"] = True
    engine = DuckDBEngine()
    with engine.scratch(con):  # Splink's tables (the scored rows keep names and dates) stay out of the warehouse file
        explained = _explain(con, make_linker(con, model, engine), pairs)
    return explained


def _explain(con: duckdb.DuckDBPyConnection, linker, pairs: list[tuple[str, str]]) -> list[list[WaterfallStep]]:
    from splink import DuckDBAPI

    db_api = DuckDBAPI(connection=con)
    wanted = [(str(left), str(right)) for left, right in pairs]
    try:
        # one scoring of every left record against every right record (a few hundred rows for a review
        # sample) costs far less than one Splink pipeline per pair
        for table, ids in ((_LEFT, {left for left, _ in wanted}), (_RIGHT, {right for _, right in wanted})):
            con.execute(f"create or replace temp table {table} as select * from {INPUT_TABLE} "
                        "where list_contains(?, unique_id)", [sorted(ids)])
        scored = linker.inference.score_pairs(db_api.register(_LEFT), db_api.register(_RIGHT))
        records = {(r["unique_id_l"], r["unique_id_r"]): r for r in scored.as_record_list()}
        scored.drop_table_from_database_and_remove_from_cache()
        chosen = [records[pair] for pair in wanted if pair in records]
        bars = linker.visualisations.waterfall_chart(chosen, filter_nulls=True,
                                                     remove_sensitive_data=True).chart_data if chosen else []
        by_record: dict[int, list[WaterfallStep]] = {}
        running = 0.0
        for bar in bars:
            final = bar["column_name"] == "Final score"
            weight = float(bar["log2_bayes_factor"])
            if not final and (bar["comparison_vector_value"] == -1 or (bar["term_frequency_adjustment"] and weight == 0)):
                continue  # a null level or no term-frequency adjustment: Bayes factor 1, no effect on the weight
            steps = by_record.setdefault(bar["record_number"], [])
            running = weight if final or not steps else running + weight
            steps.append(WaterfallStep(bar["column_name"], bar["label_for_charts"], weight, running,
                                       bar["m_probability"], bar["u_probability"], bool(bar["term_frequency_adjustment"])))
        explained, position = [], 0
        for pair in wanted:
            if pair in records:
                explained.append(by_record.get(position, []))
                position += 1
            else:
                explained.append([])  # a record no longer staged
    finally:
        for table in (_LEFT, _RIGHT):
            con.execute(f"drop table if exists {table}")
        linker.table_management.delete_tables_created_by_splink_from_db()
    return explained
