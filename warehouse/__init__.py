"""The DuckDB warehouse: raw, staging, quarantine, graph, golden and audit schemas."""

from warehouse._audit import audited_run, finish_run, log_access, new_run_id, safe_error, start_run
from warehouse._db import compact, connect, ensure_schema, transaction

__all__ = ["audited_run", "compact", "connect", "ensure_schema", "finish_run", "log_access", "new_run_id", "safe_error", "start_run", "transaction"]
