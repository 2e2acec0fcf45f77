"""The replay executor: re-run a trace's tool calls locally, verifying each as it goes.

Every replayed call passes the kernel's gate like a fresh one (a replayed command is
never trusted more). Slot values of the new goal replace the old goal's values wherever
the trace used them. Each step's outcome is compared with the recorded one: an error
where there was none, another exit code, or a written file that is missing or (with the
same values) different is a divergence, and the replay stops there.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmos.calls import CallContext, ToolCall, ToolResult
from llmos.learning.matching import value_pattern
from llmos.learning.observe import observation_digest
from llmos.tools import ToolInputError, is_read_only

if TYPE_CHECKING:
    from llmos.memory.models import Step, Trace

# Claude Code tools that only inform the model: a replay has no model to inform.
SKIPPED_TOOLS = frozenset({"TodoWrite", "TodoRead", "ToolSearch", "WebSearch", "LS",
                           "BashOutput", "ListMcpResourcesTool", "ReadMcpResourceTool"})


@dataclass
class StepReport:
    index: int
    tool: str
    input: dict[str, Any]
    ok: bool
    note: str = ""
    duration_s: float = 0.0


@dataclass
class ReplayReport:
    trace_id: str
    steps: list[StepReport] = field(default_factory=list)
    diverged_at: int | None = None
    reason: str | None = None
    overhead_s: float = 0.0  # time spent outside the tools themselves
    refused: bool = False  # the divergence was the policy refusing a replayed call

    @property
    def verified(self) -> bool:
        return self.diverged_at is None

    def summary(self) -> str:
        lines = []
        for step in self.steps:
            status = "ok" if step.ok else f"FAILED: {step.note}"
            shown = str(step.input)
            shown = shown if len(shown) <= 200 else shown[:197] + "..."
            lines.append(f"{step.index + 1}. {step.tool} {shown} → {status}")
        return "\n".join(lines)


def substitute(value: Any, bindings: dict[str, str]) -> Any:
    """``value`` with each old slot value replaced by its new one, as whole tokens, all
    at once (so a new value is never itself replaced)."""
    if not bindings:
        return value
    if isinstance(value, str):
        pattern = re.compile("|".join(
            value_pattern(old).pattern for old in sorted(bindings, key=len, reverse=True)
        ))
        return pattern.sub(lambda m: bindings[m.group(0)], value)
    if isinstance(value, dict):
        return {k: substitute(v, bindings) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, bindings) for v in value]
    return value


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    except OSError:
        return None


def verify(step: Step, result: ToolResult, bindings: dict[str, str], workspace: Path) -> str:
    """Why ``result`` diverges from the recorded ``step`` ('' when it does not)."""
    recorded = step.outcome
    if result.decision is not None and result.decision.verdict != "allow":
        return f"refused by policy: {result.error}"
    if result.is_error and not recorded.is_error:
        return f"failed where the recorded call succeeded: {result.error[:300]}"
    if not result.is_error and recorded.is_error:
        return "succeeded where the recorded call failed"
    from llmos.memory.capture import exit_code

    now = exit_code(result)
    if recorded.exit_code is not None and now is not None and now != recorded.exit_code:
        return f"exit code {now}, recorded {recorded.exit_code}"
    for digest in recorded.files:
        path = workspace / substitute(digest.path, bindings)
        sha = _sha256(path)
        if sha is None:
            return f"file {path.name} was not produced"
        if not bindings and sha != digest.sha256:
            return f"file {digest.path} differs from the one the recorded run produced"
    return ""


def stale_observation(trace: Trace, index: int, result: ToolResult, context: CallContext) -> str:
    """A divergence when the replay saw something else than the recorded run did *and*
    later steps change things: they were chosen after reading the old observation, so
    the values they write may be stale ('' otherwise)."""
    recorded = trace.steps[index].outcome.observation
    if not recorded or result.is_error:
        return ""
    tools = context.kernel.tools
    now = observation_digest(trace.steps[index].tool, result.output, tools)
    if not now or now == recorded:
        return ""
    later = [s for s in trace.steps[index + 1 :]
             if not s.outcome.refused and not is_read_only(s.tool, tools)]
    if not later:
        return ""
    return (f"observed another result than the recorded run, and the later {later[0].tool} "
            "may depend on what was observed")


async def replay(
    trace: Trace, bindings: dict[str, str], context: CallContext, progress=None
) -> ReplayReport:
    """Re-run ``trace`` for the new slot values; stop at the first divergence."""
    report = ReplayReport(trace.id)
    started = time.perf_counter()
    tool_time = 0.0
    gateway = context.kernel.gateway
    for index, step in enumerate(trace.steps):
        if step.outcome.refused or step.tool in SKIPPED_TOOLS:
            continue
        data = substitute(dict(step.input), bindings)
        if context.kernel.tools.get(step.tool) is None:
            report.steps.append(StepReport(index, step.tool, data, False, "no local tool"))
            report.diverged_at, report.reason = index, (
                f"step {index + 1} uses {step.tool}, which cannot be replayed without the model"
            )
            break
        call = ToolCall(step.tool, data, source="replay")
        try:
            result = await gateway.call(call, context)
        except ToolInputError as exc:
            result = ToolResult(is_error=True, error=str(exc))
        tool_time += result.duration_s
        problem = verify(step, result, bindings, context.workspace) or stale_observation(
            trace, index, result, context
        )
        report.steps.append(StepReport(index, step.tool, data, not problem, problem,
                                       result.duration_s))
        if progress is not None:
            verdict = "allow" if result.decision is None else result.decision.verdict
            progress("tool", {"tool": step.tool, "input": data, "verdict": verdict,
                              "reason": problem or "replayed"})
        if problem:
            report.diverged_at, report.reason = index, f"step {index + 1} ({step.tool}) {problem}"
            report.refused = result.decision is not None and result.decision.verdict != "allow"
            break
    report.overhead_s = max(0.0, time.perf_counter() - started - tool_time)
    return report
