"""Workers on one PostgreSQL: goals submitted once are run exactly once, a killed worker's
goal is finished by another, and the budget holds.

Real ``llmos worker`` processes, a real PostgreSQL (memory, ledger and the DBOS system
database), the real Claude Code CLI against the scripted model server for learner runs.
"""

from __future__ import annotations

import signal

import pytest

from llmos.durable import engine
from tests.durable.helpers import lines, llmos, llmos_json, wait_for

pytestmark = pytest.mark.cli

TICK = "Append a tick line to ticks.txt"


def _learn(workspace, server, goal: str, *commands: str) -> dict:
    for command in commands:
        server.script.tool_use("Bash", {"command": command})
    server.script.text("Done.")
    learned = llmos_json(workspace, "run", goal)
    assert learned["success"] and learned["mode"] == "LEARNER", learned
    return learned


def _workflows(url: str) -> list:
    client = engine.client(url)
    try:
        return client.list_workflows()
    finally:
        client.destroy()


def _ledger_balances(workspace) -> list[float]:
    return [e["balance_usd"]
            for e in llmos_json(workspace, "budget", "history", "--limit", "5000")]


def _finished(workspace, run_ids) -> bool:
    runs = {r["id"]: r for r in llmos_json(workspace, "runs", "list", "--limit", "1000")}
    return all(runs.get(i, {}).get("status") in ("succeeded", "failed") for i in run_ids)


def test_four_workers_run_a_hundred_goals_each_exactly_once(
        llmos_model_server, shared_workspace, workers, llmos_postgres_db):
    from llmos.api import submit

    ws = shared_workspace
    workers.workspace = ws
    llmos(ws, "budget", "set", "5")
    _learn(ws, llmos_model_server, TICK, "echo tick >> ticks.txt")
    assert lines(ws / "ticks.txt") == ["tick"]
    learners = [f"Append learner line {n} to learned.txt" for n in range(4)]
    for n in range(len(learners)):
        llmos_model_server.script.tool_use("Bash", {"command": f"echo {n} >> learned.txt"})
        llmos_model_server.script.text("Done.")
    # a tight wallet: each model request reserves its worst case (about $0.15 here), so
    # learner runs racing on four workers cannot all be covered at once
    llmos(ws, "budget", "set", "0.35")
    for _ in range(4):
        workers.start("--concurrency", "1")

    goals = [TICK] * 96 + learners
    run_ids = [submit(goal, workspace=ws, budget_usd=0.3 if goal in learners else None)
               for goal in goals]

    assert len(set(run_ids)) == 100
    assert wait_for(lambda: _finished(ws, run_ids), 600, every=2), workers.output()
    for proc in workers.procs:
        assert workers.stop(proc) == 0
    runs = {r["id"]: r for r in llmos_json(ws, "runs", "list", "--limit", "1000")}
    assert len(runs) == 101  # the learning run and one per submitted goal, no more
    replays = [i for i, g in zip(run_ids, goals, strict=True) if g == TICK]
    done = [i for i in replays if runs[i]["status"] == "succeeded"]
    # on a machine this loaded a sandboxed command may fail: that run fails and says why
    # (its hand-over to the model is refused by the tight wallet)
    failed = [(runs[i]["status"], runs[i]["error"]) for i in replays if i not in done]
    assert len(done) >= 90 and all(status == "failed" and error for status, error in failed), \
        failed
    assert {runs[i]["mode"] for i in replays} == {"FOLLOWER"}
    assert sum(runs[i]["cost_usd"] for i in replays) == 0
    # each replay that succeeded appended its line once: a goal run twice would show here
    assert lines(ws / "ticks.txt") == ["tick"] * (1 + len(done))
    assert all(runs[i]["step_count"] == 1 for i in done)
    # each learner run succeeded within its own budget or was refused for want of budget;
    # the ledger holds exactly what the runs cost and never went below zero
    for i in run_ids[96:]:
        run = runs[i]
        assert run["cost_usd"] <= 0.3
        assert run["status"] == "succeeded" or any(
            word in (run["error"] or "") for word in ("low battery", "cap")), run
    status = llmos_json(ws, "budget")
    spent = sum(runs[i]["cost_usd"] for i in run_ids)
    assert status["balance_usd"] == pytest.approx(0.35 - spent, abs=1e-6)
    assert status["balance_usd"] >= 0
    assert not [e for e in _ledger_balances(ws) if e < 0]
    flows = {w.workflow_id: w for w in _workflows(llmos_postgres_db)}
    assert all(flows[i].status == "SUCCESS" for i in run_ids)
    assert len({flows[i].executor_id for i in run_ids}) >= 2  # the goals were shared out
    # readable from anywhere: the run log is the shared database's
    shown = llmos_json(ws, "runs", "show", replays[0])
    assert shown["steps"][0]["input"]["command"] == "echo tick >> ticks.txt"


def test_a_killed_workers_goal_is_finished_by_another_without_repeating_a_step(
        llmos_model_server, shared_workspace, workers, llmos_postgres_db):
    from llmos.api import submit

    ws = shared_workspace
    workers.workspace = ws
    goal = "Append first then second to effects.txt"
    llmos(ws, "budget", "set", "5")
    _learn(ws, llmos_model_server, goal, "echo first >> effects.txt", "sleep 20",
           "echo second >> effects.txt")
    (ws / "effects.txt").unlink()
    first = workers.start("--recover-after", "2")
    run_id = submit(goal, workspace=ws)
    from llmos.kernel import Kernel
    from llmos.memory.base import RunNotFound

    memory = Kernel(ws).memory  # the shared run log, read as any machine would

    def step_count() -> int:
        try:
            return len(memory.run_steps(run_id))
        except RunNotFound:
            return 0

    # killed in the sleep, once the first step is done (ran and recorded)
    assert wait_for(lambda: step_count() >= 1, 120, every=0.1), workers.output()
    workers.stop(first, signal.SIGKILL)
    assert lines(ws / "effects.txt") == ["first"]
    second = workers.start("--recover-after", "2")

    assert wait_for(lambda: _finished(ws, [run_id]), 180, every=1), workers.output()

    shown = llmos_json(ws, "runs", "show", run_id)
    assert shown["status"] == "succeeded" and shown["mode"] == "FOLLOWER"
    assert lines(ws / "effects.txt") == ["first", "second"], "a completed step ran again"
    assert [s["input"]["command"] for s in shown["steps"]] == [
        "echo first >> effects.txt", "sleep 20", "echo second >> effects.txt"]
    flow = next(w for w in _workflows(llmos_postgres_db) if w.workflow_id == run_id)
    assert flow.status == "SUCCESS" and flow.executor_id.startswith("worker-")
    assert workers.stop(second) == 0
    assert "resumed" in second.log.read_text()


def test_on_one_machine_submit_and_workers_share_the_workspaces_sqlite(
        llmos_model_server, llmos_workspace, workers):
    ws = llmos_workspace
    workers.workspace = ws
    llmos(ws, "budget", "set", "5")
    _learn(ws, llmos_model_server, TICK, "echo tick >> ticks.txt")
    for _ in range(2):
        workers.start()
    run_ids = [llmos(ws, "submit", TICK).stdout.strip() for _ in range(6)]
    refused = llmos(ws, "submit", "Write a poem about the sea", "--budget", "9").stdout.strip()

    assert wait_for(lambda: _finished(ws, [*run_ids, refused]), 300, every=1), \
        workers.output()
    for proc in workers.procs:
        assert workers.stop(proc) == 0
    assert "stopped" in workers.output()
    runs = {r["id"]: r for r in llmos_json(ws, "runs", "list", "--limit", "100")}
    assert len(runs) == 8
    assert all(runs[i]["status"] == "succeeded" and runs[i]["mode"] == "FOLLOWER"
               for i in run_ids)
    assert lines(ws / "ticks.txt") == ["tick"] * 7
    # a goal the budget cannot cover is an ordinary failed run that says why
    assert runs[refused]["status"] == "failed"
    assert "low battery" in runs[refused]["error"]
    assert (ws / ".llmos" / "durable.sqlite").is_file()


def test_sigterm_lets_the_goal_in_progress_finish(llmos_model_server, llmos_workspace,
                                                  workers):
    ws = llmos_workspace
    workers.workspace = ws
    goal = "Append first then second to effects.txt"
    llmos(ws, "budget", "set", "5")
    _learn(ws, llmos_model_server, goal, "echo first >> effects.txt", "sleep 3",
           "echo second >> effects.txt")
    (ws / "effects.txt").unlink()
    worker = workers.start("--grace", "60")
    run_id = llmos(ws, "submit", goal).stdout.strip()
    assert wait_for(lambda: lines(ws / "effects.txt") == ["first"], 120), workers.output()

    assert workers.stop(worker, signal.SIGTERM, timeout=90) == 0

    assert lines(ws / "effects.txt") == ["first", "second"]
    shown = llmos_json(ws, "runs", "show", run_id)
    assert shown["status"] == "succeeded"
    log = worker.log.read_text()
    assert "stopping (signal 15)" in log and "stopped" in log and "left unfinished" not in log
