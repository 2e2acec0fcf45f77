"""The safety envelope, checked on the *planned path* of a move, not just its end point.

A move is a straight line of the gripper from where it is to the target (the drivers
execute exactly that line). ``check_path`` is used twice: by the pack's
``llmos_pre_tool_use`` hook (deny with a reason and a suggestion) and by the driver
itself on every action it receives, whatever path it came by (defence in depth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmos_robo.geometry import Point, box_exit, distance, lerp, point_in_box, zone_entry

if TYPE_CHECKING:
    from llmos_robo.config import RoboConfig


TRACKING_MARGIN_M = 0.01
"""How far the real gripper may stray from the planned line (out of the box) before the
driver halts it; a move may start from anywhere within it."""


class SafetyViolation(Exception):
    """A motion was refused by the safety envelope (the message says why and what to do)."""

    def __init__(self, rule: str, reason: str, suggestion: str = "") -> None:
        self.rule, self.reason, self.suggestion = rule, reason, suggestion
        super().__init__(f"{reason}; {suggestion}" if suggestion else reason)


@dataclass(frozen=True)
class Envelope:
    """The limits a motion must respect, independent of where they were configured."""

    workspace_min: tuple[float, float, float]
    workspace_max: tuple[float, float, float]
    zones: tuple  # BoxZone | SphereZone
    zone_margin_m: float
    max_step_m: float
    max_speed_m_s: float

    @classmethod
    def from_config(cls, cfg: RoboConfig) -> Envelope:
        return cls(tuple(cfg.workspace.min), tuple(cfg.workspace.max),
                   tuple(cfg.forbidden_zones), cfg.zone_margin_m, cfg.max_step_m,
                   cfg.max_speed_m_s)


def fmt(p: Point) -> str:
    return "(" + ", ".join(f"{round(v, 3) + 0.0:.3f}" for v in p) + ")"  # no "-0.000"


def clamp_to_box(p: Point, lo: Point, hi: Point) -> tuple[float, float, float]:
    return tuple(min(max(p[i], lo[i]), hi[i]) for i in range(3))  # type: ignore[return-value]


def check_path(start: Point, target: Point, env: Envelope) -> SafetyViolation | None:
    """The first way the straight path ``start``→``target`` breaks the envelope, or None."""
    lo, hi = env.workspace_min, env.workspace_max
    length = distance(start, target)
    if not point_in_box(start, lo, hi, margin=TRACKING_MARGIN_M):
        return SafetyViolation(
            "robo.workspace",
            f"the gripper is at {fmt(start)}, outside the workspace box {fmt(lo)}..{fmt(hi)}",
            "a human must bring the arm back (llmos robo reset --world) before it moves again",
        )
    start = clamp_to_box(start, lo, hi)  # tracking error is not an exit
    t = box_exit(start, target, lo, hi)
    if t is not None:
        where = lerp(start, target, t)
        axes = [f"{'xyz'[i]}={target[i]:.3f} is outside {lo[i]:.3f}..{hi[i]:.3f}"
                for i in range(3) if not lo[i] <= target[i] <= hi[i]]
        return SafetyViolation(
            "robo.workspace",
            f"the path from {fmt(start)} to {fmt(target)} leaves the workspace box at "
            f"{fmt(where)} ({'; '.join(axes)})",
            f"choose a target inside the box, e.g. {fmt(clamp_to_box(target, lo, hi))}",
        )
    for zone in env.zones:
        t = zone_entry(zone, start, target, env.zone_margin_m)
        if t is None:
            continue
        where = lerp(start, target, t)
        return SafetyViolation(
            "robo.forbidden-zone",
            f"the path from {fmt(start)} to {fmt(target)} enters forbidden zone "
            f"{zone.name!r} ({_describe(zone)}, margin {env.zone_margin_m:.3f} m) at "
            f"{fmt(where)}, {t * 100:.0f}% of the way",
            _detour(zone, start, target, env),
        )
    if length > env.max_step_m + 1e-9:
        moves = math.ceil(length / env.max_step_m)
        first = lerp(start, target, env.max_step_m / length)
        return SafetyViolation(
            "robo.max-step",
            f"the move is {length:.3f} m long, more than robo.max_step_m = "
            f"{env.max_step_m:.3f} m",
            f"split it into {moves} moves, the first to {fmt(first)}",
        )
    return None


def _describe(zone) -> str:
    if zone.kind == "box":
        return f"box {fmt(zone.min)}..{fmt(zone.max)}"
    return f"sphere at {fmt(zone.center)} radius {zone.radius:.3f}"


def _detour(zone, start: Point, target: Point, env: Envelope) -> str:
    top = (zone.max[2] if zone.kind == "box" else zone.center[2] + zone.radius)
    safe_z = top + env.zone_margin_m + 0.03
    if safe_z <= env.workspace_max[2]:
        return (f"go around it: first up to z={safe_z:.3f}, across above the zone, then down "
                f"(every leg is checked again)")
    return "go around it with two or more moves that each stay clear of the zone"
