"""Settings never reach SQL as text (issue 13, defect 5): the memory limit is validated and passed as a
parameter, and a data folder with an apostrophe publishes."""

import datetime as dt

import pytest

import warehouse
from pipelines.settings import SettingsError, load_settings
from tests._small_city import CLUSTERS, load_small_city
from warehouse._golden import publish_snapshot
from linkage_models import assign_person_ids
from warehouse._graph import build_graph

_INJECTION = "6GB'; create table main.pwned as select 1; --"


def test_a_memory_limit_carrying_sql_is_refused_by_settings(tmp_path):
    with pytest.raises(SettingsError, match="duckdb_memory_limit"):
        load_settings({"FAMILYLINK_DUCKDB_MEMORY_LIMIT": _INJECTION}, settings_file=tmp_path / "none.yaml")
    assert load_settings({"FAMILYLINK_DUCKDB_MEMORY_LIMIT": "512MiB"},
                         settings_file=tmp_path / "none.yaml").duckdb_memory_limit == "512MiB"


def test_the_warehouse_refuses_a_memory_limit_carrying_sql(tmp_path):
    path = tmp_path / "w.duckdb"
    with pytest.raises(ValueError, match="memory limit"):
        warehouse.connect(path, memory_limit=_INJECTION)
    con = warehouse.connect(path, memory_limit="1GB")
    assert con.sql("select count(*) from duckdb_tables() where table_name = 'pwned'").fetchall() == [(0,)]
    con.close()


def test_a_data_folder_with_an_apostrophe_publishes(tmp_path):
    data = tmp_path / "o'brien's data"
    con = warehouse.connect(data / "warehouse" / "familylink.duckdb")
    load_small_city(con)
    assign_person_ids(con, CLUSTERS, run_id="r1")
    build_graph(con, run_id="r1", model_version="m1", as_of=dt.date(2026, 11, 1))
    result = publish_snapshot(con, run_id="r1", model_version="m1", as_of=dt.date(2026, 11, 1),
                              snapshots_dir=data / "snapshots", pseudonymisation_key=b"k", retention_days=30)
    assert (result.parquet_dir / "golden" / "person.parquet").exists()
    assert con.sql("select status from audit.snapshot").fetchall() == [("published",)]
    con.close()
