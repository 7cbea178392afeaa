"""The data team's commands (issue 14): runs and model versions listed, errors that list what exists, a missing
--data-dir refused at once, help for every option without `<bool>` placeholders, read-only queries on the
published snapshot, the data dictionary in step."""

import datetime as dt
import json
import re

import pytest
import typer
from typer.testing import CliRunner

import warehouse
from linkage_models import assign_person_ids
from pipelines.cli import app
from tests._small_city import CLUSTERS, load_small_city
from warehouse._golden import publish_snapshot
from warehouse._graph import build_graph


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A data folder with a published snapshot, its run in audit.run, and two trained model versions."""
    data = tmp_path_factory.mktemp("cli-lists") / "data"
    con = warehouse.connect(data / "warehouse" / "familylink.duckdb")
    load_small_city(con)
    assign_person_ids(con, CLUSTERS, run_id="r1")
    build_graph(con, run_id="r1", model_version="20261101T000000Z", as_of=dt.date(2026, 11, 1))
    with warehouse.audited_run(con, "publish") as run_id:
        publish_snapshot(con, run_id=run_id, model_version="20261101T000000Z", as_of=dt.date(2026, 11, 1),
                         snapshots_dir=data / "snapshots", pseudonymisation_key=b"k", retention_days=30)
    con.close()
    for version, records in (("20261101T000000Z", 5000), ("20261102T000000Z", 6000)):
        folder = data / "models" / "person" / version
        folder.mkdir(parents=True)
        (folder / "model.duckdb.json").write_text("{}")
        (folder / "metadata.json").write_text(json.dumps({"version": version, "trained_at": f"{version[:8]}T00:00:00",
                                                          "splink_version": "5.0.0", "records_trained_on": records}))
    (data / "models" / "person" / "approved.json").write_text(json.dumps({"version": "20261101T000000Z"}))
    return data, run_id


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    import pipelines.cli

    monkeypatch.setattr(pipelines.cli.console, "width", 220)  # tables whole, as on a wide terminal


def _invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_runs_lists_each_run_with_its_snapshot(data):
    folder, run_id = data
    result = _invoke("runs", "--data-dir", str(folder))
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert run_id[:15] in flat and "publish" in flat and "completed" in flat and "snapshot_000001" in flat


def test_models_lists_versions_and_the_approved_one(data):
    folder, _ = data
    result = _invoke("models", "--data-dir", str(folder))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "2026110" in line]
    assert len(lines) == 2
    assert "approved" in next(line for line in lines if "20261101T000000Z" in line)
    assert "6,000" in next(line for line in lines if "20261102T000000Z" in line)


@pytest.mark.parametrize("args, listed", [
    (["report", "--run-id", "nope"], "latest runs:"),
    (["promote-model", "nope"], "versions trained: 20261101T000000Z, 20261102T000000Z"),
])
def test_an_unknown_id_is_refused_with_what_exists(data, args, listed):
    folder, run_id = data
    result = _invoke(*args, "--data-dir", str(folder))
    assert result.exit_code == 1, result.output
    flat = " ".join(result.output.split())
    assert listed in flat and "Traceback" not in result.output
    if args[0] == "report":
        assert run_id in flat.replace(" ", "") or run_id[:15] in flat


def test_run_refuses_a_missing_data_folder_at_once(tmp_path):
    missing = tmp_path / "nowhere"
    result = _invoke("run", "--data-dir", str(missing))
    assert result.exit_code == 1 and "no such folder" in result.output
    assert not missing.exists()


@pytest.mark.parametrize("args, missing_file", [
    (["evaluate"], "warehouse/familylink.duckdb"),
    (["runs"], "warehouse/familylink.duckdb"),
    (["report"], "warehouse/familylink.duckdb"),
    (["review"], "warehouse/familylink.duckdb"),
    (["models"], "models"),
    (["query", "select 1"], "snapshots"),
    *([["cohort", command], "warehouse/familylink.duckdb"]
      for command in ("show", "changes", "needs", "costs", "report", "quality")),
    (["cohort", "triage", "1", "-p", "troubled_families", "--decision", "accepted", "--actor", "panel"],
     "warehouse/familylink.duckdb"),
], ids=lambda value: " ".join(value[:2]) if isinstance(value, list) else "")
def test_a_read_only_command_on_a_mistyped_data_folder_stops_and_creates_nothing(tmp_path, args, missing_file):
    missing = tmp_path / "nowhere"
    result = _invoke(*args, "--data-dir", str(missing))
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("familylink:")]
    flat = " ".join(result.output.split())
    assert len(lines) == 1 and f"{missing / missing_file}: there is no folder {missing}" in flat, result.output
    assert "Traceback" not in result.output
    assert not missing.exists()


@pytest.mark.parametrize("command", [["evaluate"], ["report"], ["review"], ["cohort", "show"], ["cohort", "needs"]],
                         ids=" ".join)
def test_a_read_only_command_on_a_data_folder_without_a_warehouse_leaves_none_behind(tmp_path, command):
    result = _invoke(*command, "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_query_reads_the_published_snapshot_only(data):
    folder, _ = data
    result = _invoke("query", "select count(*) as people from pseudonymised.person", "--data-dir", str(folder))
    assert result.exit_code == 0 and re.search(r"\b5\b", result.output), result.output
    refused = _invoke("query", "select * from staging.person_record", "--data-dir", str(folder))
    assert refused.exit_code == 1 and "query failed" in refused.output


def test_the_data_dictionary_is_in_step():
    result = _invoke("dictionary", "--check")
    assert result.exit_code == 0, result.output


def _commands(group: typer.Typer, prefix: tuple[str, ...] = ()):
    for command in group.registered_commands:
        yield (*prefix, command.name or command.callback.__name__.replace("_", "-"))
    for sub in group.registered_groups:
        yield from _commands(sub.typer_instance, (*prefix, sub.name))


@pytest.mark.parametrize("command", list(_commands(app)), ids=" ".join)
def test_every_option_has_help_and_no_bool_placeholder(command):
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    options = [line for line in result.output.splitlines() if re.match(r"^│\s+(\*\s+)?--?\w", line)]
    undescribed = [line for line in options if len(re.split(r"\s{2,}", line.strip("│ ").strip())) < 2]
    assert options and not undescribed, undescribed
