"""The DuckDB warehouse: raw, staging, quarantine, graph, golden and audit schemas."""

from warehouse._audit import audited_run, finish_run, import_refusals, log_access, new_run_id, safe_error, start_run
from warehouse._db import (RunRefused, acquire_run_lock, compact, connect, ensure_schema, release_run_lock,
                           run_lock, transaction)

from warehouse._db import refusals_file
from warehouse._golden import pseudonym  # keyed-hash ids, shared with programmes/ so household keys join

__all__ = ["RunRefused", "acquire_run_lock", "audited_run", "compact", "connect", "ensure_schema", "finish_run",
           "import_refusals", "log_access", "new_run_id", "pseudonym", "refusals_file", "release_run_lock", "run_lock", "safe_error",
           "start_run", "transaction"]
