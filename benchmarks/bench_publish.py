"""Publishing at scale: wall time and peak memory of building, checking, exporting and switching to a golden
snapshot, on a warehouse whose household graph is built (run benchmarks/bench_link.py on it first).

    .venv/bin/python benchmarks/bench_publish.py --data-dir data/bench1m [--runs 2]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from pipelines.settings import Settings
from pipelines.stages import begin_run, end_run, open_warehouse, run_publish


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)
    con = open_warehouse(settings)
    records, persons = con.execute("select count(*), count(distinct person_id) from graph.record_link").fetchall()[0]
    model = con.execute("select any_value(model_version) from graph.record_link").fetchall()[0][0]
    con.close()
    print(f"graph: {records:,} source records, {persons:,} persons")
    for _ in range(args.runs):
        run_id = begin_run(settings, "benchmark-publish")
        con = open_warehouse(settings, ensure=False)
        started = time.perf_counter()
        published = run_publish(settings, run_id, model, con=con)
        seconds = time.perf_counter() - started
        con.close()
        end_run(settings, run_id, "completed")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{published.snapshot_id}: {seconds:.1f} s, peak RSS {peak:,.0f} MB, rows {published.row_counts}")


if __name__ == "__main__":
    main()
