"""The Splink person model: settings built from the comparison library, trained unsupervised, saved with provenance.

Household-aware by construction: surname and address are ONE comparison (their joint agreement gets one
m/u pair instead of being counted twice), and forename and date-of-birth disagreement levels are separate,
so a sibling or a parent who shares surname and address is still outweighed by a different forename or
date of birth. See docs/adr/0002-person-linkage-model.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import splink
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

INPUT_TABLE = "person_linkage_input"  # main schema: Splink reads columns of unqualified tables

# Blocking rules for prediction. Each one is cheap at a city's scale; together they catch records that
# disagree on any one of name, date of birth or address (see benchmarks/blocking_analysis.py).
PREDICTION_BLOCKS = [
    block_on("date_of_birth"),
    block_on("nhs_number"),
    block_on("upn"),
    block_on("pnc_id"),
    block_on("first_name_formal", "last_name_std"),
    block_on("last_name_std", "postcode"),
    block_on("first_name_formal", "postcode"),
    block_on("phone"),
]
# EM blocks: each leaves some comparisons free to be estimated.
TRAINING_BLOCKS = [
    block_on("date_of_birth"),
    block_on("first_name_formal", "last_name_std"),
    block_on("postcode"),
]
DETERMINISTIC_RULES = [
    "l.nhs_number = r.nhs_number",
    "l.upn = r.upn",
    "l.pnc_id = r.pnc_id",
    "l.first_name_formal = r.first_name_formal and l.last_name_std = r.last_name_std "
    "and l.date_of_birth = r.date_of_birth",
]


def _level(sql: str, label: str, **extra) -> dict:
    return {"sql_condition": sql, "label_for_charts": label, **extra}


def forename_comparison() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="forename",
        comparison_levels=[
            _level("first_name_std_l is null or first_name_std_r is null", "null", is_null_level=True),
            _level("first_name_std_l = first_name_std_r", "exact", tf_adjustment_column="first_name_std"),
            _level("first_name_formal_l = first_name_formal_r", "same formal name (nickname)"),
            _level("first_name_std_l = last_name_std_r and last_name_std_l = first_name_std_r", "first/last swapped"),
            _level("jaro_winkler_similarity(first_name_std_l, first_name_std_r) >= 0.92", "Jaro-Winkler >= 0.92"),
            _level("jaro_winkler_similarity(first_name_std_l, first_name_std_r) >= 0.8", "Jaro-Winkler >= 0.8"),
            _level("substr(first_name_std_l, 1, 1) = substr(first_name_std_r, 1, 1)", "same initial"),
            {"sql_condition": "ELSE", "label_for_charts": "different"},
        ],
    )


def surname_address_comparison() -> cl.CustomComparison:
    """Surname and address together, so a shared household is one piece of evidence, not two."""
    return cl.CustomComparison(
        output_column_name="surname_and_address",
        comparison_levels=[
            _level("last_name_std_l is null or last_name_std_r is null", "null", is_null_level=True),
            _level("last_name_std_l = last_name_std_r and (postcode_l = postcode_r or uprn_l = uprn_r)",
                   "same surname, same address", tf_adjustment_column="last_name_std"),
            _level("last_name_std_l = last_name_std_r", "same surname, other address",
                   tf_adjustment_column="last_name_std"),
            _level("jaro_winkler_similarity(last_name_std_l, last_name_std_r) >= 0.9 and postcode_l = postcode_r",
                   "similar surname, same postcode"),
            _level("jaro_winkler_similarity(last_name_std_l, last_name_std_r) >= 0.9", "similar surname"),
            _level("postcode_l = postcode_r", "other surname, same postcode"),
            {"sql_condition": "ELSE", "label_for_charts": "different"},
        ],
    )


def date_of_birth_comparison() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="date_of_birth",
        comparison_levels=[
            _level("date_of_birth_l is null or date_of_birth_r is null", "null", is_null_level=True),
            _level("date_of_birth_l = date_of_birth_r", "exact"),
            _level("day(date_of_birth_l) = month(date_of_birth_r) and month(date_of_birth_l) = day(date_of_birth_r) "
                   "and year(date_of_birth_l) = year(date_of_birth_r)", "day and month transposed"),
            _level("month(date_of_birth_l) = month(date_of_birth_r) and day(date_of_birth_l) = day(date_of_birth_r) "
                   "and abs(year(date_of_birth_l) - year(date_of_birth_r)) = 1", "year off by one"),
            _level("year(date_of_birth_l) = year(date_of_birth_r) and month(date_of_birth_l) = month(date_of_birth_r)",
                   "same month and year"),
            _level("abs(date_diff('day', date_of_birth_l, date_of_birth_r)) <= 366", "within a year"),
            {"sql_condition": "ELSE", "label_for_charts": "different"},
        ],
    )


def identifier_comparison(column: str) -> cl.ExactMatch:
    return cl.ExactMatch(column)


def person_settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            forename_comparison(),
            surname_address_comparison(),
            date_of_birth_comparison(),
            cl.ExactMatch("sex"),
            identifier_comparison("nhs_number"),
            identifier_comparison("upn"),
            identifier_comparison("pnc_id"),
            # a parent or carer named by a school has no date of birth: their phone is often what ties them
            cl.ExactMatch("phone"),
        ],
        blocking_rules_to_generate_predictions=PREDICTION_BLOCKS,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=["source", "record_id"],
    )


INPUT_SQL = f"""
create or replace table {INPUT_TABLE} as
select
    source || ':' || record_id as unique_id,
    source,
    record_id,
    split_part(first_name_std, ' ', 1) as first_name_std,
    coalesce(first_name_formal, split_part(first_name_std, ' ', 1)) as first_name_formal,
    replace(last_name_std, ' ', '') as last_name_std,
    date_of_birth,
    sex,
    postcode,
    uprn,
    nhs_number,
    upn,
    pnc_id,
    phone
from staging.person_record
"""


def build_input(con: duckdb.DuckDBPyConnection) -> int:
    con.execute("create schema if not exists linkage")
    con.execute(INPUT_SQL)
    return con.execute(f"select count(*) from {INPUT_TABLE}").fetchall()[0][0]


def fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(
        f"select count(*), md5(string_agg(unique_id, ',' order by unique_id)) from {INPUT_TABLE}"
    ).fetchall()[0]
    return f"{row[0]}:{row[1]}"


def make_linker(con: duckdb.DuckDBPyConnection, settings) -> Linker:
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(INPUT_TABLE)
    return Linker(sdf, settings, log_level=logging.WARNING)


@dataclass
class TrainedModel:
    version: str
    path: Path
    metadata: dict


TRAINING_SAMPLE = "person_linkage_training_sample"  # main schema, like the input table


def _training_table(con: duckdb.DuckDBPyConnection, max_records: int) -> tuple[str, int]:
    """The records training reads: all of them, or a deterministic sample of at most `max_records`.

    Sampling records leaves every training estimate unbiased: λ (matching pairs / all pairs) and u
    (agreement among random pairs) scale the same way on both sides of the ratio, and m comes from
    EM within blocks whose match share does not change. It keeps EM's blocked pairs — which grow with
    the square of the records per block — bounded at any city size.
    """
    total = con.execute(f"select count(*) from {INPUT_TABLE}").fetchall()[0][0]
    if total <= max_records:
        return INPUT_TABLE, total
    per_mille = max(1, int(1000 * max_records / total))
    con.execute(f"create or replace table {TRAINING_SAMPLE} as select * from {INPUT_TABLE} "
                f"where hash(unique_id) % 1000 < {per_mille}")
    return TRAINING_SAMPLE, con.execute(f"select count(*) from {TRAINING_SAMPLE}").fetchall()[0][0]


def train_person_model(con: duckdb.DuckDBPyConnection, models_dir: Path, *, max_pairs: float = 2e6,
                       max_records: int = 300_000, seed: int = 1) -> TrainedModel:
    """Unsupervised training on the staged records; saves a new version (never promoted here)."""
    records = build_input(con)
    table, trained_on = _training_table(con, max_records)
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(table), person_settings(), log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(DETERMINISTIC_RULES, recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    for rule in TRAINING_BLOCKS:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    trained_at = dt.datetime.now(dt.timezone.utc)
    version = trained_at.strftime("%Y%m%dT%H%M%SZ")
    out = Path(models_dir) / "person" / version
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.duckdb.json"
    linker.misc.save_model_to_json(str(model_path), overwrite=True)
    metadata = {
        "version": version, "trained_at": trained_at.isoformat(), "splink_version": splink.__version__,
        "engine": "duckdb", "training_data_fingerprint": fingerprint(con), "records": records,
        "records_trained_on": trained_on, "max_pairs": max_pairs,
        "settings_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    for name, chart in (("match_weights", linker.visualisations.match_weights_chart()),
                        ("m_u_parameters", linker.visualisations.m_u_parameters_chart())):
        chart.save(str(out / f"{name}.html"), inline=True)
    linker.table_management.delete_tables_created_by_splink_from_db()
    con.execute(f"drop table if exists {TRAINING_SAMPLE}")
    return TrainedModel(version, model_path, metadata)


@dataclass
class LinkResult:
    clusters: "pl.DataFrame"  # source, record_id, cluster_id, match_probability
    scored_pairs: int
    flags: "pl.DataFrame"  # source, record_id, cluster_key, reason, action (over-merge guard)


def _split_unique_id(frame: "pl.DataFrame") -> "pl.DataFrame":
    import polars as pl

    return frame.with_columns(
        pl.col("unique_id").str.splitn(":", 2).struct.rename_fields(["source", "record_id"]).alias("_k")
    ).unnest("_k")


def predict_and_cluster(con: duckdb.DuckDBPyConnection, model_path: Path, threshold: float,
                        review_threshold: float = 0.5) -> LinkResult:
    """Score candidate pairs with an approved model and cluster at the threshold, honouring clerical
    decisions and the over-merge guard (linkage_models/_clusters.py).

    Pairs at or above `review_threshold` are kept in linkage.person_pairs for reports and clerical review.
    """
    import polars as pl

    from linkage_models._clusters import cluster_persons

    import time

    started = time.perf_counter()
    build_input(con)
    linker = make_linker(con, str(model_path))
    pairs = linker.inference.predict(threshold_match_probability=min(review_threshold, threshold))
    logging.getLogger("familylink.link").info("link step predict took %.1f s", time.perf_counter() - started)
    started = time.perf_counter()
    con.execute(
        f"create or replace table linkage.person_pairs as select unique_id_l, unique_id_r, match_weight, "
        f"match_probability from {pairs.physical_name}"
    )
    linker.table_management.delete_tables_created_by_splink_from_db()
    clustering = cluster_persons(con, INPUT_TABLE, threshold)
    con.register("_clusters", clustering.clusters)
    # each record's strongest accepted link (null for a record linked to nothing)
    frame = con.sql(
        f"""
        with ends as (
            select unique_id_l as unique_id, match_probability from linkage.person_pairs
            where match_probability >= {float(threshold)}
            union all
            select unique_id_r, match_probability from linkage.person_pairs
            where match_probability >= {float(threshold)}
        ),
        strongest as (select unique_id, max(match_probability) as match_probability from ends group by unique_id)
        select c.unique_id, c.cluster_id, s.match_probability
        from _clusters as c left join strongest as s using (unique_id)
        """
    ).pl()
    con.unregister("_clusters")
    scored = con.execute("select count(*) from linkage.person_pairs").fetchall()[0][0]
    clusters = _split_unique_id(frame).select("source", "record_id", pl.col("cluster_id").cast(pl.String),
                                              "match_probability")
    flags = _split_unique_id(clustering.flags).select("source", "record_id", "cluster_key", "reason", "action")
    logging.getLogger("familylink.link").info("link step cluster took %.1f s", time.perf_counter() - started)
    return LinkResult(clusters, scored, flags)
