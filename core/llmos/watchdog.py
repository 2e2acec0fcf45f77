"""The watchdog: a deadline for any awaited step, reported clearly when it is hit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

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
