"""Build the GX suites (one per source plus a default) and save them as reviewable JSON in expectations/suites/.

    python -m expectations.build_suites

Each expectation's `meta` says its severity: "quarantine" rules mark a row unusable (it goes to
quarantine with the reason); "warning" rules are data quality reported, and the row is still staged.
"""

from __future__ import annotations

import json
from pathlib import Path

import great_expectations.expectations as gxe

SUITES_DIR = Path(__file__).parent / "suites"
SOURCES = ("police", "probation", "housing", "health", "education")
DEFAULT = "default"

# The derived boolean columns validation adds before GX runs (see _validate.py).
DERIVED = {
    "_has_record_id": "record_id is present",
    "_has_name": "first or last name is present",
    "_has_dob_or_identifier": "a usable date of birth or a valid identifier (NHS number, UPN, PNC id, CRN)",
}


def _quarantine(column: str, reason: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True],
                                           meta={"severity": "quarantine", "reason": reason})


def suite_expectations(source: str) -> list[gxe.Expectation]:
    expectations: list[gxe.Expectation] = [
        _quarantine("_has_record_id", "no record id"),
        _quarantine("_has_name", "no name"),
        _quarantine("_has_dob_or_identifier", "no date of birth or identifier"),
        gxe.ExpectColumnValuesToMatchRegex(column="postcode", regex=r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$",
                                           meta={"severity": "warning", "reason": "postcode not in UK format"}),
        gxe.ExpectColumnValuesToBeInSet(column="sex", value_set=["M", "F"],
                                        meta={"severity": "warning", "reason": "sex not recorded as M or F"}),
        gxe.ExpectColumnValuesToNotBeNull(column="date_of_birth", mostly=0.95,
                                          meta={"severity": "warning", "reason": "date of birth missing"}),
        gxe.ExpectColumnValuesToBeNull(column="_identifier_invalid", mostly=0.9,
                                       meta={"severity": "warning", "reason": "identifier failed its check"}),
    ]
    if source in ("health",):
        expectations.append(gxe.ExpectColumnValuesToMatchRegex(
            column="nhs_number", regex=r"^\d{10}$", meta={"severity": "warning", "reason": "NHS number format"}))
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(
            column="nhs_number", mostly=0.8, meta={"severity": "warning", "reason": "NHS number missing"}))
    if source in ("education",):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(
            column="upn", mostly=0.9, meta={"severity": "warning", "reason": "UPN missing"}))
    if source in ("housing",):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(
            column="uprn", mostly=0.8, meta={"severity": "warning", "reason": "UPRN missing"}))
    if source in ("police", "probation"):
        expectations.append(gxe.ExpectColumnValuesToMatchRegex(
            column="pnc_id", regex=r"^\d{2}/\d{6}[A-Z]$", meta={"severity": "warning", "reason": "PNC id format"}))
    return expectations


def suite_json(source: str) -> dict:
    return {
        "name": f"familylink_{source}",
        "meta": {"source": source, "built_by": "expectations/_suites.py"},
        "expectations": [e.configuration.to_json_dict() for e in suite_expectations(source)],
    }


def build_suites(folder: Path = SUITES_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for source in (*SOURCES, DEFAULT):
        path = folder / f"{source}.json"
        path.write_text(json.dumps(suite_json(source), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
