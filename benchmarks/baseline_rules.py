"""How hard is the city? A deterministic exact-key cascade against the product's model, on the same records.

    .venv/bin/python benchmarks/baseline_rules.py --people 20000            # build, ingest, baseline, product
    .venv/bin/python benchmarks/baseline_rules.py --data-dir data --no-model # baseline on an ingested city

The baseline links two staged records when they agree exactly on any one of eleven keys (the rules a data
team writes first), clusters the links transitively, and is scored with the same pairwise metric as
`familylink evaluate`. The product's figures come from the real CLI (train, promote-model, link) on the
same warehouse. A city on which the baseline scores well is too easy to say anything about real extracts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from linkage_models.evaluate import person_link_quality  # noqa: E402

# Each rule: a name and the staged columns that must all be present and equal.
RULES: list[tuple[str, list[str]]] = [
    ("first name + surname + date of birth", ["first_name_std", "last_name_std", "date_of_birth"]),
    ("surname + date of birth + postcode", ["last_name_std", "date_of_birth", "postcode"]),
    ("first name + surname + postcode", ["first_name_std", "last_name_std", "postcode"]),
    ("first name + date of birth + postcode", ["first_name_std", "date_of_birth", "postcode"]),
    ("surname + first initial + date of birth", ["last_name_std", "_initial", "date_of_birth"]),
    ("PNC id", ["pnc_id"]),
    ("NHS number", ["nhs_number"]),
    ("UPN", ["upn"]),
    ("NI number", ["ni_number"]),
    ("phone + first name", ["phone", "first_name_std"]),
    ("email + surname", ["email", "last_name_std"]),
]


def baseline_clusters(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    records = con.sql(
        "select row_number() over (order by source, record_id) - 1 as idx, source, record_id, first_name_std, "
        "last_name_std, left(first_name_std, 1) as _initial, date_of_birth, postcode, pnc_id, nhs_number, upn, "
        "ni_number, phone, email from staging.person_record").pl()
    edges = []
    for _, columns in RULES:
        keyed = records.select("idx", *columns).drop_nulls(columns)
        keyed = keyed.filter(pl.all_horizontal(pl.col(c).cast(pl.String) != "" for c in columns))
        groups = keyed.group_by(columns).agg(pl.col("idx").min().alias("root"), pl.col("idx"))
        edges.append(groups.explode("idx").select(pl.col("root").alias("a"), pl.col("idx").alias("b")))
    return records.select("source", "record_id").with_columns(
        pl.Series("cluster_id", _components(records.height, pl.concat(edges))))


def _components(n: int, edges: pl.DataFrame) -> list[int]:
    """Connected components by repeated min-label propagation."""
    label = pl.DataFrame({"node": range(n), "label": range(n)}, schema={"node": pl.Int64, "label": pl.Int64})
    both = pl.concat([edges.select(pl.col("a").alias("x"), pl.col("b").alias("y")),
                      edges.select(pl.col("b").alias("x"), pl.col("a").alias("y"))]).cast(pl.Int64).unique()
    while True:
        neighbour = both.join(label, left_on="y", right_on="node").group_by("x").agg(pl.col("label").min().alias("m"))
        new = label.join(neighbour, left_on="node", right_on="x", how="left").select(
            "node", pl.min_horizontal("label", pl.col("m").fill_null(pl.col("label"))).alias("label"))
        # jump: a node takes its label's label (pointer doubling)
        new = new.join(new.rename({"node": "l", "label": "ll"}), left_on="label", right_on="l").select(
            "node", pl.min_horizontal("label", "ll").alias("label"))
        if new.sort("node")["label"].equals(label.sort("node")["label"]):
            return new.sort("node")["label"].to_list()
        label = new


def _cli(env: dict, *args: str) -> str:
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "familylink"), *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"familylink {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout


def _line(name: str, q: dict) -> str:
    return (f"{name:<28} P={q['pairwise_precision']:.4f} R={q['pairwise_recall']:.4f} F1={q['pairwise_f1']:.4f} "
            f"B3 P={q['bcubed_precision']:.4f} R={q['bcubed_recall']:.4f} "
            f"same-household precision={q['same_household_precision']:.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=None, help="an existing data folder (built and ingested)")
    parser.add_argument("--profile", choices=["realistic", "easy"], default="realistic")
    parser.add_argument("--no-model", action="store_true", help="baseline only; skip training and linking")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    data = args.data_dir or ROOT / "data" / f"bench-baseline-{args.profile}-{args.people}"
    env = {**os.environ, "FAMILYLINK_DATA_DIR": str(data), "FAMILYLINK_PSEUDONYMISATION_KEY": "benchmark-key"}
    if args.data_dir is None:
        from sources.synthetic import CityConfig, generate_city

        config = CityConfig(people=args.people, seed=args.seed) if args.profile == "realistic" else \
            CityConfig.easy(people=args.people, seed=args.seed)
        t0 = time.perf_counter()
        generate_city(data, config)
        print(f"city: {args.profile}, {args.people:,} people, built in {time.perf_counter() - t0:.1f} s")
        _cli(env, "ingest")
    truth = pl.read_parquet(data / "truth" / "records.parquet")
    warehouse = data / "warehouse" / "familylink.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    t0 = time.perf_counter()
    baseline = baseline_clusters(con)
    seconds = time.perf_counter() - t0
    con.close()
    figures = {"baseline": person_link_quality(baseline, truth)}
    print(f"records staged: {baseline.height:,}; baseline rules: {len(RULES)} (clustered in {seconds:.1f} s)")
    print(_line("exact-key baseline", figures["baseline"]))
    if not args.no_model:
        t0 = time.perf_counter()
        _cli(env, "train")
        version = max((data / "models" / "person").iterdir(), key=lambda p: p.stat().st_mtime).name
        _cli(env, "promote-model", version)
        _cli(env, "link")
        con = duckdb.connect(str(warehouse), read_only=True)
        model = con.sql("select source, record_id, person_id as cluster_id from graph.record_link").pl()
        con.close()
        figures["model"] = person_link_quality(model, truth)
        print(_line(f"familylink model ({time.perf_counter() - t0:.0f} s)", figures["model"]))
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=float))


if __name__ == "__main__":
    main()
