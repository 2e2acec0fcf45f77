"""The run log as the run executors use it: record a run from start to finish, and keep a
successful run's trace.

    with recorded_run(kernel.memory, goal, mode="learner") as run:
        ...  # tool calls with context.run_id = run.id are captured as steps
        run.finish(success=True, cost_usd=0.012, output=text)
    trace = promote_run_to_trace(kernel.memory, run.id)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llmos.memory.base import MemoryBackend, TraceNotFound
from llmos.memory.models import RunRecord, Trace


def _same_steps(a: Trace, b: Trace) -> bool:
    """Same calls with the same outcomes and observations (and the same answer when there
    are no calls): one more instance of the same trace, not another trace."""
    def key(t: Trace) -> list[tuple]:
        return [(s.tool, s.input, s.outcome.is_error, s.outcome.exit_code,
                 s.outcome.observation) for s in t.steps]

    return key(a) == key(b) and (bool(a.steps) or a.answer == b.answer) and \
        [s.value for s in a.slots] == [s.value for s in b.slots]


def promote_run_to_trace(memory: MemoryBackend, run_id: str, *,
                         include_errors: bool = True) -> Trace | None:
    """Keep a successful run's trace; return it, or None when there is nothing to keep.

    Only a run that succeeded is promoted, and only when it made tool calls or gave an
    answer (a question answered from knowledge replays its answer). When a trace
    of the same goal signature with the same calls exists already, that trace is counted
    as used successfully instead of being duplicated. The run is linked to the trace.
    Calling it twice for a run returns the same trace.
    """
    run = memory.get_run(run_id)
    if run.status != "succeeded":
        return None
    if run.trace_id:
        with contextlib.suppress(TraceNotFound):
            return memory.get_trace(run.trace_id)
    trace = memory.trace_from_run(run_id, include_errors=include_errors)
    if not trace.steps and (not trace.answer.strip() or run.step_count):
        return None  # nothing to replay: no answer, or every call it tried was refused
    for existing in memory.find_traces(signature=trace.goal_signature):
        if _same_steps(existing, trace):
            updated = memory.update_trace_stats(existing.id, "success")
            memory.set_run_trace(run_id, existing.id)
            return updated
    saved = memory.save_trace(trace)
    memory.set_run_trace(run_id, saved.id)
    return saved


@dataclass
class RunHandle:
    """A run being recorded; ``finish`` says how it ended."""

    memory: MemoryBackend
    id: str
    record: RunRecord | None = None

    @property
    def finished(self) -> bool:
        return self.record is not None

    def finish(self, *, success: bool, **outcome: Any) -> RunRecord:
        self.record = self.memory.finish_run(self.id, success=success, **outcome)
        return self.record


@contextlib.contextmanager
def recorded_run(memory: MemoryBackend, goal: str, mode: str = "learner", *,
                 run_id: str | None = None) -> Iterator[RunHandle]:
    """Start a run record; when the block ends without ``finish``, record the run as failed
    (an exception), interrupted (Ctrl-C, cancellation) or failed with no outcome."""
    handle = RunHandle(memory, memory.start_run(goal, mode, run_id=run_id))
    try:
        yield handle
    except (KeyboardInterrupt, asyncio.CancelledError):
        if not handle.finished:
            handle.finish(success=False, status="interrupted", error="interrupted")
        raise
    except BaseException as exc:
        if not handle.finished:
            handle.finish(success=False, error=f"{type(exc).__name__}: {exc}")
        raise
    if not handle.finished:
        handle.finish(success=False, error="the run ended without reporting an outcome")
