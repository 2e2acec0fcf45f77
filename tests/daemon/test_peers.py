"""Who may use the daemon: only a process exactly as privileged and confined as it, and
never an agent's. Everyone else runs the command in process and gets the right answer;
a socket planted by someone else never receives the environment or the terminal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.daemon.conftest import LLMOS, alive, daemon_pids, llmos, served, start, status

FAKE = r'''
import os, socket, sys
path, record = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
open(record + ".ready", "w").close()
while True:
    c, _ = s.accept()
    c.settimeout(5)
    got, fds = 0, 0
    try:
        while True:
            data, anc, _, _ = c.recvmsg(65536, 4096)
            fds += sum(len(a[2]) // 4 for a in anc)
            if not data:
                break
            got += len(data)
    except OSError:
        pass
    with open(record, "a") as f:
        f.write(f"{got} {fds}\n")
    c.close()
'''


def bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        pytest.skip("bwrap is not installed")
    return path


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the fake listener did not start"
        time.sleep(0.05)


def answer(env: dict[str, str], replay: tuple[Path, str]) -> subprocess.CompletedProcess:
    workspace, goal = replay
    return llmos("-w", str(workspace), "route", goal, env={**env, "LLMOS_DAEMON": "0"})


def route(replay: tuple[Path, str]) -> list[str]:
    workspace, goal = replay
    return ["-w", str(workspace), "route", goal]


def _counts(env: dict[str, str]) -> tuple[int, int, int]:
    d = status(env)["daemon"]
    return d["pid"], d["requests"], d["fallbacks"]


def test_a_client_in_another_mount_namespace_runs_in_process(env, replay, daemon_dir):
    served(route(replay), env)
    before = _counts(env)
    proc = subprocess.run([bwrap(), "--dev-bind", "/", "/", "--unshare-pid", "--die-with-parent",
                           str(LLMOS), *route(replay)], env=env, capture_output=True,
                          timeout=300, check=False)
    expected = answer(env, replay)
    assert (proc.returncode, proc.stdout) == (expected.returncode, expected.stdout)
    after = _counts(env)
    assert after[:2] == before[:2]
    # a daemon the sandboxed client started went with its sandbox
    time.sleep(0.5)
    assert [p for p in daemon_pids(daemon_dir) if alive(p)] == [before[0]]


def test_a_client_under_no_new_privs_runs_in_process(env, replay):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    served(route(replay), env)
    before = _counts(env)
    proc = subprocess.run(["setpriv", "--no-new-privs", str(LLMOS), *route(replay)], env=env,
                          capture_output=True, timeout=300, check=False)
    expected = answer(env, replay)
    assert (proc.returncode, proc.stdout) == (expected.returncode, expected.stdout)
    assert _counts(env) == before


def test_an_agents_process_never_uses_nor_starts_a_daemon(env, replay, daemon_dir):
    proc = llmos(*route(replay), env={**env, "LLMOS_AGENT_PROCESS": "1"})
    assert proc.returncode == 0
    time.sleep(0.5)
    assert daemon_pids(daemon_dir) == [] and list(daemon_dir.iterdir()) == []


def test_a_process_whose_ancestor_is_an_agents_is_refused_by_the_daemon(env, replay):
    served(route(replay), env)
    before = _counts(env)
    # the marker is in the parent's environment only: the client itself does not see it
    script = ("import os, subprocess, sys; env = dict(os.environ); "
              "env.pop('LLMOS_AGENT_PROCESS'); "
              "sys.exit(subprocess.run(sys.argv[1:], env=env).returncode)")
    proc = subprocess.run([sys.executable, "-c", script, str(LLMOS), *route(replay)],
                          env={**env, "LLMOS_AGENT_PROCESS": "1"}, capture_output=True,
                          timeout=300, check=False)
    expected = answer(env, replay)
    assert (proc.returncode, proc.stdout) == (expected.returncode, expected.stdout)
    pid, requests, fallbacks = _counts(env)
    assert (pid, requests) == before[:2] and fallbacks == before[2] + 1


def _answered_in_process(env, replay, record: Path, *, mine=None) -> None:
    """``llmos route`` gave the in-process answer, and the planted listener got nothing."""
    out = llmos(*route(replay), env=mine or env)
    expected = answer(env, replay)
    assert (out.returncode, out.stdout) == (expected.returncode, expected.stdout)
    time.sleep(0.5)
    if mine is None:
        assert record.read_text().split() == ["0", "0"]  # connected, got nothing
    else:
        assert not record.exists()  # never even connected


def _plant(env, tmp_path, socket_path: Path, wrapper: list[str], python: str):
    record = tmp_path / "record"
    fake = tmp_path / "fake.py"
    fake.write_text(FAKE)
    proc = subprocess.Popen([*wrapper, python, str(fake), str(socket_path), str(record)],
                            env={"PATH": env["PATH"]}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    wait_for(Path(str(record) + ".ready"), proc)
    return proc, record


def test_a_socket_planted_by_another_user_never_receives_anything(env, replay, tmp_path,
                                                                  daemon_dir):
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root (to act as another user) and setpriv")
    target = Path(status(env)["socket"])
    theirs = Path(tempfile.mkdtemp(prefix="llmosd-theirs-", dir="/tmp"))
    theirs.chmod(0o777)
    proc, record = _plant(env, theirs, theirs / "s",
                          ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
                          "/usr/bin/python3")
    try:
        os.rename(theirs / "s", target)  # as if it had been put there
        _answered_in_process(env, replay, record)
    finally:
        proc.kill()
        proc.communicate()
        shutil.rmtree(theirs, ignore_errors=True)


def test_a_socket_in_a_directory_others_can_write_is_never_used(env, replay, tmp_path,
                                                                daemon_dir):
    shared = daemon_dir / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    mine = {**env, "LLMOS_DAEMON_DIR": str(shared)}
    target = Path(status(mine)["socket"])
    proc, record = _plant(env, tmp_path, target, [], sys.executable)
    try:
        _answered_in_process(env, replay, record, mine=mine)
    finally:
        proc.kill()
        proc.communicate()


def test_a_listener_in_another_namespace_never_receives_anything(env, replay, tmp_path,
                                                                 daemon_dir):
    target = Path(status(env)["socket"])
    proc, record = _plant(env, tmp_path, target,
                          [bwrap(), "--dev-bind", "/", "/", "--unshare-pid",
                           "--die-with-parent"], sys.executable)
    try:
        _answered_in_process(env, replay, record)
    finally:
        proc.kill()
        proc.communicate()
    # and a real daemon replaces the planted socket afterwards
    start(env)
