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
import re
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


_NOT_CODED = re.compile(r"[^bcdfgjklmnpqrstvxz]")
_CODES = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556")
_REPEATS = re.compile(r"([1-6])\1+")


def phonetic(name: str | None) -> str | None:
    """`phonetic_sql` in Python, for the query's own names: the same key without a database round trip per
    search (tests/test_practitioner.py holds the two equal on every name of the test city)."""
    if not name:
        return None
    coded = _REPEATS.sub(r"\1", _NOT_CODED.sub("", name[1:]).translate(_CODES))
    return name[0] + coded[:3]


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
insert into {target}
select person_id, value from (
    unpivot (select person_id, nhs_number, upn, pnc_id, ni_number, crn from {input})
    on nhs_number, upn, pnc_id, ni_number, crn into name kind value value
) where value is not null
"""

def name_key_sql(input_relation: str) -> str:
    return ((_SQL / "name_key.sql").read_text(encoding="utf-8").replace("{input}", input_relation)
            .replace("{phonetic_first}", phonetic_sql("first_std")).replace("{phonetic_last}", phonetic_sql("last_std")))


# what a search result shows, carried on every name_key row (columns p_*) so a search is one statement
DISPLAY_COLUMNS = ("p.first_name as p_first_name, p.last_name as p_last_name, year(p.date_of_birth) as p_birth_year, "
                   "split_part(p.postcode, ' ', 1) as p_district, p.agency_count as p_agency_count, "
                   "p.shielded as p_shielded, p.provisional as p_provisional, "
                   "upper(coalesce(p.address, '')) as p_address")


def name_key_with_display_sql(input_relation: str, person_relation: str, person_id: str | None = None) -> str:
    """name_key rows for `input_relation` with their person's display columns (one person's, when `person_id`
    is given as a literal-free filter: the caller passes it as the only parameter)."""
    persons = f"(select * from {person_relation} where person_id = ?)" if person_id else person_relation
    return (f"select k.*, {DISPLAY_COLUMNS} from ({name_key_sql(input_relation)}) as k "
            f"left join {persons} as p on p.person_id = k.person_id")


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


# the tables a snapshot's index file holds; each has an overlay table `ov_<name>` in memory for referrals
# linked since, and a view `<name>` = file rows + overlay rows that every query reads
TABLES = ("record", "person", "involvement", "name_key", "model_input", "identifier")
INDEX_FORMAT = 4  # bump when the file's tables or indexes change: an older file is then rebuilt, not reused
SERVING = "serving.json"
# the search keys of a name_key row (each has its own index; a referral's overlay keeps them to route searches)
NAME_KEYS = ("last_key", "first_key", "last_first_key", "last_year_key", "first_year_key", "date_of_birth", "postcode")

# point look-ups (a person page, a search key, a referral's candidates) go through ART indexes, not scans
_INDEXES = (("person", "person_id"), ("person", "household_id"), ("involvement", "person_id"), ("record", "person_id"),
            ("record", "record_id"), *(("name_key", key) for key in NAME_KEYS), ("identifier", "value"),
            ("model_input", "unique_id"))


def sql_string(value: object) -> str:
    """A value (a path) inside a SQL string literal."""
    return str(value).replace("'", "''")


def build_once(path: Path, build: Callable[[Path], None], what: str) -> Path:
    """`path`, built by `build(partial)` unless it exists: under a file lock (another process building it is
    waited for, then reused), into a partial file renamed into place, so no reader sees half a file."""
    import fcntl

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        started = time.perf_counter()
        partial = path.with_suffix(".building")
        partial.unlink(missing_ok=True)
        build(partial)
        partial.rename(path)
        log.info("%s built in %.1f s", what, time.perf_counter() - started)
    return path


@dataclass
class PractitionerIndex:
    snapshot_id: str
    con: duckdb.DuckDBPyConnection
    loaded_at: float
    overlay_lock: threading.Lock = field(default_factory=threading.Lock)
    linker: object | None = None  # practitioner.referrals.service.RealTimeLinker, built on first use
    schemes: dict[str, str] = field(default_factory=dict)  # identifier scheme → scope, for model_input
    path: Path | None = None  # the read-only DuckDB file this index reads
    applied: int = 0  # the highest referral id in the overlay (referrals are linked one at a time, ids ascend)
    overlay_rows: int = 0  # referrals in the overlay
    shielded_extra: set[str] = field(default_factory=set)  # existing persons a confidential referral shields
    # what the overlay holds, kept in Python so a look-up the overlay cannot answer reads the file's tables only
    # (a view over file + overlay costs about as much again per look-up, measured)
    overlay_ids: set[str] = field(default_factory=set)  # persons with overlay rows (records, involvements, person)
    overlay_keys: set[tuple[str, object]] = field(default_factory=set)  # (name_key column, value) of overlay rows
    # a web worker never links: the overlay's model input (the linker's candidates) is left out of its overlay — a
    # tenth of what every worker spends on each referral (model_input_sql is one of the largest statements, measured)
    links: bool = True

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    def rel(self, table: str, *, touched: bool = True) -> str:
        """The relation a hot query reads: the file's table when the overlay holds nothing the query could match
        (`touched=False`, decided by the caller from `overlay_ids` / `overlay_keys`), otherwise the view over file +
        overlay (`person_base` for person: no shielding sub-query; callers apply `is_shielded`)."""
        if (self.overlay_rows == 0 or not touched) and self.path is not None:
            return f"snap.{table}"
        return "person_base" if table == "person" else table

    def touches(self, person_ids=(), keys=()) -> bool:
        """Whether the overlay may hold rows for these persons or (name_key column, value) keys."""
        return self.overlay_rows > 0 and (any(p in self.overlay_ids for p in person_ids)
                                          or any(k in self.overlay_keys for k in keys))

    def is_shielded(self, person_id: str, shielded: bool) -> bool:
        return bool(shielded) or person_id in self.shielded_extra

    def close(self) -> None:
        self.con.close()


def read_pointer(folder: Path, name: str = POINTER) -> str | None:
    """The snapshot id a pointer file names (the published one, or with SERVING the one the workers serve)."""
    try:
        return json.loads((Path(folder) / name).read_text(encoding="utf-8"))["snapshot_id"]
    except (OSError, ValueError, KeyError):
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


def _code_fingerprint() -> str:
    """What the file is built by: a new version of the index SQL or of linkage_models' input select (new model
    columns) gives a new file name, so a restarted service never serves a file built by older code."""
    parts = [str(INDEX_FORMAT), (_SQL / "index.sql").read_text(encoding="utf-8"), name_key_sql("record"),
             DISPLAY_COLUMNS, IDENTIFIER_SQL, model_input_sql("record", {}), repr(_INDEXES)]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:12]


def index_file(index_dir: Path, snapshot_id: str) -> Path:
    return Path(index_dir) / f"{snapshot_id}.{_code_fingerprint()}.duckdb"


def build_index_file(snapshots_dir: Path, snapshot_id: str, index_dir: Path, *, memory_limit: str = "4GB",
                     threads: int = 2) -> Path:
    """The snapshot's practitioner index as one DuckDB file, built once (under a file lock, written beside and
    renamed into place) and then opened read-only by every web worker and the linker: one copy on disk and in
    the page cache, instead of one in-memory index per process. Every key table is built here, not per request."""
    path = index_file(index_dir, snapshot_id)
    directory = Path(snapshots_dir) / snapshot_id
    _verify(directory)  # also when the file exists: a damaged or replaced snapshot is refused, not served

    def build(partial: Path) -> None:
        con = duckdb.connect(str(partial))
        try:
            con.execute(f"set memory_limit = '{memory_limit}'")
            con.execute(f"set threads = {int(threads)}")
            con.execute("set enable_progress_bar = false")
            con.execute((_SQL / "index.sql").read_text(encoding="utf-8").replace("{dir}", sql_string(directory)))
            con.execute(f"create table name_key as {name_key_with_display_sql('record', 'person')} order by last_key")
            schemes = identifier_schemes(con)
            con.execute(f"create table model_input as {model_input_sql('record', schemes)}")
            con.execute("create table identifier (person_id varchar, value varchar)")
            con.execute(IDENTIFIER_SQL.format(input="record", target="identifier"))
            for table, column in _INDEXES:
                con.execute(f"create index {table}_{column}_idx on {table} ({column})")
            con.execute("create table index_meta as select ? as snapshot_id, ? as schemes", [snapshot_id, json.dumps(schemes)])
            con.execute("checkpoint")
        finally:
            con.close()

    return build_once(path, build, f"practitioner index file {snapshot_id}")


def open_index(path: Path, *, memory_limit: str = "1GB", threads: int = 1) -> PractitionerIndex:
    """A connection that reads the snapshot's file (read-only: any number of processes share it) and holds the
    overlay of referrals linked since, in memory; queries read views over both."""
    con = duckdb.connect(":memory:")
    con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute(f"set threads = {int(threads)}")
    con.execute("set enable_progress_bar = false")
    con.execute(f"attach '{sql_string(path)}' as snap (read_only)")
    snapshot_id, schemes = con.execute("select snapshot_id, schemes from snap.index_meta").fetchall()[0]
    for table in TABLES:
        con.execute(f"create table ov_{table} as select * from snap.{table} limit 0")
    con.execute("create table ov_shielded (person_id varchar)")  # existing persons a confidential referral shields
    for table in TABLES:
        if table == "person":
            con.execute("create view person_base as select * from snap.person union all by name select * from ov_person")
            con.execute("create view person as select * replace (shielded or person_id in (select person_id from "
                        "ov_shielded) as shielded) from person_base")
        else:
            con.execute(f"create view {table} as select * from snap.{table} union all by name select * from ov_{table}")
    return PractitionerIndex(snapshot_id, con, time.time(), schemes=json.loads(schemes), path=Path(path))


def default_index_dir(snapshots_dir: Path, index_dir: Path | None = None) -> Path:
    """`index_dir`, or the data folder's `practitioner/index` beside its `snapshots` (Settings.practitioner_index_dir
    names the same folder)."""
    return Path(index_dir) if index_dir is not None else Path(snapshots_dir).parent / "practitioner" / "index"


def load_index(snapshots_dir: Path, snapshot_id: str, *, index_dir: Path | None = None, memory_limit: str = "4GB",
               threads: int = 2, open_memory_limit: str = "1GB") -> PractitionerIndex:
    started = time.perf_counter()
    index_dir = default_index_dir(snapshots_dir, index_dir)
    path = build_index_file(snapshots_dir, snapshot_id, index_dir, memory_limit=memory_limit, threads=threads)
    index = open_index(path, memory_limit=open_memory_limit, threads=threads)
    persons = index.con.execute("select count(*) from snap.person").fetchall()[0][0]
    log.info("practitioner index %s loaded: %d persons in %.1f s", snapshot_id, persons, time.perf_counter() - started)
    return index


def read_serving(index_dir: Path) -> str | None:
    return read_pointer(index_dir, SERVING)


def _write_serving(index_dir: Path, snapshot_id: str) -> None:
    path = Path(index_dir) / SERVING
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"snapshot_id": snapshot_id}), encoding="utf-8")
    partial.replace(path)  # atomic: a web worker reads the old name or the new one


class IndexHolder:
    """Holds the current index; `refresh()` switches to a newer snapshot in one assignment.

    The coordinator (the linker process, or the only process when the service runs in one) follows the published
    pointer: it builds the snapshot's index file, reconciles referrals (`on_switch`) and then names the file in
    `serving.json`. Web workers (`follow=True`) follow `serving.json` only, so none serves a snapshot before its
    referrals are reconciled; each fills its overlay from the store (`sync`).
    """

    def __init__(self, snapshots_dir: Path, *, memory_limit: str = "4GB", threads: int = 2,
                 on_switch: Callable[[PractitionerIndex | None, PractitionerIndex], None] | None = None,
                 index_dir: Path | None = None, follow: bool = False,
                 sync: Callable[[PractitionerIndex], None] | None = None, worker_memory_limit: str = "1GB",
                 links: bool = True):
        self.snapshots_dir = Path(snapshots_dir)
        self.index_dir = default_index_dir(self.snapshots_dir, index_dir)
        self.memory_limit = memory_limit
        self.threads = threads
        self.on_switch = on_switch
        self.follow = follow
        self.sync = sync
        self.worker_memory_limit = worker_memory_limit
        self.links = links  # False: a web worker, whose overlay needs no model input
        self._current: PractitionerIndex | None = None
        self._switch_lock = threading.Lock()
        self.link_lock = threading.RLock()  # a link and a switch never interleave (the overlay sees every link)
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
            wanted = read_serving(self.index_dir) if self.follow else read_pointer(self.snapshots_dir)
            if wanted is None or (self._current is not None and self._current.snapshot_id == wanted):
                return False
            if self.follow:
                new = open_index(index_file(self.index_dir, wanted), memory_limit=self.worker_memory_limit, threads=1)
                new.links = self.links
            else:
                new = load_index(self.snapshots_dir, wanted, index_dir=self.index_dir, memory_limit=self.memory_limit,
                                 threads=self.threads, open_memory_limit=self.worker_memory_limit)
            with self.link_lock:
                old = self._current
                if self.on_switch is not None:
                    self.on_switch(old, new)  # e.g. reconcile referrals and rebuild their overlay, before serving
                if self.sync is not None:
                    self.sync(new)
                self._current = new  # the switch: one reference assignment
            if not self.follow:
                _write_serving(self.index_dir, wanted)
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
