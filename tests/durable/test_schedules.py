"""Schedules: fired by the workers' engine once per due time, however many workers run;
bad cron expressions are refused with a clear message."""

from __future__ import annotations

import pytest

from llmos.durable import engine
from llmos.durable.workflows import run_id_for
from tests.durable.helpers import lines, llmos, llmos_json, wait_for

pytestmark = pytest.mark.cli

TICK = "Append a tick line to ticks.txt"


def _scheduled(url: str, schedule_id: str) -> list:
    client = engine.client(url)
    try:
        return [w for w in client.list_workflows()
                if w.workflow_id.startswith(f"sched-{schedule_id}-")]
    finally:
        client.destroy()


def test_a_scheduled_goal_fires_once_per_due_time_with_three_workers(
        llmos_model_server, shared_workspace, workers, llmos_postgres_db):
    ws = shared_workspace
    workers.workspace = ws
    llmos(ws, "budget", "set", "5")
    llmos_model_server.script.tool_use("Bash", {"command": "echo tick >> ticks.txt"})
    llmos_model_server.script.text("Done.")
    assert llmos_json(ws, "run", TICK)["mode"] == "LEARNER"
    for _ in range(3):
        workers.start("--concurrency", "2")
    made = llmos_json(ws, "schedule", "add", "*/2 * * * * *", TICK, "--budget", "0.2")
    assert made["status"] == "active" and made["cron"] == "*/2 * * * * *"

    assert wait_for(lambda: len([w for w in _scheduled(llmos_postgres_db, made["id"])
                                 if w.status == "SUCCESS"]) >= 4, 240, every=1), \
        workers.output()
    paused = llmos(ws, "schedule", "pause", made["id"]).stdout
    assert "paused" in paused
    assert wait_for(lambda: all(w.status == "SUCCESS"
                                for w in _scheduled(llmos_postgres_db, made["id"])), 120)
    for proc in workers.procs:
        assert workers.stop(proc) == 0

    fired = _scheduled(llmos_postgres_db, made["id"])
    due_times = [w.workflow_id.removeprefix(f"sched-{made['id']}-") for w in fired]
    assert len(due_times) == len(set(due_times)) >= 4
    runs = {r["id"]: r for r in llmos_json(ws, "runs", "list", "--limit", "1000")}
    scheduled = [runs[run_id_for(w.workflow_id)] for w in fired]
    # one ordinary run record per due time, a replay that cost nothing, one tick each
    assert len(runs) == 1 + len(fired)
    assert all(r["status"] == "succeeded" and r["mode"] == "FOLLOWER" and r["cost_usd"] == 0
               for r in scheduled)
    assert lines(ws / "ticks.txt") == ["tick"] * (1 + len(fired))
    listed = llmos_json(ws, "schedule", "list")
    assert [(s["id"], s["status"]) for s in listed] == [(made["id"], "paused")]
    assert llmos(ws, "schedule", "rm", made["id"]).returncode == 0
    assert llmos_json(ws, "schedule", "list") == []


def test_bad_cron_and_unknown_schedules_get_a_clear_message(llmos_workspace):
    bad = llmos(llmos_workspace, "schedule", "add", "every day", "Say hi", check=False)
    assert bad.returncode == 2
    assert "'every day' is not a cron expression" in bad.stderr
    assert "Traceback" not in bad.stderr
    unknown = llmos(llmos_workspace, "schedule", "pause", "nosuch", check=False)
    assert unknown.returncode == 2 and "no schedule 'nosuch'" in unknown.stderr
    empty = llmos(llmos_workspace, "submit", "   ", check=False)
    assert empty.returncode == 2 and "the goal is empty" in empty.stderr
    budget = llmos(llmos_workspace, "submit", "Say hi", "--budget", "0", check=False)
    assert budget.returncode == 2 and "--budget must be a positive" in budget.stderr


def test_schedules_are_kept_paused_resumed_and_removed_on_one_machine(llmos_workspace):
    ws = llmos_workspace
    made = llmos_json(ws, "schedule", "add", "0   3 * * *", "Rotate the logs", "--budget", "0.2")
    assert made["cron"] == "0 3 * * *" and made["budget_usd"] == 0.2
    assert made["goal"] == "Rotate the logs" and made["status"] == "active"
    assert "is paused" in llmos(ws, "schedule", "pause", made["id"]).stdout
    assert llmos_json(ws, "schedule", "list")[0]["status"] == "paused"
    assert "is active" in llmos(ws, "schedule", "resume", made["id"]).stdout
    table = llmos(ws, "schedule", "list").stdout
    assert made["id"] in table and "Rotate the logs" in table
    assert llmos(ws, "schedule", "rm", made["id"]).returncode == 0
    assert llmos(ws, "schedule", "list").stdout.strip() == "no schedules"
    gone = llmos(ws, "schedule", "rm", made["id"], check=False)
    assert gone.returncode == 2 and f"no schedule '{made['id']}'" in gone.stderr


def test_an_unreachable_database_is_named_without_its_password(llmos_workspace):
    dead = {"LLMOS_MEMORY__BACKEND": "postgres",
            "LLMOS_DATABASE_URL": "postgresql://llmos:hunter2pw@127.0.0.1:1/llmos"}
    for args in (("submit", "Say hi"), ("schedule", "list"), ("worker",)):
        done = llmos(llmos_workspace, *args, check=False, **dead)
        assert done.returncode == 2, (args, done.stderr)
        assert "cannot reach the durable engine's database" in done.stderr
        assert "127.0.0.1:1" in done.stderr and "hunter2pw" not in done.stderr
        assert "Traceback" not in done.stderr


def test_a_submitted_goal_reads_as_queued_until_a_worker_takes_it(llmos_workspace):
    ws = llmos_workspace
    assert "no run 'nosuch'" in llmos(ws, "runs", "show", "nosuch", check=False).stderr
    run_id = llmos(ws, "submit", "Say hi", "--budget", "0.25").stdout.strip()
    shown = llmos_json(ws, "runs", "show", run_id)
    assert (shown["id"], shown["status"], shown["goal"], shown["budget_usd"]) == (
        run_id, "queued", "Say hi", 0.25)
    text = llmos(ws, "runs", "show", run_id).stdout
    assert "queued" in text and "waiting for a worker" in text and "Say hi" in text
    unknown = llmos(ws, "runs", "show", "nosuch", check=False)
    assert unknown.returncode == 1 and "no run 'nosuch'" in unknown.stderr
