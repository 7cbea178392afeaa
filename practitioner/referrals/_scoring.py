"""The approved model compiled once per snapshot into one scoring statement (the real-time linker's hot path).

A link used to replay Splink's `predict_between` SQL (the blocked-pairs statement and the scoring statement,
each 10–35 kB) after re-creating its tables: ≈150 ms of the linker's CPU per referral, nearly all of it DuckDB
parsing, binding and optimising the two statements (executing them on a handful of candidates takes ≈3 ms).
DuckDB re-binds and re-optimises even a `PREPARE`d statement on every `EXECUTE` (it saves the parsing only,
≈25 ms of the scoring statement's 35 kB, so the scoring statement is prepared), so what is left to save is the
statements themselves:

- the blocked pairs are not computed by SQL at all: every rule of the approved model is a conjunction of
  equalities (and at most a "not both dated" condition, `(l.x is null or r.x is null)`: see `key_sql`), so
  each rule becomes a key (`<rule number>|<values>`) of the `blocking_key` table, built once
  per snapshot and model in its own read-only file beside the index file (reused by every linker process and
  every restart). The referral's keys find its candidates by index look-ups; a candidate's `match_key` is the
  first rule it shares a key with — what Splink's blocking SQL computes (each rule excludes the pairs of the
  rules before it).
- Splink's scoring statement (comparison vectors, match weights with term frequencies, probabilities) is taken
  verbatim from Splink's own `predict_between` run at start, never written by hand, and reads three small
  tables the link fills: `referral_new` (the referral's model input), `referral_candidates` and Splink's
  blocked-pairs table (emptied and kept under its generated name). At start the compiled statement scores a
  warm-up record and must give Splink's answer to the last digit, or the linker does not start.

A model whose blocking rules are not all equalities falls back to Splink's `predict_between` against every
record on each link (correct, slow).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from pathlib import Path

from practitioner._index import build_once, sql_string

log = logging.getLogger("familylink.practitioner")

KEYS_FORMAT = 2  # bump when the keys file's layout changes
_CREATE = re.compile(r"^\s*create\s+table\s+(\S+)\s+as\s", re.I)
_EQUALITY = re.compile(r'^\(?\s*l\."?([a-z_][a-z0-9_]*)"?\s*=\s*r\."?([a-z_][a-z0-9_]*)"?\s*\)?$', re.I)
# `(l.x is null or r.x is null)`: the pair's records are not both dated (linkage_models' undated name rule)
_EITHER_NULL = re.compile(r'^\(\s*l\."?([a-z_][a-z0-9_]*)"?\s+is\s+null\s+or\s+r\."?([a-z_][a-z0-9_]*)"?\s+is\s+null\s*\)$',
                          re.I)
EITHER_NULL = "?"  # marks a rule's "not both present" column: "?date_of_birth"


def model_columns(settings: dict) -> set[str]:
    """Every input column the saved model's comparisons and blocking rules name."""
    text = json.dumps([settings.get("comparisons", []), settings.get("blocking_rules_to_generate_predictions", [])])
    columns = set(re.findall(r"\b([a-z_][a-z0-9_]*)_[lr]\b", text))
    columns |= set(re.findall(r"\b[lr]\.\"?([a-z_][a-z0-9_]*)", text))
    return columns


def equality_columns(rule: str) -> list[str] | None:
    """The columns of a blocking rule that is a conjunction of `l.x = r.x` (and at most one `(l.y is null or
    r.y is null)`, returned as "?y"); None for any other rule."""
    columns = []
    for part in re.split(r"\s+and\s+", rule.strip(), flags=re.I):
        match = _EQUALITY.match(part.strip()) or _EITHER_NULL.match(part.strip())
        if match is None or match.group(1) != match.group(2):
            return None
        columns.append(match.group(1) if _EQUALITY.match(part.strip()) else EITHER_NULL + match.group(1))
    if sum(c.startswith(EITHER_NULL) for c in columns) > 1 or all(c.startswith(EITHER_NULL) for c in columns):
        return None
    return columns


def key_sql(rules: list[list[str]], relation: str, probe: bool = False) -> str:
    """One row (unique_id, key) per record and rule whose columns are all present; key = '<rule>|<values>'.

    Stored records (`probe=False`: the keys file, the overlay) and the record looked up (`probe=True`: a
    referral) have the same keys for a rule of equalities. A rule with "not both present" (`?y`) is split so a
    key look-up finds exactly its pairs: every stored record has the key `<rule>|A|<values>` and, where y is
    missing, `<rule>|N|<values>`; a referral missing y looks up `A` (every record sharing the values), one with y
    looks up `N` (only the records without it)."""
    selects = []
    for number, columns in enumerate(rules):
        equal = [c for c in columns if not c.startswith(EITHER_NULL)]
        present = " and ".join(f"{c} is not null" for c in equal)
        values = " || '|' || ".join(f"cast({c} as varchar)" for c in equal)
        either = [c.removeprefix(EITHER_NULL) for c in columns if c.startswith(EITHER_NULL)]
        if not either:
            selects.append(f"select unique_id, '{number}|' || {values} as key from {relation} where {present}")
        elif probe:
            selects.append(f"select unique_id, '{number}|' || (case when {either[0]} is null then 'A' else 'N' end) "
                           f"|| '|' || {values} as key from {relation} where {present}")
        else:
            selects.append(f"select unique_id, '{number}|A|' || {values} as key from {relation} where {present}")
            selects.append(f"select unique_id, '{number}|N|' || {values} as key from {relation} "
                           f"where {present} and {either[0]} is null")
    return " union all ".join(selects)


def keys_file(index_path: Path, model_text: str, rules: list[list[str]]) -> Path:
    digest = hashlib.sha256(f"{KEYS_FORMAT}\n{model_text}\n{rules!r}".encode()).hexdigest()[:12]
    return Path(index_path).with_name(f"{Path(index_path).stem}.keys-{digest}.duckdb")


def build_keys_file(con, index_path: Path, model_text: str, rules: list[list[str]], *,
                    memory_limit: str = "4GB") -> Path:
    """The snapshot's blocking keys for this model as a read-only DuckDB file (sorted, ART-indexed), built once
    under a file lock through `con` (which has the index file attached as `snap`) and renamed into place.
    `memory_limit`: the build's (Settings.duckdb_memory_limit), not the serving connection's — at 1M persons the
    sort and the ART index of ≈10M keys do not fit a worker's 1 GB (measured: out of memory)."""

    def build(partial: Path) -> None:
        serving_limit = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
        con.execute(f"set memory_limit = '{memory_limit}'")
        con.execute(f"attach '{sql_string(partial)}' as keys_build")
        try:
            con.execute(f"create table keys_build.blocking_key as select * from ({key_sql(rules, 'snap.model_input')}) "
                        "order by key")
            con.execute("create index blocking_key_key_idx on keys_build.blocking_key (key)")
            con.execute("checkpoint keys_build")
        finally:
            con.execute("detach keys_build")
            con.execute(f"set memory_limit = '{serving_limit}'")

    return build_once(keys_file(index_path, model_text, rules), build, "real-time linker keys")




class RealTimeLinker:
    """The approved model, bound to one index's records (built once per snapshot, used under the index's lock).

    `score(index)` scores the record in the `referral_new` table (the caller fills it) against the snapshot's
    records and the overlay's that share one of the model's blocking keys: [(person_id, best probability)].
    """

    def __init__(self, index, model_path: Path, *, in_memory: bool = True, build_memory_limit: str = "4GB"):
        from splink import DuckDBAPI, Linker

        con = index.con
        model_text = Path(model_path).read_text(encoding="utf-8")
        settings = json.loads(model_text)
        available = {r[0] for r in con.execute("describe model_input").fetchall()}
        missing = sorted(model_columns(settings) - available)
        if missing:
            from practitioner.referrals.service import ReferralError

            raise ReferralError(f"the approved model uses column(s) the published snapshot lacks: {missing}")
        self.model_path = Path(model_path)
        rules = [equality_columns(r["blocking_rule"] if isinstance(r, dict) else str(r))
                 for r in settings.get("blocking_rules_to_generate_predictions", [])]
        self.rules = rules if rules and all(r is not None for r in rules) else None
        # the tables a link fills, in the model input's exact types
        con.execute("create or replace table referral_new as select * from model_input limit 0")
        con.execute("create or replace table referral_candidates as select * from model_input limit 0")
        self.db_api = DuckDBAPI(connection=con)
        # log_level None: Splink's logging stays as the service configured it (a level here would reset it)
        self.linker = Linker(self.db_api.register("model_input"), settings, log_level=None)
        tf_columns = {level["tf_adjustment_column"] for comparison in settings["comparisons"]
                      for level in comparison["comparison_levels"] if level.get("tf_adjustment_column")}
        for column in sorted(tf_columns):
            self.linker.table_management.compute_tf_table(column)  # from every record of the snapshot
        self._statement: str | None = None
        self._keys: list[str] = []  # the last scored referral's keys and candidates
        self._candidates: set[str] = set()
        self._pairs_table: str | None = None
        self._input = "snap.model_input"  # where candidates' model input is read (`_input_in_memory`)
        if self.rules is None:
            log.warning("a blocking rule of the approved model is not an equality: each referral is scored by "
                        "Splink against every record")
            return
        path = build_keys_file(con, index.path, model_text, self.rules, memory_limit=build_memory_limit)
        con.execute(f"attach '{sql_string(path)}' as keys (read_only)")
        con.execute("create or replace table ov_blocking_key (unique_id varchar, key varchar)")
        self.add_keys(index, "ov_model_input")  # referrals already in this process's overlay
        if in_memory:  # not when only preparing the files
            self._input = self._input_in_memory(con)
        self._compile(con)
        # a link is a dozen statements on a handful of rows: a second DuckDB thread only adds scheduling (measured
        # 171 vs 192 ms of CPU per link at 100k); the files above were built with the configured threads
        con.execute("set threads = 1")

    @staticmethod
    def _input_in_memory(con) -> str:
        """The snapshot's model input copied into this linker's memory, ART-indexed by record: a link's ≈100
        candidates are then fetched in ≈10 ms instead of ≈35 ms from the compressed file, where each row costs a
        decompressed vector per column (1M persons, measured; ≈460 MB per linker process, 13 s at each snapshot).
        Past DuckDB's memory limit the linker reads the file, as before."""
        import duckdb

        try:
            con.execute("create or replace table linker_input as select * from snap.model_input")
            con.execute("create index linker_input_unique_id_idx on linker_input (unique_id)")
            return "linker_input"
        except duckdb.OutOfMemoryException:
            con.execute("drop table if exists linker_input")
            log.warning("the model input does not fit the linker's DuckDB memory limit: candidates read from the file")
            return "snap.model_input"

    def add_keys(self, index, relation: str) -> None:
        """Keys of records added to the overlay (a referral linked here or by another process)."""
        if self.rules is not None:
            index.con.execute(f"insert into ov_blocking_key {key_sql(self.rules, relation)}")

    def _compile(self, con) -> None:
        """Run Splink's predict_between once on a warm-up record (one of the snapshot's own, posing as new) and
        keep its scoring statement; check that the compiled statement gives Splink's answer."""
        con.execute("insert into referral_new select * replace ('warm-up' as unique_id) from snap.model_input "
                    "limit 1")
        try:
            self._fill_candidates(con)
            executed: list[str] = []
            run = self.db_api._execute_sql_against_backend
            self.db_api._execute_sql_against_backend = lambda sql: (executed.append(sql), run(sql))[1]
            try:
                pairs = self.linker.inference.predict_between(
                    self.db_api.register("referral_candidates"), self.db_api.register("referral_new"),
                    threshold_match_probability=0.01, warning_mode="never")
            finally:
                self.db_api._execute_sql_against_backend = run
            created = [(m.group(1), sql[m.end():]) for sql in executed if (m := _CREATE.match(sql))]
            if len(created) != 2 or not created[0][0].startswith("__splink__blocked_id_pairs"):
                raise RuntimeError(f"Splink's predict_between ran {len(created)} statements, not the blocked pairs "
                                   "and the scores this linker compiles (a new Splink version?)")
            (blocked, _), (_, predict) = created
            expected = sorted(con.execute(f"select unique_id_l, match_weight from {pairs.physical_name}").fetchall())
            con.execute(f"drop table {pairs.physical_name}")
            # a table under the name of Splink's blocked pairs (dropped after its run: the statement names it) holds
            # the pairs each link finds by key, in the types Splink's blocking gives them
            con.execute(f"create or replace table {blocked} as select cast(null as varchar) as match_key, "
                        "unique_id as join_key_l, unique_id as join_key_r from referral_new limit 0")
            self._pairs_table = blocked
            # prepared once: each link skips parsing the 35 kB statement (≈25 ms of CPU per link, measured: 108 vs
            # 80 ms for the scoring at 100k); DuckDB still binds and optimises it on each EXECUTE
            name = f"familylink_link_score_{id(self):x}"
            con.execute(f"prepare {name} as select p.unique_id_l, m.person_id, p.match_weight, p.match_probability "
                        f"from ({predict}) as p inner join referral_candidates as m on m.unique_id = p.unique_id_l")
            self._statement = f"execute {name}"
            got = sorted((u, w) for u, _, w, _ in self.pairs(con))
            if [u for u, _ in got] != [u for u, _ in expected] or any(
                    abs(a - b) > 1e-9 for (_, a), (_, b) in zip(got, expected)):
                raise RuntimeError("the compiled scoring statement does not reproduce Splink's predict_between")
        finally:
            con.execute("delete from referral_new")
            con.execute("delete from referral_candidates")

    def _fill_candidates(self, con) -> list[tuple[str, str]]:
        """Candidates of the record in referral_new into referral_candidates; returns (match_key, unique_id)."""
        keys = [r[0] for r in con.execute(f"select key from ({key_sql(self.rules, 'referral_new', probe=True)})")
                .fetchall()]
        con.execute("delete from referral_candidates")
        self._keys, self._candidates = keys, set()
        if not keys:
            return []
        marks = ", ".join("?" for _ in keys)
        first: dict[str, int] = {}
        for unique_id, key in con.execute(
                f"select unique_id, key from keys.blocking_key where key in ({marks}) "
                f"union all select unique_id, key from ov_blocking_key where key in ({marks})", keys + keys).fetchall():
            rule = int(key.split("|", 1)[0])
            first[unique_id] = min(rule, first.get(unique_id, rule))
        if not first:
            return []
        ids = sorted(first)
        self._candidates = set(ids)
        marks = ", ".join("?" for _ in ids)
        # the snapshot's rows through an ART index, the overlay's separately (a filter on the union view scans)
        con.execute(f"insert into referral_candidates by name select * from {self._input} where unique_id in ({marks}) "
                    f"union all by name select * from ov_model_input where unique_id in ({marks})", ids + ids)
        return [(str(first[u]), u) for u in ids]

    def has_new_candidates(self, con) -> bool:
        """Whether records added to the overlay since the last `pairs` share a blocking key with the referral
        (another linker process's referral for the same person): only then must it be scored again."""
        if self._statement is None:
            return True
        if not self._keys:
            return False
        marks = ", ".join("?" for _ in self._keys)
        found = {r[0] for r in con.execute(f"select unique_id from ov_blocking_key where key in ({marks})",
                                           self._keys).fetchall()}
        return bool(found - self._candidates)

    def pairs(self, con) -> list[tuple[str, str, float, float]]:
        """(candidate unique_id, its person_id, match weight, match probability) for the record in referral_new,
        probability ≥ 0.01 — the rows Splink's predict_between gives for it against the index."""
        if self._statement is None:
            return self._pairs_by_splink(con)
        pairs = self._fill_candidates(con)
        con.execute(f"delete from {self._pairs_table}")
        if not pairs:
            return []
        new_id = con.execute("select unique_id from referral_new").fetchall()[0][0]
        con.execute(f"insert into {self._pairs_table} (match_key, join_key_l, join_key_r) "
                    "select unnest(?::varchar[]), unnest(?::varchar[]), ?",
                    [[m for m, _ in pairs], [u for _, u in pairs], new_id])
        return con.execute(self._statement).fetchall()

    def _pairs_by_splink(self, con) -> list[tuple[str, str, float, float]]:
        result = self.linker.inference.predict_between(self.db_api.register("model_input"),
                                                       self.db_api.register("referral_new"),
                                                       threshold_match_probability=0.01, warning_mode="never")
        try:
            return con.execute(f"select p.unique_id_l, m.person_id, p.match_weight, p.match_probability from "
                               f"{result.physical_name} as p inner join model_input as m on m.unique_id = p.unique_id_l"
                               ).fetchall()
        finally:
            con.execute(f"drop table if exists {result.physical_name}")

    def score(self, index) -> list[tuple[str, float]]:
        """(person_id, best match probability) for the record in referral_new, best first."""
        best: dict[str, float] = {}
        for _, person_id, _, probability in self.pairs(index.con):
            best[person_id] = max(float(probability), best.get(person_id, 0.0))
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))
