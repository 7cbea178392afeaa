"""Shared fixtures."""

from __future__ import annotations

import logging

import pytest

import expectations  # noqa: F401,E402 - first: it names a file-less __main__ (an xdist worker) before pyspark sees it


@pytest.fixture(autouse=True)
def _quiet_third_party_loggers():
    for name in ("splink", "great_expectations"):
        logging.getLogger(name).setLevel(logging.WARNING)
    yield


@pytest.fixture(scope="session")
def published_city(tmp_path_factory):
    """A small synthetic city taken through one whole nightly run (ingest, link, publish, report).

    Shared by tests that only read what a run produced; tests that change the warehouse build their own.
    """
    from pipelines.stages import run_nightly
    from tests._city import trained_city

    settings = trained_city(tmp_path_factory.mktemp("published-city"), people=3000, seed=17)
    summary = run_nightly(settings)
    assert summary.ok, summary.failure
    return settings, summary


@pytest.fixture(scope="session")
def practitioner_city(tmp_path_factory):
    """The practitioner tests' city (tests/test_practitioner_city.py), built once for the whole session."""
    from tests.test_practitioner_city import build_city

    return build_city(tmp_path_factory.mktemp("practitioner-city"))


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for every flow test of the session (moved here from test_flows.py so the
    programme-cohort flow test shares it)."""
    from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with temporary_settings({PREFECT_SERVER_ANALYTICS_ENABLED: False}):
        with prefect_test_harness(server_startup_timeout=90):
            yield
