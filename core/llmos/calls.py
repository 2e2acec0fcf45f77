"""The values that travel through the tool gateway: a call, its context, a verdict, a result."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from llmos.kernel import Kernel

Verdict = Literal["allow", "ask", "deny"]
CallSource = Literal["model", "replay", "cli", "tool"]

_SEVERITY: dict[str, int] = {"allow": 0, "ask": 1, "deny": 2}


@dataclass(frozen=True)
class ToolCall:
    """One request to run a tool, from the model, a replay or a user."""

    tool: str
    input: dict[str, Any]
    source: CallSource = "cli"
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


@dataclass(frozen=True)
class Decision:
    """A policy verdict on a tool call. ``rule`` names what decided, for audits."""

    verdict: Verdict
    reason: str = ""
    rule: str = ""
    plugin: str = ""

    @staticmethod
    def allow(reason: str = "", rule: str = "") -> Decision:
        return Decision("allow", reason, rule)

    @staticmethod
    def ask(reason: str, rule: str = "") -> Decision:
        return Decision("ask", reason, rule)

    @staticmethod
    def deny(reason: str, rule: str = "") -> Decision:
        return Decision("deny", reason, rule)

    @property
    def severity(self) -> int:
        return _SEVERITY[self.verdict]


def strictest(decisions: list[Decision]) -> Decision | None:
    """Combine verdicts: deny wins over ask, ask over allow; the first of equals is kept."""
    best: Decision | None = None
    for decision in decisions:
        if best is None or decision.severity > best.severity:
            best = decision
    return best


@dataclass
class CallContext:
    """Where a call happens: which kernel, run and workspace, and whether a human can answer."""

    kernel: Kernel
    run_id: str | None = None
    interactive: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def workspace(self) -> Path:
        return self.kernel.workspace.root


@dataclass
class ToolResult:
    """What a tool call produced. ``is_error`` results carry a message meant for the caller."""

    output: Any = None
    is_error: bool = False
    error: str = ""
    decision: Decision | None = None
    duration_s: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The result as text, as a model would see it."""
        if self.is_error:
            return self.error
        if isinstance(self.output, str):
            return self.output
        import json

        return json.dumps(self.output, default=str, ensure_ascii=False)
