"""The ``llmos`` command line: documented JSON shapes and exit codes."""

from __future__ import annotations

import json

import pytest

from llmos import __version__


@pytest.fixture
def llmos_settings():
    return ["security.backend=strict"]


def test_version(llmos_cli):
    result = llmos_cli("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"llmos, version {__version__}"


def test_plugins_json_lists_the_builtins(llmos_cli):
    result = llmos_cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    plugins = {p["name"]: p for p in json.loads(result.output)}
    policies = plugins["llmos.builtins.policies"]
    assert policies["builtin"] and policies["distribution"] == "llmos"
    assert policies["hooks"] == ["llmos_register_security_backends"]
    assert set(policies) == {"name", "state", "kind", "distribution", "version", "path",
                             "hooks", "error", "disabled_by", "warnings", "builtin"}
    assert (policies["state"], policies["kind"]) == ("loaded", "builtin")


def test_plugins_table(llmos_cli):
    result = llmos_cli("plugins")
    assert result.exit_code == 0
    assert "built-in" in result.output and "loaded" in result.output


def test_tools_json_shape(llmos_cli):
    result = llmos_cli("tools", "--json")
    assert result.exit_code == 0, result.output
    for tool in json.loads(result.output):
        assert set(tool) == {
            "name", "plugin", "description", "input_schema", "side_effects",
            "cost_hint_usd", "latency_hint_s", "error_modes", "inputs",
        }


def test_tools_call_usage_errors_exit_2(llmos_cli):
    assert llmos_cli("tools", "call", "nope", "--input", "{").exit_code == 2
    result = llmos_cli("tools", "call", "nope", "--input", "[]")
    assert result.exit_code == 2 and "must be a JSON object" in result.output
    result = llmos_cli("tools", "call", "nope")
    assert result.exit_code == 2 and "no tool named 'nope'" in result.output


def test_config_show_json_reports_values_and_origins(llmos_cli, llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text("[cortex]\nmax_turns = 4\n")
    result = llmos_cli("config", "show", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["config"]["cortex"]["max_turns"] == 4
    assert data["origins"]["cortex.max_turns"].endswith("llmos.toml")
    assert data["origins"]["security.backend"] == "--set security.backend=strict"
    assert data["workspace"] == str(llmos_workspace.resolve())


def test_config_errors_exit_2_with_the_message(llmos_cli, llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text("[cortex]\nmax_turn = 4\n")
    result = llmos_cli("config", "show")
    assert result.exit_code == 2
    assert "unknown key cortex.max_turn" in result.output
    assert "Traceback" not in result.output


def test_budget_set_show_and_history(llmos_cli):
    assert llmos_cli("budget", "set", "2.5").exit_code == 0
    status = json.loads(llmos_cli("budget", "--json").output)
    assert status["balance_usd"] == 2.5 and status["available_usd"] == 2.5
    history = json.loads(llmos_cli("budget", "history", "--json").output)
    assert history[0]["kind"] == "set" and history[0]["amount_usd"] == 2.5
    assert llmos_cli("budget", "set", "-1").exit_code == 2
    assert llmos_cli("budget", "set", "lots").exit_code == 2


def test_the_workspace_is_laid_out_on_first_use(llmos_cli, llmos_workspace):
    assert llmos_cli("config", "show").exit_code == 0
    for sub in ("agents", "projects", "plugins/generated", ".llmos"):
        assert (llmos_workspace / sub).is_dir()


def test_a_file_given_as_workspace_is_a_usage_error(llmos_cli, tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    from click.testing import CliRunner

    from llmos.cli import cli

    result = CliRunner().invoke(cli, ["--workspace", str(target), "config", "show"])
    assert result.exit_code == 2
