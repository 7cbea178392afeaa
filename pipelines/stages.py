"""The nightly stages as plain functions over Settings.

The CLI calls `run_nightly`; the Prefect flows in pipelines/flows.py call the same stage functions as
tasks. Each stage opens the warehouse itself (DuckDB shares one database instance per process, so
concurrent ingest tasks in threads see the same file).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import warehouse
from pipelines.settings import Settings
from sources._contract import load_contracts
from sources.ingest import SourceLoad, ingest_source

log = logging.getLogger("familylink.pipelines")


@contextmanager
def stage_errors(stage: str) -> Iterator[None]:
    """Turn any error inside a stage into a StageFailure whose message holds no personal data.

    The original exception is dropped, not chained: Prefect and loggers print chained exceptions, and a
    library's message may quote a value (polars and DuckDB quote the field they failed on).
    """
    failure: StageFailure | None = None
    try:
        yield
    except StageFailure:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        failure = StageFailure(stage, warehouse.safe_error(exc))
    if failure is not None:
        raise failure from None


class UnknownSource(ValueError):
    message_is_safe = True


class StageFailure(RuntimeError):
    """A stage failed; the message names the stage and source and carries no personal data."""

    message_is_safe = True  # names files, keys and ids, never values (warehouse.safe_error)

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


@dataclass
class LinkSummary:
    model_version: str
    records: int
    persons: int
    scored_pairs: int
    lineage: dict[str, int] = field(default_factory=dict)
    # filled once address matching and the graph build join the link stage (issue 4)
    households: int | None = None
    overmerge_flags: int | None = None
    uprn_matched_share: float | None = None
    graph_counts: dict[str, int] = field(default_factory=dict)
    linked_to_another_source: dict[str, float] = field(default_factory=dict)
    gazetteer_note: str | None = None  # set when there is no gazetteer or it is empty (issue 12)


@dataclass
class PublishSummary:
    snapshot_id: str
    row_counts: dict[str, int]
    parquet_dir: Path
    manifest_path: Path
    expired: list[str]
    cohorts: Any = None  # programmes.CohortSummary (issue 16)
    unchanged_from: str | None = None  # nothing changed: no new snapshot, this one stays published

    @property
    def to_make_current(self) -> str | None:
        """The snapshot `end_run` makes current: none when the run built nothing new."""
        return None if self.unchanged_from else self.snapshot_id


@dataclass
class NightlySummary:
    run_id: str
    loads: list[SourceLoad] = field(default_factory=list)
    link: LinkSummary | None = None
    publish: PublishSummary | None = None
    report: Path | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    ok: bool = True
    failure: str | None = None
    failed_stage: str | None = None

    @property
    def source_table(self) -> list[dict[str, Any]]:
        return [
            {"source": l.source, "status": l.status, "rows_read": l.rows_read, "rows_staged": l.rows_staged,
             "rows_quarantined": l.rows_quarantined}
            for l in self.loads
        ]

    @property
    def count_table(self) -> list[dict[str, Any]]:
        rows = []
        if self.link:
            rows += [{"table": f"graph.{k}", "rows": v} for k, v in self.link.graph_counts.items()]
        if self.publish:
            rows += [{"table": f"golden.{k}", "rows": v} for k, v in self.publish.row_counts.items()]
        return rows

    @property
    def markdown(self) -> str:
        lines = [f"# familylink nightly run `{self.run_id}`", ""]
        lines += ["## Sources", "", "| source | status | read | staged | quarantined |", "|---|---|---:|---:|---:|"]
        lines += [f"| {l.source} | {l.status} | {l.rows_read:,} | {l.rows_staged:,} | {l.rows_quarantined:,} |"
                  for l in self.loads]
        stale = [l.source for l in self.loads if l.status == "missing"]
        if stale and self.ok:
            lines += ["", f"**No new extract from {', '.join(stale)}: published with the last good data "
                          "(missing_extract_policy: publish_last_good).**"]
        # files beside a loaded extract that match its pattern but whose names give no date: left unread, so said
        misnamed = [f"- {l.source}: {message}" for l in self.loads if l.status != "rejected" for message in l.rejected_files]
        if misnamed:
            lines += ["", "**Files left unread (the name gives no extract date):**", "", *misnamed]
        if self.link:
            lk = self.link
            lines += ["", "## Linkage", "",
                      f"- person model version: `{lk.model_version}`",
                      f"- source records linked: {lk.records:,} into {lk.persons:,} persons "
                      f"and {lk.households or 0:,} households",
                      f"- addresses matched to a UPRN: {(lk.uprn_matched_share or 0):.1%}"
                      + (f" ({lk.gazetteer_note})" if lk.gazetteer_note else ""),
                      "- records whose person another agency also knows: "
                      + (", ".join(f"{s} {v:.1%}" for s, v in lk.linked_to_another_source.items()) or "n/a"),
                      f"- clusters split or flagged by the over-merge guard: {lk.overmerge_flags or 0:,}",
                      "- changes since the last run: " + (", ".join(f"{k} {v:,}" for k, v in sorted(lk.lineage.items()))
                                                         or "none")]
        if self.publish and self.publish.unchanged_from:
            lines += ["", "## Published snapshot", "",
                      f"- **No new snapshot: nothing changed since `{self.publish.unchanged_from}`, which stays "
                      "published.**"]
        elif self.publish:
            lines += ["", "## Published snapshot", "", f"- `{self.publish.snapshot_id}`",
                      f"- Parquet, analysts' database and manifest: `{self.publish.parquet_dir}`"]
            lines += [f"- golden.{k}: {v:,}" for k, v in self.publish.row_counts.items() if not k.startswith("pseudo")]
        if self.publish and self.publish.cohorts:  # issue 16
            lines += ["", self.publish.cohorts.markdown.replace("# familylink programme cohorts", "## Programme cohorts")]
        if self.report:
            lines += ["", "## Reports", "", f"- match and data quality: `{self.report}`"]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps({
            "run_id": self.run_id, "ok": self.ok, "failure": self.failure, "failed_stage": self.failed_stage,
            "sources": self.source_table, "counts": self.count_table,
            "snapshot_id": self.publish.snapshot_id if self.publish else None,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
        }, default=str))


def open_warehouse(settings: Settings, ensure: bool = True):
    return warehouse.connect(settings.warehouse, memory_limit=settings.duckdb_memory_limit,
                             threads=settings.duckdb_threads, ensure=ensure)


def _progress(console: Console | None) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=console is None, transient=False)


def retry_on_io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry reads that failed on I/O, never bad data or bad contracts."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)


# ----------------------------------------------------------------------------------------------- runs
def begin_run(settings: Settings, flow: str, parameters: dict | None = None) -> str:
    """Take the run lock (or raise RunRefused, one line, recorded) and record the run's start.

    The lock is held until `end_run`; the operating system releases it if the process is killed.
    """
    from linkage_models import discard_uncommitted

    settings.protect_data()
    warehouse.acquire_run_lock(settings.warehouse, flow)
    try:
        con = open_warehouse(settings)
    except BaseException:
        warehouse.release_run_lock(settings.warehouse)
        raise
    try:
        warehouse.import_refusals(con, warehouse.refusals_file(settings.warehouse))
        run_id = warehouse.new_run_id()
        with warehouse.transaction(con):
            # the run lock lets one run at a time in, so a run still marked running here was killed
            con.execute("update audit.run set status = 'abandoned', finished_at = current_timestamp, "
                        "error = 'the process ended without finishing (killed or crashed)' where status = 'running'")
            warehouse.start_run(con, run_id, flow, parameters or {"engine": settings.engine})
            # a killed or failed run's id assignment was never committed: its pending lineage is void, and this
            # run compares against the last committed ids, so it reports the real changes (linkage_models)
            discard_uncommitted(con)
        _repair_current_pointer(con, settings)
        return run_id
    except BaseException:
        warehouse.release_run_lock(settings.warehouse)
        raise
    finally:
        con.close()


def _repair_current_pointer(con, settings: Settings) -> None:
    """A run killed between committing its completion and rewriting snapshots/current.json left the file naming
    the previous snapshot: the next run points it at the one the warehouse says is published."""
    from warehouse._golden import CURRENT_POINTER, current_snapshot, write_current_pointer

    published = current_snapshot(con)
    pointer = settings.snapshots / CURRENT_POINTER
    try:
        named = json.loads(pointer.read_text(encoding="utf-8")).get("snapshot_id") if pointer.exists() else None
    except ValueError:
        named = None
    if published is not None and named != published:
        write_current_pointer(settings.snapshots, published)
        settings.share_published()


def end_run(settings: Settings, run_id: str, status: str, stage: str | None = None, error: str | None = None,
            snapshot_id: str | None = None) -> list[str]:
    """Record the run's end and release the run lock. A completed run that built a snapshot makes it current
    in the same transaction, so the published pointer only ever moves with a run that completed.
    Returns the snapshots expired afterwards."""
    from warehouse._golden import expire_snapshots, make_current, write_current_pointer

    try:
        con = open_warehouse(settings)
        try:
            with warehouse.transaction(con):
                if snapshot_id and status == "completed":
                    make_current(con, snapshot_id)
                warehouse.finish_run(con, run_id, status, stage, error)
            if snapshot_id and status == "completed":
                write_current_pointer(settings.snapshots, snapshot_id)
                settings.share_published()  # the analysts' group reads the new snapshot from now on
                return expire_snapshots(con, settings.snapshot_retention_days, settings.snapshots)
            return []
        finally:
            con.close()
    finally:
        warehouse.release_run_lock(settings.warehouse)


@contextmanager
def exclusive(settings: Settings, flow: str) -> Iterator[None]:
    """The run lock for a command that writes the warehouse outside a nightly (link, publish, erase, …);
    refusals before it are moved into the audit trail."""
    with warehouse.run_lock(settings.warehouse, flow):
        con = open_warehouse(settings)
        try:
            warehouse.import_refusals(con, warehouse.refusals_file(settings.warehouse))
        finally:
            con.close()
        yield


# --------------------------------------------------------------------------------------------- ingest
def ingest_one(settings: Settings, source: str, run_id: str, con=None) -> SourceLoad:
    contract = load_contracts(settings.contracts_dir)[source]
    own = con is None
    con = con or open_warehouse(settings, ensure=False)  # begin_run created the tables
    try:
        return ingest_source(con, contract, settings.landing, run_id, gx_dir=gx_dir(settings),
                             max_row_count_drop=settings.max_row_count_drop,
                             max_row_count_growth=settings.max_row_count_growth)
    finally:
        if own:
            con.close()
        # Validating an extract, Great Expectations raises and catches exceptions (pyparsing, pydantic) whose
        # tracebacks sit in reference cycles that reach, frame by frame, the ingest's own frames: the extract's
        # DataFrames (up to 2 GB at 1M records) stay alive until Python's cycle collector happens to make a full
        # pass, which depends on allocation counts and often comes only after the link stage's peak (5.5 GB a run,
        # 4.0 GB with this). Not allocator retention: no malloc setting frees them. ≈ 0.2 s a source.
        gc.collect()


def run_ingest(settings: Settings, *, only: list[str] | None = None, progress: Console | None = None,
               run_id: str | None = None, con=None) -> list[SourceLoad]:
    unknown = sorted(set(only or []) - set(load_contracts(settings.contracts_dir)))
    if unknown:
        raise UnknownSource(f"no contract for source(s) {', '.join(unknown)} in {settings.contracts_dir}; known: "
                            f"{', '.join(sorted(load_contracts(settings.contracts_dir)))}")
    own = con is None
    if own:
        settings.protect_data()
    lock = exclusive(settings, "ingest") if own and not run_id else nullcontext()
    with lock:
        return _run_ingest(settings, only=only, progress=progress, run_id=run_id, con=con)


def _run_ingest(settings: Settings, *, only: list[str] | None, progress: Console | None, run_id: str | None,
                con) -> list[SourceLoad]:
    own = con is None
    con = con or open_warehouse(settings)
    try:
        contracts = sorted(k for k in load_contracts(settings.contracts_dir) if not only or k in only)
        # Inside a nightly run the run is already audited; on its own, ingest is a run of its own.
        audit = nullcontext(run_id) if run_id else warehouse.audited_run(con, "ingest", {"sources": contracts})
        with audit as rid, _progress(progress) as bar:
            loads = []
            task = bar.add_task("Ingesting sources", total=len(contracts))
            for source in contracts:
                bar.update(task, description=f"Ingesting {source}")
                loads.append(ingest_one(settings, source, rid, con=con))
                bar.advance(task)
        docs = publish_data_docs(settings, rid)
        for load in loads:
            load.data_docs = str(docs) if docs else load.data_docs
        return loads
    finally:
        if own:
            con.close()


def gx_dir(settings: Settings) -> Path:
    return settings.data_dir / "gx"


def publish_data_docs(settings: Settings, run_id: str) -> Path | None:
    """Copy this run's GX Data Docs site to data/reports/<run_id>/data-docs (GX keeps its working copy)."""
    import shutil

    site = gx_dir(settings) / "gx" / "uncommitted" / "data_docs" / "local_site"
    if not (site / "index.html").exists():
        return None
    target = settings.reports / run_id / "data-docs"
    shutil.copytree(site, target, dirs_exist_ok=True)
    from reports import write_validation_page

    # GX's pages need CDNs to render; this one page of the same results does not
    return write_validation_page(gx_dir(settings) / "gx" / "uncommitted" / "validations", target / "validation.html",
                                 run_id)


def check_loads(loads: list[SourceLoad], settings: Settings | None = None) -> None:
    """Stop the run when a source failed. A missing extract stops it too unless `missing_extract_policy` is
    `publish_last_good`: then the run goes on with that source's last good data, and says so."""
    policy = settings.missing_extract_policy if settings else "stop"
    tolerated = [l for l in loads if l.status == "missing" and policy == "publish_last_good"]
    failed = [l for l in loads if not l.ok and l not in tolerated]
    if failed:
        raise StageFailure("ingest", "; ".join(f"source {l.source} {l.status}: {l.message}" for l in failed))
    for load in tolerated:
        load.message = (f"{load.message}; this run publishes the source's last good data "
                        "(missing_extract_policy: publish_last_good)")


# ------------------------------------------------------------------------------------ link / publish
def run_link(settings: Settings, run_id: str, con=None) -> LinkSummary:
    from linkage_models.pipeline import link_all

    own = con is None
    con = con or open_warehouse(settings)
    try:
        with stage_errors("link"):
            result = link_all(con, settings, run_id)
    finally:
        if own:
            con.close()
    return LinkSummary(**result)


def run_publish(settings: Settings, run_id: str, model_version: str, con=None, *,
                switch: bool = True, switch_before_cohorts: bool = False) -> PublishSummary:
    """Build, check and export a snapshot, evaluate its programme cohorts into it, then switch to it.
    `switch=False` (the nightly) leaves it ready: `end_run` makes it current in the transaction that completes
    the run. Either way a snapshot is switched to only with its cohorts, so a failure there switches nothing —
    except an erasure's republish (`switch_before_cohorts`): a snapshot without the erased record must replace
    the one holding it even if the cohorts then fail."""
    from warehouse._golden import PublishError, publish_snapshot, switch_to

    from linkage_models.pipeline import ModelError, check_staged_sources

    own = con is None
    con = con or open_warehouse(settings)
    try:
        try:  # a snapshot is published under the contracts the records were ingested with, or not at all
            check_staged_sources(con, settings.contracts_dir)
        except ModelError as exc:
            raise StageFailure("publish", str(exc)) from None
        as_of = con.execute("select max(extract_date) from audit.current_extract").fetchall()[0][0] or dt.date.today()
        # sources whose extract was missing in this run (published with their last good data by policy)
        stale = {source: str(loaded) for source, loaded in con.execute(
            "select m.source, c.extract_date from audit.file_manifest as m "
            "left join audit.current_extract as c using (source) where m.run_id = ? and m.status = 'missing'",
            [run_id]).fetchall()}
        result = publish_snapshot(
            con, run_id=run_id, model_version=model_version, as_of=as_of, snapshots_dir=settings.snapshots,
            pseudonymisation_key=settings.pseudonymisation_key_bytes(),
            retention_days=settings.snapshot_retention_days,
            notes={"sources_not_refreshed": stale} if stale else None, switch=switch and switch_before_cohorts,
        )
        from warehouse._retention import apply_retention

        apply_retention(con, {name: c.sharing.retention_days for name, c in load_contracts(settings.contracts_dir).items()})
        # --- issue 16: programme cohorts, needs and costs, evaluated on every snapshot published (programmes/) ---
        with stage_errors("cohorts"):
            from programmes import evaluate_published

            cohorts = evaluate_published(con, settings, result.snapshot_id, as_of, result.parquet_dir,
                                         report_dir=settings.reports / run_id)
        # --- end issue 16 ---
        if switch and not switch_before_cohorts and result.unchanged_from is None:  # only now, with its cohorts (ADR 8)
            result.expired = switch_to(con, result.snapshot_id, settings.snapshots, settings.snapshot_retention_days)
    except PublishError as exc:
        raise StageFailure("publish", str(exc)) from None
    finally:
        if own:
            con.close()
    return PublishSummary(result.snapshot_id, result.row_counts, result.parquet_dir, result.manifest_path,
                          result.expired, unchanged_from=result.unchanged_from, cohorts=cohorts)


def run_report(settings: Settings, run_id: str, con=None) -> Path | None:
    try:
        from reports import write_run_report
    except ImportError:  # the report package arrives with the data-protection report work
        return None
    own = con is None
    con = con or open_warehouse(settings)
    try:
        with stage_errors("report"):
            return write_run_report(con, settings, run_id)
    finally:
        if own:
            con.close()


def run_train(settings: Settings, settings_file: Path | None = None) -> str:
    from linkage_models.pipeline import train

    con = open_warehouse(settings)
    try:
        return train(con, settings, settings_file)
    finally:
        con.close()


def promote(settings: Settings, version: str) -> None:
    from linkage_models.pipeline import promote as promote_version

    promote_version(settings, version)


def ensure_demo_model(settings: Settings, con=None) -> str:
    """The demo trains and promotes a model when none is approved yet (the nightly never does)."""
    from linkage_models.pipeline import approved_version

    version = approved_version(settings)
    if version:
        return version
    own = con is None
    con = con or open_warehouse(settings)
    try:
        if not con.execute("select count(*) from staging.person_record").fetchall()[0][0]:
            run_ingest(settings, con=con)
        from linkage_models.pipeline import train

        version = train(con, settings)
    finally:
        if own:
            con.close()
    promote(settings, version)
    return version


@dataclass
class ErasureSummary:
    source: str
    record_id: str
    rows_deleted: dict[str, int]
    published: str | None = None
    purged: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.rows_deleted.values())


def run_erasure(settings: Settings, source: str, record_id: str, *, actor: str, reason: str) -> ErasureSummary:
    """Erase one record everywhere, republish without it, purge every snapshot export that may hold it (older
    snapshots and orphans of failed publishes), then rewrite the warehouse file so no deleted bytes remain.

    Raises ErasureError (nothing changed) when the record is not in the warehouse.
    """
    from sources.ingest import related_person_columns
    from warehouse._erasure import erase_record
    from warehouse._golden import current_snapshot, purge_snapshots, remove_orphan_exports
    from warehouse._graph import build_graph

    with exclusive(settings, "erase"):
        return _run_erasure(settings, source, record_id, actor=actor, reason=reason)


def _run_erasure(settings: Settings, source: str, record_id: str, *, actor: str, reason: str) -> ErasureSummary:
    from sources.ingest import related_person_columns
    from warehouse._erasure import erase_record
    from warehouse._golden import current_snapshot, purge_snapshots, remove_orphan_exports
    from warehouse._graph import build_graph

    contracts = load_contracts(settings.contracts_dir)
    related = related_person_columns(contracts[source]) if source in contracts else {}
    con = open_warehouse(settings)
    try:
        result = erase_record(con, source, record_id, actor=actor, reason=reason, related_columns=related)
        summary = ErasureSummary(source, record_id, result.rows_deleted)
        with warehouse.audited_run(con, "erase", {"source": source, "record_id": record_id}) as run_id:
            if current_snapshot(con):
                as_of = con.execute("select max(extract_date) from audit.current_extract").fetchall()[0][0] \
                    or dt.date.today()
                model = con.execute("select any_value(model_version) from graph.record_link").fetchall()[0][0] \
                    or "unknown"
                build_graph(con, run_id=run_id, model_version=model, as_of=as_of)
                published = run_publish(settings, run_id, model, con=con, switch_before_cohorts=True)
                summary.published = published.snapshot_id
                stale = {k.split(".")[0] for k in result.rows_deleted if k.startswith("snapshot_")}
                summary.purged = purge_snapshots(con, sorted(stale - {published.snapshot_id}),
                                                 reason=f"erasure: {reason}", snapshots_dir=settings.snapshots)
            summary.purged += remove_orphan_exports(con, settings.snapshots)
    finally:
        con.close()
    # deleted rows stay readable in the file's free blocks until the file is rewritten
    warehouse.compact(settings.warehouse, memory_limit=settings.duckdb_memory_limit, threads=settings.duckdb_threads)
    return summary


def run_synth(settings: Settings, *, people: int, seed: int):
    from sources.synthetic import CityConfig, generate_city

    return generate_city(settings.data_dir, CityConfig(people=people, seed=seed))


def prepare_practitioner(settings: Settings) -> str | None:
    """After a publish: `familylink serve --prepare` — the practitioner service's index and keys files for the
    snapshot now published, so the service finds them built. Where the service is not set up (no store, no
    practitioner_database_url) nothing is built unless `practitioner_prepare_on_publish` says so. The snapshot is
    already published: a failure here is logged (class name only) and the service builds the files itself."""
    wanted = settings.practitioner_prepare_on_publish
    if wanted is None:
        wanted = settings.practitioner_database_url is not None or settings.practitioner_store_file.exists()
    if not wanted:
        return None
    from practitioner import prepare

    try:
        return prepare(settings)
    except Exception as exc:
        log.warning("practitioner files not prepared after publish: %s", exc.__class__.__name__)
        return None


# ------------------------------------------------------------------------------------------ nightly
def run_nightly(settings: Settings, *, progress: Console | None = None) -> NightlySummary:
    """The whole nightly run without Prefect: a failure at any stage leaves the published snapshot as it was."""
    run_id = begin_run(settings, "nightly")
    summary = NightlySummary(run_id)
    con = None
    stage = "ingest"
    try:
        con = open_warehouse(settings)
        summary.loads = run_ingest(settings, progress=progress, run_id=run_id, con=con)
        check_loads(summary.loads, settings)
        stage = "link"
        with _status(progress, "Linking people, addresses and households"):
            summary.link = run_link(settings, run_id, con=con)
        stage = "publish"
        with _status(progress, "Publishing the golden snapshot"):
            summary.publish = run_publish(settings, run_id, summary.link.model_version, con=con, switch=False)
        stage = "report"
        with _status(progress, "Writing reports"):
            summary.report = run_report(settings, run_id, con=con)
    except StageFailure as exc:
        summary.ok, summary.failure, summary.failed_stage = False, str(exc), exc.stage
    except Exception as exc:  # unexpected: name the stage, keep the message free of data values
        summary.ok, summary.failure, summary.failed_stage = False, warehouse.safe_error(exc), stage
    finally:
        if con is not None:
            con.close()
    expired = end_run(settings, run_id, "completed" if summary.ok else "failed", summary.failed_stage,
                      summary.failure, snapshot_id=summary.publish.to_make_current if summary.publish else None)
    if summary.ok and summary.publish and summary.publish.to_make_current:
        prepare_practitioner(settings)
    finalise_report(summary.report, "completed" if summary.ok else f"failed at {summary.failed_stage}",
                    summary.publish)
    if summary.publish:
        summary.publish.expired = expired
    summary.outputs = nightly_outputs(settings, summary)
    return summary


def finalise_report(report: Path | None, status: str, published: PublishSummary | None) -> None:
    """The report is written as the run's last stage, so it cannot know how the run ended: say it now."""
    if report is None:
        return
    from reports import finalise_run_report

    note = None
    if published is not None and status == "completed":
        note = (f"nothing changed, {published.unchanged_from} stays published" if published.unchanged_from
                else f"{published.snapshot_id} published")
    finalise_run_report(report, status, note)


def nightly_outputs(settings: Settings, summary: NightlySummary) -> dict[str, Path]:
    outputs = {
        "warehouse (DuckDB)": settings.warehouse,
        "landing extracts": settings.landing,
        "validation results": settings.reports / summary.run_id / "data-docs" / "validation.html",
    }
    if summary.publish:
        outputs["published snapshot (Parquet)"] = summary.publish.parquet_dir
        outputs["analysts' database"] = settings.snapshots / "current" / "analysts.duckdb"
    if summary.report:
        outputs["match-quality report"] = summary.report
    if summary.publish and summary.publish.cohorts and summary.publish.cohorts.report:  # issue 16
        outputs["cohort and needs report"] = summary.publish.cohorts.report
    outputs["person model and charts"] = settings.models / "person"
    return outputs


def nightly_summary(settings: Settings, run_id: str, loads, linked, published, report_path) -> NightlySummary:
    summary = NightlySummary(run_id, loads=loads, link=linked, publish=published, report=report_path)
    summary.outputs = nightly_outputs(settings, summary)
    return summary


def failure_markdown(run_id: str, exc: StageFailure) -> str:
    return (f"# familylink nightly run `{run_id}` failed\n\n- stage: **{exc.stage}**\n- reason: {exc}\n\n"
            "The published golden snapshot was not changed.")


def _status(console: Console | None, message: str):
    return console.status(message) if console is not None else nullcontext()


def summary_json(summary: NightlySummary) -> str:
    return json.dumps(summary.as_dict(), indent=2)

