"""MIXED: LEARNER with the nearest traces (goal, steps, outcome) given as guidance."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import llmos
from llmos.learning.dispatcher import Bid
from llmos.runner import ModeOutcome

if TYPE_CHECKING:
    from llmos.calls import CallContext
    from llmos.cortex.bridge import Progress
    from llmos.goals import Goal
    from llmos.kernel import Kernel
    from llmos.learning.matching import Candidate
    from llmos.memory.models import Trace

GUIDES = 3
MAX_STEP_CHARS = 400


def guidance(traces: list[Trace]) -> str:
    """The nearest solved goals, with their steps and outcomes, as text for the model."""
    blocks = []
    for trace in traces:
        steps = []
        for n, step in enumerate(trace.steps, start=1):
            shown = json.dumps(step.input, ensure_ascii=False)
            if len(shown) > MAX_STEP_CHARS:
                shown = shown[: MAX_STEP_CHARS - 3] + "..."
            status = "error" if step.outcome.is_error else "ok"
            steps.append(f"  {n}. {step.tool} {shown} → {status}")
        blocks.append(
            f"- Goal: {trace.goal_text}\n  Succeeded {trace.success_count} of "
            f"{trace.usage_count} times. Steps:\n" + "\n".join(steps)
        )
    return "\n".join(blocks)


class MixedMode:
    name = "MIXED"
    description = "Claude solves the goal guided by the nearest traces; a new trace is recorded."
    paid = True

    def bid(self, goal: Goal, candidates: list[Candidate], kernel: Kernel) -> Bid | None:
        if not candidates:
            return Bid(self.name, 0.0, "no similar trace to guide Claude",
                       kernel.config.budget.run_cap_usd)
        best = candidates[0]
        estimate = best.trace.estimated_cost_usd or kernel.config.budget.run_cap_usd
        # guidance saves exploration: expect a fraction of the original cost
        return Bid(self.name, best.confidence, f"guided by {best.trace.goal_text!r}: "
                   f"{best.reason}", round(estimate * 0.6, 6), best.trace.id)

    def preflight(self, kernel: Kernel) -> None:
        from llmos.cortex.learner import check_credentials

        check_credentials()

    async def run(
        self, goal: str, context: CallContext, *, progress: Progress | None = None
    ) -> ModeOutcome:
        from llmos.cortex.learner import learn_paid

        route = context.extra["route"]
        guides = [c.trace for c in route.candidates if c.confidence > 0][:GUIDES]
        prompt = goal if not guides else (
            f"{goal}\n\nSimilar goals solved before (use them as guidance; adapt them to "
            f"this goal, do not copy blindly):\n{guidance(guides)}"
        )
        learned = await learn_paid(context, prompt, progress=progress, what="MIXED")
        learned.details["guided_by"] = [t.id for t in guides]
        return learned


@llmos.hookimpl
def llmos_register_dispatch_modes(register) -> None:
    register(MixedMode())
