"""Clerical review: programme referrals first, then a stratified sample; a minimal view with each record's role
and the model's waterfall; decisions with notes, undo, stored by id and audited, fed to the report. Labels come
from the synthetic city's ground truth, so the tests check real outcomes."""

import json
import shutil

import polars as pl
import pytest

from pipelines.settings import Settings
from pipelines.stages import open_warehouse
from reports import _figures
from reports.review import review, role_words, sample_pairs, view, waterfall_lines

pytestmark = pytest.mark.slow


@pytest.fixture()
def con(published_city, tmp_path):
    settings, _ = published_city
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(settings.warehouse, copy)  # decisions must not leak into the shared city
    con = open_warehouse(Settings(data_dir=tmp_path, warehouse_path=copy))
    yield con
    con.close()


@pytest.fixture(scope="module")
def truth(published_city):
    records = pl.read_parquet(published_city[0].truth / "records.parquet")
    return {(s, r): p for s, r, p in records.select("source", "record_id", "person_id").iter_rows()}


def _oracle(truth, note=None):
    """A reviewer who knows the ground truth: m for the same person, n otherwise (with an optional note)."""
    def ask(shown, position, total):
        same = truth[shown.pair.left] == truth[shown.pair.right]
        return ("m" if same else "n") + (f": {note}" if note else "")
    return ask


def test_sample_is_stratified_and_skips_decided_pairs(con):
    pairs = sample_pairs(con, 0.99, borderline=5, random=5)
    assert [p.stratum for p in pairs].count("borderline") == 5 and [p.stratum for p in pairs].count("random") == 5
    centre = 6.63  # log2(0.99 / 0.01)
    assert all(abs(p.match_weight - centre) <= 4.0 for p in pairs if p.stratum == "borderline")
    review(con, pairs[:3], lambda *_: "m", reviewer="tester", model_version="v1")
    again = sample_pairs(con, 0.99, borderline=50, random=50)
    decided = {(p.left, p.right) for p in pairs[:3]}
    assert not decided & {(p.left, p.right) for p in again}


def test_the_same_seed_draws_the_same_sample_whatever_the_table_order(con):
    """The reviewer CLI's sample is repeatable: not random() under setseed, which DuckDB's parallel scans reorder."""
    before = sample_pairs(con, 0.99, borderline=8, random=8)
    con.execute("create or replace table linkage.person_pairs as select * from linkage.person_pairs order by "
                "md5(unique_id_r) desc")
    after = sample_pairs(con, 0.99, borderline=8, random=8)
    assert [(p.left, p.right) for p in after] == [(p.left, p.right) for p in before]
    other = sample_pairs(con, 0.99, borderline=8, random=8, seed=0.7)
    assert {(p.left, p.right) for p in other} != {(p.left, p.right) for p in before}


def test_view_shows_only_what_the_decision_needs(con):
    pair = sample_pairs(con, 0.99, borderline=1, random=0)[0]
    shown = view(con, pair)
    assert [name for name, *_ in shown.rows] == ["first_name", "first_name_std", "last_name", "last_name_std",
                                                 "date_of_birth", "sex", "postcode_district"]
    for name, left, right in shown.rows:
        if name == "postcode_district":  # a district, never a full postcode or address (names may have spaces)
            assert all(" " not in str(v) or str(v) == "—" for v in (left, right))
    identifiers = con.execute(
        "select nhs_number, upn, pnc_id, ni_number from staging.person_record where source = ? and record_id = ?",
        list(pair.left)).fetchall()[0]
    shown_text = repr(shown)
    assert all(value is None or value not in shown_text for value in identifiers)
    assert {agreement for _, agreement in shown.identifiers} <= {"same", "different", "missing"}


def test_decisions_are_stored_by_id_audited_and_estimate_precision(con):
    pairs = sample_pairs(con, 0.99, borderline=6, random=4)
    answers = iter(["m", "n", "u", "s", "m", "m", "n", "m", "m", "q"])
    counts = review(con, pairs, lambda *_: next(answers), reviewer="tester", model_version="v1")
    assert counts == {"match": 5, "non_match": 2, "unsure": 1, "skipped": 1, "undone": 0}
    stored = con.sql("select * from linkage.clerical_decision").pl()
    assert stored.height == 8 and set(stored["reviewer"]) == {"tester"}
    assert set(stored.columns) == {"source_l", "record_id_l", "source_r", "record_id_r", "decision", "stratum",
                                   "match_probability", "model_version", "reviewer", "decided_at", "note",
                                   "decision_id", "undone_at", "referral_id"}
    audit = con.execute("select actor, action, detail from audit.access_log where action = 'clerical_review'").fetchall()
    assert audit and audit[-1][0] == "tester"
    clerical = _figures.accuracy(con, None)["clerical"]
    assert clerical["pairs_labelled"] == 7 and clerical["unsure"] == 1
    pooled = clerical["all"]
    low, high = pooled["precision_ci"]
    assert pooled["precision_n"] > 0 and low <= pooled["precision"] <= high
    # the headline uses the random stratum only (borderline pairs are over-sampled on purpose)
    assert clerical["random"]["precision_n"] + clerical["random"]["recall_n"] < pooled["precision_n"] + pooled["recall_n"]


def test_the_review_shows_the_name_as_recorded_beside_its_matching_form():
    """A name in another script is matched on its transliteration; the reviewer sees both (issue 13, item 11)."""
    import datetime as dt

    import duckdb
    import polars as pl

    from reports.review import LABELS, Pair
    from sources import canonical, standardise_person_records

    records = standardise_person_records(canonical.conform(pl.DataFrame({
        "source": ["police", "health"], "record_id": ["a", "b"], "record_role": ["subject", "subject"],
        "first_name": ["Дмитрий", "Dmitriy"], "last_name": ["Волков", "Volkov"]}), canonical.PERSON_RECORD),
        as_of=dt.date(2026, 11, 1))
    con = duckdb.connect()
    con.execute("create schema staging")
    con.register("_records", records)
    con.execute("create table staging.person_record as select * from _records")
    shown = view(con, Pair(("police", "a"), ("health", "b"), 0.9, 3.2, "borderline"))
    rows = {name: (left, right) for name, left, right in shown.rows}
    assert rows["first_name"] == ("Дмитрий", "Dmitriy") and rows["last_name"] == ("Волков", "Volkov")
    assert rows["first_name_std"] == ("dmitriy", "dmitriy") and rows["last_name_std"] == ("volkov", "volkov")
    assert set(LABELS) == {name for name, *_ in shown.rows}


def test_each_pair_shows_why_the_model_scored_it(con, published_city):
    """Splink's waterfall for every pair, re-scored with the approved model, ends at the weight the run stored,
    adds up bar by bar, and carries comparison labels and weights only."""
    from linkage_models import explain_pairs
    from linkage_models.pipeline import approved_model

    settings, _ = published_city
    pairs = sample_pairs(con, 0.99, borderline=6, random=6)
    waterfalls = explain_pairs(con, approved_model(settings)[1], [(":".join(p.left), ":".join(p.right)) for p in pairs])
    assert len(waterfalls) == len(pairs) == 12
    for pair, steps in zip(pairs, waterfalls):
        assert steps[0].comparison == "Prior" and steps[-1].comparison == "Final score"
        assert steps[-1].match_weight == pytest.approx(pair.match_weight, abs=1e-6)
        assert sum(s.match_weight for s in steps[:-1]) == pytest.approx(steps[-1].match_weight, abs=1e-6)
        assert len({s.comparison for s in steps[1:-1]}) >= 2 and all(s.level for s in steps)
        lines = waterfall_lines(steps, 0.99)
        assert lines[-1].split(" is ")[1].startswith("above" if pair.match_probability >= 0.99 else "below")
        values = {str(v) for _, left, right in view(con, pair).rows for v in (left, right) if v != "—" and len(str(v)) > 3}
        assert not {v for v in values if v in repr(steps)}, "the waterfall names comparisons, never values"
    # a record that is no longer staged has no waterfall rather than someone else's
    assert explain_pairs(con, approved_model(settings)[1], [("health:nope", ":".join(pairs[0].right))]) == [[]]


def test_the_view_says_each_record_s_source_and_role(con):
    """A parent/carer contact on a pupil's record is shown as such, not as the pupil."""
    row = con.execute("""
        select p.unique_id_l, p.unique_id_r from linkage.person_pairs as p
        join staging.person_record as r on r.source || ':' || r.record_id = p.unique_id_l
        where r.record_role = 'parent_carer' limit 1""").fetchall()[0]
    from reports.review import Pair

    pair = Pair(tuple(row[0].split(":", 1)), tuple(row[1].split(":", 1)), 0.5, 0.0, "manual")
    shown = view(con, pair)
    assert shown.roles[0] == "parent_carer" and "parent/carer" in role_words(shown.roles[0])
    assert role_words("subject") == "the person the record is about"


def test_undo_withdraws_the_last_decision_and_notes_are_kept_but_never_logged(con, truth):
    pairs = sample_pairs(con, 0.99, borderline=3, random=0)
    same = [truth[p.left] == truth[p.right] for p in pairs]
    right, wrong = ("m", "n") if same[1] else ("n", "m")
    shown_positions = []
    answers = iter(["m" if same[0] else "n", f"{wrong}: twins at one address", "b", f"{right}: checked the NHS number",
                    "q"])

    def ask(shown, position, total):
        shown_positions.append(position)
        return next(answers)

    counts = review(con, pairs, ask, reviewer="tester", model_version="v1")
    assert shown_positions == [1, 2, 3, 2, 3]  # undo, asked at the next pair, shows the undone pair again
    assert counts["undone"] == 1 and counts["match"] + counts["non_match"] == 2
    rows = con.sql("select decision, note, undone_at is not null as undone, decision_id from linkage.clerical_decision "
                   "order by rowid").fetchall()
    assert [(d, n, u) for d, n, u, _ in rows] == [
        ("match" if same[0] else "non_match", None, False),
        ("match" if wrong == "m" else "non_match", "twins at one address", True),
        ("match" if right == "m" else "non_match", "checked the NHS number", False)]
    from linkage_models.clerical import decisions_in_force

    in_force = decisions_in_force(con)
    assert in_force.height == 2 and set(in_force["decision_id"]) == {rows[0][3], rows[2][3]}
    audit = con.execute("select action, object, detail from audit.access_log where action like 'clerical%' "
                        "order by rowid").fetchall()
    assert [a for a, *_ in audit] == ["clerical_decision", "clerical_decision", "clerical_undo", "clerical_decision",
                                      "clerical_review"]
    assert json.loads(audit[2][2])["decision_id"] == rows[1][3] and audit[2][1] == audit[1][1]
    assert not any("twins" in str(a) or "NHS number" in str(a) for a in audit)  # notes stay with the decision
    assert json.loads(audit[-1][2])["undone"] == 1
    # the undone pair is offered again in a later sample; the decided ones are not
    later = {(p.left, p.right) for p in sample_pairs(con, 0.99, borderline=200, random=0)}
    assert (pairs[0].left, pairs[0].right) not in later and (pairs[1].left, pairs[1].right) not in later


def test_pairs_referred_by_programme_triage_come_first_and_their_labels_answer_the_referral(con, published_city, truth):
    """A triage panel sends a household's evidence to clerical review; `familylink review` offers the referred
    records' links first and stores each label against the referral."""
    from programmes import evaluate_snapshot
    from programmes._triage import record_triage

    settings, summary = published_city
    snapshot = summary.publish.snapshot_id
    as_of = con.execute("select max(extract_date) from audit.current_extract").fetchall()[0][0]
    # every link counts as doubtful here, so the small city has evidence to refer
    evaluate_snapshot(con, snapshot, as_of=as_of, pseudonymisation_key=settings.pseudonymisation_key_bytes(),
                      doubtful_below=1.0)
    programme, household = con.execute(
        "select programme, household_id from programmes.cohort where snapshot_id = ? and doubtful_evidence_records > 0 "
        "order by doubtful_evidence_records desc, household_id limit 1", [snapshot]).fetchall()[0]
    referral = record_triage(con, programme, household, "clerical_review", actor="panel")
    referred = {(s, r) for s, r in con.execute("select source, record_id from programmes.clerical_referral "
                                               "where decision_id = ?", [referral]).fetchall()}
    assert referred
    pairs = sample_pairs(con, 0.99, borderline=3, random=2)
    first = [p for p in pairs if p.referral is not None]
    assert first and pairs[:len(first)] == first and all(p.stratum == "programme_referral" for p in first)
    assert {p.referral.decision_id for p in first} == {referral} and {p.referral.household_id for p in first} == {household}
    person = dict(con.execute("select source || ':' || record_id, person_id from graph.record_link").fetchall())
    for pair in first:
        assert {pair.left, pair.right} & referred  # each pair holds a referred record...
        assert person[":".join(pair.left)] == person[":".join(pair.right)]  # ...and the link that joined it
    counts = review(con, pairs, _oracle(truth), reviewer="data-team", model_version="v1")
    assert sum(counts.values()) == len(pairs)
    labelled = con.execute("select source_l, record_id_l, source_r, record_id_r, decision, referral_id "
                           "from linkage.clerical_decision where stratum = 'programme_referral'").fetchall()
    assert len(labelled) == len(first) and {r[5] for r in labelled} == {referral}
    for sl, rl, sr, rr, decision, _ in labelled:  # real labels: the truth of each pair
        assert decision == ("match" if truth[(sl, rl)] == truth[(sr, rr)] else "non_match")
    assert not [p for p in sample_pairs(con, 0.99, borderline=0, random=0) if p.referral]  # answered
    audit = json.loads(con.execute("select detail from audit.access_log where action = 'clerical_review'").fetchall()[-1][0])
    assert audit["referrals_answered"] == len(first)


def test_familylink_review_shows_roles_and_the_waterfall_and_takes_notes_and_undo(published_city, tmp_path,
                                                                                   monkeypatch):
    from typer.testing import CliRunner

    import pipelines.cli
    from pipelines.cli import app

    monkeypatch.setattr(pipelines.cli.console, "width", 220)  # tables whole, as on a wide terminal

    settings, _ = published_city
    shutil.copytree(settings.data_dir, tmp_path / "data", symlinks=True)
    # match with a note, undo it, then not a match without one, then stop
    result = CliRunner().invoke(app, ["review", "--data-dir", str(tmp_path / "data"), "--borderline", "2", "--random",
                                      "0", "--reviewer", "cli-tester"], input="m\nsame school\nb\nn\n\nq\n")
    assert result.exit_code == 0, result.output
    assert "role" in result.output and "the person the record is about" in result.output
    assert "start: any two records (prior)" in result.output and "final match weight" in result.output
    assert "Stored 0 match, 1 not a match, 0 unsure (0 skipped, 1 undone)" in " ".join(result.output.split())
    from tests._city import read_sql

    rows = read_sql(Settings(data_dir=tmp_path / "data"), "select decision, note, undone_at is not null, reviewer "
                    "from linkage.clerical_decision order by rowid")
    assert rows == [("match", "same school", True, "cli-tester"), ("non_match", None, False, "cli-tester")]
