"""Ingest one agency extract: find, read, map, standardise, validate, stage or quarantine.

Plain functions: the Prefect flow and the CLI both call `ingest_source` / `ingest_sources`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from sources import _load
from warehouse._db import transaction
from sources._contract import SourceContract, dated_extracts, find_extract, load_contracts
from sources._mapping import apply_contract, joint_names
from sources._readers import ExtractError, date_field_formats, file_sha256, read_extract
from sources._standardise import ATTRIBUTE, standardise_person_records

log = logging.getLogger("familylink.ingest")

# One writer at a time: sources are read and validated concurrently, written serially.
_WRITE_LOCK = threading.Lock()


@dataclass
class SourceLoad:
    """The result of ingesting one source, safe to log and to publish as an artifact (no personal data)."""

    source: str
    status: str  # loaded | unchanged | rejected | missing
    file_name: str | None = None
    file_sha256: str | None = None
    rows_read: int = 0
    rows_staged: int = 0
    rows_quarantined: int = 0
    message: str | None = None
    top_reasons: dict[str, int] = field(default_factory=dict)
    data_docs: str | None = None
    # other files the file_pattern matched whose names give no extract date: rejected, one message each
    rejected_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("loaded", "unchanged")


def _raw_rows(frame: pl.DataFrame, contract: SourceContract) -> pl.DataFrame:
    data_columns = [c for c in frame.columns if not c.startswith("_")]
    return frame.select(
        pl.col("_row_number").alias("row_number"),
        pl.col(contract.record_key).alias("record_key"),
        pl.struct(data_columns).struct.json_encode().alias("payload"),
    )


_NAME_FIELDS = ("forenames", "last_name", "full_name")


def _name_columns(contract: SourceContract) -> list[str]:
    """Source columns that carry a person's name: an extract where most rows have none is rejected whole."""
    return [c for key, spec in contract.person.fields().items() if key in _NAME_FIELDS for c in spec.source_columns()]


def ingest_source(
    con: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    landing: Path,
    run_id: str,
    *,
    gx_dir: Path | None,
    max_row_count_drop: float = 0.5,
    max_row_count_growth: float = 10.0,
    today: dt.date | None = None,
) -> SourceLoad:
    """Ingest the newest extract of one source. Never raises for a bad file: an unexpected error anywhere
    (a library's message may quote cell values) rejects the file with the error's kind only."""
    failure = None
    try:
        return _ingest_source(con, contract, landing, run_id, gx_dir=gx_dir, max_row_count_drop=max_row_count_drop,
                              max_row_count_growth=max_row_count_growth, today=today)
    except MemoryError:
        raise
    except Exception as exc:
        failure = type(exc).__name__
    # outside the except block: the original exception, and any value it quotes, goes no further
    try:  # the file is named if it can be; whatever stopped the ingest may stop this too
        path = locate_extract(landing, contract)
        sha = file_sha256(path) if path else None
    except Exception:
        path = sha = None
    display = _display_name(path, landing) if path else contract.file_pattern
    message = (f"{display}: ingest stopped by an unexpected {failure}; its details are withheld because they "
               "may quote personal data")
    return _reject(con, run_id, contract.source, display, sha, path, message)


def _ingest_source(
    con: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    landing: Path,
    run_id: str,
    *,
    gx_dir: Path | None,
    max_row_count_drop: float = 0.5,
    max_row_count_growth: float = 10.0,
    today: dt.date | None = None,
) -> SourceLoad:
    try:
        path = locate_extract(landing, contract)
    except ExtractError as exc:
        return _reject(con, run_id, contract.source, contract.file_pattern, None, None, str(exc))
    misnamed = _reject_misnamed(con, run_id, contract, landing)
    if path is None and misnamed:
        return SourceLoad(contract.source, "rejected", message="; ".join(misnamed), rejected_files=misnamed)
    if path is None:
        message = f"no file matching {contract.file_pattern} in {landing}"
        with _WRITE_LOCK:
            _load.record_manifest(con, run_id=run_id, source=contract.source, file_name=contract.file_pattern,
                                  status="missing", message=message)
        return SourceLoad(contract.source, "missing", message=message)
    load = _ingest_extract(con, contract, path, landing, run_id, gx_dir=gx_dir, max_row_count_drop=max_row_count_drop,
                           max_row_count_growth=max_row_count_growth, today=today)
    load.rejected_files = misnamed  # the newest well-named extract was taken; these are reported beside it
    return load


def _reject_misnamed(con, run_id: str, contract: SourceContract, landing: Path) -> list[str]:
    """Files the file_pattern matches whose name gives no extract date (no match for extract_date.from_file_name,
    or a date that does not exist): each is recorded as a rejected extract, named, and never becomes the
    source's current extract. Returns their messages."""
    _, misnamed = dated_extracts(landing, contract)
    messages = []
    for error in misnamed:
        display = _display_name(error.path, landing)
        message = f"{display}: {error.reason}; the file is not taken as an extract of source {contract.source}"
        _reject(con, run_id, contract.source, display, file_sha256(error.path), error.path, message)
        messages.append(message)
    return messages


def _ingest_extract(
    con: duckdb.DuckDBPyConnection,
    contract: SourceContract,
    path: Path,
    landing: Path,
    run_id: str,
    *,
    gx_dir: Path | None,
    max_row_count_drop: float,
    max_row_count_growth: float,
    today: dt.date | None,
) -> SourceLoad:
    from expectations import check_extract, validate_records

    sha = file_sha256(path)
    display = _display_name(path, landing)
    with _WRITE_LOCK:
        key = _load.ingest_key(con, sha, contract.model_dump_json(), {
            "max_row_count_drop": max_row_count_drop, "max_row_count_growth": max_row_count_growth})
        if _load.unchanged_since_loaded(con, contract.source, sha, key):
            _load.record_manifest(con, run_id=run_id, source=contract.source, file_name=display, status="unchanged",
                                  file_sha256=sha, message="same checksum, contract and settings as an extract "
                                                           "already loaded")
            return SourceLoad(contract.source, "unchanged", display, sha, message="already loaded")
        previous = _load.current_extract(con, contract.source)
        filled_before = _filled_shares_staged(con, contract, previous[0]) if previous else {}

    try:
        frame = read_extract(path, contract)
    except ExtractError as exc:
        return _reject(con, run_id, contract.source, display, sha, path, str(exc))

    frame = _blank_erased_related(con, contract, frame)
    extract_date = contract.extract_date_for(path, frame)
    raw = _raw_rows(frame, contract)
    if previous is not None and previous[2] is not None and extract_date is not None and extract_date < previous[2]:
        return _reject(con, run_id, contract.source, display, sha, path,
                       f"{display}: extract date {extract_date} is older than the current extract ({previous[2]})",
                       raw=raw)

    headers = _repeated_header_rows(frame, contract)
    date_formats, defaulted = date_field_formats(contract)
    problems = check_extract(
        contract.source,
        frame.filter(~pl.col("_row_number").is_in(headers.implode())) if headers.len() else frame,
        previous_row_count=previous[1] if previous else None,
        required_columns=contract.required_source_columns(),
        key_column=contract.record_key,
        max_drop_share=max_row_count_drop,
        name_columns=_name_columns(contract),
        date_formats=date_formats,
        default_date_columns=defaulted,
        max_growth_factor=max_row_count_growth,
        previous_filled_shares=filled_before,
        emptied_share=contract.min_filled_share,
        filled_before_share=contract.filled_before_share,
    )
    if problems:
        message = "; ".join(f"{display}: {p}" for p in problems)
        return _reject(con, run_id, contract.source, display, sha, path, message, raw=raw)

    mapped = apply_contract(frame, contract, file_sha256=sha, extract_date=extract_date)
    bounds = contract.date_of_birth_bounds
    as_of = extract_date or (today or dt.date.today())
    people = standardise_person_records(mapped.person_record, as_of=as_of,
                                        date_of_birth_earliest=bounds.earliest, max_age_years=bounds.max_age_years)
    mapped, people = _flag_future_events(mapped, people, as_of)
    people = _limit_text(people, frame)
    subjects = people.filter(pl.col("record_role") == "subject").with_columns(
        # an attribute (a place of birth, an occupation) is shared by many people: it never makes a record linkable
        pl.col("record_id").is_in(mapped.person_identifier.filter(pl.col("scope") != ATTRIBUTE)["record_id"].implode())
        .alias("_has_declared_identifier"))
    outcome = validate_records(contract.source, subjects, extract_date=extract_date or dt.date.today(),
                               context_dir=gx_dir, minimum_any_of=contract.minimum_data.any_of,
                               require_name=contract.minimum_data.name)
    subjects = subjects.drop("_has_declared_identifier")
    bad_rows = _quarantine_damaged_cells(frame, subjects, outcome.quarantined.select("row_number", "record_id",
                                                                                      "reasons"))
    bad_rows = _add_reasons(bad_rows, subjects, headers, REPEATED_HEADER)
    for columns, joint in joint_names(contract.person):  # two people in the subject's name: no one record
        bad_rows = _add_reasons(bad_rows, subjects, frame.filter(joint)["_row_number"].cast(pl.Int64),
                                f"{JOINT_NAME} in column{'s' if len(columns) > 1 else ''} {', '.join(columns)}")
    bad_rows = bad_rows.join(
        raw.select("row_number", "payload"), on="row_number", how="left"
    )
    bad_rows, raw = _suppress_erased(con, contract.source, subjects, bad_rows, raw)
    if raw.height and bad_rows.height / raw.height > contract.max_quarantined_share:
        # a source whose rows mostly fail is a broken extract or a wrong contract: never `loaded`
        counts = bad_rows.explode("reasons").group_by("reasons").len().sort("len", descending=True).head(3)
        causes = "; ".join(f"{r} ({n:,} rows)" for r, n in counts.iter_rows())
        return _reject(con, run_id, contract.source, display, sha, path,
                       f"{display}: {bad_rows.height:,} of {raw.height:,} rows failed validation, more than the "
                       f"{contract.max_quarantined_share:.0%} the contract allows (max_quarantined_share): {causes}",
                       raw=raw)
    keep = ~pl.col("row_number").is_in(bad_rows["row_number"].implode())
    staged = {
        "person_record": people.filter(keep),
        "involvement": mapped.involvement.join(people.select("record_id", "row_number"), on="record_id", how="left")
        .filter(keep)
        .drop("row_number"),
        "event": mapped.event.join(people.select("record_id", "row_number"), on="record_id", how="left")
        .filter(keep)
        .drop("row_number"),
        "stated_relationship": mapped.stated_relationship.join(
            people.select("record_id", "row_number"), on="record_id", how="left"
        ).filter(keep).drop("row_number"),
        "person_identifier": mapped.person_identifier.join(
            people.select("record_id", "row_number"), on="record_id", how="left"
        ).filter(keep).drop("row_number"),
    }
    result = _load.ExtractOutcome(
        run_id=run_id,
        source=contract.source,
        file_name=display,
        file_sha256=sha,
        file_bytes=path.stat().st_size,
        extract_date=extract_date,
        raw=raw,
        staged=staged,
        quarantined=bad_rows,
        data_docs=outcome.data_docs,
        ingest_key=key,
    )
    with _WRITE_LOCK:
        _load.write_outcome(con, result)
        _record_expectations(con, run_id, contract.source, sha, outcome.summary)
    reasons = (
        bad_rows.explode("reasons").group_by("reasons").len().sort("len", descending=True)
        if bad_rows.height
        else pl.DataFrame({"reasons": [], "len": []})
    )
    load = SourceLoad(
        contract.source,
        "loaded",
        display,
        sha,
        rows_read=result.rows_read,
        rows_staged=result.rows_staged,
        rows_quarantined=result.rows_quarantined,
        top_reasons=dict(zip(reasons["reasons"].to_list()[:5], reasons["len"].to_list()[:5])),
        data_docs=outcome.data_docs,
    )
    log.info("source=%s file=%s read=%d staged=%d quarantined=%d", load.source, display, load.rows_read,
             load.rows_staged, load.rows_quarantined)
    return load


ERASED = "erased on request"
REPEATED_HEADER = "repeated header row"
JOINT_NAME = "joint name (two people in one name field)"


def locate_extract(landing: Path, contract: SourceContract) -> Path | None:
    """The newest extract for a contract, which must be a file inside the landing folder.

    A pattern that is absolute or climbs out (`../`), or a newest match that is a symlink (or sits under one)
    resolving outside the landing folder, is an ExtractError: extracts are read only from where agencies
    deliver them.
    """
    pattern = Path(contract.file_pattern)
    if pattern.is_absolute() or contract.file_pattern.startswith(("/", "\\")) or ".." in pattern.parts:
        raise ExtractError(contract.file_pattern, f"contract {contract.source}: file_pattern must be a path inside "
                           "the landing folder (relative, without '..')")
    path = find_extract(landing, contract)
    if path is None:
        return None
    root = Path(landing).resolve()
    if not path.resolve().is_relative_to(root):
        raise ExtractError(_display_name(path, landing), "the extract resolves to a file outside the landing folder "
                           "(a symbolic link?); extracts are read only from the landing folder")
    return path


def related_person_columns(contract: SourceContract) -> dict[str, list[str]]:
    """Record id suffix -> the source columns that hold only that related person (a pupil's parent's name
    and phone; not the address they share with the subject). Erasure blanks these in the subject's row."""
    own = {c for spec in contract.person.fields().values() for c in spec.source_columns()}
    return {
        related.record_id_suffix: sorted({c for spec in related.person.fields().values() for c in spec.source_columns()}
                                         - own)
        for related in contract.related_persons
    }


def _blank_erased_related(con, contract: SourceContract, frame: pl.DataFrame) -> pl.DataFrame:
    """Rows naming a related person who was erased on request: their columns are blanked before anything is
    kept or mapped, so the person is neither staged again nor stored in raw."""
    if not contract.related_persons:
        return frame
    with _WRITE_LOCK:
        erased = [r[0] for r in con.execute(
            "select erased_record_id from audit.erased_record where erased_source = ?", [contract.source]).fetchall()]
    if not erased:
        return frame
    key = pl.col(contract.record_key).cast(pl.String).str.strip_chars()
    for suffix, columns in related_person_columns(contract).items():
        hit = (key + suffix).is_in(erased)
        frame = frame.with_columns([pl.when(hit).then(pl.lit("")).otherwise(pl.col(c)).alias(c)
                                    for c in columns if c in frame.columns])
    return frame


def _repeated_header_rows(frame: pl.DataFrame, contract: SourceContract) -> pl.Series:
    """Row numbers of rows that repeat the header (two exports concatenated): every column the contract reads
    holds its own column name (trimmed, in any case). Such a row is quarantined, never staged as a person."""
    columns = [c for c in contract.mapped_source_columns() if c in frame.columns]
    if not columns or "_row_number" not in frame.columns:
        return pl.Series("_row_number", [], pl.Int64)
    same = [pl.col(c).cast(pl.String).str.strip_chars().str.to_lowercase() == c.strip().lower() for c in columns]
    return frame.filter(pl.all_horizontal(same).fill_null(False))["_row_number"].cast(pl.Int64)


def _add_reasons(bad_rows: pl.DataFrame, subjects: pl.DataFrame, row_numbers: pl.Series, reason: str) -> pl.DataFrame:
    """`reason` added to the rows `row_numbers` (row_number, record_id, reasons), already quarantined or not."""
    if row_numbers.len() == 0:
        return bad_rows
    hit = pl.col("row_number").is_in(row_numbers.implode())
    merged = bad_rows.with_columns(pl.when(hit).then(pl.concat_list([pl.col("reasons"), pl.lit([reason])]))
                                   .otherwise(pl.col("reasons")).alias("reasons"))
    extra = (pl.DataFrame({"row_number": row_numbers.unique().cast(pl.Int64)})
             .filter(~pl.col("row_number").is_in(bad_rows["row_number"].implode()))
             .join(subjects.select("row_number", "record_id").unique("row_number"), on="row_number", how="left")
             .with_columns(pl.lit([reason]).alias("reasons")))
    return pl.concat([merged, extra.select(bad_rows.columns).cast(dict(bad_rows.schema))])


def _filled_shares_staged(con, contract: SourceContract, file_sha256: str) -> dict[tuple[str, ...], float]:
    """For each person field the contract maps from columns (keyed by those source columns): the share of the
    rows staged from the source's current extract (`file_sha256`) that had it, read from the rows as received,
    so it is measured exactly as in a new extract. Empty when nothing is staged."""
    fields = sorted({tuple(spec.source_columns()) for spec in contract.person.fields().values()
                     if spec.source_columns()})
    columns = sorted({c for field in fields for c in field})
    if not columns:
        return {}
    values = [f"nullif(trim(json_extract_string(r.payload, ?)), '') as c{i}" for i in range(len(columns))]
    paths = ['$."' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in columns]
    index = {c: i for i, c in enumerate(columns)}
    # counted where the rows are (a source's extract can hold hundreds of thousands of rows)
    shares = [f"avg(({' or '.join(f'c{index[c]} is not null' for c in field)})::int)" for field in fields]
    row = con.execute(
        f"select count(*), {', '.join(shares)} from (select {', '.join(values)} from raw.row as r "
        "join staging.person_record as p "
        "on p.source = r.source and p.file_sha256 = r.file_sha256 and p.row_number = r.row_number "
        "where r.source = ? and r.file_sha256 = ? and p.record_role = 'subject')",
        [*paths, contract.source, file_sha256]).fetchone()
    if not row[0]:
        return {}
    return {field: float(share) for field, share in zip(fields, row[1:])}


def _quarantine_damaged_cells(frame: pl.DataFrame, subjects: pl.DataFrame, bad_rows: pl.DataFrame) -> pl.DataFrame:
    """A row with a NUL byte in a cell (the reader stripped it and named the column) is quarantined with a reason
    naming the column; the quarantine row carries the file and row number. The other rows are kept."""
    if "_nul_columns" not in frame.columns:
        return bad_rows
    damaged = frame.filter(pl.col("_nul_columns").list.len() > 0).select(
        pl.col("_row_number").alias("row_number"),
        pl.col("_nul_columns").list.eval(pl.lit("NUL byte in column ") + pl.element()).alias("_nul_reasons"))
    if damaged.height == 0:
        return bad_rows
    damaged = damaged.join(subjects.select("row_number", "record_id").unique("row_number"), on="row_number",
                           how="left")
    merged = bad_rows.join(damaged.select("row_number", "_nul_reasons"), on="row_number", how="left").with_columns(
        pl.concat_list([pl.col("reasons"), pl.col("_nul_reasons").fill_null(pl.lit([], pl.List(pl.String)))])
        .alias("reasons")).drop("_nul_reasons")
    extra = damaged.filter(~pl.col("row_number").is_in(bad_rows["row_number"].implode())).select(
        pl.col("row_number"), pl.col("record_id"), pl.col("_nul_reasons").alias("reasons"))
    return pl.concat([merged, extra.cast(dict(bad_rows.schema))])


def _suppress_erased(con, source: str, subjects: pl.DataFrame, bad_rows: pl.DataFrame, raw: pl.DataFrame):
    """Rows of records erased on request are quarantined with that reason and none of their content."""
    with _WRITE_LOCK:
        erased = [r[0] for r in con.execute(
            "select erased_record_id from audit.erased_record where erased_source = ?", [source]).fetchall()]
    if not erased:
        return bad_rows, raw
    hit = subjects.filter(pl.col("record_id").is_in(erased))["row_number"].unique()
    if hit.len() == 0:
        return bad_rows, raw
    gone = pl.DataFrame({"row_number": hit}).join(subjects.select("row_number", "record_id").unique("row_number"),
                                                  on="row_number")
    gone = gone.with_columns(pl.lit([ERASED]).alias("reasons"), pl.lit(None, pl.String).alias("payload"))
    bad_rows = pl.concat([bad_rows.filter(~pl.col("row_number").is_in(hit.implode())),
                          gone.select(bad_rows.columns).cast(dict(bad_rows.schema))])
    raw = raw.with_columns(pl.when(pl.col("row_number").is_in(hit.implode())).then(pl.lit('{"erased": true}'))
                           .otherwise(pl.col("payload")).alias("payload"))
    return bad_rows, raw


def _flag_future_events(mapped, people: pl.DataFrame, as_of: dt.date):
    """An event dated after the extract cannot have happened yet: its date is cleared (so no programme window
    counts it) and the record carries the flag `event_date_future`."""
    future = pl.col("event_date") > pl.lit(as_of)
    ids = mapped.event.filter(future)["record_id"].unique()
    if ids.len() == 0:
        return mapped, people
    mapped = dataclasses.replace(mapped, event=mapped.event.with_columns(
        pl.when(future).then(None).otherwise(pl.col("event_date")).alias("event_date")))
    people = people.with_columns(
        pl.when(pl.col("record_id").is_in(ids.implode()))
        .then(pl.concat_list([pl.col("quality_flags"), pl.lit(["event_date_future"])]))
        .otherwise(pl.col("quality_flags")).alias("quality_flags"))
    return mapped, people


def _limit_text(people: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """Rows whose received text the reader cut to MAX_CELL_CHARS or cleared of NUL and control characters carry
    the flag `text_limited`."""
    if "_text_limited" not in frame.columns:
        return people
    rows = frame.filter(pl.col("_text_limited"))["_row_number"]
    if rows.len() == 0:
        return people
    return people.with_columns(
        pl.when(pl.col("row_number").is_in(rows.implode()))
        .then(pl.concat_list([pl.col("quality_flags"), pl.lit(["text_limited"])]))
        .otherwise(pl.col("quality_flags")).alias("quality_flags"))


def _display_name(path: Path, landing: Path) -> str:
    try:
        return str(path.relative_to(landing.parent))
    except ValueError:
        return str(path)


def _reject(con, run_id, source, display, sha, path, message, raw: pl.DataFrame | None = None) -> SourceLoad:
    """An extract-level failure: keep the source's last good data and stage nothing from this file.

    When the file could be read, every row goes to quarantine with the extract-level reason, so rows read =
    rows staged (0) + rows quarantined still holds; an unreadable file is recorded with its error alone.
    """
    rows = raw.height if raw is not None else None
    with _WRITE_LOCK:
        with con.cursor() as cur, transaction(cur):
            if raw is not None:
                _load.quarantine_rows(cur, run_id, source, display, sha, raw.select(
                    "row_number",
                    pl.col("record_key").alias("record_id"),
                    pl.lit(["extract rejected"]).alias("reasons"),
                    "payload",
                ))
            _load.record_manifest(cur, run_id=run_id, source=source, file_name=display, status="rejected",
                                  message=message, file_sha256=sha,
                                  file_bytes=path.stat().st_size if path is not None else None, rows_read=rows,
                                  rows_staged=0 if rows is not None else None, rows_quarantined=rows)
    log.warning("source=%s file=%s rejected: %s", source, display, message)
    return SourceLoad(source, "rejected", display, sha, rows_read=rows or 0, rows_quarantined=rows or 0,
                      message=message)


def _record_expectations(con, run_id, source, sha, summary: pl.DataFrame) -> None:
    if summary is None or summary.height == 0:
        return
    rows = summary.select(
        pl.lit(run_id).alias("run_id"),
        pl.lit(source).alias("source"),
        pl.lit(sha).alias("file_sha256"),
        pl.col("expectation"),
        pl.col("column").alias("column_name"),
        pl.col("severity"),
        pl.col("unexpected_count").cast(pl.Int64),
        pl.col("unexpected_percent").cast(pl.Float64),
        pl.col("success").cast(pl.Boolean),
    )
    con.register("_expectation_rows", rows)
    con.execute("insert into audit.expectation_result select * from _expectation_rows")
    con.unregister("_expectation_rows")


def ingest_sources(
    con: duckdb.DuckDBPyConnection,
    contracts_dir: Path,
    landing: Path,
    run_id: str,
    *,
    gx_dir: Path | None,
    max_row_count_drop: float = 0.5,
    only: list[str] | None = None,
) -> list[SourceLoad]:
    """Ingest every source in turn (the Prefect flow runs them concurrently instead)."""
    contracts = load_contracts(contracts_dir)
    return [
        ingest_source(con, contract, landing, run_id, gx_dir=gx_dir, max_row_count_drop=max_row_count_drop)
        for name, contract in sorted(contracts.items())
        if not only or name in only
    ]
