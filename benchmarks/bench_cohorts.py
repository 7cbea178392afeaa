"""Programme cohort evaluation at city scale: wall time and peak memory of `programmes.evaluate_snapshot`.

A city of the stated size is made from a real published city (any warehouse a nightly run has published, e.g.
`make demo`'s) by copying its staged records, events, involvements and snapshot tables N times with new ids, so
the mix of events, households and agencies is the synthetic city's own. Then every programme, the changes,
needs, costs, pseudonymised tables and the Parquet export are evaluated once, timed.

    .venv/bin/python benchmarks/bench_cohorts.py --warehouse data/warehouse/familylink.duckdb --records 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from programmes import evaluate_snapshot  # noqa: E402


def build_city(source: Path, target: Path, records: int) -> tuple[str, dt.date, int]:
    con = duckdb.connect(str(target))
    con.execute(f"attach '{source}' as src (read_only)")
    snapshot = con.execute("select snapshot_id from src.audit.snapshot where status = 'published'").fetchall()[0][0]
    as_of = con.execute("select max(extract_date) from src.audit.current_extract").fetchall()[0][0]
    base = con.execute("select count(*) from src.staging.person_record").fetchall()[0][0]
    copies = math.ceil(records / base)
    person_step = con.execute(f"select max(person_id) + 1 from src.{snapshot}.person").fetchall()[0][0]
    household_step = con.execute(f"select max(household_id) + 1 from src.{snapshot}.household").fetchall()[0][0]
    copy = f"(select range as k from range({copies}))"
    rid = "record_id || '#' || k"
    for schema in ("staging", "audit", snapshot):
        con.execute(f"create schema {schema}")
    con.execute(f"create table staging.person_record as select source, {rid} as record_id, extract_date "
                f"from src.staging.person_record, {copy}")
    con.execute(f"create table staging.event as select source, {rid} as record_id, event_type, event_date, value, "
                f"detail from src.staging.event, {copy}")
    con.execute(f"create table staging.involvement as select source, {rid} as record_id, agency "
                f"from src.staging.involvement, {copy}")
    con.execute(f"create table {snapshot}.person_source_link as select source, {rid} as record_id, "
                f"person_id + k * {person_step} as person_id, match_probability "
                f"from src.{snapshot}.person_source_link, {copy}")
    con.execute(f"create table {snapshot}.person as select person_id + k * {person_step} as person_id, "
                f"household_id + k * {household_step} as household_id, age from src.{snapshot}.person, {copy}")
    con.execute(f"create table {snapshot}.household as select household_id + k * {household_step} as household_id, "
                f"ward_code, ward_name, member_count from src.{snapshot}.household, {copy}")
    con.execute(f"create table {snapshot}.involvement as select person_id + k * {person_step} as person_id, agency, "
                f"start_date, end_date, is_open from src.{snapshot}.involvement, {copy}")
    con.execute("create table audit.snapshot as select * from src.audit.snapshot where status = 'published'")
    con.execute("create table audit.access_log (accessed_at timestamp default current_timestamp, actor varchar, "
                "action varchar, object varchar, purpose varchar, detail json)")
    con.execute("detach src")
    total = con.execute("select count(*) from staging.person_record").fetchall()[0][0]
    con.close()
    return snapshot, as_of, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, required=True, help="a published warehouse to scale up")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "city.duckdb"
        started = time.perf_counter()
        snapshot, as_of, total = build_city(args.warehouse, target, args.records)
        print(f"built a city of {total:,} staged records in {time.perf_counter() - started:.1f} s")
        con = duckdb.connect(str(target), config={"threads": args.threads, "memory_limit": "6GB"})
        counts = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0]
                  for t in ("staging.event", f"{snapshot}.person", f"{snapshot}.household", f"{snapshot}.involvement")}
        started = time.perf_counter()
        summary = evaluate_snapshot(con, snapshot, as_of=as_of, pseudonymisation_key=b"bench",
                                    parquet_dir=Path(folder) / "parquet")
        seconds = time.perf_counter() - started
        con.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(", ".join(f"{k}: {v:,}" for k, v in counts.items()))
    for name, c in summary.programmes.items():
        print(f"  {name}: {c['qualifying']:,} qualifying")
    print(f"cohort evaluation (3 programmes, changes, needs, costs, pseudonymised, Parquet): {seconds:.1f} s "
          f"on {args.threads} threads; peak memory {peak:.2f} GB")


if __name__ == "__main__":
    main()
