"""Security benchmark: peak memory of a replayed sandboxed Bash printing 50 MB (beside a
baseline ``true`` in the same run), and the shell policy's decision time over the attack
corpus (``tests/security/attacks.yaml``).

    python bench/security/run.py            # prints a table; --json for machine output

Each memory figure comes from a fresh Python process that opens a kernel and replays one
``Bash`` call through the gateway (the FOLLOWER path): its peak RSS (``ru_maxrss``). The
difference between the two is what the output cost llmos (the child's own RSS is not
shown: a forked child's ``ru_maxrss`` counts the parent's pages it shared before exec).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "security" / "attacks.yaml"

PROBE = r"""
import asyncio, json, resource, sys, time
from llmos.kernel import Kernel

async def main():
    async with Kernel(sys.argv[1], load_entry_points=False, interactive=False) as kernel:
        context = kernel.context(run_id="bench")
        started = time.perf_counter()
        result = await kernel.call_tool("Bash", {"command": sys.argv[2]}, context=context,
                                        source="replay")
        took = time.perf_counter() - started
    out = result.output or {}
    print(json.dumps({
        "ok": not result.is_error, "error": result.error[:200],
        "seconds": took,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "kept_bytes": len(out.get("stdout", "")), "truncated_bytes": out.get("truncated_bytes", 0),
    }))

asyncio.run(main())
"""


def _isolate() -> None:
    home = Path(tempfile.mkdtemp(prefix="llmos-bench-home-"))
    for name in list(os.environ):
        if name.startswith("LLMOS_"):
            del os.environ[name]
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")


def replay_peak(command: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="llmos-bench-ws-") as workspace:
        done = subprocess.run([sys.executable, "-c", PROBE, workspace, command],
                              capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"probe failed for {command!r}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def decision_times(rounds: int) -> dict:
    import yaml
    from tests.security.conftest import INJECTION_NAMES, build_workspace

    from llmos.security.shell import analyze_command

    corpus = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    commands = [e if isinstance(e, str) else e["cmd"] for entries in corpus.values()
                for e in entries]
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="llmos-bench-") as tmp:
        workspace = build_workspace(Path(tmp))
        for name in INJECTION_NAMES:
            (workspace / name).write_text("")
        for command in commands:  # warm up parsers and caches
            analyze_command(command, sandboxed=True, workspace=workspace)
        for _ in range(rounds):
            for command in commands:
                started = time.perf_counter()
                analyze_command(command, sandboxed=True, workspace=workspace)
                samples.append(time.perf_counter() - started)
    samples.sort()
    return {"commands": len(commands), "decisions": len(samples),
            "p50_ms": statistics.median(samples) * 1000,
            "p99_ms": samples[int(len(samples) * 0.99) - 1] * 1000,
            "max_ms": samples[-1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the attack corpus")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _isolate()
    sys.path.insert(0, str(ROOT))
    baseline = replay_peak("true")
    big = replay_peak("seq 1 6700000")  # 52.5 MB (50.1 MiB) of output
    policy = decision_times(args.rounds)
    results = {"replay_true": baseline, "replay_50mb": big, "policy": policy}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| measure | value |")
    print("|---|---|")
    print(f"| peak RSS, replayed `true` (llmos process) | {baseline['peak_rss_mib']:.1f} MiB |")
    print(f"| peak RSS, replayed `seq 1 6700000` (50 MiB out) | {big['peak_rss_mib']:.1f} MiB |")
    print(f"| difference (what 50 MiB of output cost llmos) | "
          f"{big['peak_rss_mib'] - baseline['peak_rss_mib']:.1f} MiB |")
    print(f"| output kept / left out, 50 MiB run | {big['kept_bytes']} B / "
          f"{big['truncated_bytes']} B |")
    print(f"| 50 MiB replay wall time | {big['seconds']:.2f} s |")
    print(f"| policy decision p50 over {policy['commands']} attacks "
          f"({policy['decisions']} decisions) | {policy['p50_ms']:.3f} ms |")
    print(f"| policy decision p99 | {policy['p99_ms']:.3f} ms |")
    print(f"| policy decision max | {policy['max_ms']:.3f} ms |")


if __name__ == "__main__":
    main()
