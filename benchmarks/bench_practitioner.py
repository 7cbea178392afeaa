"""The practitioner service under load: 20 concurrent users on loopback against a golden snapshot of N persons.

Load model (closed loop): each of --users simulated users signs in once, states a purpose, then repeats
{search 60 %, open a person page 30 %, post a referral 10 %}, sending its next request when the previous answer
has arrived. Two phases of --seconds each: first with NO think time (every user fires again at once: the
service's worst case, a saturation test), then with a think time drawn uniformly from 0.5-1.5 × --think-seconds
between requests (a practitioner reading a page; still far busier than a real user). Both are printed.

Prints search p50/p95, person page p50/p95, real-time link p50/p95 (HTTP round trips, sign-in excluded), the
service's start time and its peak memory: VmHWM of the supervisor, the linker process and every web worker, and
their sum (an upper bound: pages of the shared index file mapped by several workers are counted once each).

    .venv/bin/python benchmarks/bench_practitioner.py --persons 1000000 [--users 20] [--seconds 60] [--workers 2]

The load generator runs in this process (one thread per user) on the same machine: its own CPU use is part of
what the service competes with. The snapshot is written straight to Parquet (person, person_record, involvement
+ manifest + current.json) by recombining names, dates of birth and postcodes at the requested size — running
the nightly at 1M persons is measured by bench_link/bench_publish. Real-time linking needs an approved model:
the script trains one on a small synthetic city (1,000 people) unless --models points at a folder with
approved.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
FIRST = ["oliver", "george", "harry", "jack", "noah", "leo", "arthur", "muhammad", "oscar", "charlie", "jacob",
         "thomas", "william", "james", "henry", "alfie", "joshua", "freddie", "archie", "ethan", "isaac", "alexander",
         "joseph", "edward", "samuel", "max", "daniel", "arlo", "lucas", "theo", "olivia", "amelia", "isla", "ava",
         "mia", "ivy", "lily", "isabella", "rosie", "sophia", "grace", "willow", "freya", "florence", "emily", "ella",
         "poppy", "evie", "elsie", "charlotte", "evelyn", "sienna", "sofia", "daisy", "phoebe", "sophie", "alice",
         "harper", "matilda", "ruby", "emilia", "maya", "zara", "aisha", "fatima", "maryam", "yusuf", "ibrahim",
         "omar", "ali", "hassan", "amir", "priya", "anika", "arjun", "rohan", "kiran", "mei", "wei", "chen", "tomasz",
         "piotr", "agnieszka", "katarzyna", "andrei", "elena", "ioana", "chloe", "jessica", "hannah", "sarah",
         "rebecca", "laura", "emma", "claire", "rachel", "michael", "david", "paul", "mark", "andrew", "robert"]
LAST = ["smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies", "patel", "robinson",
        "wright", "thompson", "evans", "walker", "white", "roberts", "green", "hall", "thomas", "clarke", "jackson",
        "wood", "harris", "edwards", "turner", "martin", "cooper", "hill", "ward", "hughes", "moore", "clark", "king",
        "harrison", "lewis", "baker", "lee", "allen", "morris", "khan", "scott", "watson", "davis", "parker", "james",
        "bennett", "young", "phillips", "richardson", "mitchell", "bailey", "carter", "cook", "singh", "shaw", "bell",
        "collins", "morgan", "kelly", "begum", "miller", "cox", "hussain", "marshall", "simpson", "price", "anderson",
        "adams", "wilkinson", "ali", "ahmed", "foster", "ellis", "murphy", "chapman", "mason", "gray", "richards",
        "webb", "griffiths", "hunt", "palmer", "campbell", "holmes", "mills", "rogers", "barnes", "knight", "matthews",
        "barker", "powell", "stevens", "kaur", "fisher", "butler", "dixon", "russell", "harvey", "pearson", "graham",
        "nowak", "kowalski", "popescu", "okafor", "mensah", "osei", "nguyen", "chen", "wang", "li", "zhang", "kim"]
SOURCES = {"health": ("Health", "Vale Medical Centre"), "education": ("Education", "Ashford Vale Academy"),
           "police": ("Police", "Neighbourhood policing"), "housing": ("Housing", "Tenancy management"),
           "probation": ("Probation", "Community Order")}


def _nhs(n: int) -> str:
    digits = [int(c) for c in f"{n:09d}"]
    check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
    check = 0 if check == 11 else check
    return "".join(map(str, digits)) + str(check) if check != 10 else None


def write_snapshot(snapshots: Path, persons: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    snapshot = "snapshot_000001"
    out = snapshots / snapshot / "golden"  # the layout publish writes (warehouse/_golden.py)
    out.mkdir(parents=True, exist_ok=True)
    ids = np.arange(1, persons + 1)
    first = np.array(FIRST)[rng.integers(0, len(FIRST), persons)]
    last = np.array(LAST)[rng.integers(0, len(LAST), persons)]
    dob = (np.datetime64("1940-01-01") + rng.integers(0, 31000, persons).astype("timedelta64[D]"))
    district = rng.integers(1, 25, persons)
    postcode = [f"AV{d} {rng.integers(0, 10)}{chr(65 + rng.integers(0, 26))}{chr(65 + rng.integers(0, 26))}"
                for d in district]
    person = pl.DataFrame({
        "person_id": ids, "first_name": [f.title() for f in first], "middle_names": [None] * persons,
        "last_name": [s.title() for s in last], "date_of_birth": dob, "sex": rng.choice(["M", "F"], persons),
        "address": [f"{rng.integers(1, 300)} Mill Road" for _ in range(persons)], "postcode": postcode,
        "household_id": (ids + 2) // 3, "household_role": ["member"] * persons,
        "agency_count": rng.integers(1, 4, persons)})
    person.write_parquet(out / "person.parquet")
    # 1.5 source records per person on average
    extra = rng.random(persons) < 0.5
    record_person = np.concatenate([ids, ids[extra]])
    sources = np.array(list(SOURCES))[rng.integers(0, len(SOURCES), len(record_person))]
    idx = record_person - 1
    nhs = [_nhs(int(p) * 7919 % 999_999_999) if s == "health" else None for p, s in zip(record_person, sources)]
    record = pl.DataFrame({
        "person_id": record_person, "source": sources,
        "record_id": [f"{s[:3].upper()}{i:08d}" for i, s in enumerate(sources)], "record_role": ["subject"] * len(idx),
        "first_name_std": first[idx], "first_name_formal": first[idx], "middle_names_std": [None] * len(idx),
        "last_name_std": last[idx], "sex": person["sex"].to_numpy()[idx], "date_of_birth": dob[idx],
        "postcode": np.array(postcode)[idx], "uprn": (record_person + 2) // 3 + 100_000_000,
        "nhs_number": nhs, "ni_number": [None] * len(idx), "upn": [None] * len(idx), "pnc_id": [None] * len(idx),
        "crn": [None] * len(idx), "phone": [None] * len(idx), "email": [None] * len(idx),
        "address_std": person["address"].str.to_uppercase().to_numpy()[idx],
        "tenancy_ref": [None] * len(idx), "local_id": [None] * len(idx), "confidential": [False] * len(idx)},
        schema_overrides={"middle_names_std": pl.String, "ni_number": pl.String, "upn": pl.String,
                          "pnc_id": pl.String, "crn": pl.String, "phone": pl.String, "email": pl.String,
                          "tenancy_ref": pl.String, "local_id": pl.String})
    # the columns the nightly's snapshot carries (warehouse/sql/golden/person_record.sql), in the same types
    record = record.with_columns(
        pl.col("address_std").str.split(" ").alias("address_tokens"),
        pl.lit(None, pl.List(pl.Struct({"scheme": pl.String, "scope": pl.String, "value": pl.String})))
        .alias("identifiers"))
    record.write_parquet(out / "person_record.parquet")
    involvement = record.select(
        "person_id", pl.col("source").replace_strict({k: v[0] for k, v in SOURCES.items()}).alias("agency"),
        pl.col("source").replace_strict({k: v[1] for k, v in SOURCES.items()}).alias("service"),
        (pl.lit("Worker ") + (pl.col("person_id") % 997).cast(pl.String)).alias("worker_name"),
        pl.lit("key worker").alias("worker_role"), pl.lit("+441632960000").alias("worker_phone"),
        pl.lit(None, pl.String).alias("worker_email"), pl.lit(dt.date(2024, 1, 1)).alias("start_date"),
        pl.lit(None, pl.Date).alias("end_date"), pl.lit(True).alias("is_open"), "source", "record_id")
    involvement.write_parquet(out / "involvement.parquet")
    files = {f"golden.{t}": {"file": f"golden/{t}.parquet",
                             "sha256": hashlib.sha256((out / f"{t}.parquet").read_bytes()).hexdigest()}
             for t in ("person", "person_record", "involvement")}
    (out.parent / "manifest.json").write_text(json.dumps({"snapshot_id": snapshot, "files": files}), encoding="utf-8")
    (snapshots / "current.json").write_text(json.dumps({"snapshot_id": snapshot}), encoding="utf-8")
    print(f"snapshot: {persons:,} persons, {record.height:,} source records, {involvement.height:,} involvements")


def approved_models(workdir: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests._city import trained_city

    city = workdir / "model-city"
    settings = trained_city(city, people=1000, seed=17)
    return settings.models


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _tree(pid: int) -> list[int]:
    """The process and its descendants (the supervisor, the linker, the web workers)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out += _tree(int(child))
    return out


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) the service's processes have used so far."""
    total = 0.0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--models", type=Path, default=None, help="folder holding person/approved.json")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="keep a snapshot (and model) already in --workdir")
    parser.add_argument("--workers", type=int, default=None, help="web workers (default practitioner_workers: CPU count)")
    parser.add_argument("--linkers", type=int, default=None, help="linker processes (default practitioner_linkers: CPU count)")
    parser.add_argument("--think-seconds", type=float, default=1.0, help="mean think time of the second phase")
    args = parser.parse_args()
    # absolute: the service runs with the workdir as its working directory
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-practitioner-"))).resolve()
    data = work / "data"
    if not (args.reuse and (data / "snapshots" / "current.json").exists()):
        shutil.rmtree(data / "snapshots", ignore_errors=True)
        write_snapshot(data / "snapshots", args.persons)
    kept = work / "model-city" / "models"
    # --reuse keeps the model trained in the workdir too (a new one would also mean a new keys file)
    models = args.models or (kept if args.reuse and (kept / "person" / "approved.json").exists() else approved_models(work))
    env = {**os.environ, "FAMILYLINK_DATA_DIR": str(data), "FAMILYLINK_MODELS_DIR": str(models),
           "FAMILYLINK_PRACTITIONER_RATE_LIMIT_PER_MINUTE": "1000000", "FAMILYLINK_PSEUDONYMISATION_KEY": "bench",
           "FAMILYLINK_PRACTITIONER_SNAPSHOT_POLL_SECONDS": "3600",
           **({"FAMILYLINK_PRACTITIONER_WORKERS": str(args.workers)} if args.workers else {}),
           **({"FAMILYLINK_PRACTITIONER_LINKERS": str(args.linkers)} if args.linkers else {})}
    sys.path.insert(0, str(ROOT))
    from pipelines.settings import load_settings
    from practitioner import add_user, build_context, list_users

    settings = load_settings(env)
    ctx = build_context(settings)
    password = "benchmark password"
    existing = {u["username"] for u in list_users(ctx.engine)}
    for n in range(args.users):
        if f"user{n}" not in existing:  # kept from an earlier run in the same workdir
            add_user(ctx.engine, f"user{n}", display_name=f"User {n}", agency="Health", role="multi_agency",
                     password=password)
    ctx.engine.dispose()
    # what a deployment runs after each publish: the snapshot's index file and the model's keys file
    # (wall time on a shared machine is mostly waiting for a core: the CPU seconds are printed too)
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run([str(ROOT / ".venv" / "bin" / "familylink"), "serve", "--prepare"], env=env, cwd=str(work),
                   check=True, stdout=subprocess.DEVNULL)
    print(f"files prepared (familylink serve --prepare) in {time.perf_counter() - started:.1f} s, "
          f"{_children_cpu() - cpu:.1f} CPU s")
    port = _free_port()
    started = time.perf_counter()
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "familylink"), "serve", "--port", str(port)], env=env,
                              cwd=str(work), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise SystemExit(server.stderr.read().decode()[-2000:])
            time.sleep(0.5)
        # the index loads on the first request that needs it; time that once
        print(f"service up in {time.perf_counter() - started:.1f} s, {_tree_cpu(server.pid):.1f} CPU s in its "
              f"{len(_tree(server.pid))} processes (on the prepared files)")
        persons = pl.read_parquet(data / "snapshots" / "snapshot_000001" / "golden" / "person.parquet",
                                  columns=["person_id", "first_name", "last_name", "date_of_birth", "postcode", "sex"])
        health = pl.read_parquet(data / "snapshots" / "snapshot_000001" / "golden" / "person_record.parquet",
                                 columns=["person_id", "source"]).filter(pl.col("source") == "health")
        # persons Health knows: the users' agency, so each page is a legitimate-relationship view
        sample = persons.join(health.select("person_id").unique(), on="person_id").sample(5000, seed=3).to_dicts()
        timings: dict[str, list[float]] = {"search": [], "person": [], "link": []}
        lock = threading.Lock()
        stop_at = [0.0]
        errors: list[str] = []

        think = [0.0]

        def user(n: int) -> None:
            rnd = random.Random(n)
            with httpx.Client(base_url=base, timeout=120) as client:
                token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text).group(1)
                client.post("/login", data={"username": f"user{n}", "password": password, "login_csrf": token})
                page = client.get("/purpose")
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
                client.post("/purpose", data={"purpose": "Safeguarding enquiry", "csrf_token": csrf})
                client.get("/search")  # loads the index on the first user
                while time.perf_counter() < stop_at[0]:
                    p = rnd.choice(sample)
                    kind = rnd.choices(["search", "person", "link"], weights=[6, 3, 1])[0]
                    t = time.perf_counter()
                    if kind == "search":
                        r = client.post("/search", data={"name": f"{p['first_name']} {p['last_name']}",
                                                         "date_of_birth": str(p["date_of_birth"].year), "csrf_token": csrf})
                    elif kind == "person":
                        r = client.get(f"/person/{p['person_id']}")
                    else:
                        r = client.post("/referrals", data={
                            "csrf_token": csrf, "source": "health", "col__patient_id": f"B{n}-{rnd.getrandbits(40)}",
                            "col__given_name": p["first_name"], "col__family_name": p["last_name"],
                            "col__birth_date": p["date_of_birth"].strftime("%Y%m%d"),
                            "col__gender": "1" if p["sex"] == "M" else "2", "col__postcode": p["postcode"],
                            "col__address_1": "1 Mill Road"})
                    elapsed = time.perf_counter() - t
                    if r.status_code != 200:
                        errors.append(f"{kind} {r.status_code}")
                    with lock:
                        timings[kind].append(elapsed)
                    if think[0]:
                        time.sleep(think[0] * rnd.uniform(0.5, 1.5))

        # warm up: one user's requests of every kind before the clock starts
        stop_at[0] = time.perf_counter() + 3
        t = time.perf_counter()
        user(0)
        print(f"first requests (index load + model) {time.perf_counter() - t:.1f} s")
        workers, linkers = settings.practitioner_workers, settings.practitioner_linkers
        for phase_think in (0.0, args.think_seconds):
            for k in timings:
                timings[k].clear()
            errors.clear()
            think[0] = phase_think
            stop_at[0] = time.perf_counter() + args.seconds
            threads = [threading.Thread(target=user, args=(n,)) for n in range(args.users)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            load = os.getloadavg()[0]
            model = ("no think time: each user sends its next request as soon as the last is answered" if not phase_think
                     else f"think time {0.5 * phase_think:.2f}-{1.5 * phase_think:.2f} s (uniform) between requests")
            print(f"{args.users} closed-loop users, {model}; {args.seconds:.0f} s on loopback, {args.persons:,} persons, "
                  f"{workers} web worker(s) + {linkers} linker process(es) ({os.cpu_count()} cores, load average {load:.1f} at the "
                  "end: other work on the machine inflates every figure):")
            for kind, label in (("search", "search"), ("person", "person page"), ("link", "real-time link")):
                v = timings[kind]
                print(f"  {label:15s} n={len(v):6d}  p50 {_pct(v, 50):7.1f} ms  p95 {_pct(v, 95):7.1f} ms  "
                      f"max {max(v) * 1000 if v else float('nan'):7.1f} ms")
            print(f"  throughput {sum(len(v) for v in timings.values()) / args.seconds:.1f} requests/s; errors "
                  f"{len(errors)}" + (f" e.g. {errors[:3]}" if errors else ""))
        pids = _tree(server.pid)
        peaks = [_peak_rss_mb(p) for p in pids]
        print(f"  service peak memory (VmHWM): {' + '.join(f'{m:,.0f}' for m in peaks)} = {sum(peaks):,.0f} MB "
              f"({len(pids)} processes: supervisor, linkers, web workers)")
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:  # requests still queued at the end of the run
            server.kill()
            server.wait(10)


if __name__ == "__main__":
    main()
