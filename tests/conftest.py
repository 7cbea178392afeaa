"""Shared fixtures."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _quiet_third_party_loggers():
    for name in ("splink", "great_expectations"):
        logging.getLogger(name).setLevel(logging.WARNING)
    yield
