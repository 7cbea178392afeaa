"""The realistic city: familylink's links beside a plain Splink model from Splink's documentation, same records.

    .venv/bin/python benchmarks/bench_city_plain.py --people 20000        # builds a city, links it with the real CLI
    .venv/bin/python benchmarks/bench_city_plain.py --data-dir data/c20   # a city already ingested and linked

familylink's links are the city's current ones (graph.record_link, the approved model at the configured threshold);
with --people, a new city (seed 42) goes through `familylink synth`, then ingest, train, promote-model and link.
The plain model is Splink's documented person-deduplication example (docs/demos/examples/duckdb/
deduplicate_50k_synthetic: forename-surname, date of birth and postcode comparisons, its ten blocking rules,
trained as there), given what a data scientist would prepare from the staged records: familylink's standardised
forename, surname, date of birth and postcode (the example's birth place and occupation have no counterpart in the
city). It is clustered at 0.95, as in the example, and at familylink's threshold. Every staged record is scored
with the measures `familylink evaluate` uses; records quarantined at ingest are outside both.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_febrl import _cli, link_through_cli  # noqa: E402
from bench_historical import docs_50k_model, documented_splink  # noqa: E402
from linkage_models import person_link_quality  # noqa: E402

MEASURES = ("pairwise_precision", "pairwise_recall", "pairwise_f1", "same_household_precision")


def staged(warehouse: Path) -> pl.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.sql("""
            select source || ':' || record_id as unique_id, source, record_id, first_name_std as first_name,
                   last_name_std as surname, first_name_std || ' ' || last_name_std as first_name_surname_concat,
                   strftime(date_of_birth, '%Y-%m-%d') as dob, postcode as postcode_fake
            from staging.person_record""").pl()
    finally:
        con.close()


def ours(warehouse: Path) -> pl.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.sql("select source, record_id, person_id as cluster_id from graph.record_link").pl()
    finally:
        con.close()


def plain(records: pl.DataFrame, thresholds: tuple[float, ...]) -> dict[float, pl.DataFrame]:
    frame = records.select("unique_id", "first_name", "surname", "first_name_surname_concat", "dob", "postcode_fake")
    return documented_splink(frame, *docs_50k_model(attributes=False), thresholds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", type=Path, help="a city ingested and linked")
    where.add_argument("--people", type=int, help="build a city of this many residents and link it")
    parser.add_argument("--threshold", type=float, default=0.99, help="familylink's match threshold (default 0.99)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data_dir
        if data is None:
            data = Path(tmp) / "data"
            _cli("synth", "--people", str(args.people), "--data-dir", str(data))
            link_through_cli(data, ROOT / "sources" / "contracts", data / "landing")
        compare(data, args.threshold)


def compare(data: Path, threshold: float) -> None:
    warehouse = data / "warehouse" / "familylink.duckdb"
    truth = pl.read_parquet(data / "truth" / "records.parquet")
    records = staged(warehouse)
    truth = truth.join(records.select("source", "record_id"), on=["source", "record_id"])  # staged records only
    rows = [("familylink (its links in the warehouse)", person_link_quality(ours(warehouse), truth), None)]
    started = time.perf_counter()
    for threshold, clusters in plain(records, (0.95, threshold)).items():
        clusters = clusters.join(records.select("unique_id", "source", "record_id"), on="unique_id")
        rows.append((f"plain Splink (its docs' example), clustered at {threshold}",
                     person_link_quality(clusters.select("source", "record_id", "cluster_id"), truth), threshold))
    seconds = time.perf_counter() - started
    print(f"{records.height:,} staged records; plain Splink trained, predicted and clustered in {seconds:.0f} s\n")
    print("| model | " + " | ".join(MEASURES) + " |")
    print("|---|" + "---:|" * len(MEASURES))
    for label, quality, _ in rows:
        print(f"| {label} | " + " | ".join(f"{quality[m]:.4f}" for m in MEASURES) + " |")


if __name__ == "__main__":
    main()
