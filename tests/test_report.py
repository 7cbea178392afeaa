"""The run report: offline, renders in headless Chromium without errors, and its figures match the warehouse."""

import re

import duckdb
import pytest

from reports._figures import wilson_interval
from tests._chromium import chromium_path, open_page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(published_city):
    settings, summary = published_city
    assert summary.report is not None and summary.report.exists()
    return settings, summary, summary.report


def test_report_is_one_self_contained_file(report):
    _, summary, path = report
    html = path.read_text(encoding="utf-8")
    assert path.parent.name == summary.run_id
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the report must not load anything remote"
    assert "vegaEmbed" in html and "<script>" in html


def test_report_carries_no_personal_data(report):
    settings, _, path = report
    # the embedded chart libraries (vega, vega-lite, vega-embed) are code, not data: leave them out
    html = re.sub(r"<script>(.*?)</script>", lambda m: m.group(0) if "const charts" in m.group(1) else "",
                  path.read_text(encoding="utf-8"), flags=re.S).lower()
    assert "charts = {" in html
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        values = con.sql(
            "select last_name_std, cast(date_of_birth as varchar), nhs_number, postcode from staging.person_record "
            "using sample 200 rows (reservoir, 7)").fetchall()
    finally:
        con.close()
    with duckdb.connect(str(settings.warehouse), read_only=True) as dates:
        extract_dates = {d for (d,) in dates.execute(
            "select distinct cast(extract_date as varchar) from audit.file_manifest").fetchall()}
    for row in values:
        for value in row:
            # long enough not to be a word of the report's own text; an infant born on an extract's date is not
            # a leak of that date
            if value and len(value) >= 6 and value not in extract_dates:
                assert value.lower() not in html, "a personal data value appears in the report"


@pytest.mark.skipif(chromium_path() is None, reason="chromium not installed (make system-deps installs it)")
def test_report_renders_in_headless_chromium_with_figures_from_the_warehouse(report):
    settings, summary, path = report
    page = open_page(path, {
        "charts": "document.querySelectorAll('.chart svg').length",
        "staged": "Object.fromEntries([...document.querySelectorAll('#sources tr[data-source]')]"
                  ".map(r => [r.dataset.source, r.querySelector('.rows-staged').textContent]))",
        "records": "Object.fromEntries([...document.querySelectorAll('#linked tr[data-source]')]"
                   ".map(r => [r.dataset.source, r.querySelector('.records').textContent]))",
        "precision": "document.getElementById('truth-precision').textContent",
    })
    assert page.errors == []
    assert page.values["charts"] == 4  # weight histogram, cluster sizes, Splink match weights and m/u
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        staged = dict(con.execute("select source, count(*) from staging.person_record where record_role = 'subject' "
                                  "group by 1").fetchall())
        records = dict(con.execute("select source, count(*) from graph.record_link group by 1").fetchall())
    finally:
        con.close()
    assert {k: int(v.replace(",", "")) for k, v in page.values["staged"].items()} == staged
    assert {k: int(v.replace(",", "")) for k, v in page.values["records"].items()} == records
    from linkage_models.pipeline import evaluate_persons

    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        precision = evaluate_persons(con, settings.truth)["pairwise_precision"]
    finally:
        con.close()
    assert page.values["precision"] == f"{precision:.4f}"


@pytest.mark.parametrize("successes, trials, low, high", [
    (0, 0, 0.0, 1.0), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634), (95, 100, 0.8882, 0.9785),
])
def test_wilson_interval(successes, trials, low, high):
    lo, hi = wilson_interval(successes, trials)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_report_states_accuracy_in_plain_words_against_the_target(report):
    settings, summary, path = report
    html = path.read_text(encoding="utf-8")
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    # e.g. "About 1.4 in 100 links join two different people (95% interval: about 1 in 100 to about 1.9 in 100)."
    wrong = re.search(r"About ([0-9.,]+) in ([0-9,]+) links join two different people \(95% interval: about "
                      r"[0-9.,]+ in [0-9,]+ to about [0-9.,]+ in [0-9,]+\)\. The council's target is at most about "
                      r"[0-9.,]+ in [0-9,]+: (met|not met|cannot tell yet)", text)
    assert wrong, "no plain-words sentence about wrong links"
    missed = re.search(r"About ([0-9.,]+) in ([0-9,]+) pairs of records that belong to the same person were left "
                       r"apart", text)
    assert missed, "no plain-words sentence about missed links"
    from linkage_models.pipeline import evaluate_persons

    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        quality = evaluate_persons(con, settings.truth)
        import warehouse

        rate = warehouse.uprn_match_rate(con)
        households = con.sql("select count(*) from graph.household").fetchall()[0][0]
    finally:
        con.close()
    count, base = float(wrong.group(1).replace(",", "")), int(wrong.group(2).replace(",", ""))
    assert count / base == pytest.approx(1 - quality["pairwise_precision"], rel=0.06, abs=0.5 / base)
    count, base = float(missed.group(1).replace(",", "")), int(missed.group(2).replace(",", ""))
    assert count / base == pytest.approx(1 - quality["pairwise_recall"], rel=0.06, abs=0.5 / base)
    # the report knows how its run ended (it is written as the run's last stage)
    assert re.search(r'<b id="run-status">completed', html)
    # addresses and households, with the one definition of the UPRN match rate
    assert f'<b id="uprn-match-rate">{rate["share"]:.1%}</b>' in html
    assert f'<b id="households">{households:,}</b>' in html
    assert "UPRN match rate: of the staged source records that carry an address" in text
    assert "parent/carer" in text and "Glossary" in text and "2190 days" not in text


@pytest.mark.skipif(chromium_path() is None, reason="chromium not installed (make system-deps installs it)")
def test_report_figures_need_no_javascript_and_nothing_is_fetched(report):
    settings, _, path = report
    page = open_page(path, {
        "charts": "document.querySelectorAll('.chart svg').length",
        "threshold": "[...document.querySelectorAll('#chart-weight-histogram svg text')].map(t => t.textContent)"
                     ".filter(t => t.startsWith('threshold')).length",
        "print_rules": "[...document.styleSheets].flatMap(s => [...s.cssRules]).filter(r => r.media && "
                       "r.media.mediaText.includes('print')).length",
    }, javascript=False, settle_s=2.0)
    assert page.values["charts"] == 4  # drawn without JavaScript: weight histogram, cluster sizes, Splink's two
    assert page.values["threshold"] == 1  # the threshold in use is marked on the histogram
    assert page.values["print_rules"] >= 1
    remote = [u for u in page.requests if not u.startswith(("file:", "data:", "about:"))]
    assert remote == [], remote


def test_validation_results_page_is_offline_and_holds_counts_only(report):
    settings, summary, path = report
    page = path.parent / "data-docs" / "validation.html"
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the validation page must not load anything remote"
    for source in ("benefits", "education", "health", "housing", "police", "probation", "social_care"):
        assert f"familylink_{source}" in html
    assert "✔" in html and 'href="data-docs/validation.html"' in path.read_text(encoding="utf-8")
