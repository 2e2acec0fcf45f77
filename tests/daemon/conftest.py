"""Helpers for the command daemon's tests: real processes (the ``llmos`` console script,
the daemon it starts, bwrap, setpriv), each test's daemons in a private directory
(``LLMOS_DAEMON_DIR``) that is stopped and removed afterwards."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmos.daemon import descendants  # noqa: F401  (the tests' process-tree walk)

ROOT = Path(__file__).resolve().parents[2]
LLMOS = Path(sys.executable).parent / "llmos"
TIMEOUT = 300


def _replay_module():
    spec = importlib.util.spec_from_file_location(
        "replay_workspace", ROOT / "bench" / "startup" / "replay_workspace.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_replay(workspace: Path) -> str:
    """A workspace with one proven 2-step trace (Write + sandboxed Bash); its goal."""
    return _replay_module().make(workspace)


def make_trace(workspace: Path, goal: str, command: str) -> str:
    """A workspace whose one proven trace runs ``command`` in the sandbox."""
    from llmos import LLMOS
    from llmos.memory.models import Step, StepOutcome
    from llmos.testing.memory_conformance import make_trace as trace

    workspace.mkdir(parents=True, exist_ok=True)
    steps = [Step(index=0, tool="Bash", input={"command": command},
                  outcome=StepOutcome(excerpt="", exit_code=0))]
    LLMOS(workspace=workspace).kernel.memory.save_trace(
        trace(goal, steps=steps, usage_count=2, success_count=2, success_rating=1.0))
    return goal


def clean_environ(daemon_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PYTHON") or k.startswith("COV") or k.startswith("LLMOS_"))}
    env["LLMOS_DAEMON_DIR"] = str(daemon_dir)
    env["LLMOS_DAEMON_IDLE"] = "120"
    return env


def llmos(*args: str | bytes, env: dict[str, str], cwd: Path | None = None,
          input: bytes | None = None, exe: Path = LLMOS) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], env=env, cwd=cwd, input=input,
                          capture_output=True, timeout=TIMEOUT, check=False)


def status(env: dict[str, str], exe: Path = LLMOS) -> dict:
    proc = llmos("daemon", "status", "--json", env=env, exe=exe)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def start(env: dict[str, str], exe: Path = LLMOS) -> dict:
    proc = llmos("daemon", "start", env=env, exe=exe)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    state = status(env, exe)
    assert state["running"], state
    return state["daemon"]


def served(args: list, env: dict[str, str], cwd: Path | None = None,
           input: bytes | None = None, exe: Path = LLMOS,
           attempts: int = 8) -> subprocess.CompletedProcess:
    """Run ``llmos ARGS`` until the daemon served it (its request count went up by one
    without a fallback). Retries because a file of the tree edited meanwhile (other work
    on the same checkout) makes the daemon stale, and that request then ran in process."""
    for _ in range(attempts):
        before = start(env, exe)
        proc = llmos(*args, env=env, cwd=cwd, input=input, exe=exe)
        after = status(env, exe)["daemon"]
        if (after and after["pid"] == before["pid"]
                and after["requests"] == before["requests"] + 1
                and after["fallbacks"] == before["fallbacks"]):
            return proc
    pytest.fail(f"the daemon never served llmos {args} in {attempts} attempts")


def daemon_pids(directory: Path) -> list[int]:
    """The daemons serving from ``directory`` (whatever their interpreter)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"llmos.daemon" in cmdline and f"LLMOS_DAEMON_DIR={directory}".encode() in environ:
            pids.append(int(entry.name))
    return pids


def wait_until(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def probe_plugin(tool: str, returns: str, imports: str = "") -> str:
    """A local plugin's source: a read-only tool ``tool`` answering ``returns`` (a Python
    expression, evaluated in the process that runs the command)."""
    return f'''
import llmos
from pydantic import BaseModel
{imports}

class NoInput(BaseModel):
    pass

async def {tool}(args: NoInput, context: llmos.CallContext) -> str:
    return {returns}

@llmos.hookimpl
def llmos_register_tools(register):
    register(llmos.Tool("{tool}", "A probe of the process", NoInput, {tool},
                        llmos.ToolMeta(side_effects="read-only")))
'''


def plugin_dir(root: Path, tool: str, returns: str, imports: str = "") -> Path:
    """A plugin directory (for ``LLMOS_PLUGIN_DIR``) holding ``probe_plugin(...)``."""
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / f"{tool}.py").write_text(probe_plugin(tool, returns, imports))
    return plugins


@pytest.fixture
def daemon_dir() -> Iterator[Path]:
    """A private daemon directory (short: a socket path has at most 108 bytes); every
    daemon started there is stopped afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="llmosd-", dir="/tmp"))
    try:
        yield directory
    finally:
        for pid in daemon_pids(directory):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def env(llmos_env: Path, daemon_dir: Path) -> dict[str, str]:
    return clean_environ(daemon_dir)


@pytest.fixture
def replay(tmp_path: Path, llmos_env: Path) -> tuple[Path, str]:
    workspace = tmp_path / "ws"
    return workspace, make_replay(workspace)
