"""How long a real ``llmos run`` takes to stop on Ctrl-C, SIGTERM and SIGHUP.

Run from the repository root:

    /work/venv/bin/python bench/cortex/stop_latency.py            # 3 runs per signal
    /work/venv/bin/python bench/cortex/stop_latency.py --repeats 5

Each run drives the real Claude Code CLI against the scripted model server, whose
second turn hangs mid-stream (a paid request in flight). The signal is sent once that
request has arrived; the figure is the time until the ``llmos`` process has exited
(the run recorded as interrupted, its reservation settled, Claude Code and its children
killed). The target is under one second.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "core"))

from llmos.testing.model_server import Script, ScriptedModelServer

LLMOS = str(Path(sys.executable).parent / "llmos")


def one(signum: int) -> float:
    script = Script().tool_use("Bash", {"command": "ls"}).hang(mid_stream=True)
    with ScriptedModelServer(script) as server, tempfile.TemporaryDirectory() as ws:
        env = {**os.environ, **server.env(), "LLMOS_KERNEL__INTERACTIVE": "never"}
        subprocess.run([LLMOS, "-w", ws, "budget", "set", "5"], env=env, check=True,
                       capture_output=True)
        proc = subprocess.Popen([LLMOS, "-w", ws, "run", "--json", "List"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 60
        while len(server.conversation_requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the request is in flight
        started = time.perf_counter()
        proc.send_signal(signum)
        proc.wait(30)
        return time.perf_counter() - started


def main(repeats: int) -> None:
    print(f"{'signal':8} {'median':>9} {'max':>9}  (exit to shell, {repeats} runs)")
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        samples = [one(signum) for _ in range(repeats)]
        print(f"{signal.Signals(signum).name:8} {statistics.median(samples):>8.2f}s "
              f"{max(samples):>8.2f}s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    main(parser.parse_args().repeats)
