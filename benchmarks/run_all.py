"""Every benchmark `make bench` runs, one after the other, each in its own process (figures print as they come).

    .venv/bin/python benchmarks/run_all.py            # accuracy: FEBRL3/4 and the realistic 20k city beside plain Splink
    .venv/bin/python benchmarks/run_all.py --scale    # also ≈1M records: generation, ingest, link stage, the whole nightly run

The scale benchmarks build their city under data/bench1m (gitignored) and take tens of minutes on 2 cores;
run them on a quiet machine, since their figures are wall times.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

ACCURACY = [
    ["benchmarks/bench_febrl.py", "--dataset", "all"],
    ["benchmarks/baseline_rules.py", "--people", "20000"],
    ["benchmarks/bench_city_plain.py", "--people", "20000"],
]
SCALE = [
    ["benchmarks/bench_synthetic.py", "--people", "660000"],
    ["benchmarks/bench_ingest.py", "--people", "660000"],
    # one ≈1M-record city kept for the link stage (which trains and promotes its model) and the whole nightly run
    ["familylink", "synth", "--people", "600000", "--data-dir", "data/bench1m"],
    ["familylink", "ingest", "--data-dir", "data/bench1m"],
    ["benchmarks/bench_link.py", "--data-dir", "data/bench1m"],
    ["benchmarks/bench_nightly.py", "--data-dir", "data/bench1m"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", action="store_true", help="also the ≈1M-record benchmarks")
    args = parser.parse_args()
    failed = []
    for command in ACCURACY + (SCALE if args.scale else []):
        print(f"\n=== {' '.join(command)}", flush=True)
        started = time.perf_counter()
        argv = [str(Path(PY).parent / "familylink"), *command[1:]] if command[0] == "familylink" else [PY, *command]
        rc = subprocess.call(argv, cwd=ROOT)
        print(f"=== exit {rc} in {time.perf_counter() - started:.0f} s", flush=True)
        if rc:
            failed.append(command[0])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
