"""Cassettes: the tool calls a run made and what each returned, to drive a crystal without
touching the world.

A regression test drives the crystal with each source trace's cassette (its slot values
as parameters): it must make the same calls, in order, with the same inputs (so it
writes the same files), and no more or fewer. A shadow comparison does the same with the
cassette of a run the normal path just made for a new goal.

Inputs are compared as the tool will run them: validated by the tool's input model, note
fields (a Bash ``description``) left out, and paths inside the workspace made relative.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmos.calls import Decision, ToolResult

if TYPE_CHECKING:
    from llmos.memory.models import Step
    from llmos.tools import ToolRegistry

_CLAUDE_NOTES = {"Bash": {"description", "timeout", "run_in_background"}}


class CassetteIncomplete(ValueError):
    """A recorded result was cut short (or not kept), so the cassette cannot answer."""


@dataclass
class Entry:
    tool: str
    input: dict[str, Any]
    result: ToolResult
    #: the model repeated the call a replay had just made, with the same outcome (after a
    #: handoff it could not see the replayed output): a crystal may make it once or twice
    redundant: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "input": self.input, "ok": not self.result.is_error,
                "output": self.result.output, "error": self.result.error,
                "redundant": self.redundant}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        ok = bool(data.get("ok", True))
        return cls(data["tool"], dict(data.get("input") or {}),
                   ToolResult(output=data.get("output"), is_error=not ok,
                              error=str(data.get("error") or ""),
                              decision=Decision.allow("cassette", "crystal.cassette")),
                   bool(data.get("redundant")))


def _result_of(step: Step) -> ToolResult:
    outcome = step.outcome
    text = outcome.excerpt
    if "characters omitted ...]" in text:
        raise CassetteIncomplete(f"the result of {step.tool} (step {(step.index or 0) + 1}) "
                                 "was too long to keep whole")
    allow = Decision.allow("cassette", "crystal.cassette")
    if outcome.is_error:
        return ToolResult(is_error=True, error=text, decision=allow)
    try:
        output: Any = json.loads(text)
    except ValueError:
        output = text
    return ToolResult(output=output, decision=allow)


def entries_from_steps(steps: list[Step]) -> list[Entry]:
    """The cassette of recorded steps: only the calls a replay would make."""
    from llmos.learning.replay import SKIPPED_TOOLS

    kept = [s for s in steps if not s.outcome.refused and s.tool not in SKIPPED_TOOLS]
    entries = []
    for n, step in enumerate(kept):
        before = kept[n - 1] if n else None
        redundant = before is not None and before.source == "replay" and \
            step.source == "model" and before.tool == step.tool and \
            _same_call(before.tool, before.input, step.input) and \
            _same_outcome(before.outcome, step.outcome)
        entries.append(Entry(step.tool, dict(step.input), _result_of(step), redundant))
    return entries


def _same_outcome(a: Any, b: Any) -> bool:
    """Same success and observation; exit codes where both are known (Claude Code's Bash
    response carries none)."""
    return a.is_error == b.is_error and a.observation == b.observation and (
        a.exit_code is None or b.exit_code is None or a.exit_code == b.exit_code)


def _same_call(tool: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
    notes = _CLAUDE_NOTES.get(tool, set())
    return {k: v for k, v in a.items() if k not in notes} == \
        {k: v for k, v in b.items() if k not in notes}


def normalized_input(tool: str, data: dict[str, Any], tools: ToolRegistry,
                     workspace: str) -> Any:
    """``data`` as the tool runs it, for comparison."""
    registered = tools.get(tool)
    notes = set(_CLAUDE_NOTES.get(tool, ()))
    kinds: dict[str, str] = {}
    if registered is not None:
        kinds = dict(registered.input_kinds())
        notes |= {k for k, v in kinds.items() if v == "note"}
        try:
            data = registered.input_model.model_validate(data).model_dump(
                mode="json", by_alias=True, exclude_none=True)
        except Exception:
            data = dict(data)
    out: dict[str, Any] = {}
    root = workspace.rstrip("/") + "/"
    for key, value in sorted(data.items()):
        if key in notes:
            continue
        if isinstance(value, str) and (kinds.get(key) in ("path", "read_path", "write_path")
                                       or key in ("file_path", "notebook_path", "path")):
            value = os.path.normpath(value[len(root):] if value.startswith(root) else value)
        out[key] = value
    return out


@dataclass
class Comparison:
    """How a crystal's calls compared with a cassette's."""

    agreed: bool = True
    reason: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)


class CassetteCaller:
    """Answers the crystal's calls from the cassette, checking each against the record."""

    def __init__(self, entries: list[Entry], tools: ToolRegistry, workspace: str) -> None:
        self.entries = entries
        self.tools = tools
        self.workspace = workspace
        self.position = 0
        self.comparison = Comparison()

    def disagree(self, reason: str) -> ToolResult:
        if self.comparison.agreed:
            self.comparison.agreed, self.comparison.reason = False, reason
        from llmos.crystallize.runtime import CrystalFailed

        raise CrystalFailed(reason)

    async def __call__(self, tool: str, data: dict[str, Any]) -> ToolResult:
        n = self.position
        self.comparison.calls.append({"tool": tool, "input": data})
        if n >= len(self.entries):
            return self.disagree(f"call {n + 1} ({tool}) is one more than the recorded "
                                 f"{len(self.entries)}")
        mine = normalized_input(tool, data, self.tools, self.workspace)
        entry = self.entries[n]
        theirs = normalized_input(entry.tool, entry.input, self.tools, self.workspace)
        while (tool != entry.tool or mine != theirs) and entry.redundant and \
                n + 1 < len(self.entries):
            n = self.position = n + 1  # the crystal made the repeated call once
            entry = self.entries[n]
            theirs = normalized_input(entry.tool, entry.input, self.tools, self.workspace)
        if tool != entry.tool or mine != theirs:
            return self.disagree(
                f"call {n + 1}: {tool} {json.dumps(mine, ensure_ascii=False)[:300]} where the "
                f"record has {entry.tool} {json.dumps(theirs, ensure_ascii=False)[:300]}")
        self.position += 1
        return entry.result

    def finish(self) -> Comparison:
        while self.position < len(self.entries) and self.entries[self.position].redundant:
            self.position += 1
        if self.comparison.agreed and self.position < len(self.entries):
            missing = self.entries[self.position]
            self.comparison.agreed = False
            self.comparison.reason = (f"made {self.position} calls; the record has "
                                      f"{len(self.entries)} (next: {missing.tool})")
        return self.comparison
