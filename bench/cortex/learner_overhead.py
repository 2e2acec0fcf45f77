"""What the kernel adds to a LEARNER run: the same scripted conversation (Write, Bash, a
final answer) run three ways, each as a fresh process, interleaved round by round (issue 12):

1. ``llmos run GOAL`` (LEARNER: kernel, policy gate through the SDK's hooks, metering
   proxy, ledger, trace capture);
2. the Claude Agent SDK alone (``query()`` with the same tools, no llmos), in Python;
3. the bundled Claude Code CLI alone (``claude -p`` with the same permission flags), and
   the same CLI with the sandbox flags llmos passes (``--settings`` enabling its Bash
   sandbox), so the sandbox's own overhead is reported on its own;
4. the SDK alone with that same sandbox (``sandbox=`` of ``ClaudeAgentOptions``), since
   llmos always runs Claude Code's Bash sandboxed: ``llmos / sdk+sandbox`` is what the
   kernel itself adds, ``llmos / sdk`` what it adds with the sandbox included.

Run from the repository root with the llmos environment active:

    python bench/cortex/learner_overhead.py              # 5 rounds
    python bench/cortex/learner_overhead.py --rounds 9

Each run talks to a fresh ``ScriptedModelServer`` on 127.0.0.1 (in this process, so its
CPU is counted in none of them). Reported per way: median wall and CPU time (user +
system of the process and every child it waited for: Claude Code's node process, bwrap),
and the paired ratios llmos / SDK and llmos / CLI (target: llmos <= 1.10 x the SDK).
Next to the whole process, the in-process figure: the run's own ``duration_s`` as llmos
reports it (from routing to the settled run; start-up and exit are the rest). The probe
caches live in the run's own folder (``LLMOS_CACHE_DIR``), warmed by the warm-up round,
so other llmos processes on the machine cannot evict them mid-run. The load average is
recorded. JSON goes to bench/results/learner_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOAL = "Create hello.txt saying hello and show it"

SDK_ALONE = r"""
import asyncio, sys
from claude_agent_sdk import ClaudeAgentOptions, query

async def main() -> None:
    options = ClaudeAgentOptions(cwd=sys.argv[1], setting_sources=[],
                                 allowed_tools=["Write", "Bash"])
    async for _ in query(prompt=sys.argv[2], options=options):
        pass

asyncio.run(main())
"""

SDK_SANDBOXED = SDK_ALONE.replace(
    'allowed_tools=["Write", "Bash"])',
    'allowed_tools=["Write", "Bash"],\n'
    '                                 sandbox=json.loads(sys.argv[3]))').replace(
    "import asyncio, sys", "import asyncio, json, sys")


def script():
    from llmos.testing.model_server import Script, Usage

    return (Script()
            .tool_use("Write", {"file_path": "hello.txt", "content": "hello\n"},
                      usage=Usage(1200, 40))
            .tool_use("Bash", {"command": "cat hello.txt"}, usage=Usage(1500, 30))
            .text("Wrote hello.txt and printed it.", usage=Usage(1800, 20)))


def bundled_cli() -> str:
    import claude_agent_sdk

    path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    return str(path)


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage.ru_utime - usage0.ru_utime) + (usage.ru_stime - usage0.ru_stime)
    if proc.returncode:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout


def sandbox_settings() -> dict:
    from llmos.security.sandbox import claude_code_sandbox_settings

    return claude_code_sandbox_settings()


IN_PROCESS: list[float] = []


def one(way: str, home: Path, n: int) -> tuple[float, float]:
    from llmos.testing.model_server import ScriptedModelServer

    workspace = home / f"{way}-{n}"
    workspace.mkdir(parents=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLMOS_")}
    base.update(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
                LLMOS_CACHE_DIR=str(home.parent / "cache"))
    with ScriptedModelServer(script()) as server:
        env = {**base, **server.env()}
        if way == "llmos":
            exe = str(Path(sys.executable).parent / "llmos")
            subprocess.run([exe, "--workspace", str(workspace), "budget", "set", "5"],
                           env=env, check=True, capture_output=True)
            wall, cpu, out = timed([exe, "--workspace", str(workspace), "run", "--json",
                                    GOAL], env, workspace)
            data = json.loads(out)
            assert data["mode"] == "LEARNER" and data["success"], data
            if n:
                IN_PROCESS.append(data["duration_s"])
        elif way == "sdk":
            wall, cpu, _ = timed([sys.executable, "-c", SDK_ALONE, str(workspace), GOAL],
                                 env, workspace)
        elif way == "sdk+sandbox":
            wall, cpu, _ = timed([sys.executable, "-c", SDK_SANDBOXED, str(workspace), GOAL,
                                  json.dumps(sandbox_settings())], env, workspace)
        else:
            argv = [bundled_cli(), "-p", GOAL, "--output-format", "json",
                    "--allowedTools", "Write,Bash", "--setting-sources", ""]
            if way == "cli+sandbox":
                settings = {"sandbox": sandbox_settings()}
                argv += ["--settings", json.dumps(settings)]
            wall, cpu, _ = timed(argv, env, workspace)
        assert (workspace / "hello.txt").read_text() == "hello\n", way
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" /
                                              "learner_overhead.json"))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="llmos-bench-learner-"))
    ways = ["llmos", "sdk", "sdk+sandbox", "cli", "cli+sandbox"]
    for way in ways:  # warm-up: OS file cache, bytecode cache, probe caches
        one(way, home / "warmup", 0)
    load_before = os.getloadavg()
    samples: dict[str, list[tuple[float, float]]] = {w: [] for w in ways}
    for n in range(1, args.rounds + 1):
        for way in ways:
            samples[way].append(one(way, home, n))
    load_after = os.getloadavg()

    def med(way: str, i: int) -> float:
        return round(statistics.median(s[i] for s in samples[way]) * 1e3, 1)

    def ratio(a: str, b: str, i: int) -> float:
        return round(statistics.median(x[i] / y[i] for x, y in
                                       zip(samples[a], samples[b], strict=True)), 3)

    report = {
        "load_average_before": load_before, "load_average_after": load_after,
        "rounds": args.rounds,
        "median_ms": {w: {"wall": med(w, 0), "cpu": med(w, 1)} for w in ways},
        "llmos_in_process_ms": round(statistics.median(IN_PROCESS) * 1e3, 1),
        "paired_ratio": {f"{a}/{b}": {"wall": ratio(a, b, 0), "cpu": ratio(a, b, 1)}
                         for a, b in (("llmos", "sdk"), ("llmos", "sdk+sandbox"),
                                      ("llmos", "cli"), ("sdk", "cli"),
                                      ("sdk+sandbox", "sdk"), ("cli+sandbox", "cli"))},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}, {args.rounds} rounds\n")
    print("| way | wall ms | CPU ms |\n|---|---|---|")
    for w in ways:
        print(f"| {w} | {report['median_ms'][w]['wall']:.0f} | "
              f"{report['median_ms'][w]['cpu']:.0f} |")
    print(f"| llmos, in process (the run's duration_s) | {report['llmos_in_process_ms']:.0f} "
          "| |")
    print("\n| paired ratio | wall | CPU |\n|---|---|---|")
    for name, r in report["paired_ratio"].items():
        print(f"| {name} | {r['wall']:.2f} | {r['cpu']:.2f} |")


if __name__ == "__main__":
    main()
