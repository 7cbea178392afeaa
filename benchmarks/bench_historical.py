"""Splink's `historical_50k` deduplication set through the real product, beside Splink's own example model.

    .venv/bin/python benchmarks/bench_historical.py [--file historical_figures_with_errors_50k.parquet] [--work DIR]

50,578 records of 5,156 historical persons (wikidata), duplicated with heavy errors: nicknames and titles,
dates of birth off by days to decades, postcodes moved within a sector. Public data from the
moj-analytical-services/splink_datasets repository (`data/historical_figures_with_errors_50k.parquet`); without
`--file` it is read through `splink.datasets.splink_datasets.historical_50k`, which downloads it once.

Onboarded through one YAML contract, as a council onboards an agency: names, date of birth (dates back to the
Middle Ages, so the contract moves the earliest date allowed), sex and postcode; `birth_place` and `occupation`
are declared as attributes (values many people share, compared with term frequencies). Records with a name and nothing else
to link on are quarantined by the default minimum-data rule; the scores below count them as unlinked
(every pair they belong to is missed), so every model is measured on all 50,578 records. A second run's
contract admits them (`minimum_data: {any_of: []}`).

The plain Splink model is the one in Splink's documentation (docs/demos/examples/duckdb/
deduplicate_50k_synthetic): forename-surname, date of birth and postcode comparisons, birth place and
occupation, ten blocking rules with name and postcode prefixes, clusters at 0.95 as there.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_febrl import link_through_cli  # noqa: E402
from linkage_models import person_link_quality  # noqa: E402

CONTRACT = """\
source: historical
agency: Historical persons (Splink's historical_50k)
description: wikidata persons with introduced errors, onboarded through this contract alone
file_pattern: "historical/historical_*.parquet"
format: parquet
record_key: unique_id
extract_date: {from_file_name: 'historical_(?P<date>\\\\d{8})'}
trust_rank: 1
sharing:
  owning_organisation: Splink datasets
  lawful_basis: "public example data about historical figures"
  retention_days: 365
date_of_birth_bounds: {earliest: 0001-01-01}
person:
  first_name: {column: first_name}
  last_name: {column: surname}
  date_of_birth: {column: dob, formats: ["%Y-%m-%d"]}
  sex: {column: gender}
  postcode: {column: postcode_fake}
attributes:
  - {name: birth_place, column: birth_place}
  - {name: occupation, column: occupation}
"""


def _records(file: Path | None) -> pl.DataFrame:
    if file is not None:
        return pl.read_parquet(file)
    from splink.datasets import splink_datasets

    return pl.from_pandas(splink_datasets.historical_50k)


def _scored(clusters: pl.DataFrame, truth: pl.DataFrame, seconds: float) -> dict:
    """Every record scored; one the run did not place (quarantined) is a cluster of its own."""
    placed = truth.select("source", "record_id").join(clusters, on=["source", "record_id"], how="left")
    placed = placed.with_columns(pl.coalesce("cluster_id", pl.lit("unplaced:") + pl.col("record_id")).alias("cluster_id"))
    return {**person_link_quality(placed, truth), "placed": clusters.height, "seconds": seconds}


def ours(records: pl.DataFrame, work: Path, truth: pl.DataFrame, name_only: bool = False) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    (work / "landing" / "historical").mkdir(parents=True)
    (work / "contracts").mkdir()
    records.write_parquet(work / "landing" / "historical" / "historical_20260101.parquet")
    # the contract may admit records that carry a name and nothing else to link on
    (work / "contracts" / "historical.yaml").write_text(CONTRACT + ("minimum_data: {any_of: []}\n" if name_only else ""))
    clusters, _, seconds = link_through_cli(work / "data", work / "contracts", work / "landing")
    return _scored(clusters, truth, seconds)


def plain_splink(records: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Splink's documented model for this dataset, on the same records."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    started = time.perf_counter()
    blocking_rules = [
        block_on("substr(first_name,1,3)", "substr(surname,1,4)"),
        block_on("surname", "dob"),
        block_on("first_name", "dob"),
        block_on("postcode_fake", "first_name"),
        block_on("postcode_fake", "surname"),
        block_on("dob", "birth_place"),
        block_on("substr(postcode_fake,1,3)", "dob"),
        block_on("substr(postcode_fake,1,3)", "first_name"),
        block_on("substr(postcode_fake,1,3)", "surname"),
        block_on("substr(first_name,1,2)", "substr(surname,1,2)", "substr(dob,1,4)"),
    ]
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.ForenameSurnameComparison("first_name", "surname",
                                         forename_surname_concat_col_name="first_name_surname_concat"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode_fake"),
            cl.ExactMatch("birth_place").configure(term_frequency_adjustments=True),
            cl.ExactMatch("occupation").configure(term_frequency_adjustments=True),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    frame = records.with_columns((pl.col("first_name") + " " + pl.col("surname")).alias("first_name_surname_concat"))
    linker = Linker(db_api.register(frame.to_arrow()), settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname", "dob"),
         block_on("substr(first_name,1,2)", "surname", "substr(postcode_fake,1,2)"),
         block_on("dob", "postcode_fake")], recall=0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first_name", "surname"), estimate_without_term_frequencies=True)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("dob"), estimate_without_term_frequencies=True)
    pairs = linker.inference.predict()
    clusters = pl.from_arrow(linker.clustering.cluster_pairwise_predictions_at_threshold(
        pairs, threshold_match_probability=0.95).as_duckdbpyrelation().arrow())
    clusters = clusters.select(pl.lit("historical").alias("source"), pl.col("unique_id").cast(pl.String).alias("record_id"),
                               pl.col("cluster_id").cast(pl.String))
    return _scored(clusters, truth, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="historical_figures_with_errors_50k.parquet (else downloaded)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "familylink-historical")
    args = parser.parse_args()
    records = _records(args.file)
    truth = records.select(pl.lit("historical").alias("source"), pl.col("unique_id").cast(pl.String).alias("record_id"),
                           pl.col("cluster").cast(pl.String).alias("person_id"),
                           pl.col("cluster").cast(pl.String).alias("household_id"))
    rows = []
    for label, run in (("familylink", lambda: ours(records, args.work, truth)),
                       ("familylink, contract admitting name-only records",
                        lambda: ours(records, args.work, truth, name_only=True)),
                       ("plain Splink (its docs' example)", lambda: plain_splink(records, truth))):
        q = run()
        rows.append((label, q))
        print(f"  {label}: precision {q['pairwise_precision']:.4f} recall {q['pairwise_recall']:.4f} "
              f"F1 {q['pairwise_f1']:.4f}", flush=True)
    print("\n| model | records | placed | precision | recall | F1 | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, q in rows:
        print(f"| {label} | {q['records']:,} | {q['placed']:,} | {q['pairwise_precision']:.4f} | "
              f"{q['pairwise_recall']:.4f} | {q['pairwise_f1']:.4f} | {q['seconds']:.0f} |")


if __name__ == "__main__":
    main()
