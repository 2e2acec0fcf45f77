"""Straight paths against boxes and spheres (plain floats: no heavy imports here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Point = Sequence[float]
EPS = 1e-12


def point_in_box(p: Point, lo: Point, hi: Point, margin: float = 0.0) -> bool:
    return all(lo[i] - margin <= p[i] <= hi[i] + margin for i in range(3))


def lerp(a: Point, b: Point, t: float) -> tuple[float, float, float]:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def distance(a: Point, b: Point) -> float:
    return math.dist(a, b)


def segment_box_entry(a: Point, b: Point, lo: Point, hi: Point) -> float | None:
    """The fraction of the way from ``a`` to ``b`` where the segment first touches the
    box (0 when ``a`` is inside), or None when it never does (the slab method)."""
    t0, t1 = 0.0, 1.0
    for i in range(3):
        d = b[i] - a[i]
        if abs(d) < EPS:
            if a[i] < lo[i] or a[i] > hi[i]:
                return None
            continue
        ta, tb = (lo[i] - a[i]) / d, (hi[i] - a[i]) / d
        if ta > tb:
            ta, tb = tb, ta
        t0, t1 = max(t0, ta), min(t1, tb)
        if t0 > t1:
            return None
    return t0


def segment_sphere_entry(a: Point, b: Point, center: Point, radius: float) -> float | None:
    """The fraction of the way where the segment first comes within ``radius`` of
    ``center`` (0 when ``a`` already is), or None."""
    if distance(a, center) <= radius:
        return 0.0
    d = [b[i] - a[i] for i in range(3)]
    f = [a[i] - center[i] for i in range(3)]
    qa = sum(x * x for x in d)
    if qa < EPS:
        return None
    qb = 2 * sum(d[i] * f[i] for i in range(3))
    qc = sum(x * x for x in f) - radius * radius
    disc = qb * qb - 4 * qa * qc
    if disc < 0:
        return None
    t = (-qb - math.sqrt(disc)) / (2 * qa)
    return t if 0.0 <= t <= 1.0 else None


def zone_entry(zone: Any, a: Point, b: Point, margin: float) -> float | None:
    """Where the path ``a``→``b`` enters ``zone`` grown by ``margin``, or None."""
    if zone.kind == "box":
        lo = [v - margin for v in zone.min]
        hi = [v + margin for v in zone.max]
        return segment_box_entry(a, b, lo, hi)
    return segment_sphere_entry(a, b, zone.center, zone.radius + margin)


def zone_contains(zone: Any, p: Point, margin: float = 0.0) -> bool:
    return zone_entry(zone, p, p, margin) is not None


def box_exit(a: Point, b: Point, lo: Point, hi: Point) -> float | None:
    """Where the path ``a``→``b`` leaves the box (a convex set: only an end point outside
    can take it out), or None when it stays inside. 0 when ``a`` is already outside."""
    if not point_in_box(a, lo, hi):
        return 0.0
    if point_in_box(b, lo, hi):
        return None
    # first t at which some coordinate crosses a face
    t_exit = 1.0
    for i in range(3):
        d = b[i] - a[i]
        if d > EPS and b[i] > hi[i]:
            t_exit = min(t_exit, (hi[i] - a[i]) / d)
        elif d < -EPS and b[i] < lo[i]:
            t_exit = min(t_exit, (lo[i] - a[i]) / d)
    return t_exit
