"""The DuckDB warehouse: raw, staging, quarantine, graph, golden and audit schemas."""

from warehouse._audit import audited_run, finish_run, import_refusals, log_access, new_run_id, safe_error, start_run
from warehouse._db import (RunRefused, acquire_run_lock, compact, connect, ensure_schema, release_run_lock,
                           run_lock, column_names, table_exists, transaction)

from warehouse._db import refusals_file
from warehouse._golden import pseudonym  # keyed-hash ids, shared with programmes/ so household keys join
from warehouse._measures import UPRN_MATCH_RATE_DEFINITION, uprn_match_rate
from warehouse._published import DOCS_PATH as DATA_DICTIONARY_PATH
from warehouse._published import DictionaryError, add_to_snapshot, data_dictionary_markdown, dictionary

__all__ = ["DATA_DICTIONARY_PATH", "DictionaryError", "RunRefused", "add_to_snapshot", "UPRN_MATCH_RATE_DEFINITION", "acquire_run_lock", "audited_run",
           "column_names", "compact", "connect", "data_dictionary_markdown", "dictionary", "ensure_schema", "finish_run",
           "import_refusals", "log_access", "new_run_id", "pseudonym", "refusals_file", "release_run_lock", "run_lock",
           "safe_error", "start_run", "table_exists", "transaction", "uprn_match_rate"]
