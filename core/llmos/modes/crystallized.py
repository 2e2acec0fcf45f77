"""CRYSTALLIZED: run an active crystallized tool for the goal, with no model request.

It bids (at $0) only when an *active* crystal has the goal's signature and its parameters
bind from the goal's slots. Every call the crystal makes passes the kernel's gate. When the
crystal cannot do the job (a call fails or is refused, the world is not as it expects),
the failure is recorded — and demotes the crystal past ``[crystallize] demote_after`` —
and the goal falls back to the normal path: LEARNER, told what the crystal already did.
"""

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


class NoActiveCrystal(LookupError):
    pass


FALLBACK_PROMPT = """{goal}

llmos ran a crystallized tool ({name}) for this goal without you, but it could not finish:
{reason}

The calls it made:
{steps}

Look at the workspace as it is now and finish the goal."""


class CrystallizedMode:
    name = "CRYSTALLIZED"
    description = "Runs an active crystallized tool (compiled from proven traces); no model."
    paid = False
    min_confidence = 0.9

    def bid(self, goal: Goal, candidates: list[Candidate], kernel: Kernel) -> Bid | None:
        from llmos.crystallize.plugin import active_crystal

        if "crystallize" not in kernel.config_sections:
            return None  # the crystallizer plugin is disabled: nothing to run
        if not kernel.config.section("crystallize").enabled:
            return Bid(self.name, 0.0, "crystallize.enabled is off", 0.0)
        crystal, params, why = active_crystal(kernel, goal)
        if crystal is None:
            return Bid(self.name, 0.0, why, 0.0)
        version = crystal.version
        shown = ", ".join(f"{k}={v!r}" for k, v in (params or {}).items()) or "no parameters"
        trace_id = next((c.trace.id for c in candidates
                         if c.trace.goal_signature == goal.signature), None)
        return Bid(self.name, 1.0, f"active crystal {version.name} version {version.version} "
                   f"({len(version.provenance.get('tests', []))} regression cassettes passed, "
                   f"{version.agreements} shadow agreements, {version.runs} runs); {shown}",
                   0.0, trace_id)

    async def run(
        self, goal: str, context: CallContext, *, progress: Progress | None = None
    ) -> ModeOutcome:
        from llmos.crystallize.plugin import active_crystal
        from llmos.crystallize.runtime import CrystalFailed
        from llmos.crystallize.store import CrystalStore
        from llmos.crystallize.tool import gateway_caller

        kernel = context.kernel
        route = context.extra["route"]
        crystal, params, why = active_crystal(kernel, route.goal)
        if crystal is None:
            raise NoActiveCrystal(f"CRYSTALLIZED cannot run this goal: {why}")
        store = CrystalStore(kernel.db, kernel.workspace)
        name, number = crystal.name, crystal.version.version
        bid = route.bid_of(self.name)
        details = {"trace_id": (bid.trace_id if bid else None) or self._source(kernel, crystal),
                   "crystal": name, "crystal_version": number}
        try:
            answer = await crystal.run(params, gateway_caller(context), kernel)
        except CrystalFailed as exc:
            return await self._fall_back(goal, context, progress, store, crystal, str(exc))
        finally:
            context.extra.pop("shell_cwd", None)
        store.count(name, number, "runs")
        matched = next((c.trace for c in route.candidates
                        if c.trace.id == details["trace_id"]), None)
        if matched is not None:
            store.count(name, number, "saved_usd", matched.estimated_cost_usd)
        steps = kernel.memory.run_steps(context.run_id) if context.run_id else []
        return ModeOutcome(success=True, output=answer or f"{name} did the goal with "
                           f"{len(steps)} tool calls and no model request.",
                           tool_calls=len(steps), details=details)

    @staticmethod
    def _source(kernel: Kernel, crystal) -> str | None:
        from llmos.memory.base import TraceNotFound

        for trace_id in crystal.version.provenance.get("source_traces", []):
            try:
                return kernel.memory.get_trace(trace_id).id
            except TraceNotFound:
                continue
        return None

    async def _fall_back(self, goal: str, context: CallContext, progress, store, crystal,
                         reason: str) -> ModeOutcome:
        from llmos.cortex.learner import learn_paid

        kernel = context.kernel
        cfg = kernel.config.section("crystallize")
        name, number = crystal.name, crystal.version.version
        version = store.count(name, number, "failures")
        store.event(name, number, "failed", reason, context.run_id)
        if version.failures >= cfg.demote_after:
            store.set_status(name, number, "demoted", f"{version.failures} failures at run "
                             f"time; last: {reason}"[:1000], context.run_id)
        kernel.bus.publish("crystal.failed", name=name, version=number, run_id=context.run_id,
                           reason=reason)
        if progress is not None:
            progress("handoff", {"reason": reason})
        steps = kernel.memory.run_steps(context.run_id) if context.run_id else []
        shown = "\n".join(f"{n}. {s.tool} {s.input} → "
                          f"{'error' if s.outcome.is_error else 'ok'}"
                          for n, s in enumerate(steps, start=1)) or "(none)"
        learned = await learn_paid(context, FALLBACK_PROMPT.format(
            goal=goal, name=name, reason=reason, steps=shown), progress=progress,
            what="LEARNER fallback")
        learned.details.update(diverged=True, crystal=name, crystal_version=number,
                               crystal_failure=reason)
        learned.tool_calls += len(steps)
        return learned


@llmos.hookimpl
def llmos_register_dispatch_modes(register) -> None:
    register(CrystallizedMode())
