"""Run every benchmark and write one table: ``python bench/run_all.py``.

    pip install -e '.[bench]'                 # what the benchmarks need (pytest for workload)
    python bench/run_all.py                   # the quick set (about 15-25 min on 2 cores)
    python bench/run_all.py --baseline a8e738d --full
    python bench/run_all.py --only startup,learner

Each benchmark runs as its own process, one after the other (never side by side: they would
disturb each other), with its own defaults unless ``--full`` is given, where the quick set
passes smaller sizes. Each writes its JSON under bench/results/; this script prints each
one's table as it finishes and writes bench/results/summary.md: per benchmark, the
command, how long it took, whether it succeeded, and its own table (every figure in those
tables is paired with its baseline of the same run: a bare interpreter, the SDK alone, the
bundled CLI, an empty store or a baseline revision). The load average before and after is
recorded, since other work on the machine moves wall times (CPU times much less).

The quantum and robot benchmarks need their packs installed (``pip install -e
packages/llmos-quantum packages/llmos-robo``) and are skipped otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def benchmarks(full: bool, baseline: str | None) -> list[tuple[str, list[str], str | None]]:
    """(name, argv after the interpreter, the module it needs or None)."""
    startup = ["bench/startup/run.py", "--cold"] + (["--baseline", baseline] if baseline else [])
    if not full:
        startup += ["--runs", "5", "--replays", "8"]
    route = ["bench/learning/route_latency.py"]
    if not full:
        route += ["--sizes", "1000,10000", "--markdown-sizes", "1000", "--goals", "200"]
    return [
        ("startup", startup, None),
        ("learner", ["bench/cortex/learner_overhead.py", "--rounds", "5" if full else "3"],
         "claude_agent_sdk"),
        ("proxy", ["bench/cortex/proxy_overhead.py"], None),
        ("route", route, None),
        ("memory", ["bench/memory/run.py"] + ([] if full else ["--sizes", "1000,10000"]), None),
        ("security", ["bench/security/run.py"], None),
        ("workload", ["bench/learning/workload.py"] + ([] if full else ["--goals", "40"]),
         "pytest"),
        ("crystallize", ["bench/learning/crystallize.py"], None),
        ("quantum", ["bench/quantum/run.py"], "llmos_quantum"),
        ("robo", ["bench/robo/run.py"], "llmos_robo"),
        ("scale", ["bench/scale/run.py"] + ([] if full else ["--replays", "20", "--learners",
                                                             "3"]), "dbos"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="each benchmark's own defaults")
    parser.add_argument("--baseline", help="git revision startup compares with")
    parser.add_argument("--only", help="comma list of benchmark names")
    parser.add_argument("--out", default=str(RESULTS / "summary.md"))
    args = parser.parse_args()
    chosen = set(args.only.split(",")) if args.only else None
    sections, rows = [], []
    load_before = os.getloadavg()
    for name, argv, needs in benchmarks(args.full, args.baseline):
        if chosen is not None and name not in chosen:
            continue
        if needs and importlib.util.find_spec(needs) is None:
            rows.append(f"| {name} | skipped: {needs} is not installed | | |")
            continue
        command = " ".join(["python", *argv])
        print(f"== {name}: {command}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True,
                              text=True, check=False)
        took = time.perf_counter() - start
        status = "ok" if proc.returncode == 0 else f"failed ({proc.returncode})"
        output = proc.stdout.strip() if proc.returncode == 0 else (
            proc.stdout.strip() + "\n" + proc.stderr.strip()[-3000:])
        print(output, flush=True)
        rows.append(f"| {name} | {status} | {took:.0f} s | `{command}` |")
        sections.append(f"## {name}\n\n`{command}` ({status}, {took:.0f} s)\n\n"
                        f"```\n{output}\n```\n")
    load_after = os.getloadavg()
    summary = "\n".join([
        "# llmos benchmarks", "",
        f"Load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
        f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}.", "",
        "| benchmark | status | took | command |", "|---|---|---|---|", *rows, "", *sections])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(summary)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
