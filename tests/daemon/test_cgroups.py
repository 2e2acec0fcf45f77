"""A served command lives in its client's control groups: one daemon serves every
terminal's scope (a systemd scope per terminal tab, a job's memory cgroup), and the
command is limited and accounted where the client is, as if it had run in process."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest

from llmos import daemon

from .conftest import LLMOS, plugin_dir, served, status


def _new_cgroup() -> tuple[str, Path] | None:
    """A fresh child of this process's cgroup in some hierarchy we may write, or None."""
    with open("/proc/self/cgroup", "rb") as f:
        mine = daemon._hierarchies(f.read())
    for controllers, point in daemon._cgroup_mounts().items():
        if controllers not in mine:
            continue
        made = Path(point.rstrip("/") + mine[controllers]) / f"llmos-test-{uuid.uuid4().hex[:8]}"
        try:
            made.mkdir()
        except OSError:
            continue
        return controllers, made
    return None


@pytest.fixture
def cgroup():
    found = _new_cgroup()
    if found is None:
        pytest.skip("no cgroup hierarchy here lets this user make a cgroup")
    yield found
    with contextlib.suppress(OSError):
        found[1].rmdir()


def test_a_client_in_another_cgroup_is_served_and_its_command_lives_there(
        env, tmp_path, cgroup):
    controllers, path = cgroup
    plugins = plugin_dir(tmp_path, "cgprobe", 'open("/proc/self/cgroup").read()')
    workspace = tmp_path / "ws"
    workspace.mkdir()
    mine = {**env, "LLMOS_PLUGIN_DIR": str(plugins)}
    args = ["-w", str(workspace), "tools", "call", "cgprobe", "--input", "{}"]
    here = served(args, mine)
    # the same daemon, for a client moved into the new cgroup first
    wrapper = tmp_path / "in-cgroup"
    wrapper.write_text(f'#!/bin/sh\necho $$ > "{path}/cgroup.procs" && exec "$0.real" "$@"\n')
    wrapper.chmod(0o755)
    (tmp_path / "in-cgroup.real").symlink_to(LLMOS)
    before = status(mine)["daemon"]
    there = served(args, mine, exe=wrapper)
    after = status(mine)["daemon"]
    assert here.returncode == there.returncode == 0, (here.stderr, there.stderr)
    relative = "/" + str(path.relative_to(daemon._cgroup_mounts()[controllers]))
    assert relative not in here.stdout.decode()
    assert f":{relative}\n" in there.stdout.decode(), there.stdout
    assert before["pid"] == after["pid"]  # one daemon for both cgroups
