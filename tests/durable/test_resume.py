"""``llmos runs resume`` after kill -9 of a single-machine run, on the embedded SQLite.

Real ``llmos`` processes, the real Claude Code CLI against the scripted model server;
each run's side effect is a line appended to a file, so a repeated step would show.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.durable.helpers import lines, llmos, llmos_json, start, wait_for

pytestmark = pytest.mark.cli


def _steps_recorded(workspace) -> int:
    found = [r for r in llmos_json(workspace, "runs", "list") if r["mode"] == "FOLLOWER"]
    return found[0]["step_count"] if found else 0


def _interrupted_run(workspace) -> dict:
    found = llmos_json(workspace, "runs", "list", "--status", "interrupted")
    assert len(found) == 1, found
    return found[0]


def test_resumed_learner_run_repeats_no_tool_call_and_no_paid_turn(
        llmos_model_server, llmos_workspace):
    effects = llmos_workspace / "effects.txt"
    script = llmos_model_server.script
    script.tool_use("Bash", {"command": "echo once >> effects.txt"})
    script.hang()  # the second turn never comes: the run is killed waiting for it
    script.text("Appended the line.")
    llmos(llmos_workspace, "budget", "set", "5")
    proc = start(llmos_workspace, "run", "Append a line saying once to effects.txt")
    try:
        assert wait_for(lambda: len(llmos_model_server.conversation_requests) >= 2), \
            "the run never reached its second model turn"
        assert lines(effects) == ["once"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    run = _interrupted_run(llmos_workspace)
    assert run["status"] == "interrupted"
    # the session directory of a dead run is swept by the next paid run; the transcript's
    # copy under .llmos/sessions/ is what the resume continues from
    from llmos.cortex.session import Session

    state = llmos_workspace / ".llmos"
    assert Session.sweep(state, "remove", grace_s=0) == 1
    assert not (state / "cortex" / run["id"]).exists()
    assert any((state / "sessions" / run["id"]).rglob("*.jsonl"))

    # the request in flight when it was killed is charged its whole reservation (nothing
    # says what it cost): the resumed run gets what is left of a larger cap
    resumed = llmos_json(llmos_workspace, "--set", "budget.run_cap_usd=3", "runs", "resume",
                         run["id"])

    assert resumed["success"] and resumed["run_id"] == run["id"]
    assert lines(effects) == ["once"], "the completed Bash call ran again"
    requests = llmos_model_server.conversation_requests
    # the first turn (no assistant message yet) was asked for once: not paid again
    assert [r.assistant_turns for r in requests].count(0) == 1
    assert len(requests) == 3
    # the resumed session carries the turn already done and its tool result
    assert requests[-1].assistant_turns >= 1
    history = json.dumps(requests[-1].messages)
    assert "echo once >> effects.txt" in history and "tool_result" in history
    assert not (state / "sessions" / run["id"]).exists()  # done: no copy kept
    shown = llmos_json(llmos_workspace, "runs", "show", run["id"])
    assert shown["status"] == "succeeded" and shown["id"] == run["id"]
    assert shown["cost_usd"] >= run["cost_usd"]
    assert [s["tool"] for s in shown["steps"]] == ["Bash"]
    # nothing left to resume
    again = llmos(llmos_workspace, "runs", "resume", run["id"], check=False)
    assert again.returncode != 0 and "already finished" in again.stderr


def test_resumed_replay_continues_after_its_completed_steps(llmos_model_server,
                                                            llmos_workspace):
    effects = llmos_workspace / "effects.txt"
    goal = "Append first then second to effects.txt"
    script = llmos_model_server.script
    script.tool_use("Bash", {"command": "echo first >> effects.txt"})
    script.tool_use("Bash", {"command": "sleep 4"})
    script.tool_use("Bash", {"command": "echo second >> effects.txt"})
    script.text("Appended both lines.")
    llmos(llmos_workspace, "budget", "set", "5")
    learned = llmos_json(llmos_workspace, "run", goal)
    assert learned["success"] and learned["mode"] == "LEARNER", learned
    assert lines(effects) == ["first", "second"]
    effects.unlink()  # the world as before: the goal replays exactly
    served = len(llmos_model_server.conversation_requests)

    proc = start(llmos_workspace, "run", goal)
    try:
        # killed in the sleep, once the first step is done: ran and recorded (a step in
        # flight at the kill has no record and runs again)
        assert wait_for(lambda: _steps_recorded(llmos_workspace) >= 1, 60, every=0.3)
        assert lines(effects) == ["first"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    run = _interrupted_run(llmos_workspace)
    assert run["mode"] == "FOLLOWER"

    resumed = llmos_json(llmos_workspace, "runs", "resume", run["id"])

    assert resumed["success"] and resumed["mode"] == "FOLLOWER", resumed
    assert lines(effects) == ["first", "second"], "the completed replayed step ran again"
    assert resumed["cost_usd"] == 0
    assert len(llmos_model_server.conversation_requests) == served  # no model at all
    shown = llmos_json(llmos_workspace, "runs", "show", run["id"])
    assert shown["status"] == "succeeded"
    assert [s["input"]["command"] for s in shown["steps"]] == [
        "echo first >> effects.txt", "sleep 4", "echo second >> effects.txt"]


def test_resume_refuses_unknown_and_running_runs(llmos_workspace):
    unknown = llmos(llmos_workspace, "runs", "resume", "0123456789abcdef", check=False)
    assert unknown.returncode == 1 and "no run" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_a_replay_from_the_command_line_loads_no_durable_engine(llmos_model_server,
                                                                llmos_workspace):
    import subprocess
    import sys

    from tests.durable.helpers import env

    llmos_model_server.script.tool_use("Bash", {"command": "echo tick >> ticks.txt"})
    llmos_model_server.script.text("Done.")
    llmos(llmos_workspace, "budget", "set", "5")
    assert llmos_json(llmos_workspace, "run", "Append a tick to ticks.txt")["success"]
    probe = (
        "import sys\n"
        "from llmos.cli import cli\n"
        f"cli.main(['-w', {str(llmos_workspace)!r}, 'run', 'Append a tick to ticks.txt', "
        "'--json'], standalone_mode=False)\n"
        "print('LOADED', sorted(m for m in ('dbos', 'sqlalchemy') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], env=env(), capture_output=True,
                          text=True, timeout=120)
    assert '"mode": "FOLLOWER"' in done.stdout, done.stdout + done.stderr
    assert "LOADED []" in done.stdout
    assert lines(llmos_workspace / "ticks.txt") == ["tick", "tick"]
