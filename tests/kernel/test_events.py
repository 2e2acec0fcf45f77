"""The event bus: bounded, and a slow subscriber never blocks publishers."""

from __future__ import annotations

import asyncio

from llmos.events import EventBus


async def test_100k_events_with_a_slow_subscriber_do_not_deadlock():
    bus = EventBus(maxsize=1000)
    fast_seen = 0
    slow_seen = 0

    async def fast(event):
        nonlocal fast_seen
        fast_seen += 1

    async def slow(event):
        nonlocal slow_seen
        slow_seen += 1
        await asyncio.sleep(0.01)

    bus.subscribe("tool.*", fast)
    slow_sub = bus.subscribe("*", slow)

    async def publish_all():
        for i in range(100_000):
            bus.publish("tool.finished", i=i)
            if i % 500 == 0:
                await asyncio.sleep(0)  # let subscribers run, as a real kernel would

    await asyncio.wait_for(publish_all(), timeout=30)
    await asyncio.sleep(0.05)
    assert bus.published == 100_000
    assert slow_sub.dropped > 90_000  # the slow one lost events instead of blocking
    assert slow_sub.queue.qsize() <= 1000
    assert fast_seen > 0
    await bus.close()


async def test_a_subscriber_sees_events_in_order_and_by_pattern():
    bus = EventBus()
    sub = bus.subscribe("run.*")
    bus.publish("tool.started", n=0)
    bus.publish("run.started", n=1)
    bus.publish("run.finished", n=2)
    first, second = await sub.get(), await sub.get()
    assert [first.topic, second.topic] == ["run.started", "run.finished"]
    assert sub.queue.empty()


async def test_a_failing_handler_does_not_stop_the_bus():
    bus = EventBus()
    seen = []

    def broken(event):
        raise RuntimeError("boom")

    sub = bus.subscribe("*", broken)
    bus.subscribe("*", lambda e: seen.append(e.data["n"]))
    for n in range(3):
        bus.publish("x", n=n)
    await asyncio.sleep(0.01)
    assert seen == [0, 1, 2]
    assert sub.errors == 3
    await bus.close()
