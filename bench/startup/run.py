"""Whole-process cost of the llmos CLI: `--version`, `plugins`, `route` and a 2-step FOLLOWER
replay (`llmos run`, Write + sandboxed Bash), each next to a bare interpreter, and the
replay's throughput with 1, 2 and 4 processes at once (issue 12).

Run from the repository root with the llmos environment active:

    python bench/startup/run.py                    # this tree, 9 interleaved rounds
    python bench/startup/run.py --baseline a8e738d --runs 15 --cold
    python bench/startup/run.py --instructions     # + callgrind instruction counts (slow)

Every figure is a fresh process. Per command it reports the median wall time and the
median CPU time (user + system of the process and everything it waited for, from
``getrusage``), which is far less disturbed by other work on a busy machine than wall
time. ``--baseline REF`` runs the same commands with the kernel and packs of git
revision REF (``git archive`` into a temporary folder, first on ``PYTHONPATH``),
interleaved round by round with this tree, and reports the paired ratio (median over
rounds of this / baseline). ``--cold`` adds runs with no bytecode cache at all
(``PYTHONDONTWRITEBYTECODE=1`` and an empty ``PYTHONPYCACHEPREFIX``: every module, the
standard library's included, is compiled); otherwise the bytecode cache is warm, and so
is the OS file cache (one untimed warm-up per command). The load average is recorded.

Next to each whole-process figure: ``route`` on an empty store of the same workspace
layout (what opening the one-trace store costs over none), and the replay's in-process
time (the run's own ``duration_s``: routing, the two steps, settling the run; the rest of
the process is start-up and exit). Throughput also reports the CPU cores the replays kept
busy (their CPU time over the elapsed time): replays that serialize on a lock keep fewer
cores busy than processes run at once; on a quiet machine they should reach
min(processes, CPUs). Each variant keeps its probe caches in its own folder
(``LLMOS_CACHE_DIR``), so other llmos processes cannot evict them mid-benchmark.

The replay workspace is made by ``replay_workspace.py`` (one proven trace, sqlite
memory). Results go to bench/results/startup.json and a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PACK_SOURCES = ("packages/llmos-web/src", "packages/llmos-quantum/src",
                "packages/llmos-robo/src")


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


FAILURES: list[dict[str, object]] = []


IN_PROCESS: dict[tuple[str, str], list[float]] = {}


def timed(argv: list[str], env: dict[str, str], cwd: str | None = None,
          key: tuple[str, str] | None = None) -> tuple[float, float]:
    """(wall s, CPU s) of one process run to completion; a failed run is recorded in
    ``FAILURES`` (and reported) rather than stopping the benchmark. With ``key``, the
    run's own ``duration_s`` (from its JSON) is kept in ``IN_PROCESS[key]``."""
    cpu0, start = cpu_of_children(), time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, cwd=cwd, check=False)
    wall, cpu = time.perf_counter() - start, cpu_of_children() - cpu0
    if key is not None and not proc.returncode:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            IN_PROCESS.setdefault(key, []).append(json.loads(proc.stdout)["duration_s"])
    if proc.returncode:
        FAILURES.append({"argv": argv, "pythonpath": env.get("PYTHONPATH"),
                         "returncode": proc.returncode,
                         "stdout": proc.stdout.decode(errors="replace")[-1500:],
                         "stderr": proc.stderr.decode(errors="replace")[-1500:]})
        print(f"FAILED ({proc.returncode}): {' '.join(argv)}\n"
              f"{proc.stderr.decode(errors='replace')[-600:]}", file=sys.stderr, flush=True)
    return wall, cpu


def baseline_tree(ref: str) -> Path:
    """The kernel and packs of ``ref``, extracted into a temporary folder."""
    out = Path(tempfile.mkdtemp(prefix=f"llmos-bench-{ref[:12]}-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "core",
                              *PACK_SOURCES], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


class Variant:
    """One llmos source tree: its environment, a replay workspace and the commands."""

    def __init__(self, name: str, tree: Path | None, home: Path) -> None:
        self.name = name
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMOS_")}
        env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
                   PYTHONDONTWRITEBYTECODE="0", LLMOS_CACHE_DIR=str(home / f"cache-{name}"))
        env.pop("PYTHONPATH", None)
        if tree is not None:
            env["PYTHONPATH"] = os.pathsep.join(str(tree / p) for p in ("core", *PACK_SOURCES))
        self.env = env
        self.workspace = home / f"ws-{name}"
        goal = subprocess.run([sys.executable, str(HERE / "replay_workspace.py"),
                               str(self.workspace)], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()
        self.empty = home / f"ws-{name}-empty"
        self.empty.mkdir()
        exe = shutil.which("llmos") or str(Path(sys.executable).parent / "llmos")
        # a budget, so that every revision's route answers (older ones exit 3 when the
        # goal would need a paid mode and the battery is empty)
        subprocess.run([exe, "--workspace", str(self.empty), "budget", "set", "5"], env=env,
                       capture_output=True, check=True)
        ws = ["--workspace", str(self.workspace)]
        self.commands = {
            "python -c pass (bare interpreter)": [sys.executable, "-c", "pass"],
            "llmos --version": [exe, "--version"],
            "llmos plugins --json": [exe, *ws, "plugins", "--json"],
            "llmos route GOAL --json (empty store)": [exe, "--workspace", str(self.empty),
                                                      "route", goal, "--json"],
            "llmos route GOAL --json": [exe, *ws, "route", goal, "--json"],
            "llmos run GOAL (2-step FOLLOWER replay)": [exe, *ws, "run", goal, "--json"],
        }
        self.replay = self.commands["llmos run GOAL (2-step FOLLOWER replay)"]

    def cold_env(self) -> dict[str, str]:
        return {**self.env, "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="llmos-bench-nopyc-")}


def summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    walls, cpus = [s[0] for s in samples], [s[1] for s in samples]
    return {"wall_median_ms": round(statistics.median(walls) * 1e3, 1),
            "wall_min_ms": round(min(walls) * 1e3, 1),
            "cpu_median_ms": round(statistics.median(cpus) * 1e3, 1),
            "cpu_min_ms": round(min(cpus) * 1e3, 1), "runs": len(samples)}


def throughput(variant: Variant, procs: int, total: int) -> dict[str, float]:
    """Replays per second with ``procs`` processes at once on one workspace, and the CPU
    cores they kept busy (their CPU time over the elapsed time)."""
    cpu0, start = cpu_of_children(), time.perf_counter()
    with ThreadPoolExecutor(procs) as pool:
        list(pool.map(lambda _: timed(variant.replay, variant.env), range(total)))
    elapsed, cpu = time.perf_counter() - start, cpu_of_children() - cpu0
    return {"procs": procs, "replays": total, "per_s": round(total / elapsed, 2),
            "cores_busy": round(cpu / elapsed, 2), "load_average": os.getloadavg()[0]}


def instructions(argv: list[str], env: dict[str, str]) -> int | None:
    """Instructions the process executed (callgrind, children not traced), or None."""
    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                               *argv], env=env, capture_output=True, text=True, check=False)
        for line in proc.stderr.splitlines():
            if "Collected :" in line:
                return int(line.split(":")[-1].strip())
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="interleaved rounds")
    parser.add_argument("--baseline", help="git revision to compare with (e.g. a8e738d)")
    parser.add_argument("--cold", action="store_true", help="also runs without bytecode cache")
    parser.add_argument("--procs", default="1,2,4", help="throughput: processes at once")
    parser.add_argument("--replays", type=int, default=12, help="throughput: replays per size")
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions under callgrind (one run each, slow)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "startup.json"))
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="llmos-bench-home-"))
    variants = [Variant("this", None, home)]
    if args.baseline:
        variants.append(Variant(args.baseline, baseline_tree(args.baseline), home))
    modes = ["warm", *(["cold"] if args.cold else [])]
    samples: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for v in variants:  # warm-up: OS file cache, bytecode cache, probe caches
        for argv in v.commands.values():
            timed(argv, v.env)
    load_before = os.getloadavg()
    for _ in range(args.runs):
        for name in variants[0].commands:
            for mode in modes:
                for v in variants:  # interleaved: each round runs every variant once
                    env = v.env if mode == "warm" else v.cold_env()
                    replay = v.commands[name] is v.replay
                    samples.setdefault((v.name, mode, name), []).append(
                        timed(v.commands[name], env, key=(v.name, mode) if replay else None))
    load_after = os.getloadavg()

    results: dict[str, object] = {}
    for (vname, mode, name), got in samples.items():
        results.setdefault(vname, {}).setdefault(mode, {})[name] = summary(got)
    ratios: dict[str, dict[str, float]] = {}
    if len(variants) == 2:
        for mode in modes:
            for name in variants[0].commands:
                this = samples[("this", mode, name)]
                base = samples[(variants[1].name, mode, name)]
                pairs = list(zip(this, base, strict=True))
                ratios.setdefault(mode, {})[name] = {
                    "wall": round(statistics.median(a[0] / b[0] for a, b in pairs), 3),
                    "cpu": round(statistics.median(a[1] / b[1] for a, b in pairs), 3)}
    scaling = {v.name: [throughput(v, int(p), args.replays) for p in args.procs.split(",")]
               for v in variants}
    counted = {}
    if args.instructions:
        for v in variants:
            counted[v.name] = {name: instructions(argv, v.env)
                               for name, argv in v.commands.items() if "bare" in name
                               or "--version" in name or "run GOAL" in name}
    report = {"python": sys.version.split()[0], "cpus": os.cpu_count(),
              "load_average_before": load_before, "load_average_after": load_after,
              "results": results, "paired_ratio_this_over_baseline": ratios,
              "replay_in_process_ms": {f"{v}/{m}": round(statistics.median(d) * 1e3, 1)
                                       for (v, m), d in IN_PROCESS.items()},
              "throughput": scaling, "instructions": counted, "failed_runs": FAILURES}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(table(report, variants, modes))


def table(report: dict, variants: list[Variant], modes: list[str]) -> str:
    lines = [f"load average {report['load_average_before'][0]:.1f} -> "
             f"{report['load_average_after'][0]:.1f} on {report['cpus']} CPUs", "",
             "| command | cache | " + " | ".join(f"{v.name} wall / CPU ms" for v in variants)
             + (" | ratio wall / CPU |" if len(variants) == 2 else " |"),
             "|---|---|" + "---|" * len(variants) + ("---|" if len(variants) == 2 else "")]
    for mode in modes:
        for name in variants[0].commands:
            cells = [report["results"][v.name][mode][name] for v in variants]
            row = f"| {name} | {mode} | " + " | ".join(
                f"{c['wall_median_ms']:.0f} / {c['cpu_median_ms']:.0f}" for c in cells)
            if len(variants) == 2:
                r = report["paired_ratio_this_over_baseline"][mode][name]
                row += f" | {r['wall']:.2f} / {r['cpu']:.2f}"
            lines.append(row + " |")
    for mode in modes:
        lines.append(f"| the replay in process (its duration_s) | {mode} | " + " | ".join(
            f"{report['replay_in_process_ms'].get(f'{v.name}/{mode}', float('nan')):.0f} / -"
            for v in variants) + (" | |" if len(variants) == 2 else " |"))
    lines += ["", "| replays/s (cores busy, load) | " + " | ".join(v.name for v in variants)
              + " |", "|---|" + "---|" * len(variants)]
    for i, first in enumerate(report["throughput"][variants[0].name]):
        cells = [report["throughput"][v.name][i] for v in variants]
        lines.append(f"| {first['procs']} processes | " + " | ".join(
            f"{c['per_s']} ({c['cores_busy']:.2f}, {c['load_average']:.1f})" for c in cells)
            + " |")
    if report["failed_runs"]:
        lines.append(f"\n{len(report['failed_runs'])} runs FAILED (see failed_runs in the JSON)")
    for vname, counts in report["instructions"].items():
        for name, n in counts.items():
            lines.append(f"instructions ({vname}) {name}: {n:,}" if n else "")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
