"""Start-up benchmark: cold wall time of `llmos --version` and `llmos plugins`.

Run:  python bench/startup/run.py [--runs 15]
(with the llmos environment active, every pack you want measured installed)

Each command runs as a fresh process; the figure is the median wall time (and min/max)
over --runs runs, after one untimed warm-up that fills the OS file cache, so "cold"
means a cold interpreter, not a cold disk. Target: --version <= 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    exe = shutil.which("llmos") or str(Path(sys.executable).parent / "llmos")
    workspace = tempfile.mkdtemp(prefix="llmos-bench-")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    commands = {
        "llmos --version": [exe, "--version"],
        "llmos plugins": [exe, "--workspace", workspace, "plugins", "--json"],
    }
    plugins = json.loads(subprocess.run(commands["llmos plugins"], env=env, check=True,
                                        capture_output=True, text=True).stdout)
    results = {}
    for name, argv in commands.items():
        timed(argv, env)  # warm-up
        samples = [timed(argv, env) for _ in range(args.runs)]
        results[name] = {
            "median_s": round(statistics.median(samples), 4),
            "min_s": round(min(samples), 4),
            "max_s": round(max(samples), 4),
            "runs": args.runs,
        }
    report = {
        "plugins_loaded": sorted(p["name"] for p in plugins),
        "python": sys.version.split()[0],
        "results": results,
    }
    for name, r in results.items():
        print(f"{name:18} median {r['median_s']:.3f} s  (min {r['min_s']:.3f}, "
              f"max {r['max_s']:.3f}, {r['runs']} runs)")
    print("plugins:", ", ".join(report["plugins_loaded"]))
    out = Path(__file__).resolve().parents[1] / "results" / "startup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
