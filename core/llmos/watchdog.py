"""The watchdog: a deadline for any awaited step, and signals that stop work cleanly.

``watch`` cancels a step that overruns its deadline. ``run_interruptible`` runs a
command's work so that Ctrl-C, SIGTERM and SIGHUP cancel it at once: the work settles
what it was doing (budget, run record) on its way out, the command exits 128 + the
signal number, and a second signal exits immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """A watched step did not finish in time."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"{what} did not finish within {seconds:g} s (watchdog deadline)")
        self.what = what
        self.seconds = seconds


async def watch(awaitable: Awaitable[T], *, seconds: float, what: str) -> T:
    """Await ``awaitable``, cancelling it and raising DeadlineExceeded after ``seconds``."""
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await awaitable
    except TimeoutError:
        if deadline.expired():
            raise DeadlineExceeded(what, seconds) from None
        raise


# --------------------------------------------------------------------------- signals

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Interruption:
    """Which signal stopped the work, for the run record and the exit code."""

    signum: int

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def reason(self) -> str:
        what = "Ctrl-C" if self.signum == signal.SIGINT else self.name
        return f"interrupted by {what}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_current: Interruption | None = None


def interruption() -> Interruption | None:
    """The signal that is stopping this process's work, if any."""
    return _current


class Interrupted(Exception):
    """The work was stopped by a signal (``interruption`` says which)."""

    def __init__(self, interruption: Interruption) -> None:
        super().__init__(interruption.reason)
        self.interruption = interruption


def run_interruptible(coro: Coroutine[Any, Any, T], *, on_force: Callable[[], None] | None = None
                      ) -> T:
    """``asyncio.run(coro)``, where SIGINT, SIGTERM and SIGHUP cancel the work at once
    (it settles what it was doing and is recorded as interrupted) and raise
    ``Interrupted``; a second signal exits at once (``on_force`` runs first)."""
    global _current
    _current = None

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(signum: int) -> None:
            global _current
            if _current is not None:
                if on_force is not None:
                    with contextlib.suppress(Exception):
                        on_force()
                from llmos.security.bounded import kill_running

                kill_running()
                os._exit(128 + signum)
            _current = Interruption(signum)
            task.cancel(_current.reason)

        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, stop, signum)
        try:
            return await coro
        finally:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        if _current is None:
            raise
        raise Interrupted(_current) from None
    finally:
        _close(loop, wait_for_threads=_current is None)


def _close(loop: asyncio.AbstractEventLoop, *, wait_for_threads: bool) -> None:
    """``asyncio.run``'s cleanup, except that a stopped command does not wait for worker
    threads (a replayed command runs in one; its sandbox dies with llmos)."""
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        if wait_for_threads:
            loop.run_until_complete(loop.shutdown_default_executor())
        else:
            from llmos.security.bounded import kill_running

            kill_running()  # the commands those threads wait on end with this one
    finally:
        loop.close()
