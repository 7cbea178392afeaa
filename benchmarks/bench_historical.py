"""Splink's public deduplication sets through the real product, beside Splink's own example model for each.

    .venv/bin/python benchmarks/bench_historical.py [--dataset historical_50k|fake_1000] [--file FILE] [--work DIR]

**historical_50k** (the default):

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

**fake_1000** (`data/fake_1000.csv` there, or `splink_datasets.fake_1000`): 1,000 records of 251 people with typos
in every field, dates of birth keyed years apart, emails and cities. Onboarded the same way: names, date of
birth and email, the city as a declared attribute. The plain model is the one in Splink's README: name, Jaro
surname, date of birth, city and email comparisons, blocks on forename + date of birth and on surname,
clusters at 0.95.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_febrl import link_through_cli  # noqa: E402
from linkage_models import person_link_quality  # noqa: E402

HISTORICAL_CONTRACT = """\
source: historical
agency: Historical persons (Splink's historical_50k)
description: wikidata persons with introduced errors, onboarded through this contract alone
file_pattern: "historical/historical_*.parquet"
format: parquet
record_key: unique_id
extract_date: {from_file_name: 'historical_(?P<date>\\d{8})'}
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

FAKE_CONTRACT = """\
source: fake
agency: Splink's fake_1000
description: synthetic persons with typos in every field, onboarded through this contract alone
file_pattern: "fake/fake_*.parquet"
format: parquet
record_key: unique_id
extract_date: {from_file_name: 'fake_(?P<date>\\d{8})'}
trust_rank: 1
sharing:
  owning_organisation: Splink datasets
  lawful_basis: "public example data"
  retention_days: 365
person:
  first_name: {column: first_name}
  last_name: {column: surname}
  date_of_birth: {column: dob, formats: ["%Y-%m-%d"]}
  email: {column: email}
attributes:
  - {name: city, column: city}
"""


def _records(dataset: str, file: Path | None) -> pl.DataFrame:
    if file is not None:
        frame = pl.read_parquet(file) if file.suffix == ".parquet" else pl.read_csv(file, infer_schema_length=0)
    else:
        from splink.datasets import splink_datasets

        frame = pl.from_pandas(getattr(splink_datasets, dataset))
    # every column as text, as an agency's extract arrives (fake_1000's CSV has no types)
    return frame.with_columns(pl.all().cast(pl.String))


def _scored(clusters: pl.DataFrame, truth: pl.DataFrame, seconds: float) -> dict:
    """Every record scored; one the run did not place (quarantined) is a cluster of its own."""
    placed = truth.select("source", "record_id").join(clusters, on=["source", "record_id"], how="left")
    placed = placed.with_columns(pl.coalesce("cluster_id", pl.lit("unplaced:") + pl.col("record_id")).alias("cluster_id"))
    return {**person_link_quality(placed, truth), "placed": clusters.height, "seconds": seconds}


def ours(dataset: "Dataset", records: pl.DataFrame, work: Path, truth: pl.DataFrame, name_only: bool = False) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    (work / "landing" / dataset.source).mkdir(parents=True)
    (work / "contracts").mkdir()
    records.write_parquet(work / "landing" / dataset.source / f"{dataset.source}_20260101.parquet")
    # the contract may admit records that carry a name and nothing else to link on
    (work / "contracts" / f"{dataset.source}.yaml").write_text(
        dataset.contract + ("minimum_data: {any_of: []}\n" if name_only else ""))
    clusters, _, seconds = link_through_cli(work / "data", work / "contracts", work / "landing")
    return _scored(clusters, truth, seconds)


def documented_splink(records: pl.DataFrame, settings, prior_rules: list, recall: float, em_rules: list,
                      max_pairs: float, thresholds: tuple[float, ...] = (0.95,)) -> dict[float, pl.DataFrame]:
    """A documented Splink model trained as its documentation does (the prior from deterministic rules, u by random
    sampling, EM on the blocks given) and clustered at each threshold: threshold -> (unique_id, cluster_id)."""
    from splink import DuckDBAPI, Linker

    linker = Linker(DuckDBAPI().register(records.to_arrow()), settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(prior_rules, recall=recall)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs)
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(rule, estimate_without_term_frequencies=True)
    pairs = linker.inference.predict(threshold_match_probability=min(thresholds))
    return {t: pl.from_arrow(linker.clustering.cluster_pairwise_predictions_at_threshold(
        pairs, threshold_match_probability=t).as_duckdbpyrelation().arrow()).select(
        pl.col("unique_id").cast(pl.String), pl.col("cluster_id").cast(pl.String)) for t in thresholds}


def _plain(dataset: "Dataset", records: pl.DataFrame, truth: pl.DataFrame, settings, prior_rules: list, recall: float,
           em_rules: list, max_pairs: float) -> dict:
    """A documented Splink model, trained and clustered at 0.95 as its documentation does."""
    started = time.perf_counter()
    clusters = documented_splink(records, settings, prior_rules, recall, em_rules, max_pairs)[0.95]
    clusters = clusters.select(pl.lit(dataset.source).alias("source"), pl.col("unique_id").alias("record_id"),
                               "cluster_id")
    return _scored(clusters, truth, time.perf_counter() - started)


def docs_50k_model(attributes: bool = True) -> tuple:
    """Splink's documented model for historical_50k (its deduplicate_50k_synthetic example) and how it trains:
    (settings, prior rules, recall, EM blocks, max pairs for u). Without `attributes`, its birth place and
    occupation (two comparisons and a block) are left out, for data that has neither."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("substr(first_name,1,3)", "substr(surname,1,4)"),
            block_on("surname", "dob"),
            block_on("first_name", "dob"),
            block_on("postcode_fake", "first_name"),
            block_on("postcode_fake", "surname"),
            *([block_on("dob", "birth_place")] if attributes else []),
            block_on("substr(postcode_fake,1,3)", "dob"),
            block_on("substr(postcode_fake,1,3)", "first_name"),
            block_on("substr(postcode_fake,1,3)", "surname"),
            block_on("substr(first_name,1,2)", "substr(surname,1,2)", "substr(dob,1,4)"),
        ],
        comparisons=[
            cl.ForenameSurnameComparison("first_name", "surname",
                                         forename_surname_concat_col_name="first_name_surname_concat"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode_fake"),
            *([cl.ExactMatch("birth_place").configure(term_frequency_adjustments=True),
               cl.ExactMatch("occupation").configure(term_frequency_adjustments=True)] if attributes else []),
        ],
        retain_intermediate_calculation_columns=False,
    )
    return (settings, [block_on("first_name", "surname", "dob"),
                       block_on("substr(first_name,1,2)", "surname", "substr(postcode_fake,1,2)"),
                       block_on("dob", "postcode_fake")], 0.6,
            [block_on("first_name", "surname"), block_on("dob")], 1e7)


def plain_historical(dataset: "Dataset", records: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Splink's documented model for historical_50k (its deduplicate_50k_synthetic example)."""
    frame = records.with_columns((pl.col("first_name") + " " + pl.col("surname")).alias("first_name_surname_concat"))
    return _plain(dataset, frame, truth, *docs_50k_model())


def plain_fake(dataset: "Dataset", records: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """The model in Splink's README, for fake_1000."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.JaroAtThresholds("surname"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.EmailComparison("email"),
        ],
        blocking_rules_to_generate_predictions=[block_on("first_name", "dob"), block_on("surname")],
        retain_intermediate_calculation_columns=False,
    )
    return _plain(dataset, records, truth, settings, [block_on("first_name", "surname")], 0.7,
                  [block_on("first_name", "surname"), block_on("email")], 1e6)


@dataclass(frozen=True)
class Dataset:
    source: str
    contract: str
    plain: object  # (dataset, records, truth) -> scores


DATASETS = {"historical_50k": Dataset("historical", HISTORICAL_CONTRACT, plain_historical),
            "fake_1000": Dataset("fake", FAKE_CONTRACT, plain_fake)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="historical_50k")
    parser.add_argument("--file", type=Path, help="the dataset's file (.parquet or .csv; else downloaded by Splink)")
    parser.add_argument("--work", type=Path, help="working folder (default: a familylink-<dataset> temporary folder)")
    args = parser.parse_args()
    dataset = DATASETS[args.dataset]
    work = args.work or Path(tempfile.gettempdir()) / f"familylink-{dataset.source}"
    records = _records(args.dataset, args.file)
    truth = records.select(pl.lit(dataset.source).alias("source"), pl.col("unique_id").alias("record_id"),
                           pl.col("cluster").alias("person_id"), pl.col("cluster").alias("household_id"))
    rows = []
    for label, run in (("familylink", lambda: ours(dataset, records, work, truth)),
                       ("familylink, contract admitting name-only records",
                        lambda: ours(dataset, records, work, truth, name_only=True)),
                       ("plain Splink (its docs' example)", lambda: dataset.plain(dataset, records, truth))):
        q = run()
        rows.append((label, q))
        print(f"  {label}: precision {q['pairwise_precision']:.4f} recall {q['pairwise_recall']:.4f} "
              f"F1 {q['pairwise_f1']:.4f}", flush=True)
    print(f"\n{args.dataset}\n\n| model | records | placed | precision | recall | F1 | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, q in rows:
        print(f"| {label} | {q['records']:,} | {q['placed']:,} | {q['pairwise_precision']:.4f} | "
              f"{q['pairwise_recall']:.4f} | {q['pairwise_f1']:.4f} | {q['seconds']:.0f} |")


if __name__ == "__main__":
    main()
