"""Files and folders holding personal data are owner-only (issue 13, defect 6): a data folder left readable by
others under the usual umask is tightened at start-up, and everything a run writes is created owner-only."""

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from sources.synthetic import CityConfig, generate_city


@pytest.fixture
def usual_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _readable_by_others(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in [folder, *folder.rglob("*")]
            if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077]


def test_ingest_leaves_nothing_readable_by_others(tmp_path, usual_umask):
    data = tmp_path / "data"
    generate_city(data, CityConfig(people=300, seed=2))
    assert _readable_by_others(data), "the extracts arrive world-readable under umask 022"
    result = CliRunner().invoke(app, ["ingest", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert (data / "warehouse" / "familylink.duckdb").exists() and any((data / "reports").rglob("*.html"))
    assert _readable_by_others(data) == []
    assert os.umask(0o022) == 0o077, "files created later in this process are private too"
