"""The familylink command fails with exit code 1 and a one-line reason, never a traceback."""

import pytest
from typer.testing import CliRunner

from pipelines.cli import app


@pytest.mark.parametrize("command, reason", [
    (["link"], "no approved person model"),  # a missing gazetteer is no longer an error (issue 12)
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
