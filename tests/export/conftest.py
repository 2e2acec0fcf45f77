"""Two runs with a planted secret, made once for the module, exported in every format."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from llmos.testing.model_server import ScriptedModelServer, text, tool_use

# a GitHub token shape detect-secrets knows, planted in the goal, a file and a command's output
SECRET = "ghp_" + "Zq7vK2mWb9XcR4tY6uN1pL8sD3fG5hJ0aE2i"


@pytest.fixture(scope="module")
def exported_workspace(tmp_path_factory) -> Path:
    """A workspace with a successful run (a write, a failing read retried, a command, an
    answer) and a run the model could not finish."""
    from click.testing import CliRunner

    from llmos.cli import cli

    home = tmp_path_factory.mktemp("home")
    workspace = tmp_path_factory.mktemp("exported") / "workspace"
    workspace.mkdir()
    with pytest.MonkeyPatch.context() as mp, ScriptedModelServer() as server:
        for name in [n for n in os.environ if n.startswith("LLMOS_")]:
            mp.delenv(name)
        mp.setenv("XDG_CONFIG_HOME", str(home / "config"))
        mp.setenv("XDG_DATA_HOME", str(home / "data"))
        for name, value in server.env().items():
            mp.setenv(name, value)

        def run(*args: str):
            return CliRunner().invoke(cli, ["--workspace", str(workspace), "--set",
                                            "budget.run_cap_usd=0.5", *args])

        assert run("budget", "set", "5").exit_code == 0
        notes = workspace / "notes.txt"
        missing = str(workspace / "missing.txt")
        server.script.turn(
            text("I'll write the notes first."),
            tool_use("Write", {"file_path": str(notes), "content": f"token={SECRET}\nhello\n"}),
        ).tool_use("Read", {"file_path": missing}).tool_use("Read", {"file_path": missing}) \
            .tool_use("Bash", {"command": "cat notes.txt"}) \
            .text(f"Done; the token is {SECRET}.")
        first = run("run", "--json", f"Save the notes with token {SECRET} and show them")
        assert first.exit_code == 0, first.output
        server.script.tool_use("Bash", {"command": "exit 3"}).text("I could not.")
        second = run("--set", "cortex.max_turns=1", "run", "--json", "Compile the project")
        assert second.exit_code == 1, second.output
    return workspace


@pytest.fixture
def export_cli(exported_workspace, llmos_env) -> Callable:
    from click.testing import CliRunner

    from llmos.cli import cli

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["--workspace", str(exported_workspace), *args])

    return invoke


@pytest.fixture
def two_runs(export_cli):
    listed = export_cli("runs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    return json.loads(listed.stdout)
