"""Ingest + validation throughput and peak memory at ≈1M source records.

    .venv/bin/python benchmarks/bench_ingest.py --people 660000 [--city DIR]

Builds the synthetic city (unless --city points at one), then runs the whole ingest stage (read, map,
standardise, GX validation, staging, quarantine) into a fresh DuckDB file and prints per-source rows and
seconds, the total, and the peak resident memory of the process.
"""

import argparse
import resource
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipelines.settings import Settings
from pipelines.stages import begin_run, ingest_one
from sources._contract import load_contracts
from sources.synthetic import CityConfig, generate_city

parser = argparse.ArgumentParser()
parser.add_argument("--people", type=int, default=660000)
parser.add_argument("--city", type=Path, default=None)
args = parser.parse_args()

with tempfile.TemporaryDirectory() as tmp:
    data = Path(tmp) / "data"
    if args.city:
        shutil.copytree(args.city / "landing", data / "landing")
    else:
        generate_city(data, CityConfig(people=args.people, seed=42))
    settings = Settings(data_dir=data)
    t0 = time.perf_counter()
    import expectations  # noqa: F401  (GX takes seconds to import; a nightly process pays it once)

    print(f"import great_expectations: {time.perf_counter() - t0:.1f} s (not counted below)")
    run_id = begin_run(settings, "benchmark")
    started = time.perf_counter()
    # two workers, as the Prefect ingest flow runs sources (reads and standardising overlap; GX and writes
    # take turns)
    with ThreadPoolExecutor(max_workers=2) as pool:
        loads = list(pool.map(lambda s: ingest_one(settings, s, run_id), sorted(load_contracts(settings.contracts_dir))))
    wall = time.perf_counter() - started
    total_rows = sum(l.rows_read for l in loads)
    for load in loads:
        print(f"{load.source:<10} read={load.rows_read:>9,} staged={load.rows_staged:>9,} "
              f"quarantined={load.rows_quarantined:>6,}")
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"total rows={total_rows:,} wall_s={wall:.1f} rows_per_s={total_rows / wall:,.0f} peak_rss_mb={peak_mb:,.0f}")
