"""The published snapshot's one registry and data dictionary (warehouse/published.yaml), and what it drives:
Parquet files named after their views with field descriptions, the analysts' read-only DuckDB file with
COMMENT ON every table and column, and docs/data-dictionary.md.

Analysts never open the working warehouse (a reader there would block the nightly run and see raw, staging,
graph and linkage): each snapshot folder holds its own `analysts.duckdb`, and `snapshots/current` points at the
published one.

Tables registered `built_by: programmes` (the programme cohorts, needs and costs) are evaluated after a snapshot is
built and exported; `add_to_snapshot` adds them to that snapshot's Parquet and analysts' database, each file
replaced whole by a rename, so a reader sees the database with all of them or with none (ADR 8).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from sources import file_sha256

_DICTIONARY = Path(__file__).parent / "published.yaml"
ANALYSTS_DATABASE = "analysts.duckdb"
DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "data-dictionary.md"


class DictionaryError(ValueError):
    message_is_safe = True  # names tables and columns only


@dataclass(frozen=True)
class PublishedTable:
    name: str  # the view analysts query, e.g. "pseudonymised.person"
    built_as: str  # the table in the snapshot schema
    analysts: bool
    one_row_per: str
    description: str
    columns: dict[str, str]
    # "publish": built in the snapshot schema by warehouse/sql/golden; "programmes": evaluated after publishing,
    # rows per snapshot in programmes.<built_as> (issue 16)
    built_by: str = "publish"

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    @property
    def view(self) -> str:
        return self.name.split(".")[1]

    @property
    def parquet_file(self) -> str:
        """Relative to the snapshot folder: golden/person.parquet for golden.person — the file is named after the view."""
        return f"{self.schema}/{self.view}.parquet"


@dataclass(frozen=True)
class Dictionary:
    tables: dict[str, PublishedTable]  # built by publish in the snapshot schema
    survivorship_source: str
    # evaluated after publish by another package, keyed by view (built_by: programmes)
    after_publish: dict[str, PublishedTable] = field(default_factory=dict)

    def describe(self, table: str, column: str) -> str | None:
        entry = self.tables.get(table) or self.after_publish[table]
        if column in entry.columns:
            return entry.columns[column]
        if table == "golden.person" and column.endswith("_source") and column[:-7] in entry.columns:
            return self.survivorship_source.format(attribute=column[:-7])
        return None

    def analysts_tables(self) -> list[PublishedTable]:
        return [t for t in self.tables.values() if t.analysts]

    def missing_descriptions(self, con: duckdb.DuckDBPyConnection, snapshot: str) -> list[str]:
        """Columns a built snapshot holds that the dictionary does not describe, and described columns it lacks."""
        problems = []
        for table in self.tables.values():
            columns = [r[0] for r in con.execute(
                "select column_name from duckdb_columns() where schema_name = ? and table_name = ? "
                "order by column_index", [snapshot, table.built_as]).fetchall()]
            if not columns:
                problems.append(f"{table.name}: not built")
                continue
            problems += [f"{table.name}.{c}: no description in {_DICTIONARY.name}" for c in columns
                         if not self.describe(table.name, c)]
            problems += [f"{table.name}.{c}: described in {_DICTIONARY.name} but not built" for c in table.columns
                         if c not in columns]
        return problems


def load_dictionary(path: Path = _DICTIONARY) -> Dictionary:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    tables, after_publish = {}, {}
    for name, entry in (raw.get("tables") or {}).items():
        if name.count(".") != 1 or name.split(".")[0] not in ("golden", "pseudonymised"):
            raise DictionaryError(f"{path}: tables.{name}: name it golden.<view> or pseudonymised.<view>")
        missing = [k for k in ("built_as", "analysts", "one_row_per", "description", "columns") if k not in entry]
        if missing:
            raise DictionaryError(f"{path}: tables.{name}: missing {', '.join(missing)}")
        empty = [c for c, text in entry["columns"].items() if not isinstance(text, str) or not text.strip()]
        if empty:
            raise DictionaryError(f"{path}: tables.{name}: empty description for {', '.join(empty)}")
        built_by = entry.get("built_by", "publish")
        if built_by not in ("publish", "programmes"):
            raise DictionaryError(f"{path}: tables.{name}.built_by: publish or programmes, not {built_by!r}")
        table = PublishedTable(name, entry["built_as"], bool(entry["analysts"]), entry["one_row_per"],
                               entry["description"].strip(), {c: t.strip() for c, t in entry["columns"].items()},
                               built_by)
        (tables if built_by == "publish" else after_publish)[name] = table
    return Dictionary(tables, raw["survivorship_source"], after_publish)


@lru_cache(maxsize=1)
def dictionary() -> Dictionary:
    return load_dictionary()


def _sql_string(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _described_schema(schema: pa.Schema, table: PublishedTable, dictionary: Dictionary) -> pa.Schema:
    fields = [f.with_metadata({"description": dictionary.describe(table.name, f.name) or ""}) for f in schema]
    return pa.schema(fields, metadata={"familylink.table": table.name, "description": table.description,
                                       "one_row_per": table.one_row_per})


def write_parquet(con: duckdb.DuckDBPyConnection, snapshot: str, table: PublishedTable, path: Path,
                  dictionary: Dictionary, batch_rows: int = 200_000, query: str | None = None) -> None:
    """One table (or `query`) to Parquet, streamed in batches, with each field's description in its metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    reader = con.sql(query or f"select * from {snapshot}.{table.built_as}").to_arrow_reader(batch_rows)
    schema = _described_schema(reader.schema, table, dictionary)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_table(pa.Table.from_batches([batch]).cast(schema))


def write_analysts_database(con: duckdb.DuckDBPyConnection, snapshot: str, path: Path, dictionary: Dictionary,
                            about: dict) -> None:
    """The snapshot's analysts' tables as their own DuckDB file, every table and column commented; read-only."""
    path.unlink(missing_ok=True)
    alias = f"analysts_{snapshot}"
    con.execute(f"attach {_sql_string(path)} as {alias}")
    try:
        for schema in sorted({t.schema for t in dictionary.analysts_tables()}):
            con.execute(f"create schema {alias}.{schema}")
        for table in dictionary.analysts_tables():
            _copy_described(con, alias, table, f"select * from {snapshot}.{table.built_as}", dictionary)
        con.execute(f"create table {alias}.main.snapshot as select * from (values "
                    + ", ".join(f"({_sql_string(k)}, {_sql_string(v)})" for k, v in about.items())
                    + ") as t(key, value)")
        con.execute(f"comment on table {alias}.main.snapshot is 'Which snapshot this file holds: snapshot_id, run_id, "
                    "as_of (the newest extract date), model_version, created_at.'")
        con.execute(f"comment on column {alias}.main.snapshot.key is 'snapshot_id, run_id, as_of, model_version or "
                    "created_at.'")
        con.execute(f"comment on column {alias}.main.snapshot.value is 'Its value, as text.'")
    finally:
        con.execute(f"detach {alias}")
    # nobody writes a published snapshot: take the write bits away, keep who may read it (owner, or shared group)
    os.chmod(path, os.stat(path).st_mode & 0o555)


def _copy_described(con: duckdb.DuckDBPyConnection, alias: str, table: PublishedTable, query: str,
                    dictionary: Dictionary) -> None:
    """One table into the attached analysts' database `alias`, with COMMENT ON the table and every column."""
    target = f"{alias}.{table.schema}.{table.view}"
    con.execute(f"create table {target} as {query}")
    con.execute(f"comment on table {target} is {_sql_string(table.description + ' One row per ' + table.one_row_per + '.')}")
    for (column,) in con.execute("select column_name from duckdb_columns() where database_name = ? "
                                 "and schema_name = ? and table_name = ?", [alias, table.schema, table.view]).fetchall():
        con.execute(f"comment on column {target}.{column} is {_sql_string(dictionary.describe(table.name, column))}")


def undescribed_columns(con: duckdb.DuckDBPyConnection, table: PublishedTable, query: str,
                        dictionary: Dictionary) -> list[str]:
    """Columns `query` gives that the dictionary does not describe, and described columns it lacks."""
    columns = [d[0] for d in con.execute(f"select * from ({query}) limit 0").description]
    return ([f"{table.name}.{c}: no description in {_DICTIONARY.name}" for c in columns
             if not dictionary.describe(table.name, c)]
            + [f"{table.name}.{c}: described in {_DICTIONARY.name} but not built" for c in table.columns
               if c not in columns])


def _permissions_like(path: Path, reference: Path) -> None:
    """Give a file added to a published snapshot the mode and group of the file publish wrote beside it, so
    whoever may read the snapshot may read it too (and nobody may write it)."""
    if not reference.exists():
        return
    mode = reference.stat()
    os.chmod(path, mode.st_mode & 0o777)
    try:
        os.chown(path, -1, mode.st_gid)
    except PermissionError:  # not a member of the group: the mode still applies
        pass


def add_to_snapshot(con: duckdb.DuckDBPyConnection, snapshot: str, snapshot_dir: Path,
                    tables: dict[str, str], dictionary: Dictionary, *, fail_before_replace: bool = False) -> dict:
    """Add tables evaluated after a snapshot was exported (view name -> select of its rows) to that snapshot's
    Parquet, analysts' database and manifest, replacing earlier copies of them (a re-evaluation).

    Every column must be described (DictionaryError otherwise, before anything is written). Everything is
    written beside the published files first; then each file is swapped in by one rename — the analysts'
    database (copied, extended, made read-only) and the manifest last — so a reader of `analysts.duckdb` sees
    all the added tables or none, and a failure leaves the snapshot's files exactly as they were. A reader
    holding the old file open keeps reading it. Returns the manifest entries written."""
    snapshot_dir = Path(snapshot_dir)
    entries = {name: (dictionary.after_publish[name], query) for name, query in tables.items()}
    problems = [p for table, query in entries.values() for p in undescribed_columns(con, table, query, dictionary)]
    if problems:
        raise DictionaryError(f"{snapshot}: " + "; ".join(problems))
    manifest_path = snapshot_dir / "manifest.json"
    # a folder without a manifest (a benchmark's, a snapshot published before manifests) gets one
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    analysts = snapshot_dir / ANALYSTS_DATABASE
    staged: list[tuple[Path, Path]] = []  # (written beside, final)
    alias = f"analysts_add_{snapshot}"
    try:
        for name, (table, query) in entries.items():
            if not table.analysts:
                continue
            final = snapshot_dir / table.parquet_file
            beside = final.with_name(f".{final.name}.tmp")
            write_parquet(con, snapshot, table, beside, dictionary, query=query)
            staged.append((beside, final))
            _permissions_like(beside, manifest_path)
        if analysts.exists():
            beside = analysts.with_name(f".{analysts.name}.tmp")
            beside.unlink(missing_ok=True)
            shutil.copyfile(analysts, beside)
            os.chmod(beside, 0o600)
            con.execute(f"attach {_sql_string(beside)} as {alias}")
            try:
                for table, query in entries.values():
                    if table.analysts:
                        con.execute(f"create schema if not exists {alias}.{table.schema}")
                        con.execute(f"drop table if exists {alias}.{table.schema}.{table.view}")
                        _copy_described(con, alias, table, query, dictionary)
            finally:
                con.execute(f"detach {alias}")
            staged.append((beside, analysts))
            _permissions_like(beside, analysts)
        files = manifest.setdefault("files", {})
        counts = manifest.setdefault("row_counts", {})
        written = {}
        for beside, final in staged:
            key = "analysts_database" if final == analysts else next(
                t.name for t, _ in entries.values() if snapshot_dir / t.parquet_file == final)
            written[key] = {"file": str(final.relative_to(snapshot_dir)), "sha256": file_sha256(beside)}
        for name, (table, query) in entries.items():
            if table.analysts:
                counts[table.built_as] = con.execute(f"select count(*) from ({query})").fetchall()[0][0]
        files.update(written)
        beside_manifest = manifest_path.with_name(f".{manifest_path.name}.tmp")
        beside_manifest.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        staged.append((beside_manifest, manifest_path))
        _permissions_like(beside_manifest, manifest_path)
        if fail_before_replace:  # tests: a failure here leaves the published files as they were
            raise DictionaryError(f"{snapshot}: stopped before replacing its files on request")
        for beside, final in staged:
            beside.replace(final)
        return written
    finally:
        for beside, _ in staged:
            beside.unlink(missing_ok=True)
        if analysts.exists():
            analysts.with_name(f".{analysts.name}.tmp").unlink(missing_ok=True)


def render_markdown(dictionary: Dictionary, survivorship_attributes: list[str]) -> str:
    lines = ["# Data dictionary: the published snapshot", "",
             "Generated from `warehouse/published.yaml` by `familylink dictionary` — edit that file, not this one.",
             "The same descriptions are in the analysts' database (`COMMENT ON`, see `duckdb_columns()`) and in",
             "each Parquet file's field metadata (`description`).", "",
             "| table | one row per | in the analysts' database |", "|---|---|---|"]
    lines += [f"| `{t.name}` | {t.one_row_per} | {'yes' if t.analysts else 'no (practitioner service only)'} |"
              for t in dictionary.tables.values()]
    lines += [f"| `{t.name}` | {t.one_row_per} | {'yes' if t.analysts else 'no (triage panel, working warehouse only)'} |"
              for t in dictionary.after_publish.values()]
    if dictionary.after_publish:
        lines += ["", "The programme tables (`golden.cohort` … `pseudonymised.household_need`) are evaluated after the",
                  "snapshot is built (programmes/, ADR 8) and added to the same snapshot's analysts' database and Parquet",
                  "before the snapshot is switched to; a re-evaluation (`familylink cohort evaluate`) replaces them whole."]
    for table in [*dictionary.tables.values(), *dictionary.after_publish.values()]:
        where = (f"Parquet: `snapshots/current/{table.parquet_file}`." if table.built_by == "publish" or table.analysts
                 else "Not exported: a view in the working warehouse for the triage panel.")
        lines += ["", f"## `{table.name}`", "", table.description, "",
                  where, "", "| column | description |", "|---|---|"]
        for column, text in table.columns.items():
            lines.append(f"| `{column}` | {text} |")
            if table.name == "golden.person" and column in survivorship_attributes:
                lines.append(f"| `{column}_source` | {dictionary.describe(table.name, column + '_source')} |")
    return "\n".join(lines) + "\n"


def data_dictionary_markdown() -> str:
    from warehouse._golden import load_survivorship_rules

    return render_markdown(dictionary(), list(load_survivorship_rules()))


def write_data_dictionary(path: Path = DOCS_PATH) -> Path:
    path.write_text(data_dictionary_markdown(), encoding="utf-8")
    return path
