"""The rough edges of issue 19, item 7, that are the run/tools/budget/route commands'."""

from __future__ import annotations

import json

import pytest

from llmos.kernel import Kernel
from llmos.testing.model_server import Usage


@pytest.mark.parametrize("amount", ["-5", "-0.5", "-1e3"])
def test_a_negative_budget_is_refused_with_what_is_allowed(llmos_cli, amount):
    result = llmos_cli("budget", "set", amount)
    assert result.exit_code == 2
    assert "No such option" not in result.output
    assert "the budget must be ≥ 0" in result.output and amount in result.output


def test_a_route_empty_goal_is_rejected_like_run(llmos_cli):
    for goal in ("", "   ", "\n\t"):
        for command in ("run", "route"):
            result = llmos_cli(command, goal)
            assert result.exit_code == 2, (command, goal, result.output)
            assert "the goal is empty" in result.output


def test_route_explains_an_unaffordable_mode_and_exits_0(llmos_cli):
    result = llmos_cli("route", "Write a poem about the sea")
    assert result.exit_code == 0, result.output
    assert "low battery" not in result.stdout.splitlines()[-1]
    assert "LEARNER" in result.stdout
    assert "unaffordable now: a run may cost up to $" in result.stdout
    data = json.loads(llmos_cli("route", "--json", "Write a poem about the sea").stdout)
    assert data["chosen"] is None and data["reason"].startswith("nothing can run now")
    learner = next(b for b in data["bids"] if b["mode"] == "LEARNER")
    assert learner["paid"] and not learner["affordable"]
    assert "budget.run_cap_usd" in learner["unaffordable"]
    follower = next(b for b in data["bids"] if b["mode"] == "FOLLOWER")
    assert follower["affordable"] and follower["unaffordable"] is None


def test_route_with_a_balance_chooses_and_every_bid_is_affordable(llmos_cli):
    llmos_cli("budget", "set", "5")
    data = json.loads(llmos_cli("route", "--json", "Write a poem about the sea").stdout)
    assert data["chosen"] == "LEARNER" and data["available_usd"] == 5
    assert all(b["affordable"] for b in data["bids"])


@pytest.fixture
def funded(llmos_cli, llmos_model_server):
    assert llmos_cli("--set", "budget.run_cap_usd=0.5", "budget", "set", "5").exit_code == 0
    llmos_model_server.script.text("Read it.", usage=Usage(100, 10))
    return llmos_cli


def test_a_goal_over_128_kib_can_come_from_stdin(funded, llmos_model_server):
    goal = "Summarize this: " + "word " * 40_000  # 200 KB: too long for one argument
    result = funded("--set", "budget.run_cap_usd=0.5", "run", "--json", "-", input=goal)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["goal"] == goal.strip()
    assert "word word" in llmos_model_server.conversation_requests[0].user_text()


def test_a_goal_can_come_from_a_file(funded, llmos_model_server, tmp_path):
    path = tmp_path / "goal.md"
    path.write_text("Describe the café\n", encoding="utf-8")
    result = funded("--set", "budget.run_cap_usd=0.5", "run", "--json", "--file", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["goal"] == "Describe the café"


def test_a_goal_file_that_is_not_utf8_is_a_clear_error(llmos_cli, tmp_path):
    path = tmp_path / "goal.txt"
    path.write_bytes(b"caf\xe9 au lait")
    result = llmos_cli("run", "--file", str(path))
    assert result.exit_code == 2
    assert "is not UTF-8" in result.output and "Traceback" not in result.output
    result = llmos_cli("run", "-", input=b"\xff\xfe")
    assert result.exit_code == 2 and "from stdin is not UTF-8" in result.output


def test_goal_sources_are_exclusive_and_bounded(llmos_cli, tmp_path):
    path = tmp_path / "goal.txt"
    path.write_text("x")
    assert "not both" in llmos_cli("run", "--file", str(path), "also").output
    assert "say what you want done" in llmos_cli("run").output
    missing = llmos_cli("run", "--file", str(tmp_path / "missing.txt"))
    assert missing.exit_code == 2 and "cannot read the goal" in missing.output
    big = llmos_cli("run", "-", input="x" * ((1 << 20) + 1))
    assert big.exit_code == 2 and "over 1 MiB" in big.output


def test_tools_call_rejects_an_unknown_field_naming_the_fields(llmos_cli, llmos_workspace):
    result = llmos_cli("tools", "call", "Write", "--input",
                       json.dumps({"file_path": "a.txt", "content": "x", "contnet": "y"}))
    assert result.exit_code == 2
    assert "unknown field 'contnet'" in result.output
    assert "content, file_path" in result.output
    assert not (llmos_workspace / "a.txt").exists()


def test_every_tool_rejects_unknown_fields_from_the_cli(llmos_cli):
    tools = json.loads(llmos_cli("tools", "--json").stdout)
    assert tools
    for tool in tools:
        result = llmos_cli("tools", "call", tool["name"], "--input",
                           json.dumps({"no_such_field_xyz": 1}), "--json")
        assert result.exit_code == 2, (tool["name"], result.output)
        error = json.loads(result.stdout)["error"]
        assert "unknown field 'no_such_field_xyz'" in error["message"], tool["name"]


def test_invalid_tool_input_with_json_prints_a_json_error(llmos_cli):
    result = llmos_cli("tools", "call", "Write", "--input", json.dumps({"content": 1}),
                       "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "invalid_input" and "file_path" in error["message"]


async def test_a_replay_of_a_claude_code_call_keeps_fields_claude_code_added(
    llmos_workspace
):
    """Replays pass the same gate, but a recorded Bash call carries fields Claude Code
    adds over time (its replay tool ignores them); a model or CLI call does not."""
    from llmos.calls import ToolCall
    from llmos.tools import ToolInputError

    async with Kernel(llmos_workspace, load_entry_points=False, interactive=False) as kernel:
        data = {"command": "echo hi", "dangerouslyDisableSandbox": False}
        replayed = await kernel.gateway.call(ToolCall("Bash", data, source="replay"),
                                             kernel.context())
        assert not replayed.is_error and "hi" in replayed.text
        with pytest.raises(ToolInputError, match="dangerouslyDisableSandbox"):
            await kernel.gateway.call(ToolCall("Bash", data, source="model"),
                                      kernel.context())
