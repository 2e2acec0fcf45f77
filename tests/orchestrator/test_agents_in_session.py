"""An agent created by the model is used in the same session (hot reload), with its own
system prompt and tools, and a tool outside its list is refused by the gate."""

from __future__ import annotations

import pytest

from llmos import LLMOS
from llmos.agents.plan import children_of

pytestmark = pytest.mark.cli

MARKER = "You are SCRIBE: write exactly what you are asked to, nothing more."


@pytest.fixture
async def llm_os(llmos_workspace, llmos_model_server):
    settings = ["budget.run_cap_usd=0.5", "orchestrator.max_parallel=1"]
    async with LLMOS(llmos_workspace, budget_usd=5, settings=settings) as os_:
        yield os_


async def test_create_agent_then_use_it_in_the_same_session(
        llm_os, llmos_model_server, llmos_workspace):
    server = llmos_model_server
    goal = "Create note.txt containing hello"
    server.script.tool_use("mcp__llmos__create_agent", {
        "name": "scribe", "description": "Writes short files.", "tools": ["Write"],
        "prompt": MARKER})
    server.script.tool_use("mcp__llmos__run_plan", {"subgoals": [
        {"id": "n", "goal": goal, "agent": "scribe", "acceptance": "note.txt says hello"}]})
    server.script.tool_use("mcp__llmos__list_agents", {})  # the child: not in its tools
    server.script.tool_use("Write", {"file_path": str(llmos_workspace / "note.txt"),
                                     "content": "hello\n"})
    server.script.text("Wrote note.txt.")
    server.script.text("scribe wrote note.txt.")

    result = await llm_os.execute(goal, mode="ORCHESTRATOR")
    assert result.success, result.error
    assert "created" in server.tool_result("toolu_000_0").text
    assert (llmos_workspace / "agents" / "scribe.md").is_file()
    child_request = server.request_for_turn(2)
    assert MARKER in child_request.system_text  # the agent's system prompt
    builtin = [n for n in child_request.tool_names if not n.startswith("mcp__")]
    assert builtin == ["Write"]  # only its built-in tools are offered
    refused = server.tool_result("toolu_002_0").text
    assert "agent 'scribe' may use only Write" in refused
    assert (llmos_workspace / "note.txt").read_text() == "hello\n"
    [child] = children_of(llm_os.kernel, result.run_id)
    assert child["agent"] == "scribe" and child["success"] == 1
    run = llm_os.kernel.memory.get_run(child["child_run"])
    assert run.parent_run == result.run_id and run.goal == goal
    history = llm_os.kernel.db.execute(
        "SELECT action, actor, run_id FROM agent_changes").fetchall()
    assert history == [("create", f"model (ORCHESTRATOR run {result.run_id})", result.run_id)]


async def test_the_orchestrator_session_is_refused_an_unknown_agent(
        llm_os, llmos_model_server):
    server = llmos_model_server
    server.script.tool_use("mcp__llmos__run_plan", {"subgoals": [
        {"id": "x", "goal": "Create x.txt containing x", "agent": "nobody"}]})
    server.script.text("I could not run it.")
    result = await llm_os.execute("Create x.txt containing x", mode="ORCHESTRATOR")
    assert not result.success
    assert "no agent named 'nobody'" in server.tool_result("toolu_000_0").text
    assert "ran no sub-goal" in result.error


async def test_an_agents_budget_lowers_its_runs_cap(llm_os, llmos_model_server,
                                                   llmos_workspace):
    server = llmos_model_server
    (llmos_workspace / "agents" / "frugal.md").write_text(
        "---\nname: frugal\ndescription: Answers briefly.\ntools: [Read]\nbudget_usd: 0.1\n"
        "---\nAnswer in one line.\n")
    (llmos_workspace / "agents" / "plain.md").write_text(
        "---\nname: plain\ndescription: Answers.\ntools: [Read]\n---\nAnswer.\n")
    server.script.tool_use("mcp__llmos__run_plan", {"subgoals": [
        {"id": "a", "goal": "What is the capital of France?", "agent": "plain"},
        {"id": "b", "goal": "What is the capital of Spain?", "agent": "frugal"}]})
    server.script.text("Paris.")
    server.script.text("Madrid.")
    server.script.text("Both answered.")
    result = await llm_os.execute("Answer two questions", mode="ORCHESTRATOR")
    assert result.success, result.error
    plain, frugal = server.request_for_turn(1), server.request_for_turn(2)
    # the metering proxy gives a request no more output than the run's cap pays for
    assert frugal.body["max_tokens"] < plain.body["max_tokens"]
