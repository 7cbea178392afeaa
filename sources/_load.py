"""Writing one extract's outcome into the warehouse in a single transaction.

Either everything for the file lands (raw rows, staged rows replacing the source's previous extract,
quarantined rows, manifest) or nothing does, so a failure keeps the source's last good data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from sources import canonical
from warehouse._db import transaction

_STAGING = {
    "person_record": canonical.PERSON_RECORD,
    "involvement": canonical.INVOLVEMENT,
    "event": canonical.EVENT,
    "stated_relationship": canonical.STATED_RELATIONSHIP,
    "person_identifier": canonical.PERSON_IDENTIFIER,
}


@dataclass(frozen=True)
class ExtractOutcome:
    """What one extract file produced, ready to be written."""

    run_id: str
    source: str
    file_name: str
    file_sha256: str
    file_bytes: int
    extract_date: dt.date | None
    raw: pl.DataFrame  # row_number, record_key, payload (JSON text)
    staged: dict[str, pl.DataFrame]  # staging table name -> rows (canonical schema)
    quarantined: pl.DataFrame  # row_number, record_id, reasons, payload
    data_docs: str | None = None
    ingest_key: str | None = None  # see ingest_key()

    @property
    def rows_read(self) -> int:
        return self.raw.height

    @property
    def rows_staged(self) -> int:
        return self.staged["person_record"].filter(pl.col("record_role") == "subject")["row_number"].n_unique()

    @property
    def rows_quarantined(self) -> int:
        return self.quarantined["row_number"].n_unique()


def current_extract(con: duckdb.DuckDBPyConnection, source: str) -> tuple[str, int, dt.date | None] | None:
    row = con.execute(
        "select file_sha256, rows_read, extract_date from audit.current_extract where source = ?", [source]
    ).fetchall()
    return row[0] if row else None


def ingest_key(con: duckdb.DuckDBPyConnection, file_sha256: str, contract_json: str,
               settings: dict[str, object]) -> str:
    """Everything that decides what an extract stages, as one checksum: the file, the contract (as validated,
    so layout and anchors do not count), the settings the checks use, familylink's version (standardisation
    and suites live in the code) and the source's erasure blocks (an erase or a lifted block changes what the
    same file stages). An extract whose key matches the current extract's is skipped as `unchanged`."""
    import hashlib
    import json
    from importlib.metadata import PackageNotFoundError, version

    try:
        code = version("familylink")
    except PackageNotFoundError:
        code = "unknown"
    source = json.loads(contract_json).get("source")
    blocks = [r[0] for r in con.execute(
        "select erased_record_id from audit.erased_record where erased_source = ? order by 1", [source]).fetchall()]
    parts = {"file": file_sha256, "contract": contract_json, "settings": settings, "code": code,
             "erasure_blocks": hashlib.sha256("\n".join(blocks).encode()).hexdigest()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def unchanged_since_loaded(con: duckdb.DuckDBPyConnection, source: str, file_sha256: str, key: str) -> bool:
    """True when this source's current extract is this file, loaded under the same contract and settings
    (ingest_key), or when this file is an older extract of the source loaded before (re-delivered: nothing
    new). A changed contract or setting re-reads the current extract; a rejected file is always tried again."""
    current = con.execute("select file_sha256, ingest_key from audit.current_extract where source = ?",
                          [source]).fetchall()
    if current and current[0][0] == file_sha256:
        return current[0][1] == key
    return file_already_loaded(con, source, file_sha256)


def file_already_loaded(con: duckdb.DuckDBPyConnection, source: str, file_sha256: str) -> bool:
    """True when this exact file (by checksum) was staged before *for this source*; rejected files are tried
    again. Another source's file saved under this source's name is not "unchanged": it is read (and rejected)."""
    return bool(
        con.execute(
            "select count(*) from audit.file_manifest where source = ? and file_sha256 = ? "
            "and status in ('loaded', 'superseded')",
            [source, file_sha256],
        ).fetchall()[0][0]
    )


def quarantine_rows(
    con: duckdb.DuckDBPyConnection, run_id: str, source: str, file_name: str, file_sha256: str, rows: pl.DataFrame
) -> None:
    """rows: row_number, record_id, reasons (list), payload (JSON text of the row as received)."""
    frame = rows.select(
        pl.lit(run_id).alias("run_id"),
        pl.lit(source).alias("source"),
        pl.lit(file_name).alias("file_name"),
        pl.lit(file_sha256).alias("file_sha256"),
        pl.col("row_number").cast(pl.Int64),
        pl.col("record_id").cast(pl.String),
        pl.col("reasons").cast(pl.List(pl.String)),
        pl.col("payload").cast(pl.String),
    )
    con.register("_quarantined_rows", frame)
    con.execute(
        "insert into quarantine.row (run_id, source, file_name, file_sha256, row_number, record_id, reasons, payload) "
        "select run_id, source, file_name, file_sha256, row_number, record_id, reasons, payload::json "
        "from _quarantined_rows"
    )
    con.unregister("_quarantined_rows")


def record_manifest(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    source: str,
    file_name: str,
    status: str,
    message: str | None = None,
    file_sha256: str | None = None,
    file_bytes: int | None = None,
    extract_date: dt.date | None = None,
    rows_read: int | None = None,
    rows_staged: int | None = None,
    rows_quarantined: int | None = None,
    data_docs: str | None = None,
) -> None:
    con.execute(
        """
        insert into audit.file_manifest
            (run_id, source, file_name, file_sha256, file_bytes, extract_date, rows_read, rows_staged,
             rows_quarantined, status, message, data_docs)
        values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [run_id, source, file_name, file_sha256, file_bytes, extract_date, rows_read, rows_staged,
         rows_quarantined, status, message, data_docs],
    )


def write_outcome(con: duckdb.DuckDBPyConnection, outcome: ExtractOutcome) -> None:
    """Stage a validated extract: supersede the source's previous rows (kept in history.*), all or nothing."""
    if outcome.rows_read != outcome.rows_staged + outcome.rows_quarantined:
        raise AssertionError(
            f"{outcome.file_name}: rows read {outcome.rows_read} != staged {outcome.rows_staged} "
            f"+ quarantined {outcome.rows_quarantined}"
        )
    with con.cursor() as cur, transaction(cur):
        raw = outcome.raw.select(
            pl.lit(outcome.source).alias("source"),
            pl.lit(outcome.file_sha256).alias("file_sha256"),
            pl.col("row_number").cast(pl.Int64),
            pl.col("record_key").cast(pl.String),
            pl.col("payload"),
        )
        cur.register("_raw_rows", raw)
        # the same file again (its contract or settings changed since it was loaded) replaces its own rows
        cur.execute("insert or replace into raw.row select source, file_sha256, row_number, record_key, payload::json "
                    "from _raw_rows")
        cur.unregister("_raw_rows")
        for table, schema in _STAGING.items():
            cur.execute(
                f"insert into history.{table} select *, current_timestamp from staging.{table} where source = ?",
                [outcome.source],
            )
            cur.execute(f"delete from staging.{table} where source = ?", [outcome.source])
            rows = canonical.conform(outcome.staged[table], schema)
            cur.register("_staged_rows", rows)
            cur.execute(f"insert into staging.{table} select * from _staged_rows")
            cur.unregister("_staged_rows")
        quarantine_rows(cur, outcome.run_id, outcome.source, outcome.file_name, outcome.file_sha256,
                        outcome.quarantined)
        cur.execute(
            "update audit.file_manifest set status = 'superseded' where source = ? and status = 'loaded'",
            [outcome.source],
        )
        record_manifest(
            cur,
            run_id=outcome.run_id,
            source=outcome.source,
            file_name=outcome.file_name,
            status="loaded",
            file_sha256=outcome.file_sha256,
            file_bytes=outcome.file_bytes,
            extract_date=outcome.extract_date,
            rows_read=outcome.rows_read,
            rows_staged=outcome.rows_staged,
            rows_quarantined=outcome.rows_quarantined,
            data_docs=outcome.data_docs,
        )
        cur.execute("delete from audit.current_extract where source = ?", [outcome.source])
        cur.execute(
            "insert into audit.current_extract (source, file_name, file_sha256, extract_date, rows_read, "
            "loaded_run_id, loaded_at, ingest_key) values (?, ?, ?, ?, ?, ?, current_timestamp, ?)",
            [outcome.source, outcome.file_name, outcome.file_sha256, outcome.extract_date, outcome.rows_read,
             outcome.run_id, outcome.ingest_key],
        )
