"""The console shows Splink's training notes only with --verbose (pipelines/_logging.py), however many Linkers a
command makes: a Linker given a log level resets the "splink" logger and undid that (77 EM warnings in `make demo`)."""

import logging

import duckdb
import pytest

from linkage_models._engine import DuckDBEngine
from pipelines._logging import configure_logging

SETTINGS = {"link_type": "dedupe_only", "comparisons": [
    {"output_column_name": "name", "comparison_levels": [
        {"sql_condition": "name_l is null or name_r is null", "is_null_level": True},
        {"sql_condition": "name_l = name_r"}, {"sql_condition": "ELSE"}]}]}


@pytest.fixture
def splink_logger():
    logger = logging.getLogger("splink")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers
    logger.propagate = propagate


@pytest.mark.parametrize("verbose, level", [(False, logging.ERROR), (True, logging.WARNING)])
def test_a_linker_leaves_the_consoles_splink_level_as_configured(splink_logger, verbose, level):
    configure_logging(verbose)
    con = duckdb.connect()
    con.execute("create table people as select 'r' || i as unique_id, 'ann' as name from range(5) t(i)")
    engine = DuckDBEngine()
    engine.linker(con, "people", SETTINGS)  # a model to train or predict with
    engine.relink(engine.records, SETTINGS)  # and the trained one, over the same records
    assert splink_logger.getEffectiveLevel() == level
