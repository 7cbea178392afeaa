"""The cohort and needs report: one offline HTML file (charts embedded as Vega-Lite with their libraries).

Counts, wards, criteria and costs only: no names, dates of birth, addresses, identifiers or record ids.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from programmes._rules import load_programmes, load_unit_costs

_TEMPLATES = Path(__file__).parent / "templates"
_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    return con.sql(sql, params=params or None).pl().to_dicts()


def _size_chart(values: list[dict]) -> dict:
    return {"$schema": _SCHEMA, "data": {"values": values}, "width": 560, "height": 220,
            "mark": {"type": "line", "point": True},
            "encoding": {"x": {"field": "snapshot_id", "type": "ordinal", "title": "refresh (snapshot)"},
                         "y": {"field": "in_cohort", "type": "quantitative", "title": "households in cohort"},
                         "color": {"field": "programme", "type": "nominal"},
                         "tooltip": [{"field": "programme"}, {"field": "as_of"}, {"field": "in_cohort"}]}}


def _ward_chart(values: list[dict]) -> dict:
    return {"$schema": _SCHEMA, "data": {"values": values}, "width": 560, "height": 240, "mark": "bar",
            "encoding": {"x": {"field": "ward", "type": "nominal", "title": "ward", "sort": "-y"},
                         "y": {"field": "households", "type": "quantitative", "title": "households in cohort"},
                         "color": {"field": "programme", "type": "nominal"},
                         "xOffset": {"field": "programme"},
                         "tooltip": [{"field": "ward"}, {"field": "programme"}, {"field": "households"}]}}


def _upset_chart(combinations: list[dict], criteria: list[str]) -> dict:
    """UpSet-style: a bar per combination of criteria met, above a matrix of dots saying which criteria it holds."""
    matrix = [{"combination": c["combination"], "criterion": name, "member": name in c["criteria"]}
              for c in combinations for name in criteria]
    order = [c["combination"] for c in combinations]
    x = {"field": "combination", "type": "ordinal", "sort": order, "axis": None}
    return {"$schema": _SCHEMA, "vconcat": [
        {"data": {"values": combinations}, "width": 560, "height": 160, "mark": "bar",
         "encoding": {"x": x, "y": {"field": "households", "type": "quantitative", "title": "households"},
                      "tooltip": [{"field": "combination"}, {"field": "households"}]}},
        {"data": {"values": matrix}, "width": 560, "height": 18 * max(1, len(criteria)),
         "mark": {"type": "circle", "size": 90},
         "encoding": {"x": x, "y": {"field": "criterion", "type": "nominal", "sort": criteria, "title": None},
                      "color": {"field": "member", "type": "nominal", "legend": None,
                                "scale": {"domain": [True, False], "range": ["#1d1d1b", "#dddddd"]}}}},
    ], "spacing": 4}


def _cost_chart(values: list[dict]) -> dict:
    return {"$schema": _SCHEMA, "data": {"values": values}, "width": 560, "height": 220, "mark": "bar",
            "encoding": {"x": {"field": "recorded_cost", "type": "quantitative", "bin": {"maxbins": 30},
                               "title": "recorded cost per household over 12 months (£, priced items only)"},
                         "y": {"aggregate": "count", "type": "quantitative", "title": "households"}}}


def _json(value) -> str:
    from splink.internals.html_utils import _ChartEncoder, json_for_html

    return json_for_html(json.loads(json.dumps(value, default=str)), cls=_ChartEncoder)


def _libraries() -> dict[str, str]:
    from splink.internals.html_utils import load_chart_libraries

    return load_chart_libraries()


def render(con: duckdb.DuckDBPyConnection, snapshot: str, *, rules_dir: Path | None = None,
           unit_costs: Path | None = None, quality: list | None = None) -> str:
    """The report's HTML; `quality` (programmes._truth results, synthetic city only) adds the accuracy section."""
    programmes = load_programmes(rules_dir)
    costs = load_unit_costs(unit_costs)
    evaluations = _rows(con, "select snapshot_id, as_of, programme, programme_title, qualifying, in_cohort "
                             "from programmes.evaluation order by snapshot_id, programme")
    current = [e for e in evaluations if e["snapshot_id"] == snapshot]
    by_ward = _rows(con, "select coalesce(ward_name, 'ward unknown') as ward, programme, count(*) as households "
                         "from programmes.cohort where snapshot_id = $1 and in_cohort group by all order by all",
                    [snapshot])
    upsets = {}
    for name, programme in programmes.items():
        combos = _rows(con, "select criteria_met as criteria, array_to_string(criteria_met, ' + ') as combination, "
                            "count(*) as households from programmes.cohort where snapshot_id = $1 and programme = $2 "
                            "and in_cohort group by all order by households desc, combination", [snapshot, name])
        if combos:
            upsets[name] = _json(_upset_chart(combos, list(programme.criteria)))
    changes = _rows(con, "select programme, change, reason, count(*) as households from programmes.cohort_change "
                         "where snapshot_id = $1 group by all order by programme, change, households desc", [snapshot])
    triage = _rows(con, "select programme, coalesce(triage_decision, 'not yet triaged') as decision, "
                        "coalesce(triage_reason, '') as reason, count(*) as households from programmes.cohort "
                        "where snapshot_id = $1 group by all order by all", [snapshot])
    needs = _rows(con, "select need_type, coalesce(ward_name, 'ward unknown') as ward, households "
                       "from programmes.need_by_ward where snapshot_id = $1 order by need_type, ward", [snapshot])
    need_types = sorted({n["need_type"] for n in needs})
    wards = sorted({n["ward"] for n in needs})
    need_table = {(n["ward"], n["need_type"]): n["households"] for n in needs}
    need_summary = _rows(con, "select count(*) as households, count(*) filter (where known_to_3_plus_agencies) as known3, "
                              "sum(interventions_current) as current, sum(interventions_12m) as last12, "
                              "sum(events_12m) as events from programmes.household_need where snapshot_id = $1",
                         [snapshot])[0]
    cost_by_agency = _rows(con, "select agency, cost_title, any_value(placeholder) as placeholder, sum(units) as units, "
                                "sum(coalesce(cost_in_target_year, cost)) as cost, any_value(price_year) as price_year, "
                                "bool_and(uplifted) as uplifted from programmes.household_cost where snapshot_id = $1 "
                                "group by all order by cost desc nulls last, agency", [snapshot])
    cost_by_ward = _rows(con, "select coalesce(ward_name, 'ward unknown') as ward, count(*) filter (where recorded_cost > 0) "
                              "as households_costed, sum(recorded_cost) as cost from programmes.household_need "
                              "where snapshot_id = $1 group by all order by cost desc", [snapshot])
    cost_by_cohort = _rows(con, "select c.programme, count(*) as households, sum(n.recorded_cost) as cost, "
                                "median(n.recorded_cost) as median_cost, sum(n.unpriced_items) as unpriced "
                                "from programmes.cohort c join programmes.household_need n using (snapshot_id, household_id) "
                                "where c.snapshot_id = $1 and c.in_cohort group by all order by all", [snapshot])
    cost_values = _rows(con, "select recorded_cost from programmes.household_need where snapshot_id = $1 "
                             "and recorded_cost > 0", [snapshot])
    charts = {"size": _json(_size_chart(evaluations)), "ward": _json(_ward_chart(by_ward)),
              "cost": _json(_cost_chart(cost_values))}
    environment = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return environment.get_template("cohort_report.html.j2").render(
        snapshot=snapshot, generated_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        programmes=programmes, current=current, changes=changes, triage=triage, upsets=upsets,
        need_types=need_types, wards=wards, need_table=need_table, need_summary=need_summary,
        cost_by_agency=cost_by_agency, cost_by_ward=cost_by_ward, cost_by_cohort=cost_by_cohort, costs=costs,
        charts=charts, libraries=_libraries(), quality=quality,
        uplifted=bool(costs.price_index.values) and not costs.price_index.placeholder)


def write_cohort_report(con: duckdb.DuckDBPyConnection, out_dir: Path, snapshot: str | None = None, **kwargs) -> Path:
    """Write <out_dir>/cohorts.html for a snapshot (default: the published one) and return its path."""
    snapshot = snapshot or con.execute(
        "select snapshot_id from audit.snapshot where status = 'published'").fetchall()[0][0]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "cohorts.html"
    path.write_text(render(con, snapshot, **kwargs), encoding="utf-8")
    return path
