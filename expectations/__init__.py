"""Great Expectations validation: a suite per source (expectations/suites/*.json), row-level quarantine
with reasons, extract-level checks, and Data Docs."""

from expectations._extract_checks import check_extract
from expectations._suites import build_suites
from expectations._validate import ValidationError, ValidationOutcome, validate_records

__all__ = ["ValidationError", "ValidationOutcome", "build_suites", "check_extract", "validate_records"]
