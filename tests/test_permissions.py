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


def test_the_analysts_group_must_exist_and_must_not_be_the_data_team(tmp_path):
    from pipelines.settings import Settings, SettingsError

    with pytest.raises(ValueError, match="analysts_group must differ from shared_group"):
        Settings(data_dir=tmp_path, shared_group="users", analysts_group="users")
    with pytest.raises(SettingsError, match="analysts_group: no such group"):
        Settings(data_dir=tmp_path, analysts_group="no-such-group-familylink").protect_data()


def test_the_analysts_group_gets_the_snapshots_folder_only(tmp_path, usual_umask):
    """Modes without a run (the nightly's own check is in tests/test_published.py): snapshots shared read-only with
    the group, the data folder passable but not listable, the warehouse and everything else owner-only."""
    import grp

    from pipelines.settings import Settings

    if os.geteuid() != 0:
        pytest.skip("giving files another group needs root (or membership of it)")
    data = tmp_path / "data"
    for name in ("warehouse/familylink.duckdb", "snapshots/snapshot_000001/analysts.duckdb",
                 "snapshots/snapshot_000001/golden/person.parquet", "landing/health/gp.csv"):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text("x")
    (data / "snapshots" / "snapshot_000001" / "analysts.duckdb").chmod(0o444)  # as familylink writes it
    (data / "snapshots" / "current").symlink_to("snapshot_000001")
    gid = grp.getgrnam("users").gr_gid
    Settings(data_dir=data, analysts_group="users").protect_data()
    mode = lambda p: stat.S_IMODE((data / p).stat().st_mode)  # noqa: E731
    assert mode(".") == 0o701 and mode("warehouse") == 0o700 and mode("warehouse/familylink.duckdb") == 0o600
    assert mode("landing") == 0o700 and mode("landing/health/gp.csv") == 0o600
    assert mode("snapshots") == mode("snapshots/snapshot_000001") == 0o2750
    assert mode("snapshots/snapshot_000001/analysts.duckdb") == 0o440
    assert mode("snapshots/snapshot_000001/golden/person.parquet") == 0o640
    assert {(data / p).stat().st_gid for p in ("snapshots", "snapshots/snapshot_000001/golden/person.parquet")} == {gid}
    # without the setting the snapshots are owner-only like the rest, and the data folder closes again
    Settings(data_dir=data).protect_data()
    assert mode(".") == 0o700 and mode("snapshots/snapshot_000001/golden/person.parquet") == 0o600
