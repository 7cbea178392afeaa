"""The practitioner index: one published golden snapshot held in memory, switched atomically.

The service never opens the working warehouse: it reads `snapshots/current.json` (written by publish and
rollback) and the Parquet of the snapshot it names, checks each file against the manifest's SHA-256, and
builds an in-memory DuckDB database from it. A newer pointer makes a new database beside the old one; only
when it is complete does one reference change, so a request sees the old index or the new one, never a mix.
Referrals linked in real time live in the same database as an overlay until a nightly run reconciles them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

log = logging.getLogger("familylink.practitioner")

_SQL = Path(__file__).parent / "sql"
POINTER = "current.json"


class SnapshotUnavailable(RuntimeError):
    """No published snapshot (or a damaged one): the service says so rather than serving stale or partial data."""


def phonetic_sql(column: str) -> str:
    """A Soundex-like key in SQL: first letter + up to three consonant classes, repeats collapsed.

    Typos that keep the sound (Smtih), doubled letters and common transliterations (Mohammed, Muhammad,
    Mohamed) share a key. One definition, used both to build the index and to key a query.
    """
    rest = f"regexp_replace(substr({column}, 2), '[^bcdfgjklmnpqrstvxz]', '', 'g')"
    coded = f"translate({rest}, 'bfpvcgjkqsxzdtlmnr', '111122222222334556')"
    for digit in "123456":
        coded = f"regexp_replace({coded}, '{digit}+', '{digit}', 'g')"
    return f"case when {column} is null or {column} = '' then null else substr({column}, 1, 1) || substr({coded}, 1, 3) end"


# every identifier a record carries, one row each, so an identifier search is one index look-up
IDENTIFIER_SQL = """
create table if not exists identifier (person_id varchar, value varchar);
insert into identifier
select person_id, value from (
    unpivot (select person_id, nhs_number, upn, pnc_id, ni_number, crn from {input})
    on nhs_number, upn, pnc_id, ni_number, crn into name kind value value
) where value is not null
"""


def name_key_sql(input_relation: str) -> str:
    return ((_SQL / "name_key.sql").read_text(encoding="utf-8").replace("{input}", input_relation)
            .replace("{phonetic_first}", phonetic_sql("first_std")).replace("{phonetic_last}", phonetic_sql("last_std")))


def model_input_sql(input_relation: str, schemes: dict[str, str]) -> str:
    """The approved model's input for the records in `input_relation`: linkage_models' own input select (one
    copy of the matching forms for the nightly link and the service), with each record's person id."""
    from linkage_models import input_select

    declared = (f"(select source, record_id, x.scheme as scheme, x.value as value from "
                f"(select source, record_id, unnest(identifiers) as x from {input_relation}))")
    return input_select(input_relation, schemes, declared=declared, keep=("person_id",))


def identifier_schemes(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    declared = con.execute("select distinct x.scheme, x.scope from (select unnest(identifiers) as x from record "
                           "where identifiers is not null) order by 1").fetchall()
    from linkage_models import FIXED_IDENTIFIERS

    return {**FIXED_IDENTIFIERS, **{scheme: scope for scheme, scope in declared}}


@dataclass
class PractitionerIndex:
    snapshot_id: str
    con: duckdb.DuckDBPyConnection
    loaded_at: float
    overlay_lock: threading.Lock = field(default_factory=threading.Lock)
    linker: object | None = None  # practitioner.referrals.service.RealTimeLinker, built on first use
    linker_keys: bool = False
    schemes: dict[str, str] = field(default_factory=dict)  # identifier scheme → scope, for model_input

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    def close(self) -> None:
        self.con.close()


def read_pointer(snapshots_dir: Path) -> str | None:
    path = Path(snapshots_dir) / POINTER
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))["snapshot_id"]
    except (ValueError, KeyError):
        return None


def _verify(directory: Path) -> None:
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        raise SnapshotUnavailable(f"{directory.name}: no manifest.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    needed = ("golden.person", "golden.involvement", "golden.person_record")
    for table in needed:
        entry = manifest.get("files", {}).get(table)
        if entry is None:
            raise SnapshotUnavailable(f"{directory.name}: the snapshot has no {table} table (published before "
                                      "the practitioner index existed? run `familylink publish`)")
        digest = hashlib.sha256((directory / entry["file"]).read_bytes()).hexdigest()
        if digest != entry["sha256"]:
            raise SnapshotUnavailable(f"{directory.name}: {entry['file']} does not match its manifest checksum")


def load_index(snapshots_dir: Path, snapshot_id: str, *, memory_limit: str = "4GB", threads: int = 2) -> PractitionerIndex:
    directory = Path(snapshots_dir) / snapshot_id
    _verify(directory)
    started = time.perf_counter()
    con = duckdb.connect(":memory:")
    con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute(f"set threads = {int(threads)}")
    con.execute("set enable_progress_bar = false")
    con.execute((_SQL / "index.sql").read_text(encoding="utf-8").replace("{dir}", str(directory).replace("'", "''")))
    con.execute(f"create table name_key as {name_key_sql('record')} order by last_key")
    schemes = identifier_schemes(con)
    con.execute(f"create table model_input as {model_input_sql('record', schemes)}")
    con.execute(IDENTIFIER_SQL.format(input="record"))
    # point look-ups (a person page, a search key) go through ART indexes, not scans
    for statement in ("create index person_id_idx on person (person_id)",
                      "create index involvement_person_idx on involvement (person_id)",
                      "create index record_person_idx on record (person_id)",
                      "create index household_idx on person (household_id)",
                      "create index name_last_idx on name_key (last_key)",
                      "create index name_first_idx on name_key (first_key)",
                      "create index name_dob_idx on name_key (date_of_birth)",
                      "create index name_postcode_idx on name_key (postcode)",
                      "create index name_last_first_idx on name_key (last_first_key)",
                      "create index name_last_year_idx on name_key (last_year_key)",
                      "create index name_first_year_idx on name_key (first_year_key)",
                      "create index identifier_idx on identifier (value)"):
        con.execute(statement)
    persons = con.execute("select count(*) from person").fetchall()[0][0]
    log.info("practitioner index %s loaded: %d persons in %.1f s", snapshot_id, persons, time.perf_counter() - started)
    return PractitionerIndex(snapshot_id, con, time.time(), schemes=schemes)


class IndexHolder:
    """Holds the current index; `refresh()` switches to a newer published snapshot in one assignment."""

    def __init__(self, snapshots_dir: Path, *, memory_limit: str = "4GB", threads: int = 2,
                 on_switch: Callable[[PractitionerIndex | None, PractitionerIndex], None] | None = None):
        self.snapshots_dir = Path(snapshots_dir)
        self.memory_limit = memory_limit
        self.threads = threads
        self.on_switch = on_switch
        self._current: PractitionerIndex | None = None
        self._switch_lock = threading.Lock()
        self._retired: list[PractitionerIndex] = []

    @property
    def current(self) -> PractitionerIndex:
        index = self._current
        if index is None:
            self.refresh()
            index = self._current
        if index is None:
            raise SnapshotUnavailable("no published snapshot yet: run the nightly flow (`familylink run`)")
        return index

    def refresh(self) -> bool:
        """Load the published snapshot if it is not the one held. True when the index changed."""
        with self._switch_lock:
            wanted = read_pointer(self.snapshots_dir)
            if wanted is None or (self._current is not None and self._current.snapshot_id == wanted):
                return False
            new = load_index(self.snapshots_dir, wanted, memory_limit=self.memory_limit, threads=self.threads)
            old = self._current
            if self.on_switch is not None:
                self.on_switch(old, new)  # e.g. reconcile referrals and rebuild their overlay, before serving
            self._current = new  # the switch: one reference assignment
            if old is not None:
                # requests still holding the old index keep their cursors; close it on the next switch
                for retired in self._retired:
                    retired.close()
                self._retired = [old]
            return True

    def watch(self, interval_s: float, stop: threading.Event) -> threading.Thread:
        def loop() -> None:
            while not stop.wait(interval_s):
                try:
                    self.refresh()
                except Exception as exc:  # keep serving the old snapshot; say why without data
                    log.warning("snapshot refresh failed: %s", exc.__class__.__name__)

        thread = threading.Thread(target=loop, name="snapshot-watch", daemon=True)
        thread.start()
        return thread
