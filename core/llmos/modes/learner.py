"""LEARNER: Claude solves the goal with real tools; the run becomes a trace."""

from __future__ import annotations

from typing import TYPE_CHECKING

import llmos
from llmos.runner import ModeOutcome

if TYPE_CHECKING:
    from llmos.calls import CallContext
    from llmos.cortex.bridge import Progress
    from llmos.kernel import Kernel


class LearnerMode:
    name = "LEARNER"
    description = "Claude Code solves the goal with real tools; the run is recorded as a trace."
    paid = True

    def preflight(self, kernel: Kernel) -> None:
        from llmos.cortex.learner import check_credentials

        check_credentials()

    async def run(
        self,
        goal: str,
        context: CallContext,
        *,
        budget_usd: float,
        progress: Progress | None = None,
        prompt: str | None = None,
    ) -> ModeOutcome:
        from llmos.cortex.learner import learn

        learned = await learn(context, prompt or goal, budget_usd=budget_usd, progress=progress)
        return ModeOutcome(
            success=learned.success,
            output=learned.output,
            cost_usd=learned.cost_usd,
            input_tokens=learned.input_tokens,
            output_tokens=learned.output_tokens,
            tool_calls=learned.tool_calls,
            model_requests=learned.model_requests,
            error=learned.error,
            details={"session_id": learned.session_id, "num_turns": learned.num_turns},
        )


@llmos.hookimpl
def llmos_register_dispatch_modes(register) -> None:
    register(LearnerMode())
