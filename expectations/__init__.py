"""Great Expectations validation for the ingest stage.

A suite per source (expectations/suites/<source>.json, default.json for any other source) splits a
source's standardised person records into staged rows and quarantined rows with every reason;
extract-level checks stop a source's load; both write GX Data Docs under the context folder.
"""

import sys
import warnings

# pyspark, which GX imports when it is installed, warns at import that it does not yet fully support pandas 3: the
# Spark engine runs against the pinned pandas in tests/test_spark.py, and the warning opened every command's output
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

_main = sys.modules.get("__main__")
if _main is not None and getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    # Great Expectations imports pyspark when it is installed (engine: spark), and pyspark takes a __main__
    # with no file (`python -c ...`, a pytest-xdist worker) for its own doctest run and exits the interpreter
    # with status 0 (pyspark/sql/connect/utils.py): a scripted ingest would silently do nothing. A spec named
    # __main__ (not a made-up __file__) tells pyspark otherwise and leaves multiprocessing's spawned children
    # alone: given a __file__, a child would try to run that path as the parent's script
    import importlib.machinery

    _main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)

from expectations._extract_checks import ExtractProblem, check_extract  # noqa: E402
from expectations._gx import ExpectationError  # noqa: E402
from expectations._suites import build_suites  # noqa: E402
from expectations._validate import ValidationOutcome, validate_records  # noqa: E402

__all__ = [
    "ExpectationError",
    "ExtractProblem",
    "ValidationOutcome",
    "build_suites",
    "check_extract",
    "validate_records",
]
