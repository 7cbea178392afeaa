"""Prefect flow smoke test under one session-scoped test harness (a real temporary Prefect server)."""

import shutil

import duckdb
import pytest

from sources.synthetic import CityConfig, generate_city

pytestmark = pytest.mark.slow


def test_ingest_flow_runs_sources_concurrently_and_recognises_unchanged_extracts(prefect_harness, tmp_path):
    from pipelines.flows import ingest

    city = tmp_path / "city"
    generate_city(city, CityConfig(people=800, seed=5))
    first = ingest(data_dir=str(city))
    assert {row["source"]: row["status"] for row in first} == dict.fromkeys(
        ["benefits", "education", "health", "housing", "police", "probation", "social_care"], "loaded")
    assert all(r["rows_read"] == r["rows_staged"] + r["rows_quarantined"] for r in first)
    # an unchanged extract is not reprocessed: it is recorded as unchanged and nothing is written twice
    second = ingest(data_dir=str(city))
    assert {row["source"]: row["status"] for row in second} == dict.fromkeys(
        ["benefits", "education", "health", "housing", "police", "probation", "social_care"], "unchanged")
    con = duckdb.connect(str(city / "warehouse" / "familylink.duckdb"), read_only=True)
    runs = con.sql("select flow, status from audit.run order by started_at").fetchall()
    raw = con.sql("select count(*) from raw.row").fetchall()[0][0]
    con.close()
    assert runs == [("ingest", "completed"), ("ingest", "completed")]
    assert raw == sum(r["rows_read"] for r in first)
