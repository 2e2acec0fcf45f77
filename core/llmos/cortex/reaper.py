"""The reaper: Claude Code runs under it so that nothing it starts outlives llmos.

It is given to the SDK as the CLI to start (``cli_path`` is a two-line shell script that
runs this file with ``python -I -S``, standard library only). It

- asks the kernel for SIGTERM when llmos dies, whatever killed it (``PR_SET_PDEATHSIG``,
  so kill -9 of llmos is covered), and leads its own process group, so a terminal's
  Ctrl-C reaches llmos alone and llmos decides;
- becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``): whatever Claude Code starts
  and abandons (a sandboxed command that started its own session included) is
  re-parented here instead of to init;
- starts the real CLI with exactly the environment llmos computed (``LLMOS_CLI_ENV``,
  JSON; plus the variables the SDK itself sets), and writes its pid where llmos said;
- on SIGTERM, SIGINT or SIGHUP, or when the CLI exits, kills every process below it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
# Variables the SDK sets for the CLI (claude_agent_sdk/_internal/transport/subprocess_cli.py).
SDK_VARIABLES = ("CLAUDE_CODE_ENTRYPOINT", "CLAUDE_AGENT_SDK_VERSION",
                 "CLAUDE_CODE_SDK_READS_SESSION_STATE", "CLAUDE_AGENT_SDK_CLIENT_APP",
                 "CLAUDE_AGENT_SDK_DERIVED_CLIENT_APP",
                 "CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING", "PWD")


def descendants(root: int) -> list[int]:
    """Every live process below ``root``, from /proc."""
    children: dict[int, list[int]] = {}
    if not os.path.isdir("/proc"):
        return []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    stack = [root]
    while stack:
        for pid in children.get(stack.pop(), ()):
            found.append(pid)
            stack.append(pid)
    return found


def kill_below(root: int) -> None:
    """SIGKILL everything below ``root`` until nothing is left (orphans come back to a
    subreaper, so a few rounds catch processes started while killing)."""
    for _ in range(20):
        pids = descendants(root)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    time.sleep(0.005)
            except ChildProcessError:
                break


def main(argv: list[str]) -> int:
    parent = os.getppid()
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # llmos died before the line above took effect
            return 143
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    me = os.getpid()

    def stop(signum: int, _frame: object) -> None:
        kill_below(me)
        os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    env = json.loads(os.environ.get("LLMOS_CLI_ENV") or "{}")
    for name in SDK_VARIABLES:
        if name in os.environ and name not in env:
            env[name] = os.environ[name]
    pidfile = os.environ.get("LLMOS_REAPER_PIDFILE")
    if pidfile:
        with open(pidfile, "w", encoding="ascii") as f:
            f.write(str(me))
    try:
        child = subprocess.Popen(argv, env=env)
    except OSError as exc:
        print(f"llmos reaper: cannot start {argv[0]}: {exc}", file=sys.stderr)
        return 127
    code = child.wait()
    kill_below(me)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
