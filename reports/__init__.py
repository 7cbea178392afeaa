"""The run report for data-protection leads: one self-contained HTML file per run (no network needed to
open it), and clerical review of borderline pairs (`familylink review`)."""

from reports._report import finalise_run_report, write_run_report
from reports._validation import write_validation_page

__all__ = ["finalise_run_report", "write_run_report", "write_validation_page"]
