from pathlib import Path

import pytest

from pipelines.settings import SettingsError, load_settings


def test_defaults_live_under_data(tmp_path):
    s = load_settings({}, settings_file=tmp_path / "absent.yaml")
    assert s.warehouse == Path("data/warehouse/familylink.duckdb")
    assert s.landing == Path("data/landing")
    assert s.engine == "duckdb"


def test_file_then_environment_override(tmp_path):
    f = tmp_path / "familylink.yaml"
    f.write_text("data_dir: /srv/fl\nmatch_threshold: 0.9\nengine: spark\n")
    s = load_settings({"FAMILYLINK_MATCH_THRESHOLD": "0.97"}, settings_file=f)
    assert s.data_dir == Path("/srv/fl")
    assert s.engine == "spark"
    assert s.match_threshold == 0.97
    assert s.reports == Path("/srv/fl/reports")


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"FAMILYLINK_ENGINE": "oracle"}, "engine"),
        ({"FAMILYLINK_MATCH_THRESHOLD": "1.5"}, "match_threshold"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, env, fragment):
    with pytest.raises(SettingsError, match=fragment):
        load_settings(env, settings_file=tmp_path / "absent.yaml")


def test_unknown_key_in_file_is_rejected(tmp_path):
    f = tmp_path / "familylink.yaml"
    f.write_text("data_dri: /tmp\n")
    with pytest.raises(SettingsError, match=r"familylink.yaml.*data_dri"):
        load_settings({}, settings_file=f)
