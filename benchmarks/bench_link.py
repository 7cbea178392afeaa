"""Nightly link stage at scale: wall time and peak memory of training and of link_all (addresses, persons,
stable ids, household graph), and plain Splink predict + cluster with the same model for the overhead ratio.

    .venv/bin/python benchmarks/bench_link.py --people 660000 [--city DIR]
"""

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from linkage_models._person_model import make_linker
from linkage_models.pipeline import link_all, promote, train
from pipelines.settings import Settings
from pipelines.stages import begin_run, open_warehouse, run_ingest
from sources.synthetic import CityConfig, generate_city


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


parser = argparse.ArgumentParser()
parser.add_argument("--people", type=int, default=660000)
parser.add_argument("--city", type=Path, default=None)
args = parser.parse_args()
with tempfile.TemporaryDirectory() as tmp:
    data = Path(tmp) / "data"
    if args.city:
        shutil.copytree(args.city / "landing", data / "landing")
        shutil.copytree(args.city / "reference", data / "reference")
    else:
        generate_city(data, CityConfig(people=args.people, seed=42))
    settings = Settings(data_dir=data)
    run_ingest(settings)
    con = open_warehouse(settings)
    records = con.execute("select count(*) from staging.person_record").fetchall()[0][0]
    t0 = time.perf_counter()
    version = train(con, settings)
    print(f"records={records:,} training_s={time.perf_counter() - t0:.1f} peak_rss_mb={peak_mb():,.0f}")
    promote(settings, version)
    run_id = begin_run(settings, "benchmark")
    t0 = time.perf_counter()
    result = link_all(con, settings, run_id)
    pipeline_s = time.perf_counter() - t0
    print(f"link_all_s={pipeline_s:.1f} persons={result['persons']:,} households={result['households']:,} "
          f"peak_rss_mb={peak_mb():,.0f}")
    model = settings.models / "person" / version / "model.duckdb.json"
    t0 = time.perf_counter()
    linker = make_linker(con, str(model))
    pairs = linker.inference.predict(threshold_match_probability=0.5)
    linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, threshold_match_probability=settings.match_threshold)
    plain_s = time.perf_counter() - t0
    print(f"plain_splink_predict_cluster_s={plain_s:.1f} ratio={pipeline_s / plain_s:.2f} peak_rss_mb={peak_mb():,.0f}")
    con.close()
