"""Stopping a real ``llmos run``: signals, orphans and what a stopped run cost.

A real ``llmos run`` process drives the real Claude Code CLI against the scripted model
server; the model's first turn runs a long command, so when the signal arrives the CLI
and its child are alive and a paid request is in flight or done.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from llmos.kernel import Kernel
from llmos.testing.model_server import Usage

pytestmark = pytest.mark.cli

LLMOS = str(Path(sys.executable).parent / "llmos")
# a command line no other process has (other test sessions may run these tests at once)
MARK = f"llmos_signal_sleeper_{os.getpid()}_{uuid.uuid4().hex[:8]}.py"


def processes_below(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if stat[0] not in (b"Z", b"X"):
                children.setdefault(int(stat[1]), []).append(int(name))
    found, stack = [], [root]
    while stack:
        for pid in children.get(stack.pop(), ()):
            found.append(pid)
            stack.append(pid)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def commands_running(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state not in (b"Z", b"X"):
            found.append(int(name))
    return found


def wait_for(predicate, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def started_run(llmos_model_server, llmos_workspace):
    """A ``llmos run --json`` whose model has run a long command through Bash."""
    script = llmos_workspace / MARK
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(script), "content": "import time\ntime.sleep(300)\n"},
        usage=Usage(1000, 50),
    ).tool_use("Bash", {"command": f"python3 {MARK}"}, usage=Usage(1000, 50)).text("never")
    # in process: these tests walk the process tree below the llmos pid (through the
    # command daemon the run is the daemon's child; tests/daemon covers that case)
    env = {**os.environ, "LLMOS_KERNEL__INTERACTIVE": "never", "LLMOS_BUDGET__RUN_CAP_USD": "0.5",
           "LLMOS_DAEMON": "0"}
    subprocess.run([LLMOS, "-w", str(llmos_workspace), "budget", "set", "5"], check=True,
                   env=env, capture_output=True)
    proc = subprocess.Popen([LLMOS, "-w", str(llmos_workspace), "run", "--json", "Sleep"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    if not wait_for(lambda: commands_running(MARK)):
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the model's command never started: {out!r} {err[-2000:]!r}")
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pid in commands_running(MARK):
        os.kill(pid, signal.SIGKILL)


def assert_settled_as_interrupted(workspace, reason: str | None):
    kernel = Kernel(workspace, load_entry_points=False)
    economy = kernel.economy  # settles what a dead owner left open
    assert economy.status()["reserved_micro"] == 0
    runs = [kernel.settle_run(r) for r in kernel.memory.list_runs()]  # as `llmos runs` shows
    assert [r.status for r in runs] == ["interrupted"]
    spent = economy.run_spent_micro(runs[0].id) / 1e6
    # the paid turn: 2000 in / 100 out at claude-opus-5 prices
    assert spent >= (2000 * 4 + 100 * 20) / 1e6
    if reason is not None:
        assert runs[0].error == reason
    # the run record says what it cost, even when llmos was killed before it could
    assert runs[0].cost_usd == pytest.approx(spent)
    return runs[0], spent


@pytest.mark.parametrize(
    ("signum", "code", "reason"),
    [(signal.SIGINT, 130, "interrupted by Ctrl-C"),
     (signal.SIGTERM, 143, "interrupted by SIGTERM"),
     (signal.SIGHUP, 129, "interrupted by SIGHUP")],
)
def test_a_signal_stops_the_run_and_everything_it_started(
    started_run, llmos_workspace, signum, code, reason
):
    llmos_pid = started_run.pid
    below = processes_below(llmos_pid)
    assert below and commands_running(MARK)
    started_run.send_signal(signum)
    out, err = started_run.communicate(timeout=30)
    assert started_run.returncode == code, err.decode()[-2000:]
    report = json.loads(out)
    assert report["status"] == "interrupted" and report["error"] == reason
    assert wait_for(lambda: not commands_running(MARK), 5), "the model's command outlived llmos"
    assert wait_for(lambda: not [pid for pid in below if alive(pid)], 5)
    run, spent = assert_settled_as_interrupted(llmos_workspace, reason)
    assert report["run_id"] == run.id and report["cost_usd"] == pytest.approx(spent)


def test_kill_9_of_llmos_takes_claude_code_down_and_the_cost_is_charged(
    started_run, llmos_workspace
):
    below = processes_below(started_run.pid)
    assert below
    os.kill(started_run.pid, signal.SIGKILL)
    started_run.wait(10)
    assert wait_for(lambda: not commands_running(MARK), 10), "the model's command was orphaned"
    assert wait_for(lambda: not [p for p in below if alive(p)], 10)
    run, _ = assert_settled_as_interrupted(llmos_workspace, None)
    # nothing ran after kill -9: the next run finishes the session it left (transcripts)
    from llmos.cortex.session import Session

    state = llmos_workspace / ".llmos"
    assert (state / "cortex" / run.id / "home" / ".claude").is_dir()
    assert Session.sweep(state, "remove", grace_s=0) == 1
    assert not (state / "cortex" / run.id).exists()


def test_a_second_ctrl_c_forces_the_exit(llmos_model_server, llmos_workspace):
    """A run whose first Ctrl-C is still settling leaves at once on the second."""
    llmos_model_server.script.slow("slowly " * 200, event_delay=0.5)
    env = {**os.environ, "LLMOS_KERNEL__INTERACTIVE": "never", "LLMOS_DAEMON": "0"}
    subprocess.run([LLMOS, "-w", str(llmos_workspace), "budget", "set", "5"], check=True,
                   env=env, capture_output=True)
    proc = subprocess.Popen([LLMOS, "-w", str(llmos_workspace), "run", "Talk"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    assert wait_for(lambda: len(llmos_model_server.conversation_requests) >= 1)
    below = processes_below(proc.pid)
    assert below
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert wait_for(lambda: not [p for p in below if alive(p)], 10)


def test_a_signal_stops_a_replay_and_its_command(llmos_cli, llmos_model_server, llmos_workspace):
    """FOLLOWER replays a learned command that now runs long; Ctrl-C stops both."""
    from llmos.cortex.learner import claude_sandbox_available

    if not claude_sandbox_available():
        pytest.skip("the model's python3 runs only inside Claude Code's sandbox (bwrap, socat)")
    goal = "Run the sleeper script"
    script = llmos_workspace / MARK
    program = "import pathlib, time\ntime.sleep(float(pathlib.Path('delay.txt').read_text()))\n"
    (llmos_workspace / "delay.txt").write_text("0")
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(script), "content": program}, usage=Usage(1000, 50),
    ).tool_use("Bash", {"command": f"python3 {MARK}"}, usage=Usage(1000, 50)).text("ran it")
    assert llmos_cli("budget", "set", "5").exit_code == 0
    learned = llmos_cli("run", "--json", goal)
    assert learned.exit_code == 0, learned.output
    script.unlink()
    (llmos_workspace / "delay.txt").write_text("300")
    env = {**os.environ, "LLMOS_KERNEL__INTERACTIVE": "never"}
    proc = subprocess.Popen([LLMOS, "-w", str(llmos_workspace), "run", "--json", goal],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        assert wait_for(lambda: commands_running(MARK)), "the replay never ran the command"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()[-2000:]
    report = json.loads(out)
    assert report["mode"] == "FOLLOWER" and report["error"] == "interrupted by Ctrl-C"
    assert report["cost_usd"] == 0
    assert wait_for(lambda: not commands_running(MARK), 10), "the replayed command outlived llmos"
    runs = Kernel(llmos_workspace, load_entry_points=False).memory.list_runs()
    assert runs[0].status == "interrupted" and runs[0].mode == "FOLLOWER"
