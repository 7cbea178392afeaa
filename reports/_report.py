"""Render the run report: figures from reports/_figures.py, Splink's own charts, one offline HTML file."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from reports import _figures as figures

_TEMPLATES = Path(__file__).parent / "templates"


def _splink_charts(con: duckdb.DuckDBPyConnection, model_path: Path | None) -> dict[str, dict]:
    """Splink's match-weights and m/u charts for the model in use, as Vega-Lite specs."""
    if model_path is None or not model_path.exists():
        return {}
    from linkage_models._person_model import INPUT_TABLE, make_linker

    if not figures._exists(con, f"main.{INPUT_TABLE}"):
        return {}
    linker = make_linker(con, str(model_path))
    return {
        "match_weights": linker.visualisations.match_weights_chart().chart_dict,
        "m_u_parameters": linker.visualisations.m_u_parameters_chart().chart_dict,
    }


def _bar_chart(values: list[dict], x: str, y: str, x_title: str, y_title: str) -> dict:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": values},
        "mark": "bar",
        "width": 560, "height": 220,
        "encoding": {
            "x": {"field": x, "type": "ordinal", "title": x_title},
            "y": {"field": y, "type": "quantitative", "title": y_title, "scale": {"type": "symlog"}},
            "tooltip": [{"field": x}, {"field": y}],
        },
    }


def _chart_libraries() -> dict[str, str]:
    from splink.internals.html_utils import load_chart_libraries

    return load_chart_libraries()


def _json(value) -> str:
    from splink.internals.html_utils import _ChartEncoder, json_for_html

    return json_for_html(value, cls=_ChartEncoder)


def render(con: duckdb.DuckDBPyConnection, *, run_id: str, threshold: float, contracts: dict,
           model_version: str | None, model_dir: Path | None, truth_dir: Path | None,
           data_docs: str | None) -> str:
    run = con.execute("select flow, started_at, finished_at, status from audit.run where run_id = ?",
                      [run_id]).fetchall()
    weights = figures.match_weights(con, threshold)
    cluster_figures = figures.clusters(con, run_id)
    charts = {
        "weight_histogram": _bar_chart(weights["histogram"], "weight", "pairs", "match weight (rounded down)",
                                       "scored pairs"),
        "cluster_sizes": _bar_chart(cluster_figures["sizes"], "records", "persons", "records per person",
                                    "persons"),
    }
    try:
        charts.update(_splink_charts(con, model_dir / "model.duckdb.json" if model_dir else None))
    except Exception as exc:  # the report still renders; the section says why the charts are missing
        logging.getLogger("familylink.report").warning("Splink charts unavailable: %s", type(exc).__name__)
    environment = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    template = environment.get_template("report.html.j2")
    return template.render(
        run_id=run_id,
        run=run[0] if run else None,
        generated_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        threshold=threshold,
        sources=figures.sources(con, run_id),
        data_docs=data_docs,
        linked=figures.linked_across_sources(con),
        weights=weights,
        accuracy=figures.accuracy(con, truth_dir),
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
        if figures._exists(con, "graph.record_link") else None
    version = version or approved_version(settings)
    model_dir = settings.models / "person" / version if version else None
    out = settings.reports / run_id
    out.mkdir(parents=True, exist_ok=True)
    docs = out / "data-docs" / "index.html"
    html = render(con, run_id=run_id, threshold=settings.match_threshold,
                  contracts=load_contracts(settings.contracts_dir), model_version=version, model_dir=model_dir,
                  truth_dir=settings.truth, data_docs="data-docs/index.html" if docs.exists() else None)
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
