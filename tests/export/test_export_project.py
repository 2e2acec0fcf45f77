"""``llmos export training --project NAME`` exports that project's runs only, and a
conversation's tool results keep what the model read."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.cli


@pytest.fixture
def llmos_settings():
    return ["budget.run_cap_usd=0.5"]


def test_a_projects_runs_are_exported_with_project(llmos_cli, llmos_model_server, tmp_path):
    assert llmos_cli("budget", "set", "5").exit_code == 0
    assert llmos_cli("projects", "new", "alpha").exit_code == 0
    assert llmos_cli("--project", "alpha", "budget", "set", "5").exit_code == 0
    llmos_model_server.script.tool_use("Bash", {"command": "echo inside alpha"}).text("Done.")
    ran = llmos_cli("--project", "alpha", "run", "--json", "Say where you are")
    assert ran.exit_code == 0, ran.output

    out = tmp_path / "alpha.jsonl"
    result = llmos_cli("export", "training", "--project", "alpha", "--format", "anthropic",
                       "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert line["metadata"]["goal"] == "Say where you are"
    assert line["messages"][2]["content"][0]["content"] == "inside alpha"

    top = tmp_path / "top.jsonl"
    result = llmos_cli("export", "training", "--format", "anthropic", "--out", str(top),
                       "--json")
    assert json.loads(result.stdout)["examples"] == 0 and top.read_text() == ""

    unknown = llmos_cli("export", "training", "--project", "nope", "--format", "openai",
                        "--out", str(tmp_path / "x.jsonl"))
    assert unknown.exit_code == 2 and "nope" in unknown.output
    assert "Traceback" not in unknown.output
