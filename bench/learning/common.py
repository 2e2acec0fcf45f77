"""Helpers shared by the learning benchmarks (imported as ``common`` by the scripts here)."""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def isolate_environment() -> Path:
    """Keep the user's llmos config, data and ``LLMOS_*`` variables out of the run (as the
    ``llmos_env`` pytest fixture does). Returns the temporary home it made."""
    home = Path(tempfile.mkdtemp(prefix="llmos-bench-home-"))
    for name in list(os.environ):
        if name.startswith("LLMOS_"):
            del os.environ[name]
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    return home


def quantiles_ms(samples: list[float]) -> dict[str, float]:
    """Median, p90, p99 and max of ``samples`` (seconds), in milliseconds."""
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}

    def at(q: float) -> float:  # nearest rank
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1e3, 3),
        "p90_ms": round(at(0.90) * 1e3, 3),
        "p99_ms": round(at(0.99) * 1e3, 3),
        "max_ms": round(ordered[-1] * 1e3, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1e3, 3),
    }


def machine() -> dict[str, Any]:
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpus": os.cpu_count()}


def code_fingerprint(started: float) -> dict[str, Any]:
    """The llmos learning / memory / goals modules this process ran: a hash of each file
    as it is now, and whether it changed after ``started`` (``time.time()``; others may be
    editing the tree while a benchmark runs)."""
    out: dict[str, Any] = {}
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or not name.startswith(("llmos.learning", "llmos.memory", "llmos.goals",
                                            "llmos.modes", "llmos.runner")):
            continue
        data = Path(path).read_bytes()
        out[name] = {"sha256": hashlib.sha256(data).hexdigest()[:16],
                     "changed_during_run": os.stat(path).st_mtime > started}
    return out
