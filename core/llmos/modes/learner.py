"""LEARNER: Claude solves the goal with real tools; the run becomes a trace."""

from __future__ import annotations

from typing import TYPE_CHECKING

import llmos
from llmos.learning.dispatcher import Bid

if TYPE_CHECKING:
    from llmos.calls import CallContext
    from llmos.cortex.bridge import Progress
    from llmos.goals import Goal
    from llmos.kernel import Kernel
    from llmos.learning.matching import Candidate
    from llmos.runner import ModeOutcome


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

        return await learn_paid(context, goal, progress=progress)


@llmos.hookimpl
def llmos_register_dispatch_modes(register) -> None:
    register(LearnerMode())
