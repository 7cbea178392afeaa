"""Blocking analysis for the person model: comparisons each prediction blocking rule adds (Splink's own
blocking analysis), the largest blocks, and — from the synthetic city's ground truth — the share of true
matching pairs that at least one rule reaches (recall ceiling of blocking).

    .venv/bin/python benchmarks/blocking_analysis.py --data-dir data            # an ingested warehouse
    .venv/bin/python benchmarks/blocking_analysis.py --data-dir data/bench1m --sample 0.2

Prints a markdown table; the figures are quoted in docs/adr/0002-person-linkage-model.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl
from splink import DuckDBAPI
from splink.blocking_analysis import count_comparisons_from_blocking_rules, n_largest_blocks

from linkage_models import build_input, build_plan
from linkage_models._model_builder import INPUT_TABLE
from pipelines.settings import Settings
from pipelines.stages import open_warehouse


def rule_sql(rule) -> str:
    return rule if isinstance(rule, str) else rule.get_blocking_rule("duckdb").blocking_rule_sql


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--sample", type=float, default=1.0,
                        help="record_sample_proportion for Splink's counts (1.0 = exact)")
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)
    con = open_warehouse(settings)
    records = build_input(con)
    # the blocking rules the model builder chooses for these records (as `familylink train` would)
    PREDICTION_BLOCKS = [r["blocking_rule"] for r in
                         build_plan(con).splink_settings["blocking_rules_to_generate_predictions"]]
    db_api = DuckDBAPI(connection=con)
    table = db_api.register(INPUT_TABLE)

    started = time.perf_counter()
    counts = count_comparisons_from_blocking_rules(table, blocking_rules=PREDICTION_BLOCKS, link_type="dedupe_only",
                                                   record_sample_proportion=args.sample)
    counted_s = time.perf_counter() - started

    truth_path = settings.truth / "records.parquet"
    reach: dict[str, tuple[int, int]] = {}
    true_pairs = None
    if truth_path.exists():
        truth = pl.read_parquet(truth_path).select(
            (pl.col("source") + ":" + pl.col("record_id")).alias("unique_id"), "person_id")
        con.register("_truth", truth)
        con.execute(
            """
            create or replace temp table _true_pairs as
            select a.unique_id as id_l, b.unique_id as id_r
            from _truth as a join _truth as b on a.person_id = b.person_id and a.unique_id < b.unique_id
            """
        )
        # only pairs of records that reached linking (quarantined rows are not in the input)
        pairs = (f"from _true_pairs as p join {INPUT_TABLE} as l on l.unique_id = p.id_l "
                 f"join {INPUT_TABLE} as r on r.unique_id = p.id_r")
        true_pairs = con.execute(f"select count(*) {pairs}").fetchall()[0][0]
        reached_so_far: list[str] = []
        for rule in PREDICTION_BLOCKS:
            sql = rule_sql(rule)
            alone = con.execute(f"select count(*) {pairs} where {sql}").fetchall()[0][0]
            reached_so_far.append(f"coalesce({sql}, false)")
            cumulative = con.execute(f"select count(*) {pairs} where {' or '.join(reached_so_far)}").fetchall()[0][0]
            reach[rule_sql(rule)] = (alone, cumulative)

    print(f"\n{records:,} records; Splink comparison counts with record_sample_proportion={args.sample} "
          f"({counted_s:.1f} s)\n")
    header = "| blocking rule | comparisons added | cumulative comparisons |"
    if true_pairs is not None:
        header += " true pairs reached by the rule | true pairs reached so far |"
    print(header)
    print("|---|---:|---:|" + ("---:|---:|" if true_pairs is not None else ""))
    for rule, record in zip(PREDICTION_BLOCKS, counts):
        line = (f"| `{rule_sql(rule)}` | {record['marginal_comparison_count']:,.0f} | "
                f"{record['cumulative_comparison_count']:,.0f} |")
        if true_pairs is not None:
            alone, cumulative = reach[rule_sql(rule)]
            line += f" {alone / true_pairs:.2%} | {cumulative / true_pairs:.2%} |"
        print(line)
    if true_pairs is not None:
        print(f"\n{true_pairs:,} true matching pairs in the ground truth.")

    print("\nLargest blocks (before filter conditions):")
    for rule in PREDICTION_BLOCKS:
        largest = n_largest_blocks(table, blocking_rule=rule, link_type="dedupe_only", n_largest=1).as_pandas_dataframe()
        if len(largest):
            print(f"- `{rule_sql(rule)}`: largest block {int(largest['block_count'].iloc[0]):,} comparisons")
    con.close()


if __name__ == "__main__":
    main()
