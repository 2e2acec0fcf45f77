"""An async event bus: pub/sub with a bounded queue per subscriber.

Publishing never waits: when a subscriber's queue is full, its oldest event is dropped and
counted, so a slow subscriber can lose events but can never block the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[["Event"], Awaitable[None] | None]


@dataclass(frozen=True)
class Event:
    topic: str
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)


class Subscription:
    """A subscriber's queue; iterate it, or let the bus run a handler over it."""

    def __init__(self, pattern: str, maxsize: int) -> None:
        self.pattern = pattern
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.delivered = 0
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    def matches(self, topic: str) -> bool:
        return fnmatch.fnmatchcase(topic, self.pattern)

    def offer(self, event: Event) -> None:
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.queue.get_nowait()
                    self.dropped += 1

    async def get(self) -> Event:
        event = await self.queue.get()
        self.delivered += 1
        return event


class EventBus:
    """Topics are dotted names (``tool.finished``); subscribers use glob patterns (``tool.*``)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.maxsize = maxsize
        self._subs: list[Subscription] = []
        self.published = 0

    def subscribe(self, pattern: str = "*", handler: Handler | None = None) -> Subscription:
        sub = Subscription(pattern, self.maxsize)
        self._subs.append(sub)
        if handler is not None:
            sub._task = asyncio.get_running_loop().create_task(self._pump(sub, handler))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        if sub._task is not None:
            sub._task.cancel()

    def publish(self, topic: str, **data: Any) -> Event:
        event = Event(topic, data)
        self.published += 1
        for sub in self._subs:
            if sub.matches(topic):
                sub.offer(event)
        return event

    async def _pump(self, sub: Subscription, handler: Handler) -> None:
        while True:
            event = await sub.get()
            try:
                result = handler(event)
                if asyncio.iscoroutine(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:  # a failing subscriber must not stop the bus
                sub.errors += 1

    async def close(self) -> None:
        for sub in list(self._subs):
            self.unsubscribe(sub)
            if sub._task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await sub._task
