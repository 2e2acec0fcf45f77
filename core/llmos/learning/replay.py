"""The replay executor: run a plan's tool calls locally, verifying each as it goes.

Every replayed call passes the kernel's gate like a fresh one (a replayed command is
never trusted more). A plan (llmos.learning.generalize) holds the concrete inputs. Each
step is held to what the recorded run saw:

* a Write that created a file must find no file there (and one that updated a file must
  find it), or the replay stops before writing;
* a call that failed must fail again, one that succeeded must succeed, with the same
  exit code; files the recorded run wrote must be produced (byte-identical in an exact
  replay);
* what the call shows (stdout and stderr, a file's text, a plugin tool's output, with
  the goal's values abstracted) is compared with what the model saw. When it differs and
  a later step changes things, that step was chosen after reading the old observation:
  the replay stops there, before anything is written;
* the shell's working directory carries over from one Bash call to the next, as in
  Claude Code's persistent shell.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from llmos.calls import CallContext, ToolCall, ToolResult
from llmos.learning.observe import observation_digests, observed_text
from llmos.tools import ToolInputError, is_read_only

if TYPE_CHECKING:
    from llmos.goals import Slot
    from llmos.learning.generalize import Plan, StepPlan
    from llmos.memory.models import Step

# Claude Code tools that only inform the model: a replay has no model to inform.
SKIPPED_TOOLS = frozenset({"TodoWrite", "TodoRead", "ToolSearch", "WebSearch", "LS",
                           "BashOutput", "ListMcpResourcesTool", "ReadMcpResourceTool"})
OBSERVATION_SHOWN_CHARS = 4000

DivergenceKind = Literal["world", "fault", "refused", "unreplayable"]
"""Why a replay stopped: the world differs from the recorded one (no fault of the trace),
the replay went wrong, the policy refused a call, or a step needs the model."""


@dataclass
class StepReport:
    index: int
    tool: str
    input: dict[str, Any]
    ok: bool
    note: str = ""
    duration_s: float = 0.0
    observed: str | None = None  # what the call showed
    changed: bool = False  # its observation differs from (or was not fixed by) the record


@dataclass
class ReplayReport:
    trace_id: str
    evidence: str = "exact"
    steps: list[StepReport] = field(default_factory=list)
    diverged_at: int | None = None
    reason: str | None = None
    kind: DivergenceKind | None = None
    mutated: bool = False  # a step that changes things ran before the replay stopped
    overhead_s: float = 0.0  # time spent outside the tools themselves

    @property
    def verified(self) -> bool:
        return self.diverged_at is None

    @property
    def refused(self) -> bool:
        return self.kind == "refused"

    @property
    def observations_matched(self) -> bool:
        return not any(s.changed for s in self.steps)

    def summary(self) -> str:
        lines = []
        for step in self.steps:
            status = "ok" if step.ok else f"FAILED: {step.note}"
            shown = str(step.input)
            shown = shown if len(shown) <= 200 else shown[:197] + "..."
            lines.append(f"{step.index + 1}. {step.tool} {shown} → {status}")
        return "\n".join(lines)

    def observations(self, *, changed_only: bool = True) -> str:
        """What the replayed steps showed (where it differs from the recording, unless
        ``changed_only`` is False): the answer to a question."""
        blocks = []
        for step in self.steps:
            if step.observed and (step.changed or not changed_only):
                head = step.input.get("command") or step.input.get("file_path") or step.tool
                text = step.observed
                if len(text) > OBSERVATION_SHOWN_CHARS:
                    text = text[:OBSERVATION_SHOWN_CHARS] + "\n[... truncated ...]"
                blocks.append(f"$ {head}\n{text}" if step.tool == "Bash" else f"{head}:\n{text}")
        return "\n\n".join(blocks)


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    except OSError:
        return None


def _target(data: dict[str, Any], workspace: Path) -> Path | None:
    value = data.get("file_path") or data.get("notebook_path")
    if not isinstance(value, str) or not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else workspace / path


def precondition(step: Step, data: dict[str, Any], workspace: Path) -> str:
    """Why the step must not run in this world ('' when it may)."""
    existed = step.outcome.file_existed
    target = _target(data, workspace)
    if existed is None or target is None:
        return ""
    exists = target.exists()
    if existed is False and exists:
        content = data.get("content")
        if isinstance(content, str) and _sha256(target) == hashlib.sha256(
                content.encode()).hexdigest():
            return ""  # already what the step would write: rewriting it changes nothing
        return (f"would overwrite {target.name}, which exists now but did not when the "
                "recorded run created it")
    if existed is True and not exists:
        return f"{target.name} existed when the recorded run updated it and is missing now"
    return ""


def verify(step: Step, result: ToolResult, data: dict[str, Any], workspace: Path,
           exact: bool) -> str:
    """Why ``result`` diverges from the recorded ``step`` ('' when it does not)."""
    from llmos.memory.capture import exit_code

    recorded = step.outcome
    if result.is_error and not recorded.is_error:
        return f"failed where the recorded call succeeded: {result.error[:300]}"
    if not result.is_error and recorded.is_error:
        return "succeeded where the recorded call failed"
    now = exit_code(result)
    if recorded.exit_code is not None and now is not None and now != recorded.exit_code:
        return f"exit code {now}, recorded {recorded.exit_code}"
    target = _target(data, workspace)
    for digest in recorded.files:
        if exact:
            path = workspace / digest.path
        elif target is not None and Path(step.input.get("file_path", "")).name == \
                Path(digest.path).name:
            path = target
        else:
            continue  # a file a command wrote under other values: the exit code speaks
        sha = _sha256(path)
        if sha is None:
            return f"file {path.name} was not produced"
        if exact and sha != digest.sha256:
            return f"file {digest.path} differs from the one the recorded run produced"
    return ""


def carry_shell_cwd(tool: str, result: ToolResult, context: CallContext) -> None:
    """Keep the directory a replayed Bash call ended in for the next one, as Claude Code's
    persistent shell does (outside the workspace: back to its root, as Claude Code resets)."""
    if tool == "Bash" and isinstance(result.output, dict) and "cwd" in result.output:
        cwd = result.output.get("cwd")
        context.extra["shell_cwd"] = cwd if isinstance(cwd, str) else ""


def _later_changes(plan: Plan, position: int, context: CallContext) -> str | None:
    tools = context.kernel.tools
    for later in plan.steps[position + 1:]:
        if not is_read_only(later.tool, tools):
            return later.tool
    return None


def _observe(planned: StepPlan, result: ToolResult, slots: tuple[Slot, ...],
             context: CallContext) -> tuple[bool, str | None]:
    """(differs, what was shown) for a step whose observation the record fixes."""
    if result.is_error:
        return False, None
    tools = context.kernel.tools
    digests = observation_digests(planned.tool, result.output, tools, slots)
    if not digests:
        return False, None
    shown = observed_text(planned.tool, result.output, tools)
    if planned.expected_observation is None:
        return True, shown  # it varied between solved instances: not fixed by the record
    return planned.expected_observation not in digests, shown


async def replay(plan: Plan, slots: tuple[Slot, ...], context: CallContext,
                 progress=None, *, question: bool = False) -> ReplayReport:
    """Run ``plan`` for a goal with ``slots``; stop at the first divergence. A
    ``question`` (the goal asks to be told something) may observe other results than the
    recorded run when nothing after them changes things: they are its answer."""
    trace = plan.trace
    by_index = {s.index if s.index is not None else i: s for i, s in enumerate(trace.steps)}
    report = ReplayReport(trace.id, plan.evidence)
    started = time.perf_counter()
    tool_time = 0.0
    gateway = context.kernel.gateway
    exact = plan.evidence == "exact"
    context.extra["shell_cwd"] = ""
    for position, planned in enumerate(plan.steps):
        step = by_index[planned.index]
        data = planned.input
        index = planned.index

        def stop(note: str, kind: DivergenceKind, result: ToolResult | None = None,
                 data: dict[str, Any] = data, index: int = index, tool: str = planned.tool
                 ) -> None:
            report.steps.append(StepReport(index, tool, data, False, note,
                                           result.duration_s if result else 0.0))
            report.diverged_at, report.kind = index, kind
            report.reason = f"step {index + 1} ({tool}) {note}"

        if context.kernel.tools.get(planned.tool) is None:
            stop(f"uses {planned.tool}, which cannot be replayed without the model",
                 "unreplayable")
            break
        problem = precondition(step, data, context.workspace)
        if problem:
            stop(problem, "world")
            break
        call = ToolCall(planned.tool, data, source="replay")
        try:
            result = await gateway.call(call, context)
        except ToolInputError as exc:
            result = ToolResult(is_error=True, error=str(exc))
        tool_time += result.duration_s
        mutating = not is_read_only(planned.tool, context.kernel.tools)
        if result.decision is not None and result.decision.verdict != "allow":
            stop(f"refused by policy: {result.error}", "refused", result)
            break
        report.mutated = report.mutated or mutating
        carry_shell_cwd(planned.tool, result, context)
        problem = verify(step, result, data, context.workspace, exact)
        if problem:
            # in an exact replay a different outcome means a different world; under new
            # values it may be the generalization that was wrong
            stop(problem, "world" if exact else "fault", result)
            break
        differs, shown = _observe(planned, result, slots, context)
        if differs and planned.expected_observation is not None:
            later = _later_changes(plan, position, context)
            if later is not None:
                stop(f"observed another result than the recorded run, and the later {later} "
                     "may depend on what was observed", "world", result)
                break
            if not question:
                # the goal asks for a change: the recorded run decided what to do (maybe
                # nothing: the work was done) from what it saw, and this world differs
                stop("observed another result than the recorded run, which chose its "
                     "steps from what it saw: they may not achieve the goal here", "world",
                     result)
                break
        report.steps.append(StepReport(index, planned.tool, data, True, "replayed",
                                       result.duration_s, shown, differs))
        if progress is not None:
            verdict = "allow" if result.decision is None else result.decision.verdict
            progress("tool", {"tool": planned.tool, "input": data, "verdict": verdict,
                              "reason": "replayed"})
    report.overhead_s = max(0.0, time.perf_counter() - started - tool_time)
    context.extra.pop("shell_cwd", None)
    return report
