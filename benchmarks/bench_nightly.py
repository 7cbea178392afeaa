"""The whole nightly run on a new installation: wall time, CPU and peak memory of `familylink run` (ingest and
validation of every extract, link, publish, analysts' database, reports, cohorts), from an empty data folder.

    .venv/bin/python benchmarks/bench_nightly.py --data-dir data/bench1m   # a city with an approved model

The city's extracts, reference files (gazetteer) and person models are copied into a fresh data folder beside it
(the copy is not timed), so the run starts as a first night does: nothing staged, linked or published, the
approved model in place. Issue 12's target at ≈1M records: 4 minutes on 2 cores. The folder is removed after.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="a city (landing/, reference/) with an approved person model (models/), e.g. after "
                             "benchmarks/bench_link.py")
    parser.add_argument("--keep", action="store_true", help="keep the run's data folder")
    args = parser.parse_args()
    source = args.data_dir.resolve()
    if not (source / "models" / "person" / "approved.json").is_file():
        print(f"{source}: no approved person model (models/person/approved.json); train and promote one first",
              file=sys.stderr)
        return 2
    run_dir = source.with_name(source.name + "-nightly")
    shutil.rmtree(run_dir, ignore_errors=True)
    for part in ("landing", "reference", "models"):
        shutil.copytree(source / part, run_dir / part)
    started = time.perf_counter()
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "familylink"), "run", "--data-dir", str(run_dir)],
                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
    print(json.dumps({"command": "familylink run", "exit": done.returncode, "seconds": round(seconds, 1),
                      "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
                      "peak_mb": round(usage.ru_maxrss / 1024)}))
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
