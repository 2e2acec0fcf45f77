"""A LEARNER run through the daemon: the real Claude Code CLI, driven by the scripted
model server, runs a long command; Ctrl-C to the client stops the run as in process, and
kill -9 of the client takes the run, Claude Code and the command down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from llmos.testing.model_server import Usage
from tests.daemon.conftest import LLMOS, alive, descendants, llmos, start, status, wait_until

pytestmark = pytest.mark.cli


def _served_learner_run(server, workspace, env, mark):
    """A ``llmos run --json`` served by the daemon whose model runs ``python3 MARK``; the
    client's Popen and the command's processes."""
    script = workspace / mark
    for _ in range(6):
        server.script.tool_use(
            "Write", {"file_path": str(script), "content": "import time\ntime.sleep(300)\n"},
            usage=Usage(1000, 50)).tool_use("Bash", {"command": f"python3 {mark}"},
                                            usage=Usage(1000, 50))
        start(env)
        proc = subprocess.Popen([str(LLMOS), "-w", str(workspace), "run", "--json", "Sleep"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        found: list[int] = []

        def sleeping(proc=proc, found=found) -> bool:
            running = (status(env)["daemon"] or {}).get("running") or []
            for pid in (*running, proc.pid):
                for p in descendants(pid):
                    try:
                        cmdline = Path(f"/proc/{p}/cmdline").read_bytes()
                    except OSError:
                        continue
                    if mark.encode() in cmdline:
                        found[:] = [pid]
                        return True
            return proc.poll() is not None

        wait_until(sleeping, 120, "the model's command")
        if found and found[0] != proc.pid:
            return proc, [found[0], *descendants(found[0])]
        proc.kill()  # ran in process (the daemon was stale): again
        proc.communicate()
    pytest.fail("the LEARNER run was never served")


def test_ctrl_c_and_kill_9_of_a_served_learner_run(llmos_model_server, llmos_workspace,
                                                   daemon_dir):
    env = {**os.environ, "LLMOS_DAEMON_DIR": str(daemon_dir), "LLMOS_DAEMON_IDLE": "120",
           "LLMOS_KERNEL__INTERACTIVE": "never", "LLMOS_BUDGET__RUN_CAP_USD": "0.5"}
    assert llmos("-w", str(llmos_workspace), "budget", "set", "5", env=env).returncode == 0
    mark = f"llmos_daemon_sleeper_{uuid.uuid4().hex[:8]}.py"

    proc, tree = _served_learner_run(llmos_model_server, llmos_workspace, env, mark)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    report = json.loads(out)
    assert report["status"] == "interrupted" and report["error"] == "interrupted by Ctrl-C"
    wait_until(lambda: not any(alive(p) for p in tree), 30, "the run's processes to end")

    proc, tree = _served_learner_run(llmos_model_server, llmos_workspace, env, mark)
    proc.kill()
    proc.wait(30)
    wait_until(lambda: not any(alive(p) for p in tree), 30,
               "the run, Claude Code and the model's command to die with the client")
