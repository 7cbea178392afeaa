"""Programme and unit-cost files: the shipped ones load, a new programme is a new file, and every mistake is
reported with the file, the key and the problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from programmes import RuleError, load_programme, load_programmes, load_unit_costs
from programmes._rules import RULES_DIR, UNIT_COSTS


def test_shipped_programmes_name_their_source_documents():
    programmes = load_programmes()
    assert set(programmes) == {"troubled_families_2012", "troubled_families_2015", "supporting_families_2022"}
    for programme in programmes.values():
        assert programme.source_document
        assert all(len(c.source_document) > 10 for c in programme.criteria.values())
    assert len(programmes["troubled_families_2015"].criteria) == 6
    assert programmes["troubled_families_2015"].household_rule.any_of[0].at_least == 2
    assert programmes["supporting_families_2022"].household_rule.any_of[0].at_least == 3
    assert programmes["supporting_families_2022"].household_requires.dependent_child_max_age == 17
    # ten headline outcomes: the evaluated ones plus the ones no extract carries yet, said so
    sf = programmes["supporting_families_2022"]
    assert len(sf.criteria) + len(sf.not_evaluated) == 10


def test_shipped_unit_costs_cite_sources_and_never_invent_figures():
    costs = load_unit_costs()
    priced = [c for c in costs.costs if not c.placeholder]
    assert priced and all(c.cost is not None and c.price_year and c.url and c.verified for c in priced)
    # the four figures checked against their published sources (programmes/unit_costs.yaml says where and what)
    assert {c.key: c.cost for c in priced} == {"asb_warning_letter": 66, "asb_acceptable_behaviour_contract": 230,
                                               "jsa_claim_processing": 13, "permanent_exclusion_ap_place": 8000}
    assert all(f"{c.cost:,.0f}" in c.verified for c in priced)  # the figure as the checked page states it
    assert all(c.cost is None and "PLACEHOLDER" in c.source for c in costs.costs if c.placeholder)
    assert "not savings" in costs.statement
    assert costs.price_index.placeholder and not costs.price_index.values


def _programme(**changes) -> dict:
    data = yaml.safe_load((RULES_DIR / "troubled_families_2012.yaml").read_text(encoding="utf-8"))
    for path, value in changes.items():
        target = data
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is _DELETE:
            del target[keys[-1]]
        elif isinstance(target, list):
            target[int(keys[-1])] = value
        else:
            target[keys[-1]] = value
    return data


_DELETE = object()

# (case, changes to the TF 2012 file, words the error must contain: the key and the problem)
BAD_PROGRAMMES = [
    ("unknown event type", {"criteria.crime_asb.any_of.0.events": ["offense"]},
     ["criteria.crime_asb.any_of.0", "unknown event type", "offense"]),
    ("misspelt key", {"criteria.education.any_of.0.within_month": 6},
     ["criteria.education.any_of.0.within_month", "unknown key"]),
    ("criterion without a source document", {"criteria.worklessness.source_document": _DELETE},
     ["criteria.worklessness.source_document", "required key missing"]),
    ("household rule naming an unknown criterion", {"household_rule.any_of.0.of": ["crime_asb", "school"]},
     ["household_rule.any_of.0.of", "unknown criteria", "school"]),
    ("at least more than listed", {"household_rule.any_of.0.at_least": 4},
     ["household_rule.any_of.0.at_least", "more than"]),
    ("ages the wrong way round", {"criteria.crime_asb.any_of.0.person": {"min_age": 18, "max_age": 10}},
     ["criteria.crime_asb.any_of.0.person", "min_age is greater than max_age"]),
    ("bad regular expression", {"criteria.local_health.any_of.0.detail_matches": "(unclosed"},
     ["criteria.local_health.any_of.0", "not a valid regular expression"]),
    ("look-back of zero months", {"look_back_months": 0}, ["look_back_months", "greater than or equal to 1"]),
    ("criterion name with spaces", {"criteria.crime asb": {"title": "x", "source_document": "DCLG 2012",
                                                           "any_of": [{"events": ["offence"]}]}},
     ["criteria.crime asb", "lower case"]),
]


@pytest.mark.parametrize("case, changes, words", BAD_PROGRAMMES, ids=[c[0] for c in BAD_PROGRAMMES])
def test_a_bad_programme_file_names_file_key_and_problem(tmp_path, case, changes, words):
    path = tmp_path / "troubled_families_2012.yaml"
    path.write_text(yaml.safe_dump(_programme(**changes)), encoding="utf-8")
    with pytest.raises(RuleError) as error:
        load_programme(path)
    message = str(error.value)
    assert message.startswith(str(path))
    for word in words:
        assert word in message, message


def test_file_name_and_yaml_errors(tmp_path):
    wrong_name = tmp_path / "tf.yaml"
    wrong_name.write_text((RULES_DIR / "troubled_families_2012.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(RuleError, match=r"tf.yaml: programme: must equal the file name"):
        load_programme(wrong_name)
    broken = tmp_path / "broken.yaml"
    broken.write_text("programme: [unclosed\n", encoding="utf-8")
    with pytest.raises(RuleError, match=r"broken.yaml: not valid YAML at line"):
        load_programme(broken)
    with pytest.raises(RuleError, match="no programme files"):
        load_programmes(tmp_path / "empty")


def test_a_local_programme_is_a_new_file(tmp_path):
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    local = {"programme": "early_help_local_2026", "title": "Early help (local)", "version": "2026",
             "source_document": "Council early help strategy 2026, annex B",
             "criteria": {"asb": {"title": "ASB", "source_document": "annex B.1", "any_of": [
                 {"events": ["anti_social_behaviour"], "within_months": 6}]},
                          "absence": {"title": "Absence", "source_document": "annex B.2", "any_of": [
                              {"events": ["attendance"], "value_at_most": 90}]}},
             "household_rule": {"any_of": [{"at_least": 2, "of": ["asb", "absence"]}]}}
    (tmp_path / "rules" / "early_help_local_2026.yaml").write_text(yaml.safe_dump(local), encoding="utf-8")
    programmes = load_programmes(tmp_path / "rules")
    assert "early_help_local_2026" in programmes and len(programmes) == 4
    assert programmes["early_help_local_2026"].look_back(programmes["early_help_local_2026"].criteria["asb"].any_of[0]) == 6


BAD_COSTS = [
    ("a placeholder with a figure", ("key: fixed_term_exclusion", "key: fixed_term_exclusion\n    cost: 50"),
     ["costs.5", "placeholder has no cost"]),
    ("a figure without a price year", ("    price_year: 2009\n", ""), ["costs.3", "needs cost and price_year"]),
    ("an involvement priced per event", ("agency: Probation\n    unit: per_year_open", "agency: Probation\n    unit: per_event"),
     ["costs.12", "per_week_open or per_year_open"]),
    ("an unknown event type", ("event_type: offence", "event_type: offences"), ["costs.6", "unknown event type"]),
    ("a figure nobody checked", ("    verified: >-\n      24 Nov 2026 against the Hansard",
                                 "    note: >-\n      24 Nov 2026 against the Hansard"), ["costs.3", "needs url and verified"]),
]


@pytest.mark.parametrize("case, change, words", BAD_COSTS, ids=[c[0] for c in BAD_COSTS])
def test_a_bad_unit_cost_file_names_file_key_and_problem(tmp_path, case, change, words):
    text = UNIT_COSTS.read_text(encoding="utf-8")
    assert change[0] in text
    path = tmp_path / "unit_costs.yaml"
    path.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(RuleError) as error:
        load_unit_costs(path)
    for word in [str(path), *words]:
        assert word in str(error.value), str(error.value)


def test_validate_command_names_the_bad_file(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    shutil.copytree(RULES_DIR, tmp_path / "rules")
    ok = CliRunner().invoke(app, ["cohort", "validate", "--rules", str(tmp_path / "rules"), "--data-dir", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "troubled_families_2015: 6 criteria" in ok.output
    bad = tmp_path / "rules" / "troubled_families_2012.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("events: [domestic_abuse]", "events: [violence]"),
                   encoding="utf-8")
    failed = CliRunner().invoke(app, ["cohort", "validate", "--rules", str(tmp_path / "rules"), "--data-dir", str(tmp_path)])
    assert failed.exit_code == 1
    assert "troubled_families_2012.yaml" in failed.output and "unknown event type" in failed.output
