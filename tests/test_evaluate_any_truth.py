"""`familylink evaluate` against truth files of every shape an outside evaluator writes: only source, record_id and
person_id are required (of any type); the measures that need another column say they were not computed, and
records in only one of the truth and the warehouse are counted in a warning line.

The warehouse is hand-made (as in tests/test_evaluate.py): seven records of two sources, four true people in two
households, linked with one missed and one false link.

    record   true person  household  cluster  predicted household
    h101     A            H1         1        X
    p201     A            H1         1        X
    h102     B            H1         2        X
    p202     B            H1         3        Z   (missed link: B split)
    h103     C            H2         4        Y
    p203     D            H2         4        Y   (false link: C and D, of one household)
    p204     E            H3         5        W   (only in some truths)

Without p204: pairs linked 2 (h101-p201, h103-p203), right 1, true 2 → precision 0.5, recall 0.5. Different
people of one household: H1 4 pairs, H2 1 → 5, of which 1 merged → 0.8. Households rebuilt exactly: H1 (X holds
A and B) but not H2 → 1 of 2.
"""

from __future__ import annotations

import re

import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

RECORDS = [  # source, record id, true person, household, cluster, predicted household, UPRN recorded, current
    ("health", 101, "A", 1, 1, "X", 100, 100),
    ("police", 201, "A", 1, 1, "X", 100, 100),
    ("health", 102, "B", 1, 2, "X", 100, 100),
    ("police", 202, "B", 1, 3, "Z", 101, 100),
    ("health", 103, "C", 2, 4, "Y", 200, 200),
    ("police", 203, "D", 2, 4, "Y", None, 200),
]
EXTRA = ("police", 204, "E", 3, 5, "W", 300, 300)  # linked, but not in every truth


def _city_truth(records=RECORDS) -> pl.DataFrame:
    """The synthetic city's shape: every optional column, ids as the city writes them."""
    return pl.DataFrame({
        "source": [r[0] for r in records], "record_id": [str(r[1]) for r in records],
        "person_id": [ord(r[2]) for r in records], "household_id": [r[3] for r in records],
        "uprn_recorded": [r[6] for r in records], "uprn_current": [r[7] for r in records],
        "noise": [["nickname"] if r[1] == 202 else [] for r in records],
    }, schema_overrides={"noise": pl.List(pl.String)})


def _build(data, truth: pl.DataFrame, *, gazetteer: bool = True, linked=(*RECORDS, EXTRA),
           quarantined: tuple[tuple[str, str], ...] = ()) -> None:
    """A linked warehouse under data/warehouse and the truth under data/truth."""
    import warehouse

    con = warehouse.connect(data / "warehouse" / "familylink.duckdb")
    try:
        rows = pl.DataFrame({
            "source": [r[0] for r in linked], "record_id": [str(r[1]) for r in linked],
            "cluster": [r[4] for r in linked], "household": [r[5] for r in linked],
            "uprn": [r[6] if gazetteer else None for r in linked]}, schema_overrides={"uprn": pl.Int64})
        con.register("_rows", rows)
        con.execute("insert into staging.person_record (source, record_id, address_std, postcode) "
                    "select source, record_id, 'ADDRESS ' || record_id, 'AV1 1AA' from _rows")
        con.execute("create table linkage.address_match as select distinct address_key('ADDRESS ' || record_id, "
                    "'AV1 1AA', null) as address_key, uprn, 'rules' as match_method from _rows")
        con.execute("create table linkage.person_cluster as select source, record_id, cluster::bigint as person_id, "
                    "1.0 as match_probability from _rows")
        con.execute("create table graph.record_link as select source, record_id, 'P' || cluster as person_id "
                    "from _rows")
        con.execute("create table graph.household_member as select distinct 'P' || cluster as person_id, "
                    "household as household_id from _rows")
        for i, (source, record_id) in enumerate(quarantined):
            con.execute("insert into quarantine.row (run_id, source, file_name, file_sha256, row_number, record_id, "
                        "reasons) values ('r1', ?, 'extract.csv', 'sha', ?, ?, ['no name'])", [source, i, record_id])
        con.unregister("_rows")
    finally:
        con.close()
    (data / "truth").mkdir(parents=True, exist_ok=True)
    truth.write_parquet(data / "truth" / "records.parquet")


def _evaluate(data) -> tuple[int, str, dict[str, str]]:
    result = CliRunner().invoke(app, ["evaluate", "--data-dir", str(data)])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    text = result.output
    measures = dict(re.findall(r"│ (\w+)\s+│\s+([^│]+?) │", text))
    return result.exit_code, text, measures


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_the_city_truth_gives_every_measure_and_the_cause_table(tmp_path):
    _build(tmp_path, _city_truth([*RECORDS, EXTRA]))
    code, text, m = _evaluate(tmp_path)
    assert code == 0, text
    assert (m["pairwise_precision"], m["pairwise_recall"]) == ("0.5000", "0.5000")
    assert (m["same_household_different_person_pairs"], m["same_household_precision"]) == ("5", "0.8000")
    assert (m["households_true"], m["households_exact"]) == ("3", "2")  # H1 and E's own
    # every member of H1 and of E's household is recorded at home by some agency; D is recorded nowhere
    assert m["households_evidenced_share"] == m["households_ceiling_share"] == "0.6667"
    assert m["uprn_accuracy_on_matched"] == "1.0000"
    assert "not computed" not in text.lower() and "warning" not in text
    assert "Largest classes of missed and false links" in text and "nickname" in text


def test_benchmark_truth_without_uprns_or_noise(tmp_path):
    """What benchmarks/bench_febrl.py writes: source, record_id, person_id, household_id."""
    _build(tmp_path, _city_truth([*RECORDS, EXTRA]).select("source", "record_id", "person_id", "household_id"))
    code, text, m = _evaluate(tmp_path)
    assert code == 0, text
    assert (m["pairwise_precision"], m["same_household_precision"]) == ("0.5000", "0.8000")
    assert (m["households_true"], m["households_exact"], m["households_exact_share"]) == ("3", "2", "0.6667")
    assert m["households_evidenced_share"] == m["households_ceiling_share"] == "not computed"
    assert m["uprn_accuracy_on_matched"] == "not computed"
    flat = _one_line(text)
    assert ("Not computed (the truth has no uprn_recorded or uprn_current values): households_evidenced_share, "
            "households_ceiling_share") in flat
    assert "Link errors by cause not shown: the truth has no noise column" in flat
    assert "Largest classes" not in text and not re.search(r"\bnan\b", text, re.IGNORECASE)


@pytest.mark.parametrize("uprns, gazetteer, why", [
    # some UPRNs recorded, but no gazetteer: no address has a UPRN to check (was float(None))
    ([100, 100, 100, 101, 200, None], False, "no address matched a UPRN (no gazetteer)"),
    # no UPRN recorded at all
    ([None] * 6, True, "the truth has no uprn_recorded values"),
])
def test_uprn_accuracy_not_computed_without_uprns_to_check(tmp_path, uprns, gazetteer, why):
    truth = _city_truth().with_columns(pl.Series("uprn_recorded", uprns, dtype=pl.Int64))
    _build(tmp_path, truth, gazetteer=gazetteer, linked=RECORDS)
    code, text, m = _evaluate(tmp_path)
    assert code == 0, text
    assert m["uprn_accuracy_on_matched"] == "not computed"
    assert f"Not computed ({why}): uprn_accuracy_on_matched" in _one_line(text)
    assert m["households_exact"] == "1" and m["pairwise_precision"] == "0.5000"


def test_minimal_truth_has_no_household_measures(tmp_path):
    _build(tmp_path, _city_truth().select("source", "record_id", "person_id"), linked=RECORDS)
    code, text, m = _evaluate(tmp_path)
    assert code == 0, text
    assert (m["records"], m["pairwise_precision"], m["pairwise_recall"]) == ("6", "0.5000", "0.5000")
    household = ["same_household_different_person_pairs", "same_household_wrongly_merged", "same_household_precision",
                 "households_true", "households_exact", "households_exact_share", "households_evidenced_share",
                 "households_ceiling_share"]
    assert all(m[name] == "not computed" for name in household), m
    assert f"Not computed (the truth has no household_id values): {', '.join(household)}" in _one_line(text)
    assert "person links by pair of sources" in text.lower() and "health × police" in text


@pytest.mark.parametrize("dtype", [pl.Int64, pl.Float64])
def test_numeric_ids_are_compared_as_text(tmp_path, dtype):
    """A benchmark writes its record and person ids as numbers (floats, when pandas saw a gap)."""
    truth = _city_truth().select("source", "record_id", "person_id", "household_id").with_columns(
        pl.col("record_id").cast(pl.Int64).cast(dtype), pl.col("person_id").cast(dtype))
    _build(tmp_path, truth, linked=RECORDS)
    code, text, m = _evaluate(tmp_path)
    assert code == 0, text
    assert (m["records"], m["pairwise_precision"], m["households_exact"]) == ("6", "0.5000", "1")
    assert "warning" not in text


@pytest.mark.parametrize("drop", ["source", "record_id", "person_id"])
def test_truth_without_a_required_column_fails_in_one_line(tmp_path, drop):
    _build(tmp_path, _city_truth().drop(drop), linked=RECORDS)
    code, text, _ = _evaluate(tmp_path)
    assert code == 1, text
    lines = [line for line in text.splitlines() if line.startswith("familylink:")]
    flat = _one_line(text)
    assert len(lines) == 1 and f"records.parquet has no {drop} column" in flat, text
    assert "needs the columns source, record_id, person_id" in flat


def test_truth_sharing_no_record_with_the_warehouse_fails_in_one_line(tmp_path):
    _build(tmp_path, _city_truth().with_columns(pl.lit("other").alias("source")), linked=RECORDS)
    code, text, _ = _evaluate(tmp_path)
    assert code == 1 and "none of the 6 records in" in _one_line(text), text


def test_records_in_only_one_of_truth_and_warehouse_are_counted_and_left_out(tmp_path):
    """The truth has an extra source (2 records), an id the agencies never sent and one quarantined record; the
    warehouse has a linked record (p204) the truth has not. Scores are on the 6 records in both."""
    extra = [("benefits", 301, "A", 1, 0, "", None, None), ("benefits", 302, "F", 4, 0, "", None, None),
             ("health", 999, "G", 5, 0, "", None, None), ("health", 998, "H", 5, 0, "", None, None)]
    truth = _city_truth([*RECORDS, *extra]).select("source", "record_id", "person_id", "household_id")
    _build(tmp_path, truth, quarantined=(("health", "998"),))
    code, text, m = _evaluate(tmp_path)
    assert code == 0, text
    warning = [line for line in text.splitlines() if "warning" in line]
    assert len(warning) == 1, text
    assert _one_line(warning[0]) == (
        "familylink: warning: 3 of 10 truth records are not in the warehouse (2 of them of 1 source(s) with no "
        "linked record), 1 more quarantined at ingest, and 1 of 7 linked records have no truth row; the measures "
        "are computed on the 6 records in both")
    # the same figures as on the six records alone: nothing of the extra source or of p204 counted
    assert (m["records"], m["pairwise_precision"], m["pairwise_recall"]) == ("6", "0.5000", "0.5000")
    assert (m["true_persons"], m["clusters"]) == ("4", "4")
    # households: person F (only in the extra source) and G (never sent) are no household anyone could rebuild;
    # H was quarantined, so household 5 counts (and is missed)
    assert (m["households_true"], m["households_exact"]) == ("3", "1")

