"""Which process owns a running run, and whether it is still alive.

A run is recorded with its owner's pid, host name and process start time. While its
status is still ``running``, readers check the owner: when that process is gone (or the
pid now belongs to another process) the run reads as ``interrupted``. Runs owned by
another host are taken to be alive, since nothing here can tell.
"""

from __future__ import annotations

import os
import socket
from functools import cache

from llmos.memory.models import RunOwner


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            data = f.read()
    except OSError:
        return None
    return data.rsplit(")", 1)[-1].split()  # fields after "pid (comm)"


def process_start(pid: int) -> str | None:
    """A token for when a process started (Linux: clock ticks since boot), else None."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


@cache
def _own_start(pid: int) -> str | None:
    return process_start(pid)  # keyed by pid: a forked child looks itself up again


@cache
def _hostname() -> str:
    return socket.gethostname()


def current_owner() -> RunOwner:
    pid = os.getpid()
    return RunOwner(pid=pid, host=_hostname(), started=_own_start(pid))


def owner_alive(owner: RunOwner | None) -> bool:
    """False only when we can tell the owning process is gone."""
    if owner is None or owner.host != _hostname():
        return True
    if owner.pid == os.getpid():
        return owner.started is None or owner.started == _own_start(owner.pid)
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return True
    fields = _proc_stat(owner.pid)
    if fields is not None:
        if fields[0] in ("Z", "X"):  # a zombie has finished
            return False
        if owner.started is not None and len(fields) > 19 and fields[19] != owner.started:
            return False  # the pid was reused by another process
    return True
