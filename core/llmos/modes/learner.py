"""LEARNER: Claude solves the goal with real tools; the run becomes a trace."""

from __future__ import annotations

from typing import TYPE_CHECKING

import llmos
from llmos.learning.dispatcher import Bid
from llmos.runner import ModeOutcome

if TYPE_CHECKING:
    from llmos.calls import CallContext
    from llmos.cortex.bridge import Progress
    from llmos.cortex.learner import LearnerOutcome
    from llmos.goals import Goal
    from llmos.kernel import Kernel
    from llmos.learning.matching import Candidate


def outcome_of(learned: LearnerOutcome, **details) -> ModeOutcome:
    return ModeOutcome(
        success=learned.success,
        output=learned.output,
        cost_usd=learned.cost_usd,
        input_tokens=learned.input_tokens,
        output_tokens=learned.output_tokens,
        tool_calls=learned.tool_calls,
        model_requests=learned.model_requests,
        error=learned.error,
        details={"session_id": learned.session_id, "num_turns": learned.num_turns, **details},
    )


class LearnerMode:
    name = "LEARNER"
    description = "Claude Code solves the goal with real tools; the run is recorded as a trace."
    paid = True
    min_confidence = 0.0

    def bid(self, goal: Goal, candidates: list[Candidate], kernel: Kernel) -> Bid:
        return Bid(self.name, 0.5, "Claude solves the goal from scratch",
                   kernel.config.budget.run_cap_usd)

    def preflight(self, kernel: Kernel) -> None:
        from llmos.cortex.learner import check_credentials

        check_credentials()

    async def run(
        self, goal: str, context: CallContext, *, progress: Progress | None = None
    ) -> ModeOutcome:
        from llmos.cortex.learner import learn_paid

        return outcome_of(await learn_paid(context, goal, progress=progress))


@llmos.hookimpl
def llmos_register_dispatch_modes(register) -> None:
    register(LearnerMode())
