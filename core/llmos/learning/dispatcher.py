"""The dispatcher: every mode bids on a goal; rules in config and the budget choose.

Defaults: FOLLOWER when a trace matches with confidence >= ``dispatch.follower_threshold``
(0.92), MIXED from ``dispatch.mixed_threshold`` (0.75), otherwise LEARNER. Among the
modes whose bid clears its threshold the cheapest wins. A paid mode the balance cannot
cover never starts; below ``budget.low_balance_usd`` a free replay is accepted down to
the MIXED threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmos.economy import MICRO, LowBatteryError

if TYPE_CHECKING:
    from llmos.goals import Goal
    from llmos.kernel import Kernel
    from llmos.learning.matching import Candidate


@dataclass(frozen=True)
class Bid:
    mode: str
    confidence: float
    reason: str
    estimated_cost_usd: float
    trace_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies every field, a tenth of a route's time
        return {"mode": self.mode, "confidence": round(self.confidence, 4),
                "reason": self.reason,
                "estimated_cost_usd": round(self.estimated_cost_usd, 6),
                "trace_id": self.trace_id}


@dataclass
class Route:
    goal: Goal
    chosen: str
    reason: str
    bids: list[Bid]
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def matched(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def bid_of(self, mode: str) -> Bid | None:
        return next((b for b in self.bids if b.mode == mode), None)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON of ``llmos route --json``."""
        return {
            "goal": self.goal.text,
            "normalized_goal": self.goal.normalized,
            "chosen": self.chosen,
            "reason": self.reason,
            "bids": [b.as_dict() for b in self.bids],
            "matched_trace": self.matched.as_dict() if self.matched else None,
        }


def thresholds(kernel: Kernel) -> dict[str, float]:
    cfg = kernel.config.dispatch
    return {"FOLLOWER": cfg.follower_threshold, "MIXED": cfg.mixed_threshold}


def route(kernel: Kernel, goal_text: str, *, forced: str | None = None) -> Route:
    """Ask every mode for a bid and choose one, without running anything."""
    from llmos.learning.matching import best_match

    goal, found = best_match(kernel.memory, goal_text)
    bids: list[Bid] = []
    for entry in kernel.dispatch_modes:
        bid = entry.value.bid(goal, found, kernel)
        if bid is not None:
            bids.append(bid)
    if forced is not None:
        name = forced.upper()
        if name not in kernel.dispatch_modes:
            from llmos.config import ConfigError

            raise ConfigError(f"no dispatch mode named {forced!r}; available: "
                              f"{', '.join(kernel.dispatch_modes.names())}")
        return Route(goal, name, "forced with --mode", bids, found)
    return choose(kernel, goal, bids, found)


def choose(kernel: Kernel, goal: Goal, bids: list[Bid], found: list[Candidate]) -> Route:
    limits = thresholds(kernel)
    available = kernel.economy.available_micro
    cap = kernel.config.budget.run_cap_usd
    low = available < round(kernel.config.budget.low_balance_usd * MICRO)

    def threshold(bid: Bid) -> float:
        mode = kernel.dispatch_modes.get(bid.mode).value
        limit = limits.get(bid.mode, getattr(mode, "min_confidence", limits["FOLLOWER"]))
        if low and not mode.paid:
            limit = min(limit, limits["MIXED"])
        return limit

    def affordable(bid: Bid) -> bool:
        mode = kernel.dispatch_modes.get(bid.mode).value
        return not mode.paid or available >= round(cap * MICRO)

    eligible = [b for b in bids if b.confidence >= threshold(b)]
    payable = [b for b in eligible if affordable(b)]
    if not payable:
        if eligible:
            raise LowBatteryError(round(cap * MICRO), available,
                                  f"{eligible[0].mode} run (no free mode matches this goal)")
        raise LookupError("no dispatch mode bid on this goal")
    best = min(payable, key=lambda b: (b.estimated_cost_usd, -b.confidence))
    reason = f"{best.mode}: {best.reason} (confidence {best.confidence:.2f} >= " \
             f"{threshold(best):.2f}, est. ${best.estimated_cost_usd:.4f})"
    if low:
        reason += "; low balance: cheap modes preferred"
    return Route(goal, best.mode, reason, bids, found)
