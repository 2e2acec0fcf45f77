"""``llmos worker``: claim queued goals and run them, until SIGTERM.

A worker launches the workspace's DBOS engine under a new executor id, listens on the
``llmos-goals`` queue (each goal is dequeued by exactly one worker) and runs each goal
through the router with the workspace's kernel, so every worker shares the memory (its
replays) and the ledger (its budget) of the workspace's memory backend. Its engine also
fires due schedules. Its monitor beats in the executors table and recovers the goals of
executors gone silent (``liveness``).

SIGTERM or Ctrl-C stops it gracefully: no new goal is taken, the goals it runs are given
``grace_s`` to finish; one that does not is left pending for another worker to recover.
A second signal leaves at once (its goals are recovered the same way).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmos.durable import engine


@dataclass
class WorkerOptions:
    workspace: Any = None
    settings: list[str] = field(default_factory=list)
    concurrency: int = 1
    recover_after_s: float = 15.0
    heartbeat_s: float = 1.0
    grace_s: int = 30
    poll_s: float = 0.2


def serve(options: WorkerOptions, log: Callable[[str], None] | None = None) -> int:
    """Run a worker until it is told to stop; returns the exit code."""
    from llmos.kernel import Kernel

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    url = engine.database_url(Kernel(options.workspace, flags=options.settings))
    from llmos.durable import workflows
    from llmos.durable.liveness import Liveness, Monitor

    workflows.SITE.update(workspace=options.workspace, settings=list(options.settings),
                          log=log)
    executor_id = engine.new_executor_id("worker")
    stop = threading.Event()
    signals = {"count": 0}

    def on_signal(signum: int, _frame: Any) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            os._exit(128 + signum)
        log(f"worker {executor_id}: stopping (signal {signum}); goals in progress get "
            f"{options.grace_s} s to finish")
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    dbos = engine.launch(url, executor_id, scheduler_poll_s=1.0)
    liveness = Liveness(url)
    monitor: Monitor | None = None
    left: list[str] = []
    try:
        dbos.register_queue(engine.GOALS_QUEUE, worker_concurrency=options.concurrency,
                            polling_interval_sec=options.poll_s,
                            on_conflict="always_update")
        monitor = Monitor(liveness, executor_id, "worker", interval_s=options.heartbeat_s,
                          recover_after_s=options.recover_after_s, on_error=log)
        monitor.start()
        where = "PostgreSQL" if engine.is_shared(url) else url.removeprefix("sqlite:///")
        log(f"worker {executor_id}: taking goals from {engine.GOALS_QUEUE} on {where} "
            f"(concurrency {options.concurrency}); SIGTERM or Ctrl-C stops it")
        stop.wait()
    finally:
        engine.shutdown(options.grace_s)
        left = _pending(url, executor_id)
        if monitor is not None:
            monitor.stop(forget=not left)
        liveness.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if left:
        log(f"worker {executor_id}: {len(left)} goal(s) left unfinished; another worker "
            f"recovers them after {options.recover_after_s:g} s")
    else:
        log(f"worker {executor_id}: stopped")
    return 0


def _pending(url: str, executor_id: str) -> list[str]:
    dbos = engine.client(url)
    try:
        found = dbos.list_workflows(status="PENDING", executor_id=executor_id)
        return [w.workflow_id for w in found]
    except Exception:
        return ["(unknown)"]
    finally:
        dbos.destroy()
