"""The command daemon serves what it may, exactly as in process: same output, exit status,
run record, terminal, stdin, signals, environment; and it is never used when it could not
be proven as privileged and confined as the client (issue 12)."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.daemon.conftest import (
    LLMOS,
    alive,
    daemon_pids,
    descendants,
    llmos,
    make_trace,
    plugin_dir,
    served,
    start,
    status,
    wait_until,
)

RUN_ID = re.compile(rb"\b[0-9a-f]{16}\b")
DURATION = re.compile(rb"\d+\.\d+ s\b")


def same(a: bytes) -> bytes:
    """Output with what differs between two runs of the same command (run ids, the run's
    duration) masked."""
    return DURATION.sub(b"D s", RUN_ID.sub(b"ID", a))


def in_process(args: list, env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return llmos(*args, env={**env, "LLMOS_DAEMON": "0"}, **kw)


def _masked(value):
    """A run record without what differs between two runs (ids, times, the process)."""
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()
                if k not in ("owner", "call_id", "duration_s", "started_at", "finished_at")}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, str):
        return same(value.encode()).decode()
    return value


def run_record(workspace: Path, run_id: str, env: dict[str, str]) -> dict:
    proc = in_process(["-w", str(workspace), "runs", "show", run_id, "--json"], env)
    assert proc.returncode == 0, proc.stderr
    return _masked(json.loads(proc.stdout))


def test_a_replay_is_served_with_the_same_output_exit_code_and_run_record(env, replay):
    workspace, goal = replay
    args = ["-w", str(workspace), "run", goal]
    first = llmos(*args, env=env)  # starts the daemon; runs in process
    assert first.returncode == 0, first.stderr
    through = served(args, env)
    local = in_process(args, env)
    assert (through.returncode, same(through.stdout), same(through.stderr)) == (
        local.returncode, same(local.stdout), same(local.stderr))
    assert b"FOLLOWER" in through.stdout
    as_json = served([*args, "--json"], env)
    local_json = in_process([*args, "--json"], env)
    a, b = json.loads(as_json.stdout), json.loads(local_json.stdout)
    assert a["mode"] == b["mode"] == "FOLLOWER" and a["success"] and b["success"]
    assert run_record(workspace, a["run_id"], env) == run_record(workspace, b["run_id"], env)
    assert {k for k in a} == {k for k in b}


def test_failures_exit_as_in_process(env, replay):
    workspace, _ = replay
    for args in (["-w", str(workspace), "run", "--bogus"],  # usage: 2
                 ["-w", str(workspace), "tools", "call", "Write", "--input",
                  json.dumps({"file_path": "/etc/llmos-daemon-x", "content": "x"})],  # 4
                 ["-w", str(workspace), "--set", "nope", "tools"]):  # bad --set: 2
        through, local = served(args, env), in_process(args, env)
        assert through.returncode == local.returncode != 0, through.stderr
        assert (through.stdout, through.stderr) == (local.stdout, local.stderr)
    assert not Path("/etc/llmos-daemon-x").exists()


def test_stdin_and_a_non_utf8_argument_reach_the_command(env, replay):
    workspace, goal = replay
    through = served(["-w", str(workspace), "run", "-", "--json"], env, input=goal.encode())
    assert through.returncode == 0, through.stderr
    assert json.loads(through.stdout)["goal"] == goal
    odd = ["-w", str(workspace), "route", b"caf\xe9 \xff goal"]
    through, local = served(odd, env), in_process(odd, env)
    assert (through.returncode, through.stdout, through.stderr) == (
        local.returncode, local.stdout, local.stderr)


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs
        os.execve(str(LLMOS), [str(LLMOS), *args], env)
    out = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    os.close(fd)
    _, code = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(code), out


def test_on_a_terminal_the_command_sees_a_terminal_and_colors(env, replay):
    workspace, goal = replay
    args = ["-w", str(workspace), "run", goal]
    for _ in range(8):
        before = start(env)
        code, through = _on_a_terminal(args, env)
        if status(env)["daemon"]["requests"] == before["requests"] + 1:
            break
    else:
        pytest.fail("never served on a terminal")
    local_code, local = _on_a_terminal(args, {**env, "LLMOS_DAEMON": "0"})
    assert code == local_code == 0
    assert b"\x1b[" in through  # colors: stdout is a terminal for the command
    assert same(through) == same(local)


def _wait_for_command(env: dict[str, str]) -> int:
    """The pid of the one command the daemon runs, once its sandboxed child started."""
    found: list[int] = []

    def running() -> bool:
        state = status(env)["daemon"] or {}
        pids = state.get("running") or []
        if pids and any(b"sleep" in Path(f"/proc/{p}/cmdline").read_bytes()
                        for p in descendants(pids[0]) if alive(p)):
            found[:] = pids[:1]
            return True
        return False

    wait_until(running, 60, "the served command's sandboxed child")
    return found[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_client_reaches_the_command(env, tmp_path, sig):
    goal = make_trace(tmp_path / "ws", "Sleep for a minute", "sleep 60")
    args = ["-w", str(tmp_path / "ws"), "run", goal]
    codes = {}
    for mode in ("1", "0"):
        for _ in range(8):
            if mode == "1":
                start(env)
            proc = subprocess.Popen([str(LLMOS), *args], env={**env, "LLMOS_DAEMON": mode},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if mode == "0":
                wait_until(lambda p=proc: any(
                    b"sleep" in Path(f"/proc/{c}/cmdline").read_bytes()
                    for c in descendants(p.pid) if alive(c)), 60, "the sandboxed sleep")
                break
            try:
                command = _wait_for_command(env)
            except pytest.fail.Exception:
                proc.kill()
                proc.communicate()
                continue  # ran in process (a stale daemon): try again
            assert command not in descendants(proc.pid)  # served: not the client's child
            break
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        codes[mode] = (proc.returncode, same(out), same(err))
    assert codes["1"] == codes["0"]
    assert codes["1"][0] == 128 + sig


def _describe(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError as exc:
        return f"gone ({exc.strerror})"
    return f"state {stat[0]} ppid {stat[1]} pgid {stat[2]}: {cmdline[:120]!r}"


def _serve_sleeper(env, workspace: Path, **popen) -> tuple[subprocess.Popen, int]:
    """A served ``llmos run`` of a replay sleeping a minute: the client and its command."""
    goal = make_trace(workspace, "Sleep for a minute", "sleep 60")
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    for _ in range(8):
        start(env)
        proc = subprocess.Popen([str(LLMOS), "-w", str(workspace), "run", goal], env=env,
                                **popen)
        try:
            return proc, _wait_for_command(env)
        except pytest.fail.Exception:
            proc.kill()
            proc.communicate()  # ran in process (a stale daemon): try again
    pytest.fail("never served")


def test_kill_9_of_the_client_kills_the_command_and_its_sandboxed_children(env, tmp_path):
    proc, command = _serve_sleeper(env, tmp_path / "ws", stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    tree = [command, *descendants(command)]
    proc.kill()
    proc.wait()
    try:
        wait_until(lambda: not any(alive(p) for p in tree), 60,
                   "the command's processes to end")
    except pytest.fail.Exception:
        left = {p: _describe(p) for p in tree if alive(p)}
        pytest.fail(f"still running after kill -9 of the client: {left}; "
                    f"daemon: {status(env)['daemon']}")
    assert status(env)["daemon"]["running"] == []


def test_kill_9_of_the_daemon_fails_the_client_and_leaves_no_orphan(env, tmp_path):
    proc, command = _serve_sleeper(env, tmp_path / "ws")
    daemon = status(env)["daemon"]
    tree = [command, *descendants(command)]
    os.kill(daemon["pid"], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert b"daemon stopped before the command ended" in err
    wait_until(lambda: not any(alive(p) for p in tree), 60, "the command's processes to end")


def test_communicate_returns_when_the_command_ends(env, replay):
    """The daemon keeps no copy of the client's pipes: reading them to EOF ends with the
    command, while the daemon lives on."""
    workspace, goal = replay
    for _ in range(8):
        before = start(env)
        proc = subprocess.Popen([str(LLMOS), "-w", str(workspace), "run", goal], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, _ = proc.communicate(timeout=120)
        after = status(env)["daemon"]
        if after and after["requests"] == before["requests"] + 1:
            break
    assert proc.returncode == 0 and b"FOLLOWER" in out
    assert alive(after["pid"])


ENVPROBE_IMPORTS = """
import json, os, resource

def umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
"""
ENVPROBE = """json.dumps({**{k: os.environ.get(k) for k in ("HOME", "LLMOS_CACHE_DIR", "PATH")},
                   "umask": umask(), "nice": os.getpriority(os.PRIO_PROCESS, 0),
                   "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
                   "cpus": sorted(os.sched_getaffinity(0)), "cwd": os.getcwd()})"""


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    """A plugin directory with a tool that reports what its process runs with."""
    return plugin_dir(tmp_path, "envprobe", ENVPROBE, ENVPROBE_IMPORTS)


def test_each_request_sees_its_own_environment(env, tmp_path, probe):
    plugins = probe
    workspace = tmp_path / "ws"
    workspace.mkdir()
    seen = []
    for n in (1, 2):
        mine = {**env, "LLMOS_PLUGIN_DIR": str(plugins), "HOME": str(tmp_path / f"home{n}"),
                "LLMOS_CACHE_DIR": str(tmp_path / f"cache{n}"),
                "PATH": f"{tmp_path / f'bin{n}'}:{env['PATH']}"}
        proc = served(["-w", str(workspace), "tools", "call", "envprobe", "--input", "{}"],
                      mine)
        assert proc.returncode == 0, proc.stderr
        seen.append(proc.stdout.decode())
    for n, out in zip((1, 2), seen, strict=True):
        assert f"home{n}" in out and f"cache{n}" in out and f"bin{n}" in out, out
        assert f"home{3 - n}" not in out and f"cache{3 - n}" not in out


def test_a_plugin_disabled_by_config_in_one_request_is_enabled_in_the_next(env, tmp_path):
    names = {}
    for flag in ("off", "on"):
        workspace = tmp_path / flag
        workspace.mkdir()
        if flag == "off":
            (workspace / "llmos.toml").write_text('[plugins]\ndisable = ["web"]\n')
        proc = served(["-w", str(workspace), "plugins", "--json"], env)
        assert proc.returncode == 0, proc.stderr
        names[flag] = {p["name"]: p["state"] for p in json.loads(proc.stdout)}
    if "web" not in names["on"]:
        pytest.skip("the web pack is not installed")
    assert names["on"]["web"] == "loaded", names["on"]
    assert names["off"]["web"] == "disabled", names["off"]


def test_a_daemon_exits_when_idle(env):
    daemon = start({**env, "LLMOS_DAEMON_IDLE": "2"})
    wait_until(lambda: not alive(daemon["pid"]), 60, "the idle daemon to exit")


def test_stop_and_status(env, daemon_dir):
    daemon = start(env)
    assert daemon["socket"].startswith(str(daemon_dir))
    proc = llmos("daemon", "stop", env=env)
    assert proc.returncode == 0 and b"stopped" in proc.stdout
    wait_until(lambda: not alive(daemon["pid"]), 60, "the daemon to stop")
    state = status(env)
    assert not state["running"] and "not running" in state["reason"]
    assert daemon_pids(daemon_dir) == []


def test_one_daemon_per_interpreter_and_directory(env, daemon_dir, replay):
    workspace, goal = replay
    start(env)
    procs = [subprocess.Popen([str(LLMOS), "-w", str(workspace), "route", goal], env=env,
                              stdout=subprocess.DEVNULL) for _ in range(4)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    time.sleep(0.5)  # a daemon started by a fallback would be starting now
    listening = [p for p in daemon_pids(daemon_dir) if alive(p)]
    assert len(listening) >= 1
    assert status(env)["running"]
    # stale daemons (a file of the tree changed meanwhile) stop; one listens
    assert sum(1 for _ in daemon_dir.glob("*.sock")) <= len(listening) + 1


def test_the_daemon_holds_no_workspace_file_open(env, replay):
    workspace, goal = replay
    served(["-w", str(workspace), "run", goal], env)
    pid = status(env)["daemon"]["pid"]
    held = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()
            if os.path.exists(f)]
    assert not [f for f in held if f.startswith(str(workspace))], held


def test_bad_daemon_idle_value_falls_back_to_the_default(env):
    daemon = start({**env, "LLMOS_DAEMON_IDLE": "soon"})
    assert daemon["idle_s"] == 600.0


def test_the_daemons_directory_must_be_private(env, daemon_dir, replay):
    workspace, goal = replay
    open_dir = daemon_dir / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    mine = {**env, "LLMOS_DAEMON_DIR": str(open_dir)}
    proc = llmos("-w", str(workspace), "route", goal, env=mine)
    assert proc.returncode == 0  # in process
    assert list(open_dir.iterdir()) == []  # no daemon started there
    state = status(mine)
    assert not state["running"] and "accessible to group or others" in state["reason"]
    link = daemon_dir / "link"
    link.symlink_to(daemon_dir)
    state = status({**env, "LLMOS_DAEMON_DIR": str(link)})
    assert "symbolic link" in state["reason"]


def test_umask_nice_limits_affinity_and_cwd_are_the_clients(env, tmp_path, probe):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    call = ["-w", str(workspace), "tools", "call", "envprobe", "--input", "{}"]
    mine = {**env, "LLMOS_PLUGIN_DIR": str(probe)}
    cpus = sorted(os.sched_getaffinity(0))
    wrapped = ["sh", "-c", 'umask 027; exec nice -n 3 prlimit --nofile=300:4000 '
               f'taskset -c {cpus[0]} "$@"', "sh", str(LLMOS)]
    for _ in range(8):
        before = start(mine)
        proc = subprocess.run([*wrapped, *call], env=mine, cwd=workspace, capture_output=True,
                              timeout=300, check=False)
        after = status(mine)["daemon"]
        if after["requests"] == before["requests"] + 1:
            break
    else:
        pytest.fail("never served")
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["umask"] == 0o027
    assert seen["nice"] == os.getpriority(os.PRIO_PROCESS, 0) + 3
    assert seen["nofile"] == [300, 4000]
    assert seen["cpus"] == cpus[:1]
    assert seen["cwd"] == str(workspace)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_ctrl_z_stops_the_command_and_fg_continues_it(env, tmp_path):
    proc, command = _serve_sleeper(env, tmp_path / "ws")
    proc.send_signal(signal.SIGTSTP)
    wait_until(lambda: _state(command) == "T" and _state(proc.pid) == "T", 30, "stopped")
    proc.send_signal(signal.SIGCONT)
    wait_until(lambda: _state(command) != "T" and _state(proc.pid) != "T", 30, "continued")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130




def test_a_hash_seed_is_served_by_a_daemon_hashing_with_it(env, tmp_path):
    """tox (and anyone wanting reproducible hashing) sets PYTHONHASHSEED: such a client is
    served, by a daemon started with the same seed, so str hashes are what they would be
    in process."""
    plugins = plugin_dir(tmp_path, "hashprobe", 'str(hash("llmos"))')
    workspace = tmp_path / "ws"
    workspace.mkdir()
    args = ["-w", str(workspace), "tools", "call", "hashprobe", "--input", "{}"]
    seen = {}
    for seed in ("123", "456"):
        mine = {**env, "LLMOS_PLUGIN_DIR": str(plugins), "PYTHONHASHSEED": seed}
        expected = llmos(*args, env={**mine, "LLMOS_DAEMON": "0"})
        got = served(args, mine)
        assert (got.returncode, got.stdout) == (expected.returncode, expected.stdout)
        seen[seed] = got.stdout
    assert seen["123"] != seen["456"]
