"""The `familylink` command: every operation a data team needs without Prefect."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from pipelines._logging import configure_logging
from pipelines.settings import Settings, SettingsError, get_settings


class _Commands(TyperGroup):
    """Every command that reads the source contracts stops on a wrong one the same way: one line naming the
    file and key (as `run` and `link` report it), exit 1, whichever stage loaded the contracts."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            contracts = sys.modules.get("sources._contract")  # not loaded: the error cannot be a ContractError
            if contracts is None or not isinstance(exc, contracts.ContractError):
                raise
            failure = str(exc)  # names files and keys only (ContractError.message_is_safe)
        _fail(failure)


app = typer.Typer(
    name="familylink",
    cls=_Commands,
    help="Link agency records about children and families into a household graph and golden dataset.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)


def _no_flag_placeholder() -> None:
    """Typer 0.29 prints a `<bool>` type after every flag (`--verbose <bool>`), which reads as if the flag took a
    value; flags show no type here."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_familylink", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._familylink = True
    TyperOption.display_type_rich = display_type_rich


_no_flag_placeholder()


def _settings(reads: str | None = None, **overrides: object) -> Settings:
    """The settings with the command line's overrides, the data folder protected (protect_data creates it).

    `reads` names the Settings path a read-only command reads (warehouse, models, snapshots): when neither it nor
    the data folder exists, --data-dir is taken to be mistyped and the command stops with one line naming what it
    would have read, before anything is created."""
    try:
        settings = get_settings().with_overrides(**overrides)
    except SettingsError as exc:
        _fail(str(exc))
    if reads is not None and not settings.data_dir.is_dir() and not getattr(settings, reads).exists():
        _fail(f"no {reads} at {getattr(settings, reads)}: there is no folder {settings.data_dir} "
              "(is --data-dir right?)")
    tightened = settings.protect_data()
    if tightened:
        err.print(f"familylink: {tightened} file(s) or folder(s) under {settings.data_dir} were readable by others; "
                  "made them owner-only", soft_wrap=True)
    return settings


def _exclusive(settings: Settings, flow: str) -> None:
    """Hold the warehouse's run lock until this command ends, or stop with one line (recorded in the audit
    trail by the next run) when another run or process holds it."""
    try:  # typer 0.29 runs commands under its vendored click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover
        from click import get_current_context

    from pipelines.stages import exclusive
    from warehouse import RunRefused

    try:
        get_current_context().with_resource(exclusive(settings, flow))
    except RunRefused as exc:
        _fail(str(exc))


def _open_to_read(settings: Settings, flow: str):
    """The warehouse for a command that only reads it, under the run lock. A data folder without one reads as an
    empty warehouse (in memory), so the command says what is missing (no run, no links) and leaves no empty
    warehouse file behind."""
    import warehouse
    from pipelines.stages import open_warehouse

    if not settings.warehouse.exists():
        return warehouse.connect(":memory:", memory_limit=settings.duckdb_memory_limit,
                                 threads=settings.duckdb_threads)
    _exclusive(settings, flow)
    return open_warehouse(settings)


def _fail(reason: str, code: int = 1) -> None:
    err.print(f"[bold red]familylink: {reason}[/]", soft_wrap=True)  # one line, for cron mail and logs
    raise typer.Exit(code)


DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Root for generated data (default ./data).")]
Landing = Annotated[Optional[Path], typer.Option("--landing", help="Folder of agency extracts.")]
Contracts = Annotated[Optional[Path], typer.Option("--contracts", help="Folder of source contracts (YAML).")]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging, and third-party warnings "
                                                "(Splink's training notes) on the console.")] = False) -> None:
    configure_logging(verbose)


@app.command()
def synth(
    people: Annotated[int, typer.Option(help="Number of residents in the synthetic city.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives byte-identical files.")] = 42,
    profile: Annotated[str, typer.Option(help="realistic (default: errors as real extracts have them, "
                                              "docs/synthetic-city.md) or easy (light noise, five agencies).")] = "realistic",
    data_dir: DataDir = None,
) -> None:
    """Build the synthetic city: gazetteer, agency extracts and (separately) ground truth."""
    from sources.synthetic import CityConfig, generate_city

    if profile not in ("realistic", "easy"):
        raise typer.BadParameter("profile must be realistic or easy", param_hint="--profile")
    settings = _settings(data_dir=data_dir)
    config = CityConfig(people=people, seed=seed) if profile == "realistic" else CityConfig.easy(people=people, seed=seed)
    with console.status(f"Generating a {profile} city of {people:,} people"):
        manifest = generate_city(settings.data_dir, config)
    _print_city(manifest)


def _print_city(manifest) -> None:
    table = Table(title="Synthetic city")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for path, rows in manifest.row_counts.items():
        table.add_row(str(path), f"{rows:,}")
    console.print(table)


@app.command()
def ingest(data_dir: DataDir = None, landing: Landing = None, contracts: Contracts = None,
           source: Annotated[Optional[list[str]], typer.Option(help="Only these sources.")] = None) -> None:
    """Read, standardise and validate every agency extract into staging (bad rows to quarantine)."""
    from pipelines.stages import run_ingest

    from pipelines.stages import UnknownSource

    settings = _settings(data_dir=data_dir, landing_dir=landing, contracts_dir=contracts)
    _exclusive(settings, "ingest")
    try:
        loads = run_ingest(settings, only=source, progress=console)
    except UnknownSource as exc:
        _fail(str(exc))
    _print_loads(loads)
    if not all(load.ok for load in loads):
        _fail("; ".join(f"{l.source}: {l.message}" for l in loads if not l.ok))


def _print_loads(loads) -> None:
    table = Table(title="Ingest")
    for column in ("source", "status", "read", "staged", "quarantined", "top quarantine reasons"):
        table.add_column(column, justify="right" if column in ("read", "staged", "quarantined") else "left")
    for load in loads:
        reasons = "; ".join(f"{k}: {v}" for k, v in load.top_reasons.items())
        table.add_row(load.source, load.status, f"{load.rows_read:,}", f"{load.rows_staged:,}",
                      f"{load.rows_quarantined:,}", reasons or (load.message or ""))
    console.print(table)
    for load in loads:  # files beside a source's extract whose names give no extract date
        if load.ok:
            for message in load.rejected_files:
                err.print(f"[yellow]warning: {load.source}: {message}[/]", soft_wrap=True)


@app.command()
def train(data_dir: DataDir = None, contracts: Contracts = None,
          settings_file: Annotated[Optional[Path], typer.Option(
              "--settings", help="A reviewed model settings.json to train with instead of generating one.")] = None,
          ) -> None:
    """Train a new person model version on the staged records (it is not used until promoted)."""
    from pipelines.stages import open_warehouse
    from linkage_models.pipeline import ModelError, train as train_model

    settings = _settings(data_dir=data_dir, contracts_dir=contracts)
    _exclusive(settings, "train")
    con = open_warehouse(settings)
    try:
        with console.status("Training the person model (u by random sampling, m by EM)"):
            version = train_model(con, settings, settings_file)
    except ModelError as exc:
        _fail(f"train: {exc}")
    finally:
        con.close()
    console.print(f"Trained person model [bold]{version}[/] in {settings.models / 'person' / version}")
    console.print(f"Review match_weights.html there, then: familylink promote-model {version}")


@app.command("promote-model")
def promote_model(version: Annotated[str, typer.Argument(help="A version `familylink models` lists.")],
                  data_dir: DataDir = None) -> None:
    """Make a trained person model version the one nightly runs use."""
    from linkage_models.pipeline import ModelError, promote

    settings = _settings(data_dir=data_dir)
    try:
        promote(settings, version)
    except ModelError as exc:
        known = [m["version"] for m in _model_versions(settings)]
        _fail(f"{exc}; versions trained: {', '.join(known) if known else 'none (run `familylink train`)'}")
    console.print(f"Person model {version} is now approved.")


def _model_versions(settings: Settings) -> list[dict]:
    import json

    from linkage_models.pipeline import approved_version

    root = settings.models / "person"
    approved = approved_version(settings)
    versions = []
    for folder in sorted(root.iterdir() if root.is_dir() else []):
        if not (folder / "model.duckdb.json").exists():
            continue
        meta_path = folder / "metadata.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        versions.append({"version": folder.name, "approved": folder.name == approved, **meta})
    return versions


@app.command()
def models(data_dir: DataDir = None) -> None:
    """List the person model versions trained, with when, on how many records, and which one is approved."""
    settings = _settings("models", data_dir=data_dir)
    versions = _model_versions(settings)
    if not versions:
        _fail(f"no person model trained under {settings.models / 'person'}: run `familylink train`")
    table = Table(title="Person model versions")
    for column in ("version", "status", "trained", "Splink", "records trained on", "training data fingerprint"):
        table.add_column(column, justify="right" if column == "records trained on" else "left")
    for m in versions:
        trained_on = m.get("records_trained_on") or m.get("records")
        table.add_row(m["version"], "approved (nightly uses it)" if m["approved"] else "trained, not approved",
                      str(m.get("trained_at", ""))[:19], str(m.get("splink_version", "")),
                      f"{trained_on:,}" if isinstance(trained_on, int) else "",
                      str(m.get("training_data_fingerprint", ""))[:16])
    console.print(table)


def _recent_runs(con, limit: int = 20) -> list[tuple]:
    return con.execute(
        "select r.run_id, r.flow, r.started_at, r.finished_at, r.status, r.failed_stage, s.snapshot_id, s.status, "
        "s.row_counts, s.message from audit.run as r left join audit.snapshot as s using (run_id) "
        "order by r.started_at desc limit ?", [limit]).fetchall()


@app.command()
def runs(data_dir: DataDir = None,
         limit: Annotated[int, typer.Option(help="How many of the latest runs to list.")] = 20) -> None:
    """List the latest runs: flow, start and end (UTC), status, failed stage, and the snapshot each built."""
    import json

    settings = _settings("warehouse", data_dir=data_dir)
    if not settings.warehouse.exists():
        _fail(f"no warehouse at {settings.warehouse}: nothing has run yet")
    con = _open_to_read(settings, "runs")
    try:
        rows = _recent_runs(con, limit)
    finally:
        con.close()
    table = Table(title=f"Latest runs ({settings.warehouse})")
    for column in ("run id", "flow", "started (UTC)", "minutes", "status", "failed stage", "snapshot", "persons"):
        table.add_column(column, justify="right" if column in ("minutes", "persons") else "left")
    for run_id, flow, started, finished, status, stage, snapshot, snapshot_status, counts, message in rows:
        minutes = f"{(finished - started).total_seconds() / 60:.1f}" if finished and started else ""
        persons = json.loads(counts).get("person") if counts else None
        shown = f"{snapshot} ({snapshot_status})" if snapshot else ""
        table.add_row(run_id, flow, f"{started:%Y-%m-%d %H:%M}", minutes, status, stage or "", shown,
                      f"{persons:,}" if isinstance(persons, int) else "")
    console.print(table)


@app.command()
def link(data_dir: DataDir = None, contracts: Contracts = None) -> None:
    """The link stage: addresses → UPRNs, records → persons with the approved model (ids stay stable across
    runs), then the household graph. Publishing is a separate step (`familylink publish`)."""
    import warehouse
    from pipelines.stages import StageFailure, open_warehouse, run_link

    settings = _settings(data_dir=data_dir, contracts_dir=contracts)
    _exclusive(settings, "link")
    con = open_warehouse(settings)
    try:
        with warehouse.audited_run(con, "link") as run_id, console.status("Linking addresses, persons and households"):
            result = run_link(settings, run_id, con=con)
    except StageFailure as exc:
        _fail(f"link failed: {exc}")
    finally:
        con.close()
    console.print(f"{result.records:,} records → {result.persons:,} persons in {result.households or 0:,} households "
                  f"(model {result.model_version}, threshold {settings.match_threshold}); "
                  f"addresses matched {result.uprn_matched_share or 0:.1%}; "
                  f"over-merge flags {result.overmerge_flags or 0}; id changes: {result.lineage or 'none'}")


@app.command()
def evaluate(data_dir: DataDir = None) -> None:
    """Linkage quality against ground truth (evaluation only): DATA_DIR/truth/records.parquet, one row per record
    with at least source, record_id and person_id; household, UPRN and noise measures when it has those columns,
    as the synthetic city's truth has."""
    from linkage_models.evaluate import NotComputed, programme_truth_gap
    from linkage_models.pipeline import (ModelError, evaluate_link_errors, evaluate_persons,
                                         evaluate_persons_by_source_pair)

    settings = _settings("warehouse", data_dir=data_dir)
    con = _open_to_read(settings, "evaluate")
    try:
        try:
            quality = evaluate_persons(con, settings.truth)
            by_pair = evaluate_persons_by_source_pair(con, settings.truth)
            errors = evaluate_link_errors(con, settings.truth)
        except ModelError as exc:
            _fail(str(exc))
        coverage = quality.pop("coverage")
        import warehouse

        if warehouse.table_exists(con, "graph.household_member"):
            from linkage_models.evaluate import household_quality

            quality.update(household_quality(con, settings.truth))
        cohorts = None
        # the cohorts' evaluation needs the city's households and dates of birth; say so only where it was asked for
        cohort_gap = programme_truth_gap(settings.truth) if warehouse.table_exists(con, "programmes.evaluation") \
            else None
        if cohort_gap is None:
            from pipelines.cohort_cli import cohort_quality  # issue 16: cohorts against truth, when evaluated

            cohorts = cohort_quality(con, settings.truth)
    finally:
        con.close()
    if coverage["truth_not_in_warehouse"] or coverage["linked_without_truth"]:
        unknown = (f" ({coverage['truth_of_unknown_sources']:,} of them of {coverage['unknown_sources']:,} source(s) "
                   "with no linked record)") if coverage["unknown_sources"] else ""
        quarantined = (f", {coverage['truth_quarantined']:,} more quarantined at ingest"
                       if coverage["truth_quarantined"] else "")
        err.print(f"familylink: warning: {coverage['truth_not_in_warehouse']:,} of {coverage['truth_records']:,} "
                  f"truth records are not in the warehouse{unknown}{quarantined}, and "
                  f"{coverage['linked_without_truth']:,} of {coverage['linked_records']:,} linked records have no "
                  f"truth row; the measures are computed on the {coverage['in_both']:,} records in both",
                  soft_wrap=True, highlight=False)
    table = Table(title="Person linkage against ground truth (final clusters)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    not_computed: dict[str, list[str]] = {}
    for name, value in quality.items():
        if isinstance(value, NotComputed):
            not_computed.setdefault(str(value), []).append(name)
            table.add_row(name, "not computed")
        else:
            table.add_row(name, f"{value:.4f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)
    for why, names in not_computed.items():
        console.print(f"Not computed ({why}): {', '.join(names)}", soft_wrap=True, highlight=False)
    pairs = Table(title="Person links by pair of sources (a source with itself: its own duplicates)")
    for column in ("sources", "true pairs", "linked pairs", "precision", "recall", "F1"):
        pairs.add_column(column, justify="left" if column == "sources" else "right")
    for row in by_pair.iter_rows(named=True):
        pairs.add_row(f"{row['source_a']} × {row['source_b']}", f"{row['true_pairs']:,}", f"{row['linked_pairs']:,}",
                      f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}")
    console.print(pairs)
    if errors is None:
        console.print("Link errors by cause not shown: the truth has no noise column (the synthetic city's "
                      "generator records the noise it put on each record)", soft_wrap=True, highlight=False)
    else:
        causes = Table(title="Largest classes of missed and false links, by cause (noise on either record)")
        for column in ("kind", "cause", "sources", "pairs"):
            causes.add_column(column, justify="right" if column == "pairs" else "left")
        for row in errors.iter_rows(named=True):
            causes.add_row(row["kind"], row["cause"], row["sources"], f"{row['pairs']:,}")
        console.print(causes)
    if cohort_gap is not None:
        console.print(f"Programme cohorts not evaluated against this truth: {cohort_gap}", soft_wrap=True,
                      highlight=False)
    if cohorts is not None:
        console.print(cohorts)


@app.command()
def run(data_dir: DataDir = None, landing: Landing = None, contracts: Contracts = None) -> None:
    """The nightly run without Prefect: ingest → link → publish → report (the HTML match- and data-quality
    report of the run). A failure leaves the published snapshot as it was; when nothing changed since the
    published snapshot, no new one is published."""
    for option, folder in (("--data-dir", data_dir), ("--landing", landing), ("--contracts", contracts)):
        if folder is not None and not folder.is_dir():  # say so now, not after ten seconds of setting up
            _fail(f"{option} {folder}: no such folder")
    settings = _settings(data_dir=data_dir, landing_dir=landing, contracts_dir=contracts)
    summary = _nightly(settings)
    _print_summary(summary)
    if not summary.ok:
        _fail(f"stage {summary.failed_stage} failed: {summary.failure}")


def _nightly(settings: Settings):
    from pipelines.stages import run_nightly
    from warehouse import RunRefused

    try:
        return run_nightly(settings, progress=console)
    except RunRefused as exc:
        _fail(str(exc))


def _print_summary(summary) -> None:
    from rich.markdown import Markdown

    console.print(Markdown(summary.markdown))
    console.print("\n[bold]Outputs[/]")
    for name, path in summary.outputs.items():
        console.print(f"  {name:<28} {path}")


@app.command()
def publish(data_dir: DataDir = None, contracts: Contracts = None) -> None:
    """Publish a new golden snapshot from the current household graph (checks, Parquet export, atomic switch)."""
    import warehouse
    from pipelines.stages import StageFailure, open_warehouse, run_publish

    settings = _settings(data_dir=data_dir, contracts_dir=contracts)
    _exclusive(settings, "publish")
    con = open_warehouse(settings)
    try:
        if not warehouse.table_exists(con, "graph.record_link"):
            _fail("no household graph yet: run `familylink link` first")
        model = con.execute("select any_value(model_version) from graph.record_link").fetchall()[0][0] or "unknown"
        with warehouse.audited_run(con, "publish") as run_id, console.status("Publishing the golden snapshot"):
            result = run_publish(settings, run_id, model, con=con)
    except StageFailure as exc:
        _fail(f"publish failed, the published snapshot is unchanged: {exc}")
    finally:
        con.close()
    if result.unchanged_from:
        console.print(f"Nothing changed since {result.unchanged_from}: no new snapshot published.")
        return
    from pipelines.stages import prepare_practitioner

    with console.status("Preparing the practitioner service's files"):
        prepare_practitioner(settings)
    table = Table(title=f"Published {result.snapshot_id}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in result.row_counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(f"Parquet, analysts' database and manifest: {result.parquet_dir}")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One SQL query, e.g. \"select * from pseudonymised.household limit 5\".")],
    data_dir: DataDir = None,
    snapshot: Annotated[Optional[str], typer.Option(help="A snapshot id (default: the published one).")] = None,
    limit: Annotated[int, typer.Option(help="Most rows to print.")] = 50,
) -> None:
    """Run one read-only query on the analysts' database of the published snapshot (never the working warehouse)."""
    import duckdb

    settings = _settings("snapshots", data_dir=data_dir)
    folder = settings.snapshots / (snapshot or "current")
    path = folder / "analysts.duckdb"
    if not path.exists():
        _fail(f"no analysts' database at {path}: nothing is published yet (run `familylink run`)"
              if snapshot is None else f"no analysts' database for {snapshot} under {settings.snapshots}")
    con = duckdb.connect(str(path), read_only=True)
    try:
        try:
            relation = con.sql(sql)
        except duckdb.Error as exc:
            _fail(f"query failed: {str(exc).splitlines()[0]}")
        if relation is None:
            return
        columns, rows = relation.columns, relation.limit(limit).fetchall()
    finally:
        con.close()
    table = Table(*columns, title=f"{folder.resolve().name}/analysts.duckdb")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@app.command()
def dictionary(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if docs/data-dictionary.md is out of step, "
                                        "without writing it.")] = False,
) -> None:
    """Write docs/data-dictionary.md from warehouse/published.yaml (the one description of every published column)."""
    from warehouse import DATA_DICTIONARY_PATH, data_dictionary_markdown

    text = data_dictionary_markdown()
    if check:
        current = DATA_DICTIONARY_PATH.read_text(encoding="utf-8") if DATA_DICTIONARY_PATH.exists() else ""
        if current != text:
            _fail(f"{DATA_DICTIONARY_PATH} is out of step with warehouse/published.yaml: run `familylink dictionary`")
        console.print(f"{DATA_DICTIONARY_PATH} is in step.")
        return
    DATA_DICTIONARY_PATH.write_text(text, encoding="utf-8")
    console.print(f"Wrote {DATA_DICTIONARY_PATH}")


@app.command()
def report(
    data_dir: DataDir = None,
    contracts: Contracts = None,
    run_id: Annotated[Optional[str], typer.Option(help="Run to report on (default: the latest completed run).")] = None,
) -> None:
    """Write the match-quality and data-quality report (one offline HTML file) for a run."""
    from pipelines.stages import StageFailure, run_report

    settings = _settings("warehouse", data_dir=data_dir, contracts_dir=contracts)
    con = _open_to_read(settings, "report")
    try:
        if run_id is not None and not con.execute("select count(*) from audit.run where run_id = ?",
                                                  [run_id]).fetchall()[0][0]:
            latest = [r[0] for r in _recent_runs(con, 5)]
            _fail(f"no run {run_id}; latest runs: {', '.join(latest) if latest else 'none'} "
                  "(`familylink runs` lists them)")
        run_id = run_id or (con.execute(
            "select run_id from audit.run where status = 'completed' and flow in ('nightly', 'link', 'publish') "
            "order by started_at desc limit 1").fetchall() or [[None]])[0][0]
        if run_id is None:
            _fail("no completed run to report on: run `familylink run` first")
        path = run_report(settings, run_id, con=con)
    except StageFailure as exc:
        _fail(f"report failed: {exc}")
    finally:
        con.close()
    if path is None:
        _fail("the report package is not installed")
    console.print(f"Report for run {run_id}: {path}")


@app.command()
def review(
    data_dir: DataDir = None,
    borderline: Annotated[int, typer.Option(help="Pairs near the threshold to review.")] = 20,
    random: Annotated[int, typer.Option(help="Pairs drawn at random from all scored pairs.")] = 10,
    referrals: Annotated[bool, typer.Option("--referrals/--no-referrals", help="Offer first the pairs that "
                                            "programme triage referred to clerical review.")] = True,
    reviewer: Annotated[Optional[str], typer.Option(help="Your name for the audit trail (default: OS user).")] = None,
) -> None:
    """Clerical review: label pairs as match / not a match / unsure, with a note, and undo the last label.

    Pairs referred by programme triage come first, then a stratified sample. Each pair shows both records' source,
    record id and role, the names as recorded, and why the model scored it (the match weight's waterfall).
    Labels become must-link / cannot-link rules in the next run and feed the report's precision and recall.
    """
    import getpass

    from rich.prompt import Prompt

    from linkage_models.pipeline import ModelError, approved_model
    from reports.review import LABELS, role_words, sample_pairs, waterfall_lines
    from reports.review import review as run_review

    settings = _settings("warehouse", data_dir=data_dir)
    reviewer = reviewer or getpass.getuser()
    try:
        version, model_path = approved_model(settings)
    except ModelError:
        version = model_path = None  # decisions can still be labelled; the waterfall needs the approved model
    con = _open_to_read(settings, "review")
    try:
        import warehouse

        if not warehouse.table_exists(con, "linkage.person_pairs"):
            _fail("no scored pairs yet: run `familylink link` first")
        pairs = sample_pairs(con, settings.match_threshold, borderline=borderline, random=random,
                             referrals=referrals)
        if not pairs:
            _fail("no pairs left to review")

        def ask(shown, position, total) -> str:
            referral = (f", referred by {shown.pair.referral.programme} triage for household "
                        f"{shown.pair.referral.household_id}" if shown.pair.referral else "")
            table = Table(title=f"Pair {position} of {total} ({shown.pair.stratum.replace('_', ' ')}{referral}, "
                                f"model probability {shown.pair.match_probability:.3f})")
            table.add_column("")
            table.add_column(f"{shown.pair.left[0]} record {shown.pair.left[1]}")
            table.add_column(f"{shown.pair.right[0]} record {shown.pair.right[1]}")
            table.add_row("role", role_words(shown.roles[0]), role_words(shown.roles[1]))
            for name, left, right in shown.rows:
                table.add_row(LABELS.get(name, name), str(left), str(right))
            for name, agreement in shown.identifiers:
                table.add_row(name.replace("_", " "), agreement, agreement)
            console.print(table)
            console.print("Why the model scored it so (match weights: +1 doubles the odds of one person):")
            for line in waterfall_lines(shown.waterfall, settings.match_threshold):
                console.print("  " + line, markup=False, highlight=False)
            answer = Prompt.ask("Same person? (m) match, (n) not a match, (u) unsure, (s) skip, "
                                "(b) undo the last label, (q) quit", choices=["m", "n", "u", "s", "b", "q"],
                                console=console)
            if answer in ("m", "n", "u"):
                note = Prompt.ask("Note for this decision (optional; kept with it, never logged)", default="",
                                  show_default=False, console=console)
                return f"{answer} {note}"
            return answer

        counts = run_review(con, pairs, ask, reviewer=reviewer, model_version=version, model_path=model_path,
                            threshold=settings.match_threshold)
    finally:
        con.close()
    console.print(f"Stored {counts['match']} match, {counts['non_match']} not a match, {counts['unsure']} unsure "
                  f"({counts['skipped']} skipped, {counts['undone']} undone). They apply from the next run.")


@app.command()
def rollback(data_dir: DataDir = None) -> None:
    """Return the golden views to the snapshot published before the current one."""
    from pipelines.stages import open_warehouse
    from warehouse._golden import PublishError, rollback as rollback_snapshot
    import warehouse

    settings = _settings(data_dir=data_dir)
    _exclusive(settings, "rollback")
    con = open_warehouse(settings)
    try:
        left, now = rollback_snapshot(con)
        warehouse.log_access(con, "cli", "rollback", f"{left}->{now}", "operator rollback")
    except PublishError as exc:
        _fail(str(exc))
    finally:
        con.close()
    console.print(f"Rolled back from {left} to {now}.")


@app.command()
def erase(
    source: Annotated[str, typer.Option(help="Source of the record, e.g. health.")],
    record_id: Annotated[str, typer.Option(help="The source's record id.")],
    reason: Annotated[str, typer.Option(help="Why (e.g. the erasure request reference); kept in the audit log.")],
    actor: Annotated[str, typer.Option(help="Who asked for it.")] = "data-protection-lead",
    data_dir: DataDir = None,
) -> None:
    """Erase one source record from every table, rebuild the graph, publish, purge older snapshots holding it,
    and rewrite the warehouse file so that no copy of the deleted values remains in it."""
    from pipelines.stages import run_erasure
    from warehouse import RunRefused
    from warehouse._erasure import ErasureError

    settings = _settings(data_dir=data_dir)
    try:
        summary = run_erasure(settings, source, record_id, actor=actor, reason=reason)
    except (ErasureError, RunRefused) as exc:
        _fail(str(exc))
    if summary.published:
        console.print(f"Published {summary.published}; purged {', '.join(summary.purged) or 'no older snapshots'}.")
    console.print(f"Erased {source}:{record_id} from {len(summary.rows_deleted)} tables ({summary.total} rows).")


@app.command("lift-erasure-block")
def lift_erasure_block(
    source: Annotated[str, typer.Option(help="Source of the record.")],
    record_id: Annotated[str, typer.Option(help="The source's record id.")],
    reason: Annotated[str, typer.Option(help="Why the erasure was a mistake; kept in the audit log.")],
    actor: Annotated[str, typer.Option(help="Who asked for it.")] = "data-protection-lead",
    data_dir: DataDir = None,
) -> None:
    """Correct a mistaken erasure: the next extract that carries the record stages it again."""
    from pipelines.stages import open_warehouse
    from warehouse._erasure import lift_erasure_block as lift

    settings = _settings(data_dir=data_dir)
    _exclusive(settings, "lift-erasure-block")
    con = open_warehouse(settings)
    try:
        existed = lift(con, source, record_id, actor=actor, reason=reason)
    finally:
        con.close()
    if not existed:
        _fail(f"{source}:{record_id} is not blocked by an erasure")
    console.print(f"{source}:{record_id} may be staged again from the next extract that carries it.")


@app.command()
def demo(
    people: Annotated[int, typer.Option(help="Residents in the synthetic city.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same city.")] = 42,
    data_dir: DataDir = None,
) -> None:
    """Build the synthetic city and run the nightly flow on it, then say where everything is.

    The demo trains and promotes a person model itself when none is approved (a nightly run never does),
    and evaluates the result against the city's ground truth.
    """
    from linkage_models.pipeline import approved_version, promote
    from pipelines.stages import run_ingest

    settings = _settings(data_dir=data_dir)
    synth(people=people, seed=seed, data_dir=settings.data_dir)
    if approved_version(settings) is None:
        loads = run_ingest(settings, progress=console)
        if not all(load.ok for load in loads):
            _print_loads(loads)
            _fail("; ".join(f"{l.source}: {l.message}" for l in loads if not l.ok))
        train(data_dir=settings.data_dir)
        promote(settings, sorted(p.name for p in (settings.models / "person").iterdir() if p.is_dir())[-1])
        console.print("Demo: promoted the model it just trained.")
    summary = _nightly(settings)
    _print_summary(summary)
    if not summary.ok:
        _fail(f"stage {summary.failed_stage} failed: {summary.failure}")
    evaluate(data_dir=settings.data_dir)


# --- practitioner service: `familylink serve` and `familylink users ...` (practitioner/) ---
users_app = typer.Typer(help="Accounts and roles of the practitioner service.", no_args_is_help=True)
app.add_typer(users_app, name="users")
DEMO_PASSWORD = "familylink-demo"  # only ever set by --demo-account, which binds to loopback only
DEMO_USERS = (("demo-health", "Demo health visitor", "Health", "practitioner", "Health visiting"),
              ("demo-mash", "Demo MASH officer", "Children's Services", "multi_agency", None),
              ("demo-ig", "Demo IG officer", "Information Governance", "ig_officer", None))


def _store(settings: Settings):
    from practitioner import build_context

    return build_context(settings)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to bind (default practitioner_host, 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default practitioner_port, 8400).")] = None,
    demo_account: Annotated[bool, typer.Option("--demo-account", help="Create demo users (loopback only).")] = False,
    prepare: Annotated[bool, typer.Option("--prepare", help="Only build the published snapshot's index and keys "
                                          "files (run after a publish: the service then starts in seconds).")] = False,
    data_dir: DataDir = None,
) -> None:
    """Run the practitioner index service ("who else is involved?") over the published snapshot."""
    from practitioner import add_user, list_users, prepare as prepare_files, serve as run_service

    settings = _settings(data_dir=data_dir)
    if prepare:
        started = time.perf_counter()
        snapshot_id = prepare_files(settings)
        if snapshot_id is None:
            _fail("no published snapshot yet: run the nightly flow (`familylink run`)")
        console.print(f"Practitioner files for {snapshot_id} ready in {time.perf_counter() - started:.1f} s")
        return
    bind = host or settings.practitioner_host
    if demo_account:
        if bind not in ("127.0.0.1", "localhost", "::1"):
            _fail("--demo-account is for a local demo only: bind to 127.0.0.1")
        ctx = _store(settings)
        existing = {u["username"] for u in list_users(ctx.engine)}
        for username, name, agency, role, team in DEMO_USERS:
            if username not in existing:
                add_user(ctx.engine, username, display_name=name, agency=agency, role=role, team=team,
                         password=DEMO_PASSWORD)
        console.print(f"Demo accounts (password {DEMO_PASSWORD}): " + ", ".join(u[0] for u in DEMO_USERS))
    console.print(f"Practitioner service on http://{bind}:{port or settings.practitioner_port}/ (Ctrl-C stops)")
    run_service(settings, host=bind, port=port)


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Sign-in name.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    agency: Annotated[str, typer.Option(help="The user's agency, as involvements name it (e.g. Health).")],
    role: Annotated[str, typer.Option(help="Role (see `familylink users roles`).")] = "practitioner",
    team: Annotated[Optional[str], typer.Option(help="Team or service, for legitimate relationships.")] = None,
    oidc_subject: Annotated[Optional[str], typer.Option(help="OIDC subject, for single sign-on users.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Register a user. Local users get a password (prompted, or from stdin); OIDC users a subject."""
    from practitioner import add_user

    password = None
    if oidc_subject is None:
        password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt(
            "Password", hide_input=True, confirmation_prompt=True)
    try:
        add_user(_store(_settings(data_dir=data_dir)).engine, username, display_name=name, agency=agency, role=role,
                 team=team, password=password, oidc_subject=oidc_subject)
    except (KeyError, ValueError) as exc:
        _fail(str(exc).strip("'\""))
    console.print(f"Added {username} ({agency}, role {role}).")


@users_app.command("list")
def users_list(data_dir: DataDir = None) -> None:
    """Every user with agency, team, role and state (never password hashes)."""
    from practitioner import list_users

    table = Table("user", "name", "agency", "team", "role", "active", "locked until", "sso")
    for u in list_users(_store(_settings(data_dir=data_dir)).engine):
        table.add_row(u["username"], u["display_name"], u["agency"], u["team"] or "", u["role"],
                      "yes" if u["active"] else "no", str(u["locked_until"] or ""), "yes" if u["oidc_subject"] else "")
    console.print(table)


@users_app.command("set")
def users_set(
    username: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[Optional[str], typer.Option(help="New role (see `familylink users roles`).")] = None,
    agency: Annotated[Optional[str], typer.Option(help="New agency, as involvements name it.")] = None,
    team: Annotated[Optional[str], typer.Option(help="New team or service.")] = None,
    active: Annotated[Optional[bool], typer.Option("--enable/--disable", help="Allow or stop the user signing in.")] = None,
    unlock: Annotated[bool, typer.Option("--unlock", help="Clear a lockout.")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Set a new password from stdin.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Change a user's role, agency, team or state; a changed role or disabling ends their sessions."""
    from practitioner import update_user

    changes: dict = {k: v for k, v in {"role": role, "agency": agency, "team": team, "active": active}.items()
                     if v is not None}
    if unlock:
        changes.update(locked_until=None, failed_logins=0)
    if password_stdin:
        changes["password"] = sys.stdin.readline().rstrip("\n")
    if not changes:
        _fail("nothing to change")
    try:
        update_user(_store(_settings(data_dir=data_dir)).engine, username, **changes)
    except (KeyError, ValueError) as exc:
        _fail(str(exc).strip("'\""))
    console.print(f"Updated {username}: {', '.join(sorted(changes))}.")


@users_app.command("roles")
def users_roles(data_dir: DataDir = None) -> None:
    """Roles and the agencies each one's sharing agreements cover."""
    from practitioner import list_roles

    table = Table("role", "agencies (own agency always)", "household", "break-glass", "IG", "referrals", "description")
    for r in list_roles(_store(_settings(data_dir=data_dir)).engine):
        table.add_row(r.name, ", ".join(r.agencies) or "own only", *("yes" if f else "" for f in (
            r.household, r.break_glass, r.ig_officer, r.referrals)), r.description)
    console.print(table)


@users_app.command("role")
def users_role(
    name: Annotated[str, typer.Argument(help="Role name.")],
    agency: Annotated[Optional[list[str]], typer.Option("--agency", help="An agency this role may see; repeat; * = all.")] = None,
    household: Annotated[bool, typer.Option("--household", help="May see household members.")] = False,
    break_glass: Annotated[bool, typer.Option("--break-glass/--no-break-glass",
                                              help="May use break-glass access (recorded and reviewed).")] = True,
    ig_officer: Annotated[bool, typer.Option("--ig-officer", help="May open the IG page and audit.")] = False,
    referrals: Annotated[bool, typer.Option("--referrals", help="May post referrals.")] = False,
    description: Annotated[str, typer.Option(help="What the role is for, shown by `users roles`.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create or replace a role: which agencies' involvements it may see under the sharing agreements."""
    from practitioner import set_role

    role = set_role(_store(_settings(data_dir=data_dir)).engine, name, agencies=list(agency or []), household=household,
                    break_glass=break_glass, ig_officer=ig_officer, referrals=referrals, description=description)
    console.print(f"Role {role.name}: agencies {', '.join(role.agencies) or 'own only'}.")


@users_app.command("audit-check")
def users_audit_check(data_dir: DataDir = None) -> None:
    """Re-compute the audit hash chain; exit 1 when any row was altered or removed."""
    from practitioner.audit.service import verify_chain

    check = verify_chain(_store(_settings(data_dir=data_dir)).engine)
    if not check.ok:
        _fail(f"audit chain broken at row {check.first_bad_seq} ({check.rows} rows read)")
    console.print(f"Audit chain intact: {check.rows} rows.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())


# issue 16: `familylink cohort …` (programme cohorts, triage, needs and costs) lives in pipelines/cohort_cli.py
from pipelines.cohort_cli import cohort_app  # noqa: E402  (imports this module's helpers, so it comes last)

app.add_typer(cohort_app, name="cohort")
