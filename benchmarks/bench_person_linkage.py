"""Person-linkage accuracy and time on the synthetic city at several thresholds.

    .venv/bin/python benchmarks/bench_person_linkage.py --people 20000

Builds the city, ingests it, trains the person model, then predicts and clusters at each threshold and
prints pairwise precision/recall/F1 on the final clusters, B-cubed, and same-household precision.
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import polars as pl

from linkage_models._person_model import predict_and_cluster, train_person_model
from linkage_models.evaluate import person_link_quality
from pipelines.settings import Settings
from pipelines.stages import open_warehouse, run_ingest
from sources.synthetic import CityConfig, generate_city

parser = argparse.ArgumentParser()
parser.add_argument("--people", type=int, default=20000)
parser.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.95, 0.99])
args = parser.parse_args()
with tempfile.TemporaryDirectory() as tmp:
    data = Path(tmp) / "data"
    generate_city(data, CityConfig(people=args.people, seed=42))
    settings = Settings(data_dir=data)
    run_ingest(settings)
    con = open_warehouse(settings)
    t0 = time.perf_counter()
    model = train_person_model(con, settings.models)
    print(f"training: {time.perf_counter() - t0:.1f} s (model {model.version})")
    truth = pl.read_parquet(data / "truth" / "records.parquet")
    for threshold in args.thresholds:
        t0 = time.perf_counter()
        result = predict_and_cluster(con, model.path, threshold)
        seconds = time.perf_counter() - t0
        q = person_link_quality(result.clusters, truth)
        print(f"threshold={threshold} predict+cluster={seconds:.1f}s records={q['records']:,} "
              f"P={q['pairwise_precision']:.4f} R={q['pairwise_recall']:.4f} F1={q['pairwise_f1']:.4f} "
              f"B3 P={q['bcubed_precision']:.4f} R={q['bcubed_recall']:.4f} "
              f"same-household precision={q['same_household_precision']:.5f} "
              f"({q['same_household_wrongly_merged']} of {q['same_household_different_person_pairs']:,} pairs merged)")
print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}")
