"""The README's orchestration example, with the sample workspace's agents."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmos import LLMOS
from llmos.agents.plan import children_of

pytestmark = pytest.mark.cli

SAMPLE = Path(__file__).resolve().parents[2] / "workspace"
GOAL = ("Summarize sales.csv into summary.md, and create plot.py that charts the monthly "
        "totals")
SUMMARY = "Summarize sales.csv into summary.md"
PLOT = "Create plot.py that charts the monthly totals from sales.csv"


async def test_the_readme_example_uses_the_sample_agents_then_replays(
        llmos_workspace, llmos_model_server):
    shutil.copytree(SAMPLE / "agents", llmos_workspace / "agents")
    (llmos_workspace / "sales.csv").write_text("month,total\n2026-01,10\n2026-02,12\n")
    server = llmos_model_server
    server.script.tool_use("mcp__llmos__list_agents", {})
    server.script.tool_use("mcp__llmos__run_plan", {"subgoals": [
        {"id": "s1", "goal": SUMMARY, "agent": "data-analyst",
         "acceptance": "summary.md gives the total per month"},
        {"id": "s2", "goal": PLOT, "agent": "coder", "acceptance": "plot.py runs"}]})
    server.script.tool_use("Read", {"file_path": str(llmos_workspace / "sales.csv")})
    server.script.tool_use("Write", {"file_path": str(llmos_workspace / "summary.md"),
                                     "content": "# Sales\n\n- 2026-01: 10\n- 2026-02: 12\n"})
    server.script.text("summary.md written.")
    server.script.tool_use("Write", {"file_path": str(llmos_workspace / "plot.py"),
                                     "content": "print('chart')\n"})
    server.script.text("plot.py written.")
    server.script.text("summary.md and plot.py are ready.")
    settings = ["budget.run_cap_usd=0.5", "orchestrator.max_parallel=1"]
    async with LLMOS(llmos_workspace, budget_usd=5, settings=settings) as llm_os:
        assert llm_os.route(GOAL)["chosen"] == "ORCHESTRATOR"
        first = await llm_os.execute(GOAL)
        assert first.success and first.mode == "ORCHESTRATOR", first.error
        listed = server.tool_result("toolu_000_0").text
        assert all(name in listed for name in ("researcher", "coder", "data-analyst"))
        assert "data-analyst: Loads tabular data" in server.request_for_turn(0).system_text
        ran = {c["agent"]: c for c in children_of(llm_os.kernel, first.run_id)}
        assert set(ran) == {"data-analyst", "coder"}
        assert all(c["success"] and c["mode"] == "LEARNER" for c in ran.values())
        assert "You are a data analyst" in server.request_for_turn(2).system_text
        assert "You are a pragmatic software engineer" in server.request_for_turn(5).system_text
        requests = server.model_request_count

        again = await llm_os.execute(GOAL)
        assert again.success and again.mode == "FOLLOWER", again.error
        assert server.model_request_count == requests
        replayed = children_of(llm_os.kernel, again.run_id)
        assert {c["agent"] for c in replayed} == {"data-analyst", "coder"}
        assert all(c["mode"] == "FOLLOWER" and c["success"] for c in replayed)
