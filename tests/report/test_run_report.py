"""The run's own report is exact (issue 19, item 6).

``llmos run`` drives the real Claude Code CLI through llmos's metering proxy against the
scripted model server: every tool call the model makes, built-in or plugin, is shown live
and counted; ``model_requests`` is the number of requests the service received;
refusals are listed, and a run that achieved nothing because of them exits 4.
"""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

import llmos
from llmos.kernel import Kernel
from llmos.testing.model_server import Usage

pytestmark = pytest.mark.cli


@pytest.fixture
def llmos_settings():
    return ["budget.run_cap_usd=0.5", "cortex.retry_max_s=30"]


@pytest.fixture
def funded(llmos_cli):
    assert llmos_cli("budget", "set", "5").exit_code == 0
    return llmos_cli


def run_json(cli, *args):
    result = cli("run", "--json", *args)
    assert result.stdout.strip().startswith("{"), result.output
    return result, json.loads(result.stdout)


def kernel_for(workspace) -> Kernel:
    return Kernel(workspace, load_entry_points=False)


def test_a_plugin_tool_call_is_shown_live_and_counted(funded, llmos_model_server):
    """``list_agents`` is a kernel tool offered to the model over the in-process MCP
    server (``mcp__llmos__list_agents``), next to Claude Code's own Bash."""
    llmos_model_server.script.tool_use("mcp__llmos__list_agents", {}).tool_use(
        "Bash", {"command": "ls"}).text("Listed the agents and the files.")
    result = funded("run", "List the agents and the files")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    shown = [line for line in lines if line.startswith("●")]
    assert [line.split()[1] for line in shown] == ["list_agents", "Bash"]
    assert "· 2 tool calls ·" in result.stdout


def test_the_json_report_counts_plugin_and_builtin_calls(funded, llmos_model_server,
                                                          llmos_workspace):
    llmos_model_server.script.tool_use("mcp__llmos__list_agents", {}).tool_use(
        "Bash", {"command": "ls"}).tool_use("mcp__llmos__list_agents", {}).text("ok")
    result, data = run_json(funded, "List the agents")
    assert result.exit_code == 0, result.output
    assert data["tool_calls"] == 3
    assert data["refusals"] == []
    steps = kernel_for(llmos_workspace).memory.run_steps(data["run_id"])
    assert [s.tool for s in steps] == ["list_agents", "Bash", "list_agents"]


class ShoutInput(BaseModel):
    text: str


class ShoutPlugin:
    @llmos.hookimpl
    def llmos_register_tools(self, register):
        async def shout(args: ShoutInput, context):
            return args.text.upper()

        register(llmos.Tool("shout", "Upper-case a text", ShoutInput, shout,
                            llmos.ToolMeta("read-only")))


async def test_a_third_party_plugin_tool_goes_through_the_same_report(
    llmos_model_server, llmos_workspace
):
    from llmos.runner import execute

    llmos_model_server.script.tool_use("mcp__llmos__shout", {"text": "quiet"}).tool_use(
        "Bash", {"command": "ls"}).text("Shouted.")
    events = []
    async with Kernel(llmos_workspace, plugins={"shout": ShoutPlugin()},
                      load_entry_points=False, interactive=False) as kernel:
        kernel.economy.set_balance(5)
        result = await execute(kernel, "Shout quiet",
                               progress=lambda kind, data: events.append((kind, data)))
    assert result.success, result.error
    tools = [(data["tool"], data["verdict"]) for kind, data in events if kind == "tool"]
    assert tools == [("shout", "allow"), ("Bash", "allow")]
    assert result.tool_calls == 2


def test_model_requests_are_the_requests_the_service_received(
    funded, llmos_model_server, llmos_workspace
):
    """Retried requests are requests made: an overloaded answer and a rate-limited one
    are each retried by llmos, so the service sees five requests for three turns."""
    llmos_model_server.script.overloaded().tool_use(
        "Bash", {"command": "ls"}, usage=Usage(1000, 10)).rate_limited(0).text(
        "done", usage=Usage(1100, 10)).text("never used")
    llmos_model_server.script.turns.pop()  # keep the script exactly what is asked for
    result, data = run_json(funded, "List the files")
    assert result.exit_code == 0, result.output
    assert llmos_model_server.model_request_count == 4
    assert data["model_requests"] == llmos_model_server.model_request_count
    stats = json.loads(funded("stats", "--json").stdout)
    assert stats["model_requests"] == 4


def test_a_run_whose_only_action_was_refused_exits_4_and_is_not_done(
    funded, llmos_model_server, llmos_workspace, tmp_path
):
    outside = tmp_path / "outside.txt"
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(outside), "content": "x"}).text("I could not write it.")
    result, data = run_json(funded, "Write the outside file")
    assert result.exit_code == 4, result.output
    assert not outside.exists()
    assert not data["success"]
    assert data["error"].startswith("nothing done: refused by policy")
    assert [r["tool"] for r in data["refusals"]] == ["Write"]
    assert data["refusals"][0]["reason"] and data["refusals"][0]["rule"]
    run = kernel_for(llmos_workspace).memory.get_run(data["run_id"])
    assert run.status != "succeeded"
    assert run.trace_id is None


def test_the_human_summary_lists_the_refusal(funded, llmos_model_server, tmp_path):
    outside = tmp_path / "outside.txt"
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(outside), "content": "x"}).text("I could not write it.")
    result = funded("run", "Write the outside file")
    assert result.exit_code == 4
    assert "failed ·" in result.stdout
    summary = result.stdout[result.stdout.index("failed ·"):]
    assert "refused: Write:" in summary


def test_a_refusal_next_to_real_work_is_listed_and_the_run_is_done(
    funded, llmos_model_server, llmos_workspace, tmp_path
):
    outside = tmp_path / "outside.txt"
    inside = llmos_workspace / "inside.txt"
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(outside), "content": "x"}).tool_use(
        "Write", {"file_path": str(inside), "content": "y"}).text("Wrote inside instead.")
    result, data = run_json(funded, "Write a file")
    assert result.exit_code == 0, result.output
    assert data["success"] and inside.read_text() == "y"
    assert [r["tool"] for r in data["refusals"]] == ["Write"]
    assert data["tool_calls"] == 2


def test_a_capped_run_still_exits_3_with_its_report(funded, llmos_model_server):
    llmos_model_server.script.tool_use(
        "Bash", {"command": "ls"}, usage=Usage(20_000, 2_000)).text("never reached")
    result = funded("--set", "budget.run_cap_usd=0.25", "run", "--json", "List the files")
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["error"].startswith("stopped on its cap") and data["tool_calls"] == 1


def test_a_simulated_run_lists_its_refusals_too(funded, llmos_model_server, tmp_path):
    outside = tmp_path / "outside.txt"
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(outside), "content": "x"}).text("I could not write it.")
    result, data = run_json(funded, "--simulate", "Write the outside file")
    assert result.exit_code == 4, result.output
    assert data["mode"] == "SIMULATION"
    assert [r["tool"] for r in data["refusals"]] == ["Write"]
