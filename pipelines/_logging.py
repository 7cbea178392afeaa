"""Logging for familylink: ids and counts only.

Log lines and exception messages carry source names, file names, row numbers, column names and record
ids, never personal data. Third-party loggers that may echo data (Splink prints SQL with literals,
GX can print unexpected values) are kept at WARNING.
"""

from __future__ import annotations

import logging

_QUIET = ("splink", "great_expectations", "py4j", "httpx", "urllib3", "alembic")


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not verbose:
        # Splink's training notes ("u values not fully trained", "m values not fully trained") are about levels
        # with few observations, expected on a sampled unsupervised fit and recorded with the model; on a
        # console they read as errors. --verbose shows them.
        logging.getLogger("splink").setLevel(logging.ERROR)
