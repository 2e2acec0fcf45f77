"""Running a goal: route it, run the chosen mode under the watchdog, record everything.

route (bids, rules, budget) → start the run record → the mode runs under the watchdog
(paid work reserves and commits its own cost) → finish the record → keep the trace of a
successful run → log what the run cost and what replay saved.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from llmos.config import ConfigError
from llmos.economy import LowBatteryError
from llmos.watchdog import DeadlineExceeded, watch

if TYPE_CHECKING:
    from llmos.calls import CallContext
    from llmos.cortex.bridge import Progress
    from llmos.durable.resume import ResumePoint
    from llmos.goals import Goal
    from llmos.kernel import Kernel
    from llmos.learning.dispatcher import Bid
    from llmos.learning.matching import Candidate


@dataclass
class ModeOutcome:
    """What a mode reports back to the runner."""

    success: bool
    output: str = ""
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    model_requests: int = 0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Mode(Protocol):
    """A dispatch mode, registered through ``llmos_register_dispatch_modes``."""

    name: str
    description: str
    paid: bool

    def bid(self, goal: Goal, candidates: list[Candidate], kernel: Kernel) -> Bid | None: ...

    async def run(
        self, goal: str, context: CallContext, *, progress: Progress | None
    ) -> ModeOutcome: ...


@dataclass
class RunResult:
    """The result of ``llmos run --json`` and ``LLMOS.execute``; keys are stable."""

    run_id: str
    goal: str
    mode: str
    success: bool
    cost_usd: float
    input_tokens: int
    output_tokens: int
    duration_s: float
    tool_calls: int
    output: str
    error: str | None = None
    model_requests: int = 0
    trace_id: str | None = None
    matched_trace: str | None = None
    confidence: float | None = None
    saved_usd: float = 0.0
    diverged: bool = False
    parent_run: str | None = None
    refusals: list[dict[str, Any]] = field(default_factory=list)
    """Each call the policy refused: {tool, rule, reason}."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


REFUSED = "nothing done: refused by policy"
"""How the error of a run that achieved nothing because of a refusal begins (exit 4)."""


async def execute(
    kernel: Kernel, goal: str, *, mode: str | None = None, progress: Progress | None = None,
    parent_run: str | None = None, extra: dict[str, Any] | None = None,
    run_id: str | None = None, resume: ResumePoint | None = None,
) -> RunResult:
    """Route and run ``goal``. ``parent_run`` links a sub-goal's run to the run it is part
    of; ``extra`` goes into the run's ``CallContext.extra`` (e.g. the sub-goal's agent);
    ``run_id`` is the id to record it under (a queued goal's); ``resume`` continues a
    stopped run where it stopped (``llmos.durable.resume``), same id, same mode."""
    from llmos.learning.dispatcher import route as route_goal

    if resume is not None:
        goal, mode, run_id = resume.run.goal, resume.run.mode, resume.run.id
        extra = {**(extra or {}), "resume": resume}
    goal = goal.strip()
    if not goal:
        raise ConfigError('the goal is empty: say what you want done, e.g. llmos run "..."')
    route = route_goal(kernel, goal, forced=mode)
    chosen: Mode = kernel.dispatch_modes.get(route.chosen).value
    if hasattr(chosen, "preflight"):
        chosen.preflight(kernel)
    run_id = run_id or uuid.uuid4().hex[:16]
    memory = kernel.memory
    if resume is not None:
        resume.reopen(kernel)
    else:
        memory.start_run(goal, chosen.name, run_id=run_id, parent_run=parent_run)
    kernel.bus.publish("run.started", run_id=run_id, goal=goal, mode=chosen.name,
                       parent_run=parent_run)
    context = kernel.context(run_id=run_id, route=route, goal=goal, mode=chosen.name,
                             parent_run=parent_run, **(extra or {}))
    started = time.perf_counter()
    try:
        outcome = await watch(
            chosen.run(goal, context, progress=progress),
            seconds=kernel.config.cortex.timeout_s,
            what=f"{chosen.name} run",
        )
    except DeadlineExceeded as exc:
        outcome = ModeOutcome(success=False, error=str(exc),
                              cost_usd=sum(context.extra.get("charged_usd", [])))
    except LowBatteryError as exc:
        memory.finish_run(run_id, success=False, error=str(exc),
                          duration_s=time.perf_counter() - started,
                          cost_usd=sum(context.extra.get("charged_usd", [])))
        raise
    except (asyncio.CancelledError, KeyboardInterrupt):
        from llmos.watchdog import interruption

        stopped = interruption()
        tokens = context.extra.get("tokens", [])
        memory.finish_run(run_id, success=False, status="interrupted",
                          error=stopped.reason if stopped else "interrupted",
                          duration_s=time.perf_counter() - started,
                          cost_usd=sum(context.extra.get("charged_usd", [])),
                          input_tokens=sum(t[0] for t in tokens),
                          output_tokens=sum(t[1] for t in tokens))
        kernel.bus.publish("run.interrupted", run_id=run_id,
                           cost_usd=sum(context.extra.get("charged_usd", [])))
        raise
    except Exception as exc:
        from llmos.errors import exit_code_for

        if exit_code_for(exc) is None:
            raise
        outcome = ModeOutcome(success=False, error=str(exc))
    duration = time.perf_counter() - started
    if resume is not None:  # what the run spent before it stopped is part of its cost
        outcome.cost_usd += resume.spent_usd
        outcome.input_tokens += resume.run.input_tokens
        outcome.output_tokens += resume.run.output_tokens
    refusals = list(context.extra.get("refusals", ()))
    if outcome.success and refusals and not _achieved_something(kernel, run_id):
        outcome.success = False
        outcome.error = f"{REFUSED}: " + "; ".join(
            f"{r['tool']}: {r['reason']}" for r in refusals[:3]) + (
            f" (and {len(refusals) - 3} more)" if len(refusals) > 3 else "")
    trace_id = _finish(kernel, run_id, outcome, duration)
    bid = route.bid_of(chosen.name)
    matched = next((c.trace for c in route.candidates if bid and c.trace.id == bid.trace_id),
                   None)
    saved = (matched.estimated_cost_usd - outcome.cost_usd) if matched and outcome.success else 0.0
    result = RunResult(
        run_id=run_id,
        goal=goal,
        mode=chosen.name,
        success=outcome.success,
        cost_usd=round(outcome.cost_usd, 6),
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        duration_s=round(duration, 3),
        tool_calls=outcome.tool_calls,
        output=outcome.output,
        error=outcome.error,
        model_requests=outcome.model_requests,
        trace_id=trace_id,
        matched_trace=matched.id if matched else None,
        confidence=round(bid.confidence, 4) if bid else None,
        saved_usd=round(saved, 6),
        diverged=bool(outcome.details.get("diverged")),
        parent_run=parent_run,
        refusals=refusals,
    )
    from llmos.learning.stats import DispatchLog

    DispatchLog(kernel.db).record(**result.as_dict())
    await _after_run(kernel, route, result)
    kernel.bus.publish("run.finished", **result.as_dict())
    return result


async def _after_run(kernel: Kernel, route: Any, result: RunResult) -> None:
    """Crystallizers see every finished run (shadow comparisons, compiling a proven goal);
    one that fails is logged and never fails the run."""
    for entry in kernel.crystallizers:
        observe = getattr(entry.value, "after_run", None)
        if observe is None:
            continue
        try:
            await observe(kernel, route, result)
        except Exception as exc:
            kernel.bus.publish("crystallizer.error", run_id=result.run_id, plugin=entry.plugin,
                               error=f"{type(exc).__name__}: {exc}")


def _finish(kernel: Kernel, run_id: str, outcome: ModeOutcome, duration: float) -> str | None:
    """Close the run record; a successful run's steps become a trace (unless it was a
    verified replay, whose trace already exists and just gained evidence)."""
    memory = kernel.memory
    memory.finish_run(
        run_id,
        success=outcome.success,
        cost_usd=outcome.cost_usd,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        duration_s=duration,
        output=outcome.output,
        error=outcome.error,
    )
    replayed = outcome.details.get("trace_id")
    if not outcome.success or outcome.details.get("simulated"):
        return None  # a simulated run never becomes a trace: its effects did not happen
    if replayed and not outcome.details.get("diverged"):
        memory.set_run_trace(run_id, replayed)
        return replayed
    from llmos.memory.runlog import promote_run_to_trace

    if outcome.details.get("diverged") and not _model_changed_things(kernel, run_id):
        return None  # the work was already done: a no-op never stands in for a working trace
    trace = promote_run_to_trace(memory, run_id)
    return getattr(trace, "id", None)


def _model_changed_things(kernel: Kernel, run_id: str) -> bool:
    """Whether the model made a call that may change things (not only looked around)."""
    from llmos.tools import is_read_only

    return any(step.source == "model" and not step.outcome.refused
               and not is_read_only(step.tool, kernel.tools)
               for step in kernel.memory.run_steps(run_id))


def _achieved_something(kernel: Kernel, run_id: str) -> bool:
    """Whether a run that had calls refused still did something: a call that may change
    things succeeded, or (when every refused call only read) any call succeeded."""
    from llmos.tools import is_read_only

    steps = kernel.memory.run_steps(run_id)
    done = [s for s in steps if not s.outcome.refused and not s.outcome.is_error]
    if any(not is_read_only(s.tool, kernel.tools) for s in done):
        return True
    refused_changes = any(s.outcome.refused and not is_read_only(s.tool, kernel.tools)
                          for s in steps)
    return bool(done) and not refused_changes
