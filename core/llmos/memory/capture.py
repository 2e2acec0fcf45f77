"""Trace capture: every tool call of a run, recorded as a step as it happens.

A ``post_tool_use`` plugin. For each call made inside a run (``context.run_id``), it
records the tool, its input and what was observed (error or not, a digest and excerpt
of the result, the exit code when there is one, and the path and sha256 of each file the
call wrote) into the configured memory backend. Secrets are redacted before anything is
stored. Recording never breaks a run: a failure is logged and noted in
``result.metadata["memory_error"]``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import llmos
from llmos.tools import is_read_only

if TYPE_CHECKING:
    from llmos.calls import CallContext, ToolCall, ToolResult
    from llmos.memory.base import MemoryBackend
    from llmos.memory.models import FileDigest, Step

log = logging.getLogger("llmos.memory")

PATH_KEYS = ("file_path", "notebook_path", "path", "filename")
EXIT_CODE_KEYS = ("exit_code", "returncode", "exitCode", "exit_status")
_EXIT_TEXT = re.compile(r"^\s*exit code[:\s]+(-?\d+)", re.IGNORECASE)


def written_paths(call: ToolCall, result: ToolResult, context: CallContext) -> list[str]:
    """Files a call wrote: those the tool reports in ``metadata["files_written"]``, and
    for a tool that is not read-only, the path it was given (Write, Edit, ...)."""
    paths = [str(p) for p in result.metadata.get("files_written") or ()]
    if not result.is_error and not is_read_only(call.tool, context.kernel.tools):
        for key in PATH_KEYS:
            value = call.input.get(key)
            if isinstance(value, str) and value.strip():
                paths.append(value)
                break
    return list(dict.fromkeys(paths))


def file_digest(path: str, root: Path) -> FileDigest | None:
    """The file's sha256 as it is now, or None when it is not a regular file."""
    from llmos.memory.models import FileDigest

    target = Path(path).expanduser()
    if not target.is_absolute():
        target = root / target
    try:
        if not target.is_file():
            return None
        sha = hashlib.sha256()
        size = 0
        with open(target, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha.update(chunk)
                size += len(chunk)
    except OSError:
        return None
    try:
        shown = str(target.resolve().relative_to(root.resolve()))
    except ValueError:
        shown = str(target)
    return FileDigest(path=shown, sha256=sha.hexdigest(), size=size)


def exit_code(result: ToolResult) -> int | None:
    sources: list[Any] = [result.metadata]
    if isinstance(result.output, dict):
        sources.append(result.output)
    for source in sources:
        for key in EXIT_CODE_KEYS:
            value = source.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    if result.is_error:
        m = _EXIT_TEXT.match(result.error or "")
        if m:
            return int(m.group(1))
    return None


def goal_slots(context: CallContext) -> tuple:
    """The slots of the goal the call serves (observations abstract their values)."""
    route = context.extra.get("route")
    if route is not None:
        return route.goal.slots
    goal = context.extra.get("goal")
    if not isinstance(goal, str) or not goal:
        return ()
    from llmos.goals import analyze_goal

    return analyze_goal(goal).slots


def file_existed(result: ToolResult) -> bool | None:
    """For a Write-like call: whether it updated an existing file (Claude Code's and the
    replay Write both say ``type: create|update``)."""
    output = result.output
    if result.is_error or not isinstance(output, dict):
        return None
    kind = output.get("type")
    return {"create": False, "update": True}.get(kind) if isinstance(kind, str) else None


def step_from_call(call: ToolCall, result: ToolResult, context: CallContext) -> Step:
    """The step to record for a finished call (redacted when it is stored)."""
    from llmos.learning.observe import observation_digest
    from llmos.memory.models import Step, StepOutcome, digest_text, excerpt
    from llmos.memory.redaction import redact_text

    text = redact_text(result.text)
    refused = result.decision is not None and result.decision.verdict != "allow"
    files = [d for p in written_paths(call, result, context)
             if (d := file_digest(p, context.workspace)) is not None]
    return Step(
        tool=call.tool,
        input=dict(call.input),
        outcome=StepOutcome(
            is_error=result.is_error,
            refused=refused,
            digest=digest_text(text),
            excerpt=excerpt(text),
            exit_code=exit_code(result),
            files=files,
            observation="" if result.is_error else observation_digest(
                call.tool, result.output, context.kernel.tools, goal_slots(context)),
            file_existed=file_existed(result),
        ),
        duration_s=round(result.duration_s, 6),
        source=call.source,
        call_id=call.call_id,
    )


def record(memory: MemoryBackend, step: Step, context: CallContext) -> Step:
    """Append the step to the context's run, starting the run record if nobody did."""
    from llmos.memory.base import RunNotFound

    assert context.run_id is not None
    try:
        return memory.record_step(context.run_id, step)
    except RunNotFound:
        memory.start_run(
            str(context.extra.get("goal", "")),
            str(context.extra.get("mode", "unknown")),
            run_id=context.run_id,
        )
        return memory.record_step(context.run_id, step)


@llmos.hookimpl
def llmos_post_tool_use(call: ToolCall, result: ToolResult, context: CallContext) -> None:
    if context.run_id is None:
        return
    try:
        record(context.kernel.memory, step_from_call(call, result, context), context)
    except Exception as exc:  # recording must never break the run
        from llmos.memory.redaction import redact_text

        reason = redact_text(str(exc))  # an error can quote the data it failed on
        result.metadata["memory_error"] = f"{type(exc).__name__}: {reason}"
        log.warning("could not record %s for run %s: %s", call.tool, context.run_id, reason)


def __getattr__(name: str) -> Any:
    # ``promote_run_to_trace`` lives in llmos.memory.runlog; importable from here too.
    if name == "promote_run_to_trace":
        from llmos.memory.runlog import promote_run_to_trace

        return promote_run_to_trace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
