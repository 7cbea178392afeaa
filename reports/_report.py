"""Render the run report: figures from reports/_figures.py, Splink's own charts, one offline HTML file."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from pathlib import Path

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from reports import _figures as figures
from warehouse import table_exists

_TEMPLATES = Path(__file__).parent / "templates"


def _splink_charts(con: duckdb.DuckDBPyConnection, model_path: Path | None) -> dict[str, dict]:
    """Splink's match-weights and m/u charts for the model in use, as Vega-Lite specs."""
    if model_path is None or not model_path.exists():
        return {}
    from linkage_models._person_model import INPUT_TABLE, make_linker

    if not table_exists(con, f"main.{INPUT_TABLE}"):
        return {}
    linker = make_linker(con, str(model_path))
    return {
        "match_weights": linker.visualisations.match_weights_chart().chart_dict,
        "m_u_parameters": linker.visualisations.m_u_parameters_chart().chart_dict,
    }


_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier, never fetched


def _bar_chart(values: list[dict], x: str, y: str, x_title: str, y_title: str) -> dict:
    return {
        "$schema": _SCHEMA,
        "data": {"values": values},
        "mark": "bar",
        "width": 560, "height": 220,
        "encoding": {
            "x": {"field": x, "type": "ordinal", "title": x_title},
            "y": {"field": y, "type": "quantitative", "title": f"{y_title} (symlog scale)", "scale": {"type": "symlog"}},
            "tooltip": [{"field": x}, {"field": y}],
        },
    }


def threshold_weight(threshold: float) -> float:
    """The match weight of a match probability (Splink: weight = log2 of the odds)."""
    return math.log2(threshold / (1 - threshold))


def _weight_histogram(histogram: list[dict], threshold: float) -> dict:
    """Scored pairs by match weight, one bar per unit of weight, with the threshold in use drawn as a line."""
    values = [{"from": h["weight"], "to": h["weight"] + 1, "pairs": h["pairs"]} for h in histogram]
    at = threshold_weight(threshold)
    return {
        "$schema": _SCHEMA,
        "width": 560, "height": 220,
        "layer": [
            {"data": {"values": values}, "mark": {"type": "bar", "color": "#1d70b8"},
             "encoding": {"x": {"field": "from", "type": "quantitative", "title": "match weight"},
                          "x2": {"field": "to"},
                          "y": {"field": "pairs", "type": "quantitative", "title": "scored pairs (symlog scale)",
                                "scale": {"type": "symlog"}},
                          "tooltip": [{"field": "from", "title": "weight from"}, {"field": "pairs"}]}},
            {"data": {"values": [{"at": at, "label": f"threshold {threshold} (weight {at:.1f})"}]},
             "mark": {"type": "rule", "color": "#d4351c", "strokeWidth": 2, "strokeDash": [6, 3]},
             "encoding": {"x": {"field": "at", "type": "quantitative"}}},
            {"data": {"values": [{"at": at, "label": f"threshold {threshold} (weight {at:.1f})"}]},
             "mark": {"type": "text", "color": "#d4351c", "align": "left", "dx": 4, "dy": -100},
             "encoding": {"x": {"field": "at", "type": "quantitative"}, "text": {"field": "label"}}},
        ],
    }


def static_svg(spec: dict) -> str | None:
    """The chart as SVG, drawn here (vl-convert embeds Vega: no browser, no network), so the report shows every
    figure without JavaScript and prints them. None if it cannot be drawn; the page says so."""
    try:
        import vl_convert

        return vl_convert.vegalite_to_svg(spec)
    except Exception as exc:  # a chart the converter cannot draw still renders interactively
        logging.getLogger("familylink.report").warning("static chart unavailable: %s", type(exc).__name__)
        return None


def _chart_libraries() -> dict[str, str]:
    from splink.internals.html_utils import load_chart_libraries

    return load_chart_libraries()


def _json(value) -> str:
    from splink.internals.html_utils import _ChartEncoder, json_for_html

    return json_for_html(value, cls=_ChartEncoder)


RUNNING = "finishing: the report is the run's last stage; this line shows the final status once the run has ended"


def render(con: duckdb.DuckDBPyConnection, *, run_id: str, threshold: float, contracts: dict,
           model_version: str | None, model_dir: Path | None, truth_dir: Path | None,
           data_docs: str | None, target_precision: float = 0.995, target_recall: float = 0.95) -> str:
    run = con.execute("select flow, started_at, finished_at, status from audit.run where run_id = ?",
                      [run_id]).fetchall()
    weights = figures.match_weights(con, threshold)
    cluster_figures = figures.clusters(con, run_id)
    accuracy = figures.accuracy(con, truth_dir)
    plain = figures.plain_accuracy(accuracy, figures.truth_pair_counts(con, truth_dir) if accuracy["truth"] else None,
                                   figures.model_estimate(con, threshold), target_precision, target_recall)
    snapshot = con.execute("select snapshot_id, status, message from audit.snapshot where run_id = ? "
                           "order by created_at desc limit 1", [run_id]).fetchall() \
        if table_exists(con, "audit.snapshot") else []
    charts = {
        "weight_histogram": _weight_histogram(weights["histogram"], threshold),
        "cluster_sizes": _bar_chart(cluster_figures["sizes"], "records", "persons", "records per person",
                                    "persons"),
    }
    try:
        charts.update(_splink_charts(con, model_dir / "model.duckdb.json" if model_dir else None))
    except Exception as exc:  # the report still renders; the section says why the charts are missing
        logging.getLogger("familylink.report").warning("Splink charts unavailable: %s", type(exc).__name__)
    environment = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    environment.filters["in_words"] = figures.in_words
    environment.filters["retention"] = figures.retention_in_words
    template = environment.get_template("report.html.j2")
    return template.render(
        run_id=run_id,
        run=run[0] if run else None,
        status=(RUNNING if run and run[0][3] == "running" else run[0][3]) if run else "unknown",
        plain=plain,
        targets={"precision": target_precision, "recall": target_recall},
        threshold_weight=threshold_weight(threshold),
        groups=figures.link_rates_by_group(con),
        recall_groups=figures.recall_by_group(con, truth_dir) if accuracy["truth"] else [],
        addresses=figures.addresses_and_households(con),
        related=figures.related_records(con),
        snapshot=snapshot[0] if snapshot else None,
        static={name: static_svg(spec) for name, spec in charts.items()},
        generated_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        threshold=threshold,
        sources=figures.sources(con, run_id),
        data_docs=data_docs,
        linked=figures.linked_across_sources(con),
        weights=weights,
        accuracy=accuracy,
        clusters=cluster_figures,
        changes=figures.changes(con, run_id),
        model=figures.model(model_dir),
        model_version=model_version,
        sharing=figures.sharing(contracts),
        charts={name: _json(spec) for name, spec in charts.items()},
        libraries=_chart_libraries(),
    )


def write_run_report(con: duckdb.DuckDBPyConnection, settings, run_id: str) -> Path:
    """Write data/reports/<run_id>/report.html and return its path."""
    from linkage_models.pipeline import approved_version
    from sources._contract import load_contracts

    version = con.execute("select any_value(model_version) from graph.record_link").fetchall()[0][0] \
        if table_exists(con, "graph.record_link") else None
    version = version or approved_version(settings)
    model_dir = settings.models / "person" / version if version else None
    out = settings.reports / run_id
    out.mkdir(parents=True, exist_ok=True)
    docs = out / "data-docs" / "validation.html"
    html = render(con, run_id=run_id, threshold=settings.match_threshold,
                  contracts=load_contracts(settings.contracts_dir), model_version=version, model_dir=model_dir,
                  truth_dir=settings.truth, data_docs="data-docs/validation.html" if docs.exists() else None,
                  target_precision=settings.accuracy_target_precision, target_recall=settings.accuracy_target_recall)
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


_STATUS = re.compile(r'(<b id="run-status">)(.*?)(</b>)', re.S)


def finalise_run_report(path: Path | None, status: str, note: str | None = None) -> None:
    """Write the run's final status into its report, which was rendered while the run was still finishing (the
    report is its last stage). Only the marked status element changes."""
    if path is None or not Path(path).exists():
        return
    from html import escape

    text = Path(path).read_text(encoding="utf-8")
    shown = escape(status + (f" — {note}" if note else ""))
    Path(path).write_text(_STATUS.sub(lambda m: m.group(1) + shown + m.group(3), text, count=1), encoding="utf-8")
