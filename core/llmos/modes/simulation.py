"""SIMULATION: Claude works the goal, but nothing in the real world changes.

Chosen only when asked (``llmos run --simulate GOAL`` or ``--mode SIMULATION``). The model
runs as in LEARNER, with its tools' effects simulated:

- Claude Code's workspace tools (Write, Edit, Bash, Read, ...) act on a scratch copy of
  the workspace (without llmos's state) in a temporary directory: the session's working
  directory and the gate's workspace are that copy, so a path into the real workspace is
  outside it and refused; the copy is deleted when the run ends. Claude Code's Bash
  sandbox has no network in a simulation (a request could change the world).
- The kernel's own tools (packs: a robot, a browser, a quantum backend) cannot be copied:
  a call that changes anything is answered from the recorded observation of the same
  call in a similar trace where one exists, and otherwise refused as not simulable.

The run is recorded with mode SIMULATION and its conversation is kept (marked
simulated) for ``llmos export training``; it never becomes a trace, so it is never
replayed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import llmos
from llmos.calls import CallContext, Decision

if TYPE_CHECKING:
    from llmos.calls import ToolCall
    from llmos.cortex.bridge import Progress
    from llmos.goals import Goal
    from llmos.kernel import Kernel
    from llmos.learning.dispatcher import Bid
    from llmos.learning.matching import Candidate
    from llmos.memory.models import Trace
    from llmos.runner import ModeOutcome

SIMULATED = "simulated"
RECORDED = "recorded_observations"
# Claude Code's own tools: they act on the working directory, i.e. the scratch copy
WORKSPACE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit", "Read", "Glob",
                             "Grep", "Bash", "LS", "TodoWrite"})


@dataclass
class ScratchContext(CallContext):
    """A run's context whose workspace is the scratch copy."""

    scratch: Path | None = None

    @property
    def workspace(self) -> Path:
        assert self.scratch is not None
        return self.scratch


def scratch_copy(root: Path, into: Path, state_dir: Path) -> Path:
    """Copy the workspace under ``into``: symlinks as links, and llmos's state (the
    workspace's and its projects') left out."""
    state = state_dir.resolve()

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names
                if n == state.name or (Path(folder) / n).resolve() == state]

    target = into / root.name
    shutil.copytree(root, target, symlinks=True, ignore=ignore)
    return target


def offline(sandbox: Any) -> Any:
    """Claude Code's sandbox settings with no network at all: a command's request could
    change the world (a POST), and a simulation changes nothing."""
    if not isinstance(sandbox, dict):
        return sandbox
    network = {**sandbox.get("network", {}), "allowedDomains": []}
    return {**sandbox, "network": network}


def _key(tool: str, data: dict[str, Any]) -> str:
    return f"{tool}\0{json.dumps(data, sort_keys=True, default=str)}"


def recorded_observations(traces: list[Trace]) -> dict[str, str]:
    """What each call of the similar traces was observed to return."""
    seen: dict[str, str] = {}
    for trace in traces:
        for step in trace.steps:
            if not step.outcome.is_error and not step.outcome.refused:
                seen.setdefault(_key(step.tool, step.input), step.outcome.excerpt)
    return seen


class SimulationMode:
    name = "SIMULATION"
    description = ("Claude works the goal with simulated effects (a scratch copy of the "
                   "workspace, recorded observations); nothing changes, no trace is kept.")
    paid = True

    def bid(self, goal: Goal, candidates: list[Candidate], kernel: Kernel) -> Bid | None:
        return None  # only when asked: llmos run --simulate

    def preflight(self, kernel: Kernel) -> None:
        from llmos.cortex.learner import check_credentials

        check_credentials()

    async def run(
        self, goal: str, context: CallContext, *, progress: Progress | None = None
    ) -> ModeOutcome:
        from llmos.cortex.learner import learn_paid

        kernel = context.kernel
        route = context.extra.get("route")
        similar = [c.trace for c in getattr(route, "candidates", ()) if c.confidence > 0]
        with tempfile.TemporaryDirectory(prefix="llmos-simulation-") as tmp:
            scratch = scratch_copy(kernel.workspace.root, Path(tmp), kernel.workspace.state_dir)

            def in_scratch(options: Any) -> Any:
                return dataclasses.replace(options, cwd=str(scratch),
                                           sandbox=offline(options.sandbox))

            extra = dict(context.extra)
            extra[SIMULATED] = True
            extra[RECORDED] = recorded_observations(similar)
            extra["adjust_options"] = [*extra.get("adjust_options", ()), in_scratch]
            sim = ScratchContext(kernel, run_id=context.run_id,
                                 interactive=context.interactive, extra=extra,
                                 scratch=scratch)
            outcome = await learn_paid(sim, goal, progress=progress, what="SIMULATION")
            for key in ("charged_usd", "tokens"):  # what the runner reads back
                context.extra.setdefault(key, []).extend(sim.extra.get(key, ()))
            # the policy's refusals; a call simulated instead of run is not one
            context.extra.setdefault("refusals", []).extend(
                r for r in sim.extra.get("refusals", ())
                if not str(r.get("rule") or "").startswith("simulation."))
        outcome.details[SIMULATED] = True
        outcome.details["scratch"] = str(scratch)
        outcome.details["similar_traces"] = [t.id for t in similar]
        return outcome


@llmos.hookimpl
def llmos_register_dispatch_modes(register) -> None:
    register(SimulationMode())


@llmos.hookimpl
def llmos_pre_tool_use(call: ToolCall, context: CallContext) -> Decision | None:
    """In a simulation, a kernel tool that changes things never runs: its recorded
    observation is the answer, or it is refused."""
    if not context.extra.get(SIMULATED) or call.tool in WORKSPACE_TOOLS:
        return None
    from llmos.tools import is_read_only

    if is_read_only(call.tool, context.kernel.tools):
        return None
    recorded = context.extra.get(RECORDED, {}).get(_key(call.tool, dict(call.input)))
    if recorded is not None:
        return Decision.deny(f"simulated (not run): a similar run observed: {recorded}",
                             rule="simulation.recorded")
    return Decision.deny(f"simulated run: {call.tool} changes the world outside the "
                         "workspace and no similar trace recorded this call, so it was not "
                         "run", rule="simulation.no-record")
