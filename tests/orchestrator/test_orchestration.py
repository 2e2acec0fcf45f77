"""ORCHESTRATOR end to end with the real Claude Code CLI (scripted model on 127.0.0.1):
a goal with two deliverables is planned, each sub-goal is its own linked run through the
router, and the whole orchestration replays with no planning request."""

from __future__ import annotations

import pytest

from llmos import LLMOS
from llmos.testing.model_server import Usage

pytestmark = pytest.mark.cli

GOAL = "Create alpha.txt containing alpha, and write beta.txt containing beta"
SUB_A = "Create alpha.txt containing alpha"
SUB_B = "Create beta.txt containing beta"


def plan(*subgoals: dict) -> tuple[str, dict]:
    return "mcp__llmos__run_plan", {"subgoals": list(subgoals)}


def script_write(server, workspace, name: str, content: str) -> None:
    server.script.tool_use("Write", {"file_path": str(workspace / name),
                                     "content": content}, usage=Usage(1500, 60))
    server.script.text(f"Created {name}.", usage=Usage(1600, 10))


@pytest.fixture
async def llm_os(llmos_workspace, llmos_model_server):
    settings = ["budget.run_cap_usd=0.5", "orchestrator.max_parallel=1"]
    async with LLMOS(llmos_workspace, budget_usd=5, settings=settings) as os_:
        yield os_


def runs(llm_os):
    return {r.id: r for r in llm_os.kernel.memory.list_runs(limit=None)}


async def test_two_deliverables_run_as_linked_subgoals_then_replay_free(
        llm_os, llmos_model_server, llmos_workspace):
    server = llmos_model_server
    route = llm_os.route(GOAL)
    assert route["chosen"] == "ORCHESTRATOR", route
    assert "2 distinct deliverables" in route["reason"]
    server.script.tool_use(*plan(
        {"id": "a", "goal": SUB_A, "acceptance": "alpha.txt holds alpha"},
        {"id": "b", "goal": SUB_B, "acceptance": "beta.txt holds beta"}),
        usage=Usage(900, 80))
    script_write(server, llmos_workspace, "alpha.txt", "alpha\n")
    script_write(server, llmos_workspace, "beta.txt", "beta\n")
    server.script.text("Both files are written: alpha.txt and beta.txt.", usage=Usage(1200, 20))

    first = await llm_os.execute(GOAL)
    assert first.success, first.error
    assert first.mode == "ORCHESTRATOR" and first.trace_id
    assert (llmos_workspace / "alpha.txt").read_text() == "alpha\n"
    assert (llmos_workspace / "beta.txt").read_text() == "beta\n"
    assert "Both files are written" in first.output
    records = runs(llm_os)
    children = [r for r in records.values() if r.parent_run == first.run_id]
    assert sorted(c.goal for c in children) == [SUB_A, SUB_B]
    assert all(c.mode == "LEARNER" and c.success and c.trace_id for c in children)
    assert records[first.run_id].parent_run is None
    # the orchestrator's own session had no file tools: only llmos's tools
    planning = server.request_for_turn(0)
    assert planning.tool_names and all(n.startswith("mcp__llmos__") for n in planning.tool_names)
    assert "mcp__llmos__run_plan" in planning.tool_names
    assert "Write" not in planning.tool_names and "Bash" not in planning.tool_names
    requests = server.model_request_count

    again = await llm_os.execute(GOAL)
    assert again.success, again.error
    assert again.mode == "FOLLOWER" and again.matched_trace == first.trace_id
    assert server.model_request_count == requests  # no planning request, no sub-goal request
    assert again.cost_usd == 0 and again.model_requests == 0
    replayed = [r for r in runs(llm_os).values() if r.parent_run == again.run_id]
    assert sorted(r.goal for r in replayed) == [SUB_A, SUB_B]
    assert all(r.mode == "FOLLOWER" and r.success for r in replayed)


async def test_known_subgoal_replays_and_new_one_is_learned(
        llm_os, llmos_model_server, llmos_workspace):
    server = llmos_model_server
    script_write(server, llmos_workspace, "alpha.txt", "alpha\n")
    known = await llm_os.execute(SUB_A)
    assert known.success and known.mode == "LEARNER", known.error
    goal = "Create alpha.txt containing alpha, and create gamma.txt containing gamma"
    server.script.tool_use(*plan({"id": "a", "goal": SUB_A},
                                 {"id": "g", "goal": "Create gamma.txt containing gamma"}))
    planning_turn = len(server.script) - 1
    script_write(server, llmos_workspace, "gamma.txt", "gamma\n")
    server.script.text("alpha.txt was already known; gamma.txt is new.")

    result = await llm_os.execute(goal)
    assert result.success, result.error
    assert result.mode == "ORCHESTRATOR"
    # the known goal was offered to the planner by its wording
    assert SUB_A in server.request_for_turn(planning_turn).system_text
    children = {r.goal: r for r in runs(llm_os).values() if r.parent_run == result.run_id}
    assert children[SUB_A].mode == "FOLLOWER" and children[SUB_A].cost_usd == 0
    assert children["Create gamma.txt containing gamma"].mode == "LEARNER"
    assert children["Create gamma.txt containing gamma"].cost_usd > 0
    assert (llmos_workspace / "gamma.txt").read_text() == "gamma\n"
    assert server.remaining_turns == 0


async def test_a_failed_subgoal_fails_the_orchestration_and_keeps_no_trace(
        llm_os, llmos_model_server, llmos_workspace):
    server = llmos_model_server
    # an agent whose budget pays for no model request: its sub-goal fails before any
    (llmos_workspace / "agents").mkdir(exist_ok=True)
    (llmos_workspace / "agents" / "tiny.md").write_text(
        "---\nname: tiny\ndescription: Too poor.\ntools: [Write]\nbudget_usd: 0.0001\n"
        "---\nWrite files.\n")
    server.script.tool_use(*plan({"id": "a", "goal": SUB_A, "agent": "tiny"},
                                 {"id": "b", "goal": SUB_B, "depends_on": ["a"]}))
    server.script.text("The first sub-goal failed.")
    result = await llm_os.execute(GOAL)
    assert not result.success and result.trace_id is None
    assert "sub-goals failed" in (result.error or "")
    report = server.tool_result("toolu_000_0").text
    assert "stopped on its cap" in report
    assert "depends on a, which did not succeed" in report
    assert server.remaining_turns == 0 and server.exhausted_count == 0
    assert not (llmos_workspace / "beta.txt").exists()


async def test_independent_subgoals_run_concurrently(llmos_workspace, llmos_model_server):
    server = llmos_model_server
    settings = ["budget.run_cap_usd=0.5", "orchestrator.max_parallel=2"]
    questions = ["What is the boiling point of water at sea level?",
                 "What is the capital of France?"]
    server.script.tool_use(*plan({"id": "a", "goal": questions[0]},
                                 {"id": "b", "goal": questions[1]}))
    server.script.text("Noted.")  # each sub-goal answers in one turn, whichever asks first
    server.script.text("Noted.")
    server.script.text("Both answered.")
    async with LLMOS(llmos_workspace, budget_usd=5, settings=settings) as llm_os:
        events = llm_os.kernel.bus.subscribe("run.*")
        result = await llm_os.execute(" and ".join(questions), mode="ORCHESTRATOR")
        assert result.success, result.error
        seen = []
        while not events.queue.empty():
            seen.append(events.queue.get_nowait())
    order = [e.topic for e in seen if e.data.get("parent_run") == result.run_id]
    # both sub-goals started before either finished: they ran side by side
    assert order == ["run.started", "run.started", "run.finished", "run.finished"], order


async def test_concurrency_is_limited_by_the_balance(llmos_workspace, llmos_model_server):
    server = llmos_model_server
    questions = ["What is the boiling point of water at sea level?",
                 "What is the capital of France?"]
    server.script.tool_use(*plan({"id": "a", "goal": questions[0]},
                                 {"id": "b", "goal": questions[1]}))
    server.script.text("Noted.")
    server.script.text("Noted.")
    server.script.text("Both answered.")
    # the balance covers one paid run at its cap at a time (the planner holds none while
    # its plan runs)
    async with LLMOS(llmos_workspace, budget_usd=0.9, settings=["budget.run_cap_usd=0.5"]
                     ) as llm_os:
        events = llm_os.kernel.bus.subscribe("run.*")
        result = await llm_os.execute(" and ".join(questions), mode="ORCHESTRATOR")
        assert result.success, result.error
        seen = []
        while not events.queue.empty():
            seen.append(events.queue.get_nowait())
    order = [e.topic for e in seen if e.data.get("parent_run") == result.run_id]
    assert order == ["run.started", "run.finished", "run.started", "run.finished"], order
