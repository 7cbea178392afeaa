"""The validation results of the current extracts as one offline page (GX's own Data Docs load jQuery, Bootstrap,
Font Awesome and Vega from CDNs and render unstyled, without pass/fail icons, offline).

Counts and shares only: GX keeps the unexpected values themselves in its JSON; they never reach this page.
"""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from pathlib import Path


def latest_results(validations_dir: Path) -> list[dict]:
    """The newest validation result of each suite (an unchanged extract is not validated again, so its newest
    result is the one of the extract now staged)."""
    newest: dict[str, tuple[str, dict]] = {}
    for path in Path(validations_dir).rglob("*.json"):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        suite = result.get("suite_name") or path.parent.parent.parent.name
        when = str(result.get("meta", {}).get("validation_time", ""))
        if suite not in newest or when > newest[suite][0]:
            newest[suite] = (when, result)
    return [newest[k][1] for k in sorted(newest)]


def _row(result: dict) -> str:
    config = result.get("expectation_config", {})
    kwargs = {k: v for k, v in config.get("kwargs", {}).items() if k != "batch_id"}
    outcome = result.get("result", {})
    ok = result.get("success", False)
    error = (result.get("exception_info") or {}).get("raised_exception")
    mark = ('<span class="pass">✔ passed</span>' if ok else
            '<span class="fail">✖ error</span>' if error else '<span class="fail">✖ failed</span>')
    counted = outcome.get("unexpected_count")
    share = outcome.get("unexpected_percent")
    rows = outcome.get("element_count")
    # values of kwargs are the contract's own settings (columns, bounds, patterns), not records' data
    described = ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()) if not isinstance(v, (list, dict)) or len(str(v)) < 80)
    return (f"<tr class=\"{'ok' if ok else 'bad'}\"><td>{mark}</td><td>{escape(config.get('type', ''))}</td>"
            f"<td>{escape(described)}</td><td>{escape(str((config.get('meta') or {}).get('reason', '')))}</td>"
            f"<td class=n>{'' if counted is None else f'{counted:,}'}</td>"
            f"<td class=n>{'' if share is None else f'{share:.2f}%'}</td>"
            f"<td class=n>{'' if rows is None else f'{rows:,}'}</td></tr>")


def validation_page(results: list[dict], run_id: str) -> str:
    sections = []
    for result in results:
        stats = result.get("statistics", {})
        suite = escape(str(result.get("suite_name", "")))
        when = escape(str(result.get("meta", {}).get("validation_time", ""))[:19])
        rows = "\n".join(_row(r) for r in sorted(result.get("results", []),
                                                 key=lambda r: (r.get("success", False), r.get("expectation_config", {}).get("type", ""))))
        sections.append(
            f"<h2 id=\"{suite}\">{suite} {'<span class=pass>✔</span>' if result.get('success') else '<span class=fail>✖</span>'}</h2>"
            f"<p class=note>validated {when} UTC: {stats.get('successful_expectations', 0)} of "
            f"{stats.get('evaluated_expectations', 0)} expectations met.</p>"
            "<table><tr><th>result</th><th>expectation</th><th>settings</th><th>reason (quarantine)</th>"
            "<th class=n>rows failing</th><th class=n>share</th><th class=n>rows</th></tr>"
            f"{rows}</table>")
    body = "\n".join(sections) or "<p>No validation results yet.</p>"
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><title>familylink run {escape(run_id)}: validation results</title>
<style>
body {{ font-family: system-ui, Arial, sans-serif; margin: 2rem auto; max-width: 75rem; padding: 0 1rem; color: #1d1d1b; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .9rem; }}
th, td {{ border: 1px solid #b1b4b6; padding: .25rem .5rem; text-align: left; vertical-align: top; }}
td.n, th.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.pass {{ color: #00703c; font-weight: 600; }} .fail {{ color: #d4351c; font-weight: 600; }}
tr.bad {{ background: #fdf0ee; }} .note {{ color: #505a5f; }}
@page {{ size: A4; margin: 15mm 12mm; }}
@media print {{ h2 {{ break-after: avoid; }} table {{ break-inside: avoid; }} }}
</style></head><body>
<h1>Validation results of the extracts now staged (run {escape(run_id)})</h1>
<p class=note>Great Expectations suites per source, as run by the ingest; rows failing a quarantine expectation are
in quarantine with their reasons, and every other row is staged. Counts only: no values from the records. Generated
{generated}. This page needs no network connection (GX's own Data Docs, beside it in index.html, load their
styles from the internet).</p>
{body}
</body></html>
"""


def write_validation_page(validations_dir: Path, out_path: Path, run_id: str) -> Path:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(validation_page(latest_results(validations_dir), run_id), encoding="utf-8")
    return out_path
