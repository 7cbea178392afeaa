"""Evaluate every programme for every household of one snapshot, in DuckDB.

Each condition of each criterion becomes one `select … from _programme_event` (programmes/sql/criterion.sql);
their union is the evidence; the household rule combines the criteria met (cohort.sql); then the changes since
the previous evaluated snapshot, needs, costs and the pseudonymised tables. All rows carry the snapshot id, so
re-evaluating a snapshot replaces its rows and the `golden.*` / `pseudonymised.*` views follow whichever
snapshot is published (a rollback included).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from programmes._rules import Condition, Programme, UnitCosts, load_programmes, load_unit_costs

_SQL = Path(__file__).parent / "sql"
DOUBTFUL_BELOW = 0.995  # evidence from a record linked with a lower probability can go to clerical review

# tables with one set of rows per snapshot (the order they are built in); which of them are published, as which
# view, and described how, is warehouse/published.yaml (the entries `built_by: programmes`)
SNAPSHOT_TABLES = ("cohort_evidence", "cohort", "cohort_change", "household_cost", "household_need", "need_by_ward",
                   "pseudo_cohort", "pseudo_household_need")


def published_tables() -> dict[str, str]:
    """View -> programmes table, from the registry of the published snapshot."""
    from warehouse import dictionary

    return {name: table.built_as for name, table in dictionary().after_publish.items()}


@dataclass
class CohortSummary:
    snapshot_id: str
    as_of: dt.date
    programmes: dict[str, dict[str, int]] = field(default_factory=dict)  # programme -> counts
    households_known_to_3_plus: int = 0
    recorded_cost: float = 0.0
    unpriced_items: int = 0
    parquet_files: dict[str, str] = field(default_factory=dict)
    report: Path | None = None

    @property
    def markdown(self) -> str:
        lines = [f"# familylink programme cohorts `{self.snapshot_id}` (as of {self.as_of})", "",
                 "| programme | qualifying | in cohort | removed at triage | joined | left |", "|---|---:|---:|---:|---:|---:|"]
        for name, c in self.programmes.items():
            lines.append(f"| {name} | {c['qualifying']:,} | {c['in_cohort']:,} | {c['removed']:,} | {c['joined']:,} "
                         f"| {c['left']:,} |")
        lines += ["", f"- households known to three or more agencies: {self.households_known_to_3_plus:,}",
                  f"- recorded cost over 12 months (priced items only): £{self.recorded_cost:,.0f}; "
                  f"items with a placeholder unit cost: {self.unpriced_items:,}",
                  "", "Counts only; costs are recorded interventions × unit costs, not savings."]
        if self.report:
            lines += ["", f"Cohort and needs report: `{self.report}`"]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return json.loads(json.dumps(self.__dict__, default=str))


def _sql(name: str, **values: object) -> str:
    text = (_SQL / f"{name}.sql").read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def condition_sql(programme: Programme, criterion: str, index: int, condition: Condition) -> str:
    """One `select` of the events (with their member and household) that meet one condition."""
    filters = []
    if condition.person.min_age is not None:
        filters.append(f"and age >= {int(condition.person.min_age)}")
    if condition.person.max_age is not None:
        filters.append(f"and age <= {int(condition.person.max_age)}")
    if condition.value_at_least is not None:
        filters.append(f"and value >= {float(condition.value_at_least)!r}")
    if condition.value_at_most is not None:
        filters.append(f"and value <= {float(condition.value_at_most)!r}")
    if condition.detail_matches is not None:
        filters.append(f"and regexp_matches(coalesce(detail, ''), {_literal(condition.detail_matches)})")
    per_member = [f"count(*) over (partition by person_id) >= {int(condition.count_at_least)}"]
    if condition.total_value_at_least is not None:
        per_member.append(f"coalesce(sum(value) over (partition by person_id), 0) >= "
                          f"{float(condition.total_value_at_least)!r}")
    return _sql("criterion", programme=programme.programme, criterion=criterion, condition_index=index,
                event_types=", ".join(_literal(t) for t in condition.events), months=programme.look_back(condition),
                filters="\n  ".join(filters), per_member=" and ".join(per_member))


def rule_sql(programme: Programme) -> str:
    """The household rule as one SQL expression naming the alternative that holds (null when none does)."""
    cases = []
    for alternative in programme.household_rule.any_of:
        listed = "[" + ", ".join(_literal(c) for c in alternative.of) + "]"
        test = f"len(list_intersect(met.criteria_met, {listed})) >= {alternative.at_least}"
        if alternative.plus_one_of:
            plus = "[" + ", ".join(_literal(c) for c in alternative.plus_one_of) + "]"
            test += f" and len(list_intersect(met.criteria_met, {plus})) >= 1"
        label = alternative.note or f"{alternative.at_least} of {', '.join(alternative.of)}"
        cases.append(f"when {test} then {_literal(label)}")
    expression = "case " + " ".join(cases) + " end"
    if programme.household_requires.dependent_child_max_age is not None:
        expression = f"case when coalesce(children.has_dependent_child, false) then {expression} end"
    return expression


def rules_fingerprint(programmes: dict[str, Programme]) -> dict[str, str]:
    return {name: hashlib.sha256(p.model_dump_json().encode()).hexdigest() for name, p in programmes.items()}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_sql("schema"))


# snapshots that were published at some time: the changes and first_qualified compare with these only, never with
# a snapshot whose run failed before publishing
WAS_PUBLISHED = ("(select snapshot_id from audit.snapshot "
                 "where status in ('published', 'superseded', 'rolled_back', 'expired'))")


def _previous_snapshot(con: duckdb.DuckDBPyConnection, programme: str, snapshot: str) -> str:
    row = con.execute("select max(snapshot_id) from programmes.evaluation where programme = ? and snapshot_id < ? "
                      f"and snapshot_id in {WAS_PUBLISHED}", [programme, snapshot]).fetchall()
    return row[0][0] or ""


def _unit_cost_frame(costs: UnitCosts) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = [{"position": i, "key": c.key, "title": c.title, "event_type": c.event_type,
             "detail_matches": c.detail_matches, "agency": c.agency, "unit": c.unit, "cost": c.cost,
             "price_year": c.price_year, "placeholder": c.placeholder, "source": c.source}
            for i, c in enumerate(costs.costs)]
    schema = {"position": pl.Int64, "key": pl.String, "title": pl.String, "event_type": pl.String,
              "detail_matches": pl.String, "agency": pl.String, "unit": pl.String, "cost": pl.Float64,
              "price_year": pl.Int64, "placeholder": pl.Boolean, "source": pl.String}
    index = pl.DataFrame({"year": list(costs.price_index.values), "value": list(costs.price_index.values.values())},
                         schema={"year": pl.Int64, "value": pl.Float64})
    return pl.DataFrame(rows, schema=schema), index


def evaluate_snapshot(
    con: duckdb.DuckDBPyConnection,
    snapshot: str,
    *,
    as_of: dt.date,
    pseudonymisation_key: bytes,
    rules_dir: Path | None = None,
    unit_costs: Path | None = None,
    price_year: int | None = None,
    doubtful_below: float = DOUBTFUL_BELOW,
    parquet_dir: Path | None = None,
) -> CohortSummary:
    """Evaluate every programme over one built snapshot schema (`snapshot_NNNNNN`), replacing its earlier rows.

    The programme files and unit costs are validated first (RuleError names the file and key). With
    `parquet_dir` (the snapshot's export folder) the published tables are added to its Parquet, analysts' database
    and manifest.json (warehouse.add_to_snapshot: all or nothing, every column described).
    """
    programmes = load_programmes(rules_dir)
    costs = load_unit_costs(unit_costs)
    target_year = int(price_year or as_of.year)
    ensure_tables(con)
    con.execute("set variable as_of = ?", [as_of])
    fingerprints = rules_fingerprint(programmes)
    for table in (*SNAPSHOT_TABLES, "evaluation"):
        con.execute(f"delete from programmes.{table} where snapshot_id = ?", [snapshot])
    _drop_expired(con)

    con.execute(_sql("programme_event", snapshot=snapshot))
    summary = CohortSummary(snapshot, as_of)
    for name, programme in programmes.items():
        selects = [condition_sql(programme, criterion, i, condition)
                   for criterion, spec in programme.criteria.items() for i, condition in enumerate(spec.any_of)]
        con.execute(
            f"insert into programmes.cohort_evidence select '{snapshot}' as snapshot_id, *, "
            f"coalesce(match_probability < {float(doubtful_below)!r}, false) as doubtful_link from (\n"
            + "\nunion all\n".join(selects) + "\n)"
        )
        con.execute(_sql("cohort", snapshot=snapshot, programme=name, rule_met=rule_sql(programme),
                         was_published=WAS_PUBLISHED,
                         dependent_child_max_age=programme.household_requires.dependent_child_max_age or 17))
        previous = _previous_snapshot(con, name, snapshot)
        con.execute(_sql("cohort_change", snapshot=snapshot, previous=previous, programme=name))
        counts = con.execute(
            "select count(*), count(*) filter (where in_cohort), count(*) filter (where not in_cohort) "
            "from programmes.cohort where snapshot_id = ? and programme = ?", [snapshot, name]).fetchall()[0]
        changes = dict(con.execute(
            "select change, count(*) from programmes.cohort_change where snapshot_id = ? and programme = ? group by 1",
            [snapshot, name]).fetchall())
        households = con.execute(f"select count(*) from {snapshot}.household").fetchall()[0][0]
        con.execute("insert into programmes.evaluation (snapshot_id, as_of, programme, programme_title, rules_sha256, "
                    "households_evaluated, qualifying, in_cohort) values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [snapshot, as_of, name, programme.title, fingerprints[name], households, counts[0], counts[1]])
        summary.programmes[name] = {"qualifying": counts[0], "in_cohort": counts[1], "removed": counts[2],
                                    "joined": changes.get("joined", 0), "left": changes.get("left", 0)}

    unit_cost_frame, index_frame = _unit_cost_frame(costs)
    con.register("_unit_cost", unit_cost_frame)
    con.register("_price_index", index_frame)
    try:
        con.execute(_sql("household_cost", snapshot=snapshot, target_year=target_year))
    finally:
        con.unregister("_unit_cost")
        con.unregister("_price_index")
    con.execute(_sql("household_need", snapshot=snapshot, target_year=target_year))

    con.register("_pseudonym", _household_pseudonyms(con, snapshot, pseudonymisation_key))
    try:
        con.execute(_sql("pseudonymised", snapshot=snapshot))
    finally:
        con.unregister("_pseudonym")
    con.execute("drop table if exists _programme_event")
    create_views(con)

    known, cost, unpriced = con.execute(
        "select count(*) filter (where known_to_3_plus_agencies), coalesce(sum(recorded_cost), 0), "
        "coalesce(sum(unpriced_items), 0) from programmes.household_need where snapshot_id = ?", [snapshot]
    ).fetchall()[0]
    summary.households_known_to_3_plus, summary.recorded_cost, summary.unpriced_items = known, float(cost), unpriced
    if parquet_dir is not None:
        summary.parquet_files = add_to_published_snapshot(con, snapshot, Path(parquet_dir))
    return summary


def _drop_expired(con: duckdb.DuckDBPyConnection) -> None:
    """Rows of snapshots that expired, were purged or failed go with them (storage limitation). The cohort
    membership rows (ids and criteria, no records) and the evaluation counts stay for first_qualified and the
    cohort-size history."""
    gone = ("(select snapshot_id from audit.snapshot where status in ('expired', 'purged', 'failed'))")
    for table in SNAPSHOT_TABLES:
        if table != "cohort":
            con.execute(f"delete from programmes.{table} where snapshot_id in {gone}")


def _household_pseudonyms(con: duckdb.DuckDBPyConnection, snapshot: str, key: bytes) -> pl.DataFrame:
    from warehouse import pseudonym  # the same keyed hash as pseudonymised.household, so keys join

    ids = con.sql(f"select distinct household_id as id from {snapshot}.household").pl()
    return ids.with_columns(pl.lit("household").alias("kind"),
                            pl.col("id").map_elements(lambda v: pseudonym(key, "household", v),
                                                      return_dtype=pl.String).alias("pseudonym"))


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """golden.* and pseudonymised.* views over the published snapshot's rows (they follow a switch or rollback)."""
    con.execute("create schema if not exists golden")
    con.execute("create schema if not exists pseudonymised")
    published = "(select snapshot_id from audit.snapshot where status = 'published')"
    for view, table in published_tables().items():
        con.execute(f"create or replace view {view} as select * from programmes.{table} "
                    f"where snapshot_id = {published}")


def add_to_published_snapshot(con: duckdb.DuckDBPyConnection, snapshot: str, snapshot_dir: Path,
                              **options) -> dict[str, str]:
    """The snapshot's rows of every published programme table into the snapshot's own Parquet and analysts'
    database (those the registry marks for analysts; the evidence stays in the warehouse), replacing any earlier
    evaluation's, all or nothing. Returns view -> file written."""
    from warehouse import add_to_snapshot, dictionary

    literal = _literal(snapshot)
    queries = {view: f"select * from programmes.{table} where snapshot_id = {literal}"
               for view, table in published_tables().items()}
    written = add_to_snapshot(con, snapshot, Path(snapshot_dir), queries, dictionary(), **options)
    return {name: entry["file"] for name, entry in written.items()}


def evaluate_published(con: duckdb.DuckDBPyConnection, settings, snapshot: str, as_of: dt.date,
                       parquet_dir: Path | None, report_dir: Path | None = None) -> CohortSummary:
    """The publish hook: evaluate every programme on a snapshot just built, export the published tables beside
    its Parquet files and (with `report_dir`) write the cohort and needs report. Settings are passed down."""
    summary = evaluate_snapshot(con, snapshot, as_of=as_of, pseudonymisation_key=settings.pseudonymisation_key_bytes(),
                                rules_dir=settings.programmes_dir, unit_costs=settings.unit_costs_path,
                                price_year=settings.cost_price_year, parquet_dir=parquet_dir)
    if report_dir is not None:
        from programmes._report import write_cohort_report

        summary.report = write_cohort_report(con, report_dir, snapshot, rules_dir=settings.programmes_dir,
                                             unit_costs=settings.unit_costs_path)
    return summary
