"""The familylink command fails with exit code 1 and a one-line reason, never a traceback."""

import pytest
from typer.testing import CliRunner

from pipelines.cli import app


@pytest.mark.parametrize("command, reason", [
    (["link"], "no approved person model"),  # the gazetteer is optional (issue 12)
    (["train"], "too little data to train a person model: 0 staged records"),
    (["publish"], "no household graph yet"),
    (["report"], "no completed run"),
    (["evaluate"], "no ground truth"),
    (["rollback"], "nothing is published"),
    (["promote-model", "19990101T000000Z"], "no trained person model version"),
])
def test_failures_exit_non_zero_with_one_line_reason(tmp_path, command, reason):
    result = CliRunner().invoke(app, [*command, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("familylink:")]
    assert len(lines) == 1 and reason in " ".join(result.output.split()), result.output


def test_evaluate_before_any_link_says_to_link_first(tmp_path):
    """Truth is there (a synthetic city was built and ingested) but nothing was linked yet."""
    import polars as pl

    (tmp_path / "truth").mkdir()
    pl.DataFrame({"source": ["police"], "record_id": ["1"], "person_id": ["p1"]}).write_parquet(
        tmp_path / "truth" / "records.parquet")
    result = CliRunner().invoke(app, ["evaluate", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "no person links in this warehouse yet" in " ".join(result.output.split()), result.output
