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
    from llmos.learning.replay import ReplayReport


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
        from llmos.learning.matching import is_question
        from llmos.learning.replay import replay

        route = context.extra["route"]
        replayable = [c for c in route.candidates if c.replayable and c.plan is not None]
        if not replayable:
            raise NothingToReplay(
                f"FOLLOWER has no trace it may replay for this goal: "
                f"{route.bid_of(self.name).reason}"
            )
        memory = context.kernel.memory
        attempts = []
        from llmos.durable.resume import resume_point, skip_completed

        for candidate in replayable[:MAX_ATTEMPTS]:
            # a resumed run continues after the steps it already replayed
            plan = skip_completed(candidate.plan, resume_point(context))
            report = await replay(plan, route.goal.slots, context, progress,
                                  question=is_question(route.goal))
            attempts.append((candidate, report))
            if report.verified:
                memory.update_trace_stats(candidate.trace.id, "success")
                return ModeOutcome(success=True, output=answer(candidate, report),
                                   tool_calls=sum(len(r.steps) for _, r in attempts),
                                   details=_details(candidate, report, attempts))
            outcome = {"world": "diverged", "fault": "failed"}.get(report.kind, "refused")
            if outcome == "refused" and report.kind == "refused" and report.evidence != "exact":
                outcome = "failed"  # the substituted call was refused, not the trace itself
            memory.update_trace_stats(candidate.trace.id, outcome, reason=report.reason)
            if report.mutated or report.kind != "world":
                break  # the workspace changed, or the trace was at fault: hand off now
            # nothing was changed: a trace recorded in another world may fit this one
        candidate, report = attempts[-1]
        if progress is not None:
            progress("handoff", {"reason": report.reason})
        from llmos.cortex.learner import learn_paid

        prompt = HANDOFF_PROMPT.format(goal=goal, reason=report.reason,
                                       steps=report.summary() or "(none)")
        learned = await learn_paid(context, prompt, progress=progress, what="LEARNER handoff")
        learned.details.update(diverged=True, divergence=report.reason,
                               **_details(candidate, report, attempts))
        learned.tool_calls += sum(len(r.steps) for _, r in attempts)
        return learned


MAX_ATTEMPTS = 3


def _details(candidate: Candidate, report: ReplayReport, attempts) -> dict:
    return {"trace_id": candidate.trace.id, "replay_steps": len(report.steps),
            "replay_overhead_s": sum(r.overhead_s for _, r in attempts),
            "evidence": report.evidence, "attempts": [c.trace.id for c, _ in attempts]}


def answer(candidate: Candidate, report: ReplayReport) -> str:
    """What a verified replay tells the user: the recorded answer when the goal and every
    observation are the same; otherwise what the replayed steps observed now."""
    trace = candidate.trace
    if report.evidence == "exact" and report.observations_matched and trace.answer:
        return trace.answer
    head = (f"Replayed {len(report.steps)} recorded steps of trace {trace.id} with no model "
            f"request ({report.evidence}"
            + (": " + ", ".join(f"{a} → {b}" for a, b in candidate.bindings.items())
               if candidate.bindings else "") + ").")
    observed = report.observations(changed_only=False)
    if observed:
        return f"{head}\nWhat the steps observed now:\n\n{observed}"
    return f"{head}\n{report.summary()}"


@llmos.hookimpl
def llmos_register_dispatch_modes(register) -> None:
    register(FollowerMode())
