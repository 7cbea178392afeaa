"""The nightly stages as plain functions over Settings.

The CLI calls these directly; the Prefect flows in pipelines/flows.py wrap the same functions as tasks.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import warehouse
from pipelines.settings import Settings
from sources.ingest import SourceLoad, ingest_source
from sources._contract import load_contracts


@dataclass
class NightlySummary:
    run_id: str
    loads: list[SourceLoad] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    ok: bool = True
    failure: str | None = None


def open_warehouse(settings: Settings):
    return warehouse.connect(settings.warehouse, memory_limit=settings.duckdb_memory_limit,
                             threads=settings.duckdb_threads)


def _progress(console: Console | None) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=console is None, transient=False)


def run_ingest(settings: Settings, *, only: list[str] | None = None, progress: Console | None = None,
               run_id: str | None = None, con=None) -> list[SourceLoad]:
    own = con is None
    con = con or open_warehouse(settings)
    try:
        contracts = {k: v for k, v in sorted(load_contracts(settings.contracts_dir).items()) if not only or k in only}
        # Inside a nightly run the run is already audited; on its own, ingest is a run of its own.
        audit = nullcontext(run_id) if run_id else warehouse.audited_run(con, "ingest", {"sources": list(contracts)})
        with audit as rid:
            loads = []
            with _progress(progress) as bar:
                task = bar.add_task("Ingesting sources", total=len(contracts))
                for contract in contracts.values():
                    bar.update(task, description=f"Ingesting {contract.source}")
                    loads.append(ingest_source(con, contract, settings.landing, rid,
                                               gx_dir=settings.data_dir / "gx",
                                               max_row_count_drop=settings.max_row_count_drop))
                    bar.advance(task)
            return loads
    finally:
        if own:
            con.close()


def run_nightly(settings: Settings, *, progress: Console | None = None) -> NightlySummary:
    con = open_warehouse(settings)
    try:
        with warehouse.audited_run(con, "nightly", {"engine": settings.engine}) as run_id:
            summary = NightlySummary(run_id)
            summary.loads = run_ingest(settings, progress=progress, run_id=run_id, con=con)
            summary.outputs = {
                "warehouse": settings.warehouse,
                "data docs": settings.data_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html",
                "landing": settings.landing,
            }
            failed = [l for l in summary.loads if not l.ok]
            if failed:
                summary.ok = False
                summary.failure = "; ".join(f"{l.source}: {l.message}" for l in failed)
            return summary
    finally:
        con.close()
