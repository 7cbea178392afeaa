"""The nightly stages end to end on a small synthetic city: publish, re-run keeps ids, a failed run changes nothing."""

import shutil

import duckdb
import pytest

from pipelines.settings import Settings
from pipelines.stages import open_warehouse, run_ingest, run_nightly
from tests._city import trained_city

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    settings = trained_city(tmp_path_factory.mktemp("nightly"), people=3000, seed=9)
    return settings


def _published(settings):
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        snapshot = con.sql("select snapshot_id from audit.snapshot where status = 'published'").fetchall()
        people = con.sql("select person_id, first_name, household_id from golden.person order by all").fetchall()
        return snapshot, people
    finally:
        con.close()


def test_nightly_publishes_then_a_rerun_keeps_every_id(settings):
    first = run_nightly(settings)
    assert first.ok, first.failure
    assert first.publish.row_counts["person"] == first.link.persons
    rates = first.link.linked_to_another_source
    assert set(rates) == {"benefits", "education", "health", "housing", "police", "probation", "social_care"}
    assert all(0 < share < 1 for share in rates.values())
    assert f"health {rates['health']:.1%}" in first.markdown
    snapshot, people = _published(settings)
    assert snapshot == [(first.publish.snapshot_id,)]
    second = run_nightly(settings)
    assert second.ok and second.link.lineage == {}
    assert _published(settings)[1] == people  # same person ids, values and households


def test_a_failed_run_leaves_the_published_snapshot_untouched(settings):
    run_nightly(settings)
    before = _published(settings)
    housing = next((settings.landing / "housing").glob("*.txt"))
    lines = housing.read_text().splitlines(keepends=True)
    broken = housing.with_name("tenancy_members_20261201.txt")
    broken.write_text("".join(lines + lines[1:3]))  # duplicate record keys
    try:
        summary = run_nightly(settings)
        assert not summary.ok and summary.failed_stage == "ingest" and "housing" in summary.failure
        assert _published(settings) == before
        con = duckdb.connect(str(settings.warehouse), read_only=True)
        status = con.sql("select status, failed_stage from audit.run order by started_at desc limit 1").fetchall()
        con.close()
        assert status == [("failed", "ingest")]
    finally:
        broken.unlink()
