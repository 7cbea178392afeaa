"""Nightly link stage at scale: wall time and peak memory of training and of link_all (addresses, persons,
stable ids, household graph), against a plain Splink script (predict + cluster, same model and blocking)
on the same records, so the pipeline's overhead is a ratio. Quality against ground truth is printed too.

link_all runs twice: a first night (the gazetteer read and every address matched, as on a new installation or
after a new gazetteer) and the next night on the same extracts (the gazetteer and last night's address
matches stand; only new addresses are matched — linkage_models/_address.py).

    .venv/bin/python benchmarks/bench_link.py --data-dir data/bench1m   # an ingested city (familylink synth + ingest)
    .venv/bin/python benchmarks/bench_link.py --people 20000            # builds and ingests a city in a temp dir

Each phase runs in its own process, so peak memory (max RSS) is the phase's own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _train(data_dir: str, out: mp.Queue) -> None:
    from linkage_models.pipeline import promote, train
    from pipelines.settings import Settings
    from pipelines.stages import open_warehouse

    settings = Settings(data_dir=Path(data_dir))
    con = open_warehouse(settings)
    started = time.perf_counter()
    version = train(con, settings)
    seconds = time.perf_counter() - started
    con.close()
    promote(settings, version)
    meta = json.loads((settings.models / "person" / version / "metadata.json").read_text())
    out.put({"phase": "training", "seconds": seconds, "peak_mb": _peak_mb(), "version": version,
             "records": meta["records"], "records_trained_on": meta["records_trained_on"]})


def _link(data_dir: str, out: mp.Queue, first_night: bool = False) -> None:
    from linkage_models.pipeline import link_all
    from pipelines.settings import Settings
    from pipelines.stages import begin_run, open_warehouse

    settings = Settings(data_dir=Path(data_dir))
    run_id = begin_run(settings, "benchmark")
    con = open_warehouse(settings)
    if first_night:  # forget what the gazetteer and the addresses were matched on: all is read and matched again
        con.execute("drop table if exists linkage.address_match_basis")
    started = time.perf_counter()
    result = link_all(con, settings, run_id)
    seconds = time.perf_counter() - started
    con.close()
    out.put({"phase": "link_all (first night)" if first_night else "link_all (next night)", "seconds": seconds, "peak_mb": _peak_mb(), "persons": result["persons"],
             "households": result["households"], "scored_pairs": result["scored_pairs"]})


def _plain(data_dir: str, out: mp.Queue) -> None:
    """What a data scientist would write with Splink alone: predict and cluster, nothing else."""
    import duckdb
    from splink import DuckDBAPI, Linker

    from linkage_models.pipeline import approved_model
    from pipelines.settings import Settings

    settings = Settings(data_dir=Path(data_dir))
    _, model = approved_model(settings)
    # a private in-memory copy of the linkage input the link stage built, so Splink can write its tables
    con = duckdb.connect()
    con.execute(f"set memory_limit = '{settings.duckdb_memory_limit}'; set threads = {settings.duckdb_threads}")
    con.execute(f"attach '{settings.warehouse}' as wh (read_only)")
    con.execute("create table person_linkage_input as select * from wh.main.person_linkage_input; detach wh")
    started = time.perf_counter()
    records = "person_linkage_input"
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(records), str(model))
    pairs = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pairs, threshold_match_probability=settings.match_threshold)
    n_clusters = con.sql(f"select count(distinct cluster_id) from {clusters.physical_name}").fetchall()[0][0]
    seconds = time.perf_counter() - started
    out.put({"phase": "plain_splink", "seconds": seconds, "peak_mb": _peak_mb(), "clusters": n_clusters})


def _quality(data_dir: str, out: mp.Queue) -> None:
    from linkage_models.evaluate import household_quality
    from linkage_models.pipeline import evaluate_persons
    from pipelines.settings import Settings
    from pipelines.stages import open_warehouse

    settings = Settings(data_dir=Path(data_dir))
    con = open_warehouse(settings)
    quality = evaluate_persons(con, settings.truth)
    quality.update(household_quality(con, settings.truth))
    con.close()
    out.put({"phase": "quality", **quality})


def run(phase, data_dir: Path, *args) -> dict:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    process = ctx.Process(target=phase, args=(str(data_dir), out, *args))
    process.start()
    result = out.get()
    process.join()
    print(json.dumps(result, default=str), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="an ingested city (warehouse with staged records)")
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--skip-training", action="store_true", help="use the approved model already there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data_dir
        if data is None:
            from pipelines.settings import Settings
            from pipelines.stages import run_ingest
            from sources.synthetic import CityConfig, generate_city

            data = Path(tmp) / "data"
            generate_city(data, CityConfig(people=args.people, seed=42))
            run_ingest(Settings(data_dir=data))
        if not args.skip_training:
            run(_train, data)
        first = run(_link, data, True)
        linked = run(_link, data)
        plain = run(_plain, data)
        run(_quality, data)
        print(f"link stage / plain Splink: first night {first['seconds'] / plain['seconds']:.2f}, "
              f"next night {linked['seconds'] / plain['seconds']:.2f}")


if __name__ == "__main__":
    main()
