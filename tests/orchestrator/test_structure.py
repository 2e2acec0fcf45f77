"""How ORCHESTRATOR decides: the goal's structure (distinct deliverables), not keywords;
goals that look complex but are not stay with the other modes, and `llmos route` says why."""

from __future__ import annotations

import json

import pytest

from llmos.agents.plan import RunPlanInput, _parallel, check_plan
from llmos.agents.structure import analyze_structure
from llmos.tools import ToolError

COMPLEX = [
    ("Research quantum error correction and write a report to report.md", 2),
    ("Create primes.py printing the first 10 primes, and write fib.py printing the first "
     "10 Fibonacci numbers", 2),
    ("Analyze sales.csv, plot the monthly totals to chart.png and write a report in "
     "report.md", 3),
    ("Summarize sales.csv into summary.md, and create plot.py that charts the monthly "
     "totals", 2),
    ("Create notes.txt containing the meeting notes; then save the number 42 in answer.txt",
     2),
]

LOOKS_COMPLEX = [
    # the original system's substring count made this one an orchestration
    ("Expand the research notes", "one deliverable"),
    ("Create primes.py printing the first 10 primes and run it", "'run' checks or shows"),
    ("Create hello.txt containing hi and then show it", "'show' checks or shows"),
    ("Search and replace foo with bar in notes.txt", "one deliverable"),
    ("Read a.txt and b.txt", "no deliverable"),
    ("Create a.txt and b.txt", "one deliverable"),
    ("Create notes.md and add a title to notes.md", "the same artifact"),
    ("Write a summary of research and development costs", "one deliverable"),
    ("Fetch https://example.com/report and summarize it", "points back"),
    ("Run the tests and report the results", "checks or shows"),
    ("Create report.md, and then update report.md with the totals", "the same artifact"),
]


@pytest.mark.parametrize(("goal", "deliverables"), COMPLEX)
def test_several_distinct_deliverables_are_complex(goal, deliverables):
    structure = analyze_structure(goal)
    assert structure.complex
    assert len(structure.deliverables) == deliverables
    assert structure.explain().startswith(f"{deliverables} distinct deliverables")


@pytest.mark.parametrize(("goal", "why"), LOOKS_COMPLEX)
def test_goals_that_look_complex_but_are_not(goal, why):
    structure = analyze_structure(goal)
    assert not structure.complex, structure.explain()
    assert why in structure.explain()


@pytest.fixture
def llmos_settings():
    return ["budget.run_cap_usd=0.5"]


def test_llmos_route_explains_the_decision(llmos_cli):
    assert llmos_cli("budget", "set", "5").exit_code == 0
    chosen = json.loads(llmos_cli("route", "--json", COMPLEX[0][0]).stdout)
    assert chosen["chosen"] == "ORCHESTRATOR"
    assert "2 distinct deliverables" in chosen["reason"]
    simple = json.loads(llmos_cli("route", "--json", LOOKS_COMPLEX[1][0]).stdout)
    assert simple["chosen"] == "LEARNER"
    [bid] = [b for b in simple["bids"] if b["mode"] == "ORCHESTRATOR"]
    assert bid["confidence"] == 0 and "'run' checks or shows" in bid["reason"]
    off = json.loads(llmos_cli("--set", "orchestrator.enabled=false", "route", "--json",
                               COMPLEX[0][0]).stdout)
    assert off["chosen"] == "LEARNER"


def plan(*subgoals):
    return RunPlanInput.model_validate({"subgoals": list(subgoals)})


@pytest.mark.parametrize(("subgoals", "problem"), [
    ([{"id": "a", "goal": "x"}, {"id": "a", "goal": "y"}], "repeated: a"),
    ([{"id": "a", "goal": "x", "depends_on": ["b"]}], "unknown ids: b"),
    ([{"id": "a", "goal": "x", "depends_on": ["a"]}], "depends on itself"),
    ([{"id": "a", "goal": "x", "depends_on": ["b"]}, {"id": "b", "goal": "y",
                                                      "depends_on": ["a"]}], "cycle"),
    ([{"id": "a", "goal": "x", "agent": "nobody"}], "no agent named 'nobody'"),
])
async def test_a_plan_that_cannot_run_is_refused(llmos_kernel, subgoals, problem):
    with pytest.raises(ToolError, match=problem):
        check_plan(plan(*subgoals), llmos_kernel)


async def test_concurrency_stays_within_the_balance(llmos_kernel):
    llmos_kernel.economy.set_balance(10, "test")
    assert _parallel(llmos_kernel) == 3  # orchestrator.max_parallel
    llmos_kernel.economy.set_balance(1.2, "test")  # covers two runs at their 0.5 cap
    assert _parallel(llmos_kernel) == 2


async def test_run_plan_is_only_the_orchestrators(llmos_kernel):
    result = await llmos_kernel.call_tool(
        "run_plan", {"subgoals": [{"id": "a", "goal": "Create a.txt containing a"}]},
        context=llmos_kernel.context(run_id="r", mode="LEARNER"), source="model")
    assert result.is_error and result.decision.rule == "orchestrator.only"
    assert not (llmos_kernel.workspace.root / "a.txt").exists()
