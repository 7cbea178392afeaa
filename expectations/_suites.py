"""The GX suites: one per source plus a default, built here and kept as reviewable JSON in suites/.

    python -m expectations.build_suites      # rewrite suites/*.json from this file

At run time the suites are loaded from the JSON files (`load_suite`), so what runs is what was
reviewed. Each expectation's `meta` says what a failure means:

- severity "quarantine": the row is unusable and goes to quarantine with `meta.reason`;
- severity "warning": data quality reported in the summary and Data Docs; the row is still staged.

GX's own `severity` field mirrors this (critical / warning) so Data Docs show it too.

Rules that span columns ("has a name") are checked on boolean columns derived just before GX runs
(see DERIVED_COLUMNS and `_validate.with_derived_columns`): GX 1.x has no multi-column "any of these
present" expectation that reports failing rows on pandas.
"""

from __future__ import annotations

import json
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from expectations._gx import ExpectationError

SUITES_DIR = Path(__file__).parent / "suites"
SOURCES = ("police", "probation", "housing", "health", "education")
DEFAULT = "default"

QUARANTINE = "quarantine"
WARNING = "warning"

# Suite parameter supplied at run time (a datetime): dates of birth after it are impossible.
EXTRACT_DATE = "extract_date"

# Identifier columns of the canonical record; any one counts as "identifier" in the minimum data rule
# (so does a declared identifier of another name, flagged by ingest in `_has_declared_identifier`).
LINKING_IDENTIFIERS = ("nhs_number", "ni_number", "upn", "pnc_id", "crn", "uprn", "tenancy_ref", "local_id")
# The minimum data for linking when a contract does not say: a name and at least one of these.
MINIMUM_DATA_DEFAULT = ("date_of_birth", "identifier", "address", "postcode", "phone", "email")

DERIVED_COLUMNS = {
    "_has_name": "first_name or last_name is present and not blank",
    "_has_minimum_data": "the record has at least one of the fields the contract's minimum data rule lists "
                         "(default: " + ", ".join(MINIMUM_DATA_DEFAULT) + ")",
    "_no_values_set_aside": "standardisation set aside no value in the row (quality_flags is empty)",
}

POSTCODE = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$"
NHS_NUMBER = r"^\d{10}$"
UPN = r"^[A-Z]\d{11}[0-9A-Z]$"
PNC_ID = r"^\d{2}/\d{6}[A-Z]$"
CRN = r"^[A-Z]\d{6}$"


def _rule(expectation: type[gxe.Expectation], severity: str, reason: str, **kwargs) -> gxe.Expectation:
    return expectation(**kwargs, severity="critical" if severity == QUARANTINE else "warning",
                       meta={"severity": severity, "reason": reason})


def _common() -> list[gxe.Expectation]:
    return [
        # quarantine: the row cannot be used at all
        _rule(gxe.ExpectColumnValuesToNotBeNull, QUARANTINE, "no record id", column="record_id"),
        _rule(gxe.ExpectColumnValuesToBeInSet, QUARANTINE, "no name", column="_has_name", value_set=[True]),
        # the reason is rewritten at run time to name the contract's own rule (expectations/_validate.py)
        _rule(gxe.ExpectColumnValuesToBeInSet, QUARANTINE, "below the minimum data for linking",
              column="_has_minimum_data", value_set=[True]),
        # warnings: reported, the row is still staged. Standardisation already nulls impossible
        # dates and malformed values, so these catch a source or a standardisation step gone wrong.
        _rule(gxe.ExpectColumnValuesToBeBetween, WARNING, "date of birth outside the contract's bounds or after the extract date",
              column="date_of_birth",
              # datetime bounds: the column is datetime64 and date or string bounds make GX error
              min_value={"$PARAMETER": "datetime(1900, 1, 1)"}, max_value={"$PARAMETER": EXTRACT_DATE}),
        _rule(gxe.ExpectColumnValuesToMatchRegex, WARNING, "postcode not in UK format", column="postcode",
              regex=POSTCODE),
        _rule(gxe.ExpectColumnValuesToMatchRegex, WARNING, "NHS number not 10 digits", column="nhs_number",
              regex=NHS_NUMBER),
        _rule(gxe.ExpectColumnValuesToBeInSet, WARNING, "sex not M or F", column="sex", value_set=["M", "F"]),
        # what standardisation set aside (invalid identifiers, impossible dates, bad postcodes)
        _rule(gxe.ExpectColumnValuesToBeInSet, WARNING, "more than 10% of rows had a value set aside",
              column="_no_values_set_aside", value_set=[True], mostly=0.9),
    ]


def _for_source(source: str) -> list[gxe.Expectation]:
    """What each agency is expected to send, beyond the common rules."""
    if source == "police":
        return [_rule(gxe.ExpectColumnValuesToMatchRegex, WARNING, "PNC id not in YY/NNNNNNA form", column="pnc_id",
                      regex=PNC_ID)]
    if source == "probation":
        return [
            _rule(gxe.ExpectColumnValuesToMatchRegex, WARNING, "CRN not a letter and 6 digits", column="crn", regex=CRN),
            _rule(gxe.ExpectColumnValuesToMatchRegex, WARNING, "PNC id not in YY/NNNNNNA form", column="pnc_id",
                  regex=PNC_ID),
            _rule(gxe.ExpectColumnValuesToNotBeNull, WARNING, "more than 5% of rows have no CRN", column="crn",
                  mostly=0.95),
        ]
    if source == "housing":
        return [_rule(gxe.ExpectColumnValuesToNotBeNull, WARNING, "more than 20% of rows have no UPRN", column="uprn",
                      mostly=0.8)]
    if source == "health":
        return [_rule(gxe.ExpectColumnValuesToNotBeNull, WARNING, "more than 20% of rows have no NHS number",
                      column="nhs_number", mostly=0.8)]
    if source == "education":
        return [
            _rule(gxe.ExpectColumnValuesToMatchRegex, WARNING, "UPN not a letter and 12 characters", column="upn",
                  regex=UPN),
            _rule(gxe.ExpectColumnValuesToNotBeNull, WARNING, "more than 10% of rows have no UPN", column="upn",
                  mostly=0.9),
        ]
    return []


def suite_json(source: str) -> dict:
    """The suite for `source` (or the default) as the JSON document kept in suites/."""
    return {
        "name": f"familylink_{source}",
        "meta": {
            "source": source,
            "built_by": "expectations/_suites.py (python -m expectations.build_suites)",
            "severity": {QUARANTINE: "the row is unusable: quarantined with meta.reason",
                         WARNING: "reported; the row is still staged"},
            "derived_columns": DERIVED_COLUMNS,
            "parameters": {EXTRACT_DATE: "the extract's date, supplied at run time"},
        },
        "expectations": [e.configuration.to_json_dict() for e in _common() + _for_source(source)],
    }


def build_suites(folder: Path = SUITES_DIR) -> list[Path]:
    """Write one JSON suite per source and the default; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for source in (*SOURCES, DEFAULT):
        path = folder / f"{source}.json"
        path.write_text(json.dumps(suite_json(source), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def suite_path(source: str, folder: Path = SUITES_DIR) -> Path:
    """The source's own suite file, or the default one for a source without a suite."""
    own = Path(folder) / f"{source}.json"
    return own if own.exists() else Path(folder) / f"{DEFAULT}.json"


def load_suite(source: str, folder: Path = SUITES_DIR) -> gx.ExpectationSuite:
    """The suite for `source` from its JSON file (the default's for an unseen source), named for the source.

    Each expectation is built one by one so that a bad entry raises, naming the file and position:
    ExpectationSuite itself logs and drops an expectation it cannot build, which would silently lose a rule.
    """
    path = suite_path(source, folder)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ExpectationError(f"{path}: cannot read the suite ({exc.__class__.__name__})") from None
    expectations = []
    for position, item in enumerate(document.get("expectations", [])):
        try:
            expectation = ExpectationConfiguration(**item).to_domain_obj()
        except Exception as exc:  # GX raises several unrelated types for a bad configuration
            raise ExpectationError(f"{path}: expectation {position} ({item.get('type')}) is not valid: "
                                   f"{exc.__class__.__name__}") from None
        severity = (expectation.meta or {}).get("severity")
        if severity not in (QUARANTINE, WARNING):
            raise ExpectationError(f"{path}: expectation {position} ({item.get('type')}) has meta.severity "
                                   f"{severity!r}; expected {QUARANTINE!r} or {WARNING!r}")
        expectations.append(expectation)
    meta = {**document.get("meta", {}), "suite_file": path.name}
    return gx.ExpectationSuite(name=f"familylink_{source}", expectations=expectations, meta=meta)
