"""Great Expectations validation for the ingest stage.

A suite per source (expectations/suites/<source>.json, default.json for any other source) splits a
source's standardised person records into staged rows and quarantined rows with every reason;
extract-level checks stop a source's load; both write GX Data Docs under the context folder.
"""

from expectations._extract_checks import ExtractProblem, check_extract
from expectations._gx import ExpectationError
from expectations._suites import build_suites
from expectations._validate import ValidationOutcome, validate_records

__all__ = [
    "ExpectationError",
    "ExtractProblem",
    "ValidationOutcome",
    "build_suites",
    "check_extract",
    "validate_records",
]
