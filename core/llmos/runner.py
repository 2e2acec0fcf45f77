"""Running a goal: choose a mode, pay for it, watch it, and record everything as it goes.

reserve the run's cap (``LowBatteryError`` if it does not fit) → start the run record →
the mode runs under the watchdog → commit the real cost → finish the record → keep the
trace of a successful run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from llmos.config import ConfigError
from llmos.watchdog import DeadlineExceeded, watch

if TYPE_CHECKING:
    from llmos.calls import CallContext
    from llmos.cortex.bridge import Progress
    from llmos.kernel import Kernel


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

    async def run(
        self, goal: str, context: CallContext, *, budget_usd: float, progress: Progress | None
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class UnknownMode(ConfigError):
    pass


def pick_mode(kernel: Kernel, name: str | None) -> Mode:
    name = (name or "LEARNER").upper()
    entry = kernel.dispatch_modes.get(name)
    if entry is None:
        raise UnknownMode(
            f"no dispatch mode named {name!r}; available: {', '.join(kernel.dispatch_modes.names())}"
        )
    return entry.value


async def execute(
    kernel: Kernel, goal: str, *, mode: str | None = None, progress: Progress | None = None
) -> RunResult:
    goal = goal.strip()
    if not goal:
        raise ConfigError("the goal is empty: say what you want done, e.g. llmos run \"...\"")
    chosen = pick_mode(kernel, mode)
    if hasattr(chosen, "preflight"):
        chosen.preflight(kernel)
    run_id = uuid.uuid4().hex[:16]
    cap = kernel.config.budget.run_cap_usd if chosen.paid else 0.0
    reservation = (
        kernel.economy.reserve(cap, run_id=run_id, what=f"{chosen.name} run") if chosen.paid
        else None
    )
    memory = kernel.memory
    memory.start_run(goal, chosen.name, run_id=run_id)
    kernel.bus.publish("run.started", run_id=run_id, goal=goal, mode=chosen.name)
    context = kernel.context(run_id=run_id)
    started = time.perf_counter()
    try:
        outcome = await watch(
            chosen.run(goal, context, budget_usd=cap, progress=progress),
            seconds=kernel.config.cortex.timeout_s,
            what=f"{chosen.name} run",
        )
    except DeadlineExceeded as exc:
        outcome = ModeOutcome(success=False, error=str(exc), cost_usd=cap,
                              details={"cost_unknown": True})
    except (asyncio.CancelledError, KeyboardInterrupt):
        if reservation is not None:
            kernel.economy.commit(reservation, cap, description="interrupted: charged the cap")
        memory.finish_run(run_id, status="interrupted", success=False,
                          duration_s=time.perf_counter() - started, error="interrupted")
        raise
    duration = time.perf_counter() - started
    if reservation is not None:
        kernel.economy.commit(
            reservation,
            outcome.cost_usd,
            description=f"{chosen.name}: {goal[:60]}",
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
        )
    memory.finish_run(
        run_id,
        status="succeeded" if outcome.success else "failed",
        success=outcome.success,
        cost_usd=outcome.cost_usd,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        duration_s=duration,
        output=outcome.output,
        error=outcome.error,
    )
    trace_id = None
    if outcome.success:
        from llmos.memory.capture import promote_run_to_trace

        trace = promote_run_to_trace(memory, run_id)
        trace_id = getattr(trace, "id", None)
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
    )
    kernel.bus.publish("run.finished", **result.as_dict())
    return result
