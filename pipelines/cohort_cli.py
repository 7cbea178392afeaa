"""`familylink cohort …`: programme cohorts, triage, needs and costs (issue 16; the logic is in programmes/)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from pipelines.cli import DataDir, _exclusive, _fail, _settings, console

cohort_app = typer.Typer(help="Programme cohorts (Troubled Families, Supporting Families), triage, needs and costs.",
                         no_args_is_help=True)

Rules = Annotated[Optional[Path], typer.Option("--rules", help="Folder of programme files (default: the shipped rules).")]
UnitCostsFile = Annotated[Optional[Path], typer.Option("--unit-costs", help="Unit-cost file (YAML).")]
Programme = Annotated[Optional[str], typer.Option("--programme", "-p", help="One programme (default: all).")]


def _open(settings):
    from pipelines.stages import open_warehouse

    if not settings.warehouse.exists():  # never an empty warehouse file made by a command that only reads
        _fail(f"nothing is published yet: no warehouse at {settings.warehouse}")
    con = open_warehouse(settings)
    import warehouse

    published = warehouse.table_exists(con, "audit.snapshot") and con.execute(
        "select snapshot_id from audit.snapshot where status = 'published'").fetchall()
    if not published:
        con.close()
        _fail("nothing is published yet: run `familylink run` (or `familylink publish`) first")
    return con, published[0][0]


def _evaluated(con, snapshot: str) -> None:
    from programmes import ensure_tables

    ensure_tables(con)
    if not con.execute("select count(*) from programmes.evaluation where snapshot_id = ?", [snapshot]).fetchall()[0][0]:
        con.close()
        _fail(f"{snapshot} has no programme evaluation yet: run `familylink cohort evaluate`")


@cohort_app.command("validate")
def validate(rules: Rules = None, unit_costs: UnitCostsFile = None, data_dir: DataDir = None) -> None:
    """Check every programme file and the unit costs; errors name the file, the key and the problem."""
    from programmes import RuleError, load_programmes, load_unit_costs

    settings = _settings(data_dir=data_dir)
    try:
        programmes = load_programmes(rules or settings.programmes_dir)
        costs = load_unit_costs(unit_costs or settings.unit_costs_path)
    except RuleError as exc:
        _fail(str(exc))
    for name, p in programmes.items():
        console.print(f"[green]ok[/] {name}: {len(p.criteria)} criteria, {len(p.household_rule.any_of)} household rule(s)")
    placeholders = sum(c.placeholder for c in costs.costs)
    console.print(f"[green]ok[/] unit costs: {len(costs.costs)} rows, {placeholders} placeholder(s) for the council to fill")


@cohort_app.command("evaluate")
def evaluate(data_dir: DataDir = None, rules: Rules = None, unit_costs: UnitCostsFile = None,
             price_year: Annotated[Optional[int], typer.Option(help="Uplift costs to this price year.")] = None) -> None:
    """Evaluate every programme on the published snapshot again (after triage, or new rules or unit costs)."""
    import warehouse
    from programmes import RuleError, evaluate_published
    from warehouse import DictionaryError

    settings = _settings(data_dir=data_dir, programmes_dir=rules, unit_costs_path=unit_costs, cost_price_year=price_year)
    _exclusive(settings, "cohorts")
    con, snapshot = _open(settings)
    try:
        parquet_dir = con.execute("select parquet_dir from audit.snapshot where snapshot_id = ?",
                                  [snapshot]).fetchall()[0][0]
        manifest = Path(parquet_dir or "") / "manifest.json"
        # the snapshot's own date (its manifest), else the newest extract date, as publish takes it
        as_of = dt.date.fromisoformat(json.loads(manifest.read_text(encoding="utf-8"))["as_of"]) \
            if parquet_dir and manifest.exists() else \
            con.execute("select max(extract_date) from audit.current_extract").fetchall()[0][0]
        with warehouse.audited_run(con, "cohorts", {"snapshot": snapshot}) as run_id:
            summary = evaluate_published(con, settings, snapshot, as_of,
                                         Path(parquet_dir) if parquet_dir else None, report_dir=settings.reports / run_id)
    except (RuleError, DictionaryError) as exc:
        _fail(str(exc))
    finally:
        con.close()
    from rich.markdown import Markdown

    console.print(Markdown(summary.markdown))


@cohort_app.command("show")
def show(data_dir: DataDir = None, programme: Programme = None,
         households: Annotated[bool, typer.Option("--households", help="List the households (ids, ward, criteria).")] = False) -> None:
    """Cohort sizes of the published snapshot; with --households, the households in each cohort."""
    settings = _settings("warehouse", data_dir=data_dir)
    con, snapshot = _open(settings)
    try:
        _evaluated(con, snapshot)
        sizes = con.execute("select programme, programme_title, as_of, qualifying, in_cohort from programmes.evaluation "
                            "where snapshot_id = ? and (? is null or programme = ?) order by programme",
                            [snapshot, programme, programme]).fetchall()
        rows = con.execute("select programme, household_id, coalesce(ward_name, ''), array_to_string(criteria_met, ', '), "
                           "coalesce(triage_decision, ''), in_cohort, first_qualified from programmes.cohort "
                           "where snapshot_id = ? and (? is null or programme = ?) order by programme, household_id",
                           [snapshot, programme, programme]).fetchall() if households else []
    finally:
        con.close()
    table = Table(title=f"Programme cohorts, {snapshot}")
    for column in ("programme", "as of", "qualifying", "in cohort"):
        table.add_column(column, justify="right" if column in ("qualifying", "in cohort") else "left")
    for name, title, as_of, qualifying, in_cohort in sizes:
        table.add_row(f"{title} ({name})", str(as_of), f"{qualifying:,}", f"{in_cohort:,}")
    console.print(table)
    if households:
        listing = Table(title="Households (ids only)")
        for column in ("programme", "household", "ward", "criteria met", "triage", "in cohort", "first qualified"):
            listing.add_column(column)
        for row in rows:
            listing.add_row(row[0], str(row[1]), row[2], row[3], row[4], "yes" if row[5] else "no", str(row[6]))
        console.print(listing)


@cohort_app.command("changes")
def changes(data_dir: DataDir = None, programme: Programme = None) -> None:
    """Households that joined or left each cohort at the last refresh, and why."""
    settings = _settings("warehouse", data_dir=data_dir)
    con, snapshot = _open(settings)
    try:
        _evaluated(con, snapshot)
        rows = con.execute("select programme, change, household_id, reason from programmes.cohort_change "
                           "where snapshot_id = ? and (? is null or programme = ?) order by programme, change, household_id",
                           [snapshot, programme, programme]).fetchall()
    finally:
        con.close()
    table = Table(title=f"Cohort changes at {snapshot}")
    for column in ("programme", "change", "household", "why"):
        table.add_column(column)
    for name, change, household, reason in rows:
        table.add_row(name, change, str(household), reason)
    console.print(table)


@cohort_app.command("triage")
def triage(
    household_id: int,
    programme: Annotated[str, typer.Option("--programme", "-p", help="The programme the decision is for.")],
    decision: Annotated[str, typer.Option(help="accepted | removed | clerical_review | reopened")],
    actor: Annotated[str, typer.Option(help="Who decided (the triage panel member).")],
    reason: Annotated[Optional[str], typer.Option(help="For a removal: moved_away | wrong_link | already_supported | "
                                                       "not_eligible | deceased | other")] = None,
    note: Annotated[Optional[str], typer.Option(help="Panel note (kept in the warehouse; never published).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Record a triage decision for one household; it is honoured at every later refresh until reopened."""
    from programmes._triage import TriageError, record_triage

    settings = _settings("warehouse", data_dir=data_dir)
    _exclusive(settings, "triage")
    con, _ = _open(settings)
    try:
        decision_id = record_triage(con, programme, household_id, decision, actor=actor, reason=reason, note=note)
        referred = con.execute("select count(*) from programmes.clerical_referral where decision_id = ?",
                               [decision_id]).fetchall()[0][0]
    except TriageError as exc:
        _fail(str(exc))
    finally:
        con.close()
    console.print(f"recorded {decision} for household {household_id} ({programme}), decision {decision_id}"
                  + (f"; {referred} evidence record(s) on a doubtful link sent to clerical review" if referred else "")
                  + ". It takes effect at the next refresh (or `familylink cohort evaluate`).")


@cohort_app.command("needs")
def needs(data_dir: DataDir = None) -> None:
    """Households by ward and need type, and households known to three or more agencies."""
    settings = _settings("warehouse", data_dir=data_dir)
    con, snapshot = _open(settings)
    try:
        _evaluated(con, snapshot)
        rows = con.execute("select coalesce(ward_name, 'ward unknown'), need_type, households from programmes.need_by_ward "
                           "where snapshot_id = ? order by 1, 2", [snapshot]).fetchall()
    finally:
        con.close()
    table = Table(title=f"Households by ward and need (12 months to the snapshot date), {snapshot}")
    for column in ("ward", "need", "households"):
        table.add_column(column, justify="right" if column == "households" else "left")
    for ward, need, count in rows:
        table.add_row(ward, need, f"{count:,}")
    console.print(table)


@cohort_app.command("costs")
def costs(data_dir: DataDir = None) -> None:
    """Recorded interventions × unit costs over 12 months: by agency and item, and by cohort (not savings)."""
    settings = _settings("warehouse", data_dir=data_dir)
    con, snapshot = _open(settings)
    try:
        _evaluated(con, snapshot)
        by_item = con.execute("select agency, cost_title, sum(units), sum(coalesce(cost_in_target_year, cost)), "
                              "bool_or(placeholder), any_value(price_year) from programmes.household_cost "
                              "where snapshot_id = ? group by all order by 4 desc nulls last, 1", [snapshot]).fetchall()
        by_cohort = con.execute("select c.programme, count(*), sum(n.recorded_cost), sum(n.unpriced_items) "
                                "from programmes.cohort c join programmes.household_need n using (snapshot_id, household_id) "
                                "where c.snapshot_id = ? and c.in_cohort group by 1 order by 1", [snapshot]).fetchall()
    finally:
        con.close()
    table = Table(title="Recorded cost by agency and item (12 months; unit costs with their price years)")
    for column in ("agency", "item", "units", "cost £", "price year"):
        table.add_column(column, justify="right" if column in ("units", "cost £") else "left")
    for agency, item, units, cost, placeholder, year in by_item:
        table.add_row(agency, item, f"{units:,.1f}", "placeholder" if placeholder else f"{cost:,.0f}", str(year or "—"))
    console.print(table)
    cohort = Table(title="Recorded cost by cohort (priced items only)")
    for column in ("programme", "households", "cost £", "unpriced items"):
        cohort.add_column(column, justify="left" if column == "programme" else "right")
    for name, households, cost, unpriced in by_cohort:
        cohort.add_row(name, f"{households:,}", f"{cost or 0:,.0f}", f"{unpriced or 0:,}")
    console.print(cohort)
    console.print("These are recorded interventions × unit costs, not savings.")


@cohort_app.command("report")
def report(data_dir: DataDir = None,
           out: Annotated[Optional[Path], typer.Option(help="Folder for cohorts.html (default data/reports/cohorts).")] = None
           ) -> None:
    """Write the offline cohort and needs report (HTML with charts) for the published snapshot."""
    from programmes._report import write_cohort_report

    settings = _settings("warehouse", data_dir=data_dir)
    con, snapshot = _open(settings)
    try:
        _evaluated(con, snapshot)
        quality = None
        if Path(settings.truth, "records.parquet").exists():  # the synthetic city: say how accurate the cohorts are
            from programmes._truth import evaluate_cohorts

            quality = evaluate_cohorts(con, settings.truth, snapshot=snapshot, rules_dir=settings.programmes_dir)
        path = write_cohort_report(con, out or settings.reports / "cohorts", snapshot,
                                   rules_dir=settings.programmes_dir, unit_costs=settings.unit_costs_path,
                                   quality=quality)
    finally:
        con.close()
    console.print(f"cohort and needs report: {path}")


@cohort_app.command("quality")
def quality(data_dir: DataDir = None) -> None:
    """Cohort precision and recall against the synthetic city's ground truth (evaluation only)."""
    settings = _settings("warehouse", data_dir=data_dir)
    con, snapshot = _open(settings)
    try:
        _evaluated(con, snapshot)
        table = cohort_quality(con, settings.truth, snapshot)
    finally:
        con.close()
    if table is None:
        _fail(f"no ground truth at {settings.truth} (only the synthetic city has one)")
    console.print(table)


def cohort_quality(con, truth_dir: Path, snapshot: str | None = None) -> Table | None:
    """The cohort-against-truth table, or None when no programme evaluation exists for the snapshot."""
    from programmes._truth import evaluate_cohorts

    import warehouse

    exists = warehouse.table_exists(con, "programmes.evaluation")
    if not exists or not Path(truth_dir, "records.parquet").exists():
        return None
    try:
        results = evaluate_cohorts(con, truth_dir, snapshot=snapshot)
    except ValueError:
        return None
    table = Table(title="Programme cohorts against ground truth (households qualifying, triage aside)",
                  caption="Explained: a false or missed person link among the household's evidence records, a "
                          "household not rebuilt exactly, or a recorded date of birth giving another age. Not "
                          "explained differences are defects.")
    for column in ("programme", "expected", "found", "precision", "recall", "missed", "false",
                   "explained by linkage", "not explained", "errors by cause"):
        table.add_column(column, justify="left" if column in ("programme", "errors by cause") else "right")
    for q in results:
        missed = sum(v for k, v in q.errors_by_cause.items() if k.startswith("missed"))
        false = sum(v for k, v in q.errors_by_cause.items() if k.startswith("false"))
        table.add_row(q.programme, f"{q.expected:,}", f"{q.found:,}", f"{q.precision:.4f}", f"{q.recall:.4f}",
                      f"{missed:,}", f"{false:,}", f"{q.explained:,}",
                      f"[red]{q.not_explained:,}[/]" if q.not_explained else "0",
                      "; ".join(f"{k} {v}" for k, v in q.errors_by_cause.items()) or "none")
    return table
