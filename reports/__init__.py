"""The run report for data-protection leads: one self-contained HTML file per run (no network needed to
open it), and clerical review of borderline pairs (`familylink review`)."""

from reports._report import write_run_report

__all__ = ["write_run_report"]
