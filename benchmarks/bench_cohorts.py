"""Programme cohort evaluation at city scale: wall time and peak memory of `programmes.evaluate_snapshot`.

A city of the stated size is made from a real published city (any warehouse a nightly run has published, e.g.
`make demo`'s) by copying its staged records, events, involvements and snapshot tables N times with new ids, so
the mix of events, households and agencies is the synthetic city's own. Then every programme, the changes,
needs, costs, pseudonymised tables and the export into the snapshot's folder are evaluated once, timed. The folder
is given an analysts' database holding the scaled snapshot's person, household, involvement and source-link tables
(the bulk of a real one), because adding the programme tables copies that file (warehouse.add_to_snapshot).

    .venv/bin/python benchmarks/bench_cohorts.py --warehouse data/warehouse/familylink.duckdb --records 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
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


def build_analysts_database(source: Path, target: Path, snapshot: str, records: int) -> float:
    """A stand-in for the scaled snapshot's analysts' database: the source snapshot's analysts tables repeated to
    the city's size (the copy add_to_snapshot makes costs what the file weighs). Returns its size in MB."""
    from warehouse import dictionary

    con = duckdb.connect(str(target))
    con.execute(f"attach '{source}' as src (read_only)")
    copies = math.ceil(records / con.execute("select count(*) from src.staging.person_record").fetchall()[0][0])
    for table in dictionary().analysts_tables():
        con.execute(f"create schema if not exists {table.schema}")
        con.execute(f"create table {table.name} as select t.* from range({copies}) as r, "
                    f"src.{snapshot}.{table.built_as} as t")
    con.execute("detach src")
    con.close()
    return target.stat().st_size / 1e6


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
        export = Path(folder) / "parquet"
        export.mkdir()
        analysts_mb = build_analysts_database(args.warehouse, export / "analysts.duckdb", snapshot, total)
        started = time.perf_counter()
        summary = evaluate_snapshot(con, snapshot, as_of=as_of, pseudonymisation_key=b"bench",
                                    parquet_dir=export)
        seconds = time.perf_counter() - started
        con.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(", ".join(f"{k}: {v:,}" for k, v in counts.items()))
    for name, c in summary.programmes.items():
        print(f"  {name}: {c['qualifying']:,} qualifying")
    print(f"cohort evaluation (3 programmes, changes, needs, costs, pseudonymised, Parquet and the tables added to "
          f"a {analysts_mb:,.0f} MB analysts' database): {seconds:.1f} s on {args.threads} threads; "
          f"peak memory {peak:.2f} GB; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
