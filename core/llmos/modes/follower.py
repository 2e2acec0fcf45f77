"""FOLLOWER: replay a proven trace without the model, verifying every step; on divergence
hand the goal, with what was already done, to LEARNER."""

from __future__ import annotations

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


class NothingToReplay(LookupError):
    pass


HANDOFF_PROMPT = """{goal}

llmos replayed a recorded solution of this goal without you, but the replay diverged:
{reason}

The steps already replayed:
{steps}

Look at the workspace as it is now and finish the goal."""


class FollowerMode:
    name = "FOLLOWER"
    description = "Replays a proven trace with no model request; verifies every step."
    paid = False

    def bid(self, goal: Goal, candidates: list[Candidate], kernel: Kernel) -> Bid | None:
        replayable = [c for c in candidates if c.replayable]
        if not replayable:
            best = candidates[0].reason if candidates else "no trace of a similar goal"
            return Bid(self.name, 0.0, f"nothing to replay ({best})", 0.0)
        best = replayable[0]
        return Bid(self.name, best.confidence, best.reason, 0.0, best.trace.id)

    async def run(
        self, goal: str, context: CallContext, *, progress: Progress | None = None
    ) -> ModeOutcome:
        from llmos.learning.replay import replay

        route = context.extra["route"]
        candidate = next((c for c in route.candidates if c.replayable), None)
        if candidate is None:
            raise NothingToReplay(
                f"FOLLOWER has no trace it may replay for this goal: "
                f"{route.bid_of(self.name).reason}"
            )
        memory = context.kernel.memory
        report = await replay(candidate.trace, candidate.bindings, context, progress)
        details = {"trace_id": candidate.trace.id, "replay_steps": len(report.steps),
                   "replay_overhead_s": report.overhead_s}
        if report.verified:
            memory.update_trace_stats(candidate.trace.id, "success")
            return ModeOutcome(
                success=True,
                output=f"Replayed {len(report.steps)} recorded steps of trace "
                       f"{candidate.trace.id} with no model request.\n{report.summary()}",
                tool_calls=len(report.steps),
                details=details,
            )
        updated = memory.update_trace_stats(candidate.trace.id, "diverged")
        if report.refused and not updated.demoted:
            # a trace the policy refuses to replay is never offered again
            memory.save_trace(updated.model_copy(update={"demoted": True}))
        if progress is not None:
            progress("handoff", {"reason": report.reason})
        from llmos.cortex.learner import learn_paid

        prompt = HANDOFF_PROMPT.format(goal=goal, reason=report.reason,
                                       steps=report.summary() or "(none)")
        learned = await learn_paid(context, prompt, progress=progress, what="LEARNER handoff")
        learned.details.update(diverged=True, divergence=report.reason, **details)
        learned.tool_calls += len(report.steps)
        return learned


@llmos.hookimpl
def llmos_register_dispatch_modes(register) -> None:
    register(FollowerMode())
