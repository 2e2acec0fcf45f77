"""Whole-process cost of the llmos CLI: `--version`, `plugins`, `route` and a 2-step FOLLOWER
replay (`llmos run`, Write + sandboxed Bash), each next to a bare interpreter, and the
replay's throughput with 1, 2 and 4 processes at once (issue 12). Each command runs
through the command daemon (``llmos.daemon``, warm: started before the first timed run)
and in process (``LLMOS_DAEMON=0``), and with ``--baseline`` in process on that revision.

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

Through the daemon, a command's CPU time is the client's plus what the daemon spent on it:
the command's own (the daemon reaps it with ``wait4``) and the daemon's (accept, checks,
fork), read from the daemon before and after each run; a run the daemon did not serve
(it was stale: a file of the tree changed meanwhile) counts what the client did, and the
served/total counts are reported with the daemon's RSS and start-up time (interpreter
start excluded: from its first import to listening). Ratios are paired with the last
variant (the baseline, else in process).

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


def daemon_state(socket: str) -> dict | None:
    """The daemon's counters (pid, requests, CPU of itself and of its commands), asked
    directly (no process started), or None when none answers."""
    from llmos import client

    try:
        sock = client.connect(socket, client.attributes("self"), timeout=10)
    except (client.Refused, OSError):
        return None
    try:
        client.send_message(sock, {"op": "status", "protocol": client.PROTOCOL,
                                   "quick": True})
        line = client.Lines(sock).next()
    finally:
        sock.close()
    return json.loads(line) if line and line.startswith("{") else None


def daemon_cpu(before: dict | None, after: dict | None) -> float:
    """CPU the daemon spent between two states (0 when it is not the same daemon)."""
    if not before or not after or before["pid"] != after["pid"]:
        return 0.0
    return (after["children_cpu_s"] + after["self_cpu_s"]
            - before["children_cpu_s"] - before["self_cpu_s"])


SERVED: dict[str, list[int]] = {}  # daemon socket -> [served, timed]


def timed(argv: list[str], env: dict[str, str], cwd: str | None = None,
          key: tuple[str, str] | None = None, daemon: str | None = None
          ) -> tuple[float, float]:
    """(wall s, CPU s) of one process run to completion; a failed run is recorded in
    ``FAILURES`` (and reported) rather than stopping the benchmark. With ``key``, the
    run's own ``duration_s`` (from its JSON) is kept in ``IN_PROCESS[key]``. With
    ``daemon`` (its socket), what the daemon spent on the run is added to its CPU."""
    before = daemon_state(daemon) if daemon else None
    cpu0, start = cpu_of_children(), time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, cwd=cwd, check=False)
    wall, cpu = time.perf_counter() - start, cpu_of_children() - cpu0
    if daemon:
        after = daemon_state(daemon)
        cpu += daemon_cpu(before, after)
        counts = SERVED.setdefault(daemon, [0, 0])
        counts[1] += 1
        if before and after and before["pid"] == after["pid"] and (
                after["requests"] == before["requests"] + 1):
            counts[0] += 1
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


IN_PROCESS_SCRIPT = """#!{python}
import sys
from llmos.cli import main
sys.exit(main())
"""


class Variant:
    """One llmos source tree run one way (through the daemon, in process, or a baseline
    revision in process): its environment, a replay workspace and the commands."""

    def __init__(self, name: str, tree: Path | None, home: Path,
                 daemon: bool = False) -> None:
        self.name = name
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMOS_")}
        env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
                   LLMOS_CACHE_DIR=str(home / f"cache-{name.replace(' ', '-')}"))
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # any value, even "0", stops .pyc writes
        self.socket: str | None = None
        if tree is not None:
            env["PYTHONPATH"] = os.pathsep.join(str(tree / p) for p in ("core", *PACK_SOURCES))
        elif daemon:
            env.update(LLMOS_DAEMON_DIR=str(home / "daemon"), LLMOS_DAEMON_IDLE="3600")
        else:
            env["LLMOS_DAEMON"] = "0"
        self.env = env
        self.daemon = daemon
        self.workspace = home / f"ws-{name.replace(' ', '-')}"
        goal = subprocess.run([sys.executable, str(HERE / "replay_workspace.py"),
                               str(self.workspace)], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()
        self.empty = home / f"ws-{name.replace(' ', '-')}-empty"
        self.empty.mkdir()
        exe = shutil.which("llmos") or str(Path(sys.executable).parent / "llmos")
        if tree is not None:  # a revision before the daemon's client: its own CLI's main
            script = home / "llmos-in-process"
            script.write_text(IN_PROCESS_SCRIPT.format(python=sys.executable))
            script.chmod(0o755)
            exe = str(script)
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
        self.exe = exe
        if daemon:
            self.ensure_daemon()
            self.socket = json.loads(subprocess.run(
                [exe, "daemon", "status", "--json"], env=env, capture_output=True,
                check=True).stdout)["socket"]

    def ensure_daemon(self) -> None:
        """(Re)start the daemon: one that went stale (a file of the tree changed) exits."""
        if self.socket is None or daemon_state(self.socket) is None:
            subprocess.run([self.exe, "daemon", "start"], env=self.env, capture_output=True,
                           check=False)

    def run(self, argv: list[str], env: dict[str, str] | None = None,
            key: tuple[str, str] | None = None) -> tuple[float, float]:
        if self.daemon:
            self.ensure_daemon()
        from llmos import client

        servable = self.daemon and client.command_of(argv[1:]) in client.SERVED
        return timed(argv, self.env if env is None else env, key=key,
                     daemon=self.socket if servable else None)

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
    if variant.daemon:
        variant.ensure_daemon()
    before = daemon_state(variant.socket) if variant.socket else None
    cpu0, start = cpu_of_children(), time.perf_counter()
    with ThreadPoolExecutor(procs) as pool:
        list(pool.map(lambda _: timed(variant.replay, variant.env), range(total)))
    elapsed, cpu = time.perf_counter() - start, cpu_of_children() - cpu0
    served = None
    if variant.socket:
        after = daemon_state(variant.socket)
        cpu += daemon_cpu(before, after)
        served = (after["requests"] - before["requests"]
                  if before and after and before["pid"] == after["pid"] else 0)
    return {"procs": procs, "replays": total, "per_s": round(total / elapsed, 2),
            "cores_busy": round(cpu / elapsed, 2), "load_average": os.getloadavg()[0],
            "served": served}


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

    home = Path(tempfile.mkdtemp(prefix="llmos-bench-home-", dir="/tmp"))
    variants = [Variant("daemon", None, home, daemon=True),
                Variant("in process", None, home)]
    if args.baseline:
        variants.append(Variant(args.baseline, baseline_tree(args.baseline), home))
    modes = ["warm", *(["cold"] if args.cold else [])]
    samples: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for v in variants:  # warm-up: OS file cache, bytecode cache, probe caches
        for argv in v.commands.values():
            v.run(argv)
    SERVED.clear()
    load_before = os.getloadavg()
    for _ in range(args.runs):
        for name in variants[0].commands:
            for mode in modes:
                for v in variants:  # interleaved: each round runs every variant once
                    if v.daemon and mode == "cold":
                        continue  # the daemon's modules are loaded: nothing is cold
                    env = None if mode == "warm" else v.cold_env()
                    replay = v.commands[name] is v.replay
                    samples.setdefault((v.name, mode, name), []).append(
                        v.run(v.commands[name], env, key=(v.name, mode) if replay else None))
    load_after = os.getloadavg()

    results: dict[str, object] = {}
    for (vname, mode, name), got in samples.items():
        results.setdefault(vname, {}).setdefault(mode, {})[name] = summary(got)
    # paired ratios of each variant over the reference (the baseline, else in process)
    reference = variants[-1]
    ratios: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for v in variants[:-1]:
        for mode in modes:
            for name in variants[0].commands:
                if (v.name, mode, name) not in samples:
                    continue
                pairs = list(zip(samples[(v.name, mode, name)],
                                 samples[(reference.name, mode, name)], strict=True))
                ratios.setdefault(v.name, {}).setdefault(mode, {})[name] = {
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
    daemon: dict[str, object] = {}
    for v in variants:
        if v.socket:
            state = daemon_state(v.socket) or {}
            served, total = SERVED.get(v.socket, [0, 0])
            daemon = {"rss_mib": round(state.get("rss_bytes", 0) / 2**20, 1),
                      "startup_s": state.get("startup_s"), "modules": state.get("modules"),
                      "served_runs": served, "timed_runs": total,
                      "fallbacks": state.get("fallbacks")}
    report = {"python": sys.version.split()[0], "cpus": os.cpu_count(), "daemon": daemon,
              "load_average_before": load_before, "load_average_after": load_after,
              "results": results, "reference": reference.name,
              "paired_ratio_over_reference": ratios,
              "replay_in_process_ms": {f"{v}/{m}": round(statistics.median(d) * 1e3, 1)
                                       for (v, m), d in IN_PROCESS.items()},
              "throughput": scaling, "instructions": counted, "failed_runs": FAILURES}
    for v in variants:
        if v.socket:  # the benchmark's own daemon (its idle exit is an hour)
            subprocess.run([v.exe, "daemon", "stop"], env=v.env, capture_output=True,
                           check=False)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(table(report, variants, modes))


def table(report: dict, variants: list[Variant], modes: list[str]) -> str:
    others = [v for v in variants if v.name != report["reference"]]
    lines = [f"load average {report['load_average_before'][0]:.1f} -> "
             f"{report['load_average_after'][0]:.1f} on {report['cpus']} CPUs", "",
             "| command | cache | " + " | ".join(f"{v.name} wall / CPU ms" for v in variants)
             + " | " + " | ".join(f"{v.name} / {report['reference']} wall / CPU"
                                  for v in others) + " |",
             "|---|---|" + "---|" * (len(variants) + len(others))]
    for mode in modes:
        for name in variants[0].commands:
            cells = []
            for v in variants:
                c = report["results"][v.name].get(mode, {}).get(name)
                cells.append(f"{c['wall_median_ms']:.0f} / {c['cpu_median_ms']:.0f}"
                             if c else "-")
            for v in others:
                r = report["paired_ratio_over_reference"].get(v.name, {}).get(mode, {}).get(
                    name)
                cells.append(f"{r['wall']:.2f} / {r['cpu']:.2f}" if r else "-")
            lines.append(f"| {name} | {mode} | " + " | ".join(cells) + " |")
    for mode in modes:
        lines.append(f"| the replay in process (its duration_s) | {mode} | " + " | ".join(
            f"{report['replay_in_process_ms'].get(f'{v.name}/{mode}', float('nan')):.0f} / -"
            for v in variants) + " |" + " |" * len(others))
    lines += ["", "| replays/s (cores busy, load) | " + " | ".join(v.name for v in variants)
              + " |", "|---|" + "---|" * len(variants)]
    for i, first in enumerate(report["throughput"][variants[0].name]):
        cells = [report["throughput"][v.name][i] for v in variants]
        lines.append(f"| {first['procs']} processes | " + " | ".join(
            f"{c['per_s']} ({c['cores_busy']:.2f}, {c['load_average']:.1f})"
            + (f" served {c['served']}/{c['replays']}" if c.get("served") is not None else "")
            for c in cells) + " |")
    d = report.get("daemon") or {}
    if d:
        lines.append(f"\ndaemon: RSS {d['rss_mib']} MiB, start-up {d['startup_s']} s "
                     f"(import to listening), {d['modules']} modules; served "
                     f"{d['served_runs']} of {d['timed_runs']} timed runs it may serve")
    if report["failed_runs"]:
        lines.append(f"\n{len(report['failed_runs'])} runs FAILED (see failed_runs in the JSON)")
    for vname, counts in report["instructions"].items():
        for name, n in counts.items():
            lines.append(f"instructions ({vname}) {name}: {n:,}" if n else "")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
