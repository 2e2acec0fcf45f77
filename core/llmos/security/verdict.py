"""The outcome of a policy check: allow, ask or deny, with the rule that decided it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Decision = Literal["allow", "ask", "deny"]

#: How strict each decision is; combining verdicts keeps the strictest.
SEVERITY: dict[Decision, int] = {"allow": 0, "ask": 1, "deny": 2}

_MAX_EXTRA_REASONS = 4


@dataclass(frozen=True)
class Verdict:
    """A policy decision and the rule that produced it.

    ``reason`` is written for a human reading an audit log or a permission prompt;
    it starts with the rule id so the two never drift apart.
    """

    decision: Decision
    rule: str
    reason: str

    def __post_init__(self) -> None:
        if self.decision not in SEVERITY:
            raise ValueError(f"unknown decision {self.decision!r}")

    @property
    def severity(self) -> int:
        """0 for allow, 1 for ask, 2 for deny."""
        return SEVERITY[self.decision]

    @classmethod
    def allow(cls, rule: str, reason: str) -> Verdict:
        """An allow verdict."""
        return cls("allow", rule, f"rule {rule}: {reason}")

    @classmethod
    def ask(cls, rule: str, reason: str) -> Verdict:
        """An ask verdict."""
        return cls("ask", rule, f"rule {rule}: {reason}")

    @classmethod
    def deny(cls, rule: str, reason: str) -> Verdict:
        """A deny verdict."""
        return cls("deny", rule, f"rule {rule}: {reason}")

    def at_least(self, decision: Decision) -> Verdict:
        """This verdict, raised to ``decision`` if it is more permissive than that."""
        if self.severity >= SEVERITY[decision]:
            return self
        return Verdict(decision, self.rule, self.reason)


def combine(verdicts: Iterable[Verdict], *, default: Verdict | None = None) -> Verdict:
    """Fold verdicts into one: deny beats ask beats allow.

    The first verdict of the highest severity wins; the reasons of the other
    non-allow verdicts are appended so a reviewer sees every objection. With no
    verdicts the ``default`` is returned, or a deny when none is given (fail closed).
    """
    items = list(verdicts)
    if not items:
        if default is not None:
            return default
        return Verdict.deny("policy.no_verdict", "nothing was checked, so nothing is allowed")
    worst = max(items, key=lambda v: v.severity)  # max keeps the first of equal keys
    if worst.decision == "allow":
        return worst
    others: list[str] = []
    for item in items:
        if item is worst or item.decision == "allow" or item.reason in others:
            continue
        if item.reason != worst.reason:
            others.append(item.reason)
    if not others:
        return worst
    shown = others[:_MAX_EXTRA_REASONS]
    if len(others) > len(shown):
        shown.append(f"and {len(others) - len(shown)} more")
    return Verdict(worst.decision, worst.rule, "; ".join([worst.reason, *shown]))
