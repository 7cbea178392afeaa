"""Time and memory of building the synthetic city.

    .venv/bin/python benchmarks/bench_synthetic.py --people 660000   # ≈1M agency records

Prints records written, wall seconds and peak resident memory of this process.
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

from sources.synthetic import CityConfig, generate_city

parser = argparse.ArgumentParser()
parser.add_argument("--people", type=int, default=660000)
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--out", type=Path, default=None)
args = parser.parse_args()
with tempfile.TemporaryDirectory() as tmp:
    out = args.out or Path(tmp)
    started = time.perf_counter()
    manifest = generate_city(out, CityConfig(people=args.people, seed=args.seed))
    wall = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"people={args.people:,} records={manifest.records:,} wall_s={wall:.1f} peak_rss_mb={peak_mb:,.0f}")
