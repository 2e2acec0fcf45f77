"""LEARNER end to end: `llmos run` drives the real Claude Code CLI through claude-agent-sdk,
against the scripted Messages-API server on 127.0.0.1. Every tool call passes the gate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

import llmos
from llmos.kernel import Kernel
from llmos.testing.model_server import Usage

pytestmark = pytest.mark.cli

LLMOS = str(Path(sys.executable).parent / "llmos")


@pytest.fixture
def llmos_settings():
    return ["budget.run_cap_usd=0.5"]


@pytest.fixture
def funded(llmos_cli):
    assert llmos_cli("budget", "set", "5").exit_code == 0
    return llmos_cli


def run_json(cli, goal):
    result = cli("run", "--json", goal)
    data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result, data


def kernel_for(workspace) -> Kernel:
    return Kernel(workspace, load_entry_points=False)


def test_a_run_writes_a_file_runs_a_command_and_is_recorded(
    funded, llmos_model_server, llmos_workspace
):
    target = llmos_workspace / "hello.txt"
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(target), "content": "hello from llmos\n"},
        usage=Usage(1200, 40),
    ).tool_use("Bash", {"command": "cat hello.txt"}, usage=Usage(1500, 30)).text(
        "Wrote hello.txt and printed it.", usage=Usage(1800, 20)
    )
    result, data = run_json(funded, "Create hello.txt saying hello and show it")
    assert result.exit_code == 0, result.output
    assert target.read_text() == "hello from llmos\n"
    assert "hello from llmos" in llmos_model_server.tool_result("toolu_001_0").text
    assert data["success"] and data["mode"] == "LEARNER"
    assert (data["input_tokens"], data["output_tokens"]) == (4500, 90)
    assert data["cost_usd"] > 0 and data["tool_calls"] == 2
    assert data["output"] == "Wrote hello.txt and printed it."
    assert set(data) >= {"run_id", "goal", "mode", "success", "cost_usd", "input_tokens",
                         "output_tokens", "duration_s", "tool_calls", "output"}

    kernel = kernel_for(llmos_workspace)
    run = kernel.memory.get_run(data["run_id"])
    assert run.status == "succeeded" and run.cost_usd == pytest.approx(data["cost_usd"])
    steps = kernel.memory.run_steps(data["run_id"])
    assert [s.tool for s in steps] == ["Write", "Bash"]
    assert steps[1].input == {"command": "cat hello.txt"}
    # one reservation and one commit per model request, at the real cost
    commits = [e for e in kernel.economy.history() if e["kind"] == "commit"
               and e["run_id"] == data["run_id"]]
    assert [(e["input_tokens"], e["output_tokens"]) for e in reversed(commits)] == [
        (1200, 40), (1500, 30), (1800, 20)]
    assert data["model_requests"] == 3
    assert sum(e["amount_usd"] for e in commits) == pytest.approx(data["cost_usd"], abs=1e-6)
    # claude-opus-5 at $4 / $20 per million tokens, as Claude Code prices it
    assert data["cost_usd"] == pytest.approx((4500 * 4 + 90 * 20) / 1e6)
    assert kernel.economy.status()["reserved_usd"] == 0
    # budget history shows the run
    shown = json.loads(funded("budget", "history", "--json").stdout)
    assert data["run_id"] in {entry["run_id"] for entry in shown}


class EchoInput(BaseModel):
    text: str


class EchoPlugin:
    def __init__(self):
        self.calls = []

    @llmos.hookimpl
    def llmos_register_tools(self, register):
        async def shout(args: EchoInput, context):
            self.calls.append((args.text, context.run_id))
            return args.text.upper()

        register(llmos.Tool("shout", "Upper-case a text", EchoInput, shout,
                            llmos.ToolMeta("read-only")))

    @llmos.hookimpl
    def llmos_user_prompt_submit(self, goal, context):
        return f"Remember: the user likes capital letters. (goal was: {goal})"


async def test_a_plugin_tool_is_offered_to_the_model_and_runs_through_the_gate(
    llmos_model_server, llmos_workspace
):
    plugin = EchoPlugin()
    llmos_model_server.script.tool_use("mcp__llmos__shout", {"text": "quiet"}).tool_use(
        "mcp__llmos__shout", {"wrong": 1}
    ).text("Shouted.")
    from llmos.runner import execute

    async with Kernel(llmos_workspace, plugins={"echo": plugin}, load_entry_points=False,
                      interactive=False) as kernel:
        kernel.economy.set_balance(5)
        result = await execute(kernel, "Shout quiet")
    assert result.success, result.error
    first = llmos_model_server.conversation_requests[0]
    assert "mcp__llmos__shout" in first.tool_names
    assert "the user likes capital letters" in json.dumps(first.body["messages"])
    assert plugin.calls == [("quiet", result.run_id)]
    assert llmos_model_server.tool_result("toolu_000_0").text == "QUIET"
    invalid = llmos_model_server.tool_result("toolu_001_0")
    assert invalid.is_error


class DenyRm:
    @llmos.hookimpl
    def llmos_pre_tool_use(self, call, context):
        if call.tool == "Write" and call.input.get("file_path", "").endswith("secret.txt"):
            return llmos.Decision.deny("secret.txt is off limits", "test.no-secrets")
        return None


async def test_a_denial_reaches_the_model_as_the_tools_error(llmos_model_server, llmos_workspace):
    target = llmos_workspace / "secret.txt"
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(target), "content": "x"}
    ).text("I was not allowed to write it.")
    from llmos.runner import execute

    async with Kernel(llmos_workspace, plugins={"deny": DenyRm()}, load_entry_points=False,
                      interactive=False) as kernel:
        kernel.economy.set_balance(5)
        result = await execute(kernel, "Write secret.txt")
        steps = kernel.memory.run_steps(result.run_id)
    assert not target.exists()
    seen = llmos_model_server.tool_result("toolu_000_0")
    assert seen.is_error and "secret.txt is off limits" in seen.text
    assert "test.no-secrets" in seen.text
    assert steps[0].outcome.is_error


def test_a_run_the_balance_cannot_cover_is_refused_before_any_model_request(
    llmos_cli, llmos_model_server
):
    llmos_cli("budget", "set", "0.10")
    llmos_model_server.script.text("never sent")
    result = llmos_cli("run", "Do something expensive")
    assert result.exit_code == 3
    assert "low battery" in result.output and "llmos budget set" in result.output
    assert llmos_model_server.model_request_count == 0


def test_no_credentials_is_a_clear_usage_error(funded, monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
                 "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = funded("run", "Anything")
    assert result.exit_code == 2
    assert "ANTHROPIC_API_KEY" in result.output and "ANTHROPIC_BASE_URL" in result.output


def test_the_watchdog_ends_a_stalled_run(funded, llmos_model_server, llmos_workspace):
    llmos_model_server.script.hang(mid_stream=True)
    result = funded("--set", "cortex.timeout_s=3", "run", "--json", "Stall")
    data = json.loads(result.stdout)
    assert result.exit_code == 1, result.output
    assert data["error"] == "LEARNER run did not finish within 3 s (watchdog deadline)"
    assert kernel_for(llmos_workspace).economy.status()["reserved_usd"] == 0


def test_a_killed_run_is_recorded_as_interrupted(llmos_model_server, llmos_workspace):
    llmos_model_server.script.tool_use("Bash", {"command": "ls"}).hang(mid_stream=True)
    env = {**os.environ, "LLMOS_KERNEL__INTERACTIVE": "never"}
    subprocess.run([LLMOS, "-w", str(llmos_workspace), "budget", "set", "5"], check=True,
                   env=env)
    proc = subprocess.Popen([LLMOS, "-w", str(llmos_workspace), "run", "--json", "List"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while len(llmos_model_server.conversation_requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(llmos_model_server.conversation_requests) == 2
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    runs = kernel_for(llmos_workspace).memory.list_runs()
    assert [r.status for r in runs] == ["interrupted"]
    assert [s.tool for s in kernel_for(llmos_workspace).memory.run_steps(runs[0].id)] == ["Bash"]
