"""A workspace that cannot be one is a clear message naming the path and the fix, exit 2,
never a traceback: a file, under /proc or /sys, unwritable, on a read-only mount."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.badinput.conftest import llmos_command

FIX = "choose a writable directory with --workspace DIR or LLMOS_WORKSPACE=DIR"


def _llmos(workspace, *args, env=None, prefix=()):
    return subprocess.run([*prefix, *llmos_command(), "--workspace", str(workspace), *args],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("path", ["/proc/llmos-test", "/sys/llmos-test", "/proc/self/ws"])
def test_pseudo_filesystems(llmos_cli, path):
    result = llmos_cli("--workspace", path, "runs", "list")
    assert result.exit_code == 2, result.output
    assert "kernel pseudo-filesystem" in result.output and FIX in result.output
    assert "Traceback" not in result.output


def test_a_file_or_a_path_under_a_file(tmp_path, llmos_env):
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = _llmos(afile / "sub", "traces", "list")
    assert result.returncode == 2, result.stderr
    assert f"cannot create workspace {afile / 'sub'}" in result.stderr
    assert "Not a directory" in result.stderr and FIX in result.stderr
    env = {**os.environ, "LLMOS_WORKSPACE": str(afile)}
    result = subprocess.run([*llmos_command(), "runs", "list"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 2 and str(afile) in result.stderr
    assert "Traceback" not in result.stderr


def test_workspace_api_names_the_path():
    from llmos.errors import EXIT_USAGE, exit_code_for
    from llmos.workspace import Workspace, WorkspaceError

    with pytest.raises(WorkspaceError, match="/proc/x is on a kernel") as caught:
        Workspace.open("/proc/x")
    assert exit_code_for(caught.value) == EXIT_USAGE


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bwrap for a read-only mount")
@pytest.mark.parametrize("command", [("runs", "list"), ("traces", "list"),
                                     ("route", "write hello.py"), ("run", "write hello.py")])
def test_an_existing_workspace_on_a_read_only_mount(tmp_path, llmos_env, command):
    workspace = tmp_path / "ws"
    assert _llmos(workspace, "runs", "list").returncode == 0  # laid out, database created
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for target, expect in ((workspace, "is not writable"), (fresh, "cannot create workspace")):
        readonly = ("bwrap", "--dev-bind", "/", "/", "--ro-bind", str(target), str(target))
        probe = subprocess.run([*readonly, "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip(f"bwrap cannot bind here: {probe.stderr.strip()}")
        result = _llmos(target, *command, prefix=readonly)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert expect in result.stderr and "read-only file system" in result.stderr.lower()
        assert str(target) in result.stderr and FIX in result.stderr
        assert "Traceback" not in result.stderr and "OperationalError" not in result.stderr


@pytest.fixture
def interpreter_open_to_others():
    """Let another user run this interpreter and import llmos: tox makes ``.tox`` 0700.
    Folders on the way to sys.path's entries get o+rx for the test, and their modes back
    after it."""
    import llmos

    changed: dict[Path, int] = {}
    for entry in {*sys.path, str(Path(llmos.__file__).parent)}:
        path = Path(entry or ".").resolve()
        for folder in (path, *path.parents):
            if folder.is_dir() and folder not in changed:
                mode = os.stat(folder).st_mode
                if mode & 0o005 != 0o005:
                    changed[folder] = mode
                    os.chmod(folder, mode | 0o005)
    yield
    for folder, mode in changed.items():
        os.chmod(folder, mode)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to drop to another user (chmod does not stop root)")
def test_an_unwritable_workspace_for_a_normal_user(tmp_path_factory, llmos_env,
                                                   interpreter_open_to_others):
    base = tmp_path_factory.mktemp("shared")
    workspace = base / "ws"
    assert _llmos(workspace, "runs", "list").returncode == 0
    top = Path(tempfile.gettempdir()).resolve()
    for path in (base, *base.parents):
        if path == top or path == path.parent:
            break
        os.chmod(path, os.stat(path).st_mode | 0o005)  # others may enter and read
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    env = {**os.environ, "HOME": str(base)}
    result = _llmos(workspace, "traces", "list", env=env, prefix=nobody)
    if "Permission denied" in result.stderr and "python" in result.stderr.lower():
        pytest.skip("the interpreter is not readable by another user here")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "is not writable" in result.stderr and "permission denied" in result.stderr
    assert FIX in result.stderr and "Traceback" not in result.stderr
    result = _llmos(base / "new", "runs", "list", env=env, prefix=nobody)
    assert result.returncode == 2 and "Permission denied" in result.stderr
