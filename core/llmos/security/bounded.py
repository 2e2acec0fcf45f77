"""Run a child process with bounded output, time and resources.

``run_bounded`` streams the child's stdout and stderr through a selector into
``BoundedBuffer``s, each keeping at most ``max_bytes`` (a head and a tail, with a
``[... truncated N bytes ...]`` marker between them), so memory stays flat however
much the child prints. On the deadline the child's whole process group is killed
(with bwrap, the sandbox's PID namespace goes with it). An optional extra pipe (``side``)
carries a short report from the child, e.g. its final working directory.

``limit_prefix`` renders the resource limits (file size, processes, address space) as
``ulimit`` commands for the shell that starts the sandboxed command: set hard, so the
command cannot raise them again. Limits already lower on the host are kept.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass

DEFAULT_MAX_OUTPUT_BYTES = 200_000
_CHUNK = 65_536
SIDE_MAX_BYTES = 8_192

# Process groups of the children run_bounded is running now (killed by kill_running).
_RUNNING: set[int] = set()


def truncation_marker(omitted: int) -> str:
    """The text that stands for ``omitted`` bytes left out of an output."""
    return f"\n[... truncated {omitted} bytes ...]\n"


class BoundedBuffer:
    """The first and last ``max_bytes // 2`` bytes of a stream, and how much there was."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(int(max_bytes), 2)
        self._head_cap = self.max_bytes // 2
        self._tail_cap = self.max_bytes - self._head_cap
        self.head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_len = 0
        self.total = 0

    def write(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self._tail.append(data)
        self._tail_len += len(data)
        while self._tail_len - len(self._tail[0]) >= self._tail_cap:
            self._tail_len -= len(self._tail.popleft())

    @property
    def truncated(self) -> int:
        """How many bytes were left out (0 when everything fit)."""
        return max(0, self.total - self.max_bytes)

    def text(self) -> str:
        tail = b"".join(self._tail)
        if self.total <= self.max_bytes:
            return (bytes(self.head) + tail).decode("utf-8", "replace")
        tail = tail[-self._tail_cap:]
        omitted = self.total - len(self.head) - len(tail)
        return (bytes(self.head).decode("utf-8", "replace") + truncation_marker(omitted)
                + tail.decode("utf-8", "replace"))


@dataclass(frozen=True)
class Limits:
    """Resource limits for a sandboxed command (None: leave as it is)."""

    file_size_bytes: int | None = 1 << 30
    processes: int | None = 512
    memory_bytes: int | None = 8 << 30

    def prefix(self) -> str:
        """``ulimit`` commands (hard and soft) for the shell that runs the command."""
        parts = []
        for flag, value, unit, res in (
            ("-f", self.file_size_bytes, 1024, resource.RLIMIT_FSIZE),
            ("-u", self.processes, 1, resource.RLIMIT_NPROC),
            ("-v", self.memory_bytes, 1024, resource.RLIMIT_AS),
        ):
            if value is None:
                continue
            hard = resource.getrlimit(res)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            parts.append(f"ulimit {flag} {max(1, value // unit)}")
        return "; ".join(parts)


@dataclass
class BoundedRun:
    """What ``run_bounded`` saw."""

    returncode: int
    stdout: BoundedBuffer
    stderr: BoundedBuffer
    side: bytes
    timed_out: bool


def run_bounded(argv: list[str], *, cwd: str, env: dict[str, str], stdin: str | None,
                timeout: float, max_bytes: int,
                side: tuple[int, int] | None = None) -> BoundedRun:
    """Run ``argv`` in its own session, reading its output as it comes.

    ``side`` is a pipe ``(read, write)`` from ``os.pipe()`` whose write end the child
    inherits under the same number (``argv`` names it); both ends are closed here.
    """
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, start_new_session=True,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(side[1],) if side else (),
        )
    except BaseException:
        if side:
            os.close(side[0])
            os.close(side[1])
        raise
    _RUNNING.add(proc.pid)
    if side:
        os.close(side[1])
        side = (side[0], -1)
    out, err = BoundedBuffer(max_bytes), BoundedBuffer(max_bytes)
    side_buf = bytearray()
    selector = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    selector.register(proc.stdout, selectors.EVENT_READ, out)
    selector.register(proc.stderr, selectors.EVENT_READ, err)
    if side:
        selector.register(side[0], selectors.EVENT_READ, side_buf)
    if stdin is not None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(stdin.encode())
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
    deadline = time.monotonic() + timeout
    timed_out = False
    exited_at: float | None = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 2.0:
                break  # a background child holds the pipes open; it is killed below
            wait = min(deadline - now, 0.25 if exited_at is None else 0.1)
            for key, _ in selector.select(wait):
                fd = key.fd
                try:
                    data = os.read(fd, _CHUNK)
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                sink = key.data
                if isinstance(sink, BoundedBuffer):
                    sink.write(data)
                elif len(sink) < SIDE_MAX_BYTES:
                    sink += data[: SIDE_MAX_BYTES - len(sink)]
    finally:
        selector.close()
        if side:
            os.close(side[0])
        _kill_group(proc)
        proc.wait()
        _RUNNING.discard(proc.pid)
        for stream in (proc.stdout, proc.stderr):
            stream.close()
    return BoundedRun(proc.returncode, out, err, bytes(side_buf), timed_out)


def kill_running() -> None:
    """Kill every child ``run_bounded`` is running now, with its process group: a command
    stopped by a signal leaves nothing behind, whichever thread was waiting on it (not
    left to the sandbox's parent-death signal alone)."""
    for pid in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child's process group (its whole tree unless a member left the session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
