"""What is left of a 2-step FOLLOWER replay (Write + sandboxed Bash) in a process forked
after every import: the per-run work a fork server's child does (issue 12), for this tree
and, paired round by round, a baseline revision.

    python bench/startup/forked_replay.py                       # this tree only
    python bench/startup/forked_replay.py --baseline bdc04cd --rounds 9

Each round starts, per variant, one parent process with that tree first on
``PYTHONPATH``. The parent imports the CLI, runs one replay in a forked child that lists
the modules the replay imported, imports those itself, builds the redaction scanner
(``llmos.memory.redaction.prebuild()``, or ``_scanner()`` in trees without it) and calls
``llmos.kernel.prewarm()`` where the tree has it (what its fork server does), then
``gc.freeze()``, then forks ``--children`` more replays one after the other and records
each child's CPU time (``getrusage`` in the child: user + system, page faults of the
copy-on-write memory included; the sandboxed command's own processes are not) and wall
time (fork to exit, from the parent); medians of each, the user part and the minor page
faults (the copy-on-write cost of the fork) shown apart. Every variant preloads everything
its replay imports, so the figures compare the work each tree does per run, not how
complete a preload list is (``tests/perf/test_prebuilt.py`` checks ``prewarm()``'s).

Reported: median child CPU and wall per variant, the paired CPU ratio (median over
rounds of this / baseline) and the load average. Results go to
bench/results/forked_replay.json.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SOURCES = ("core", "packages/llmos-web/src", "packages/llmos-quantum/src",
           "packages/llmos-robo/src")

PARENT = r'''
import gc, importlib, json, os, resource, sys, time
import llmos.cli

argv = ["--workspace", os.environ["BENCH_WS"], "run", os.environ["BENCH_GOAL"], "--json"]


def child(report_modules: bool, w: int) -> None:
    before = set(sys.modules)
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    import atexit

    def report() -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        data = {"cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime,
                "faults": ru.ru_minflt}
        if report_modules:
            data["modules"] = sorted(set(sys.modules) - before)
        os.write(w, json.dumps(data).encode())

    atexit.register(report)
    llmos.cli.main(argv)
    os._exit(0)


def fork(report_modules: bool = False) -> tuple[float, dict]:
    r, w = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child(report_modules, w)
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"replay child failed: {status}")
    return wall, json.loads(data)


_, first = fork(report_modules=True)
for name in first["modules"]:
    if name.startswith("_"):  # accelerators come with their modules (importing _asyncio
        continue              # before asyncio breaks current_task() on 3.11)
    try:
        importlib.import_module(name)
    except Exception:
        pass
from llmos.memory import redaction

getattr(redaction, "prebuild", redaction._scanner)()
try:
    from llmos.kernel import prewarm  # what a fork server's parent does, where it exists
except ImportError:
    pass
else:
    prewarm()
gc.freeze()
rows = [fork() for _ in range(int(os.environ["BENCH_CHILDREN"]))]
print(json.dumps([{"wall": wall, **data} for wall, data in rows]))
'''


def tree_of(ref: str) -> Path:
    out = Path(tempfile.mkdtemp(prefix=f"llmos-forked-{ref[:12]}-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, *SOURCES],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(out)], capture_output=True,
                   check=False)
    return out


def environment(tree: Path | None, home: Path, name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LLMOS_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("PYTHONPATH", None)
    env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               LLMOS_CACHE_DIR=str(home / f"cache-{name}"), LLMOS_DAEMON="0")
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(str(tree / p) for p in SOURCES)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--children", type=int, default=3, help="measured forks per round")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="llmos-forked-"))
    variants: dict[str, dict[str, str]] = {"this tree": environment(None, home, "this")}
    trees = []
    if args.baseline:
        trees.append(tree_of(args.baseline))
        variants[f"baseline {args.baseline}"] = environment(trees[0], home, "baseline")
    try:
        goals = {}
        for i, (name, env) in enumerate(variants.items()):
            workspace = home / f"ws-{i}"
            goals[name] = subprocess.run(
                [sys.executable, str(HERE / "replay_workspace.py"), str(workspace)], env=env,
                capture_output=True, text=True, check=True).stdout.strip()
            env.update(BENCH_WS=str(workspace), BENCH_GOAL=goals[name],
                       BENCH_CHILDREN=str(args.children))
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        per_round: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, env in variants.items():
                proc = subprocess.run([sys.executable, "-c", PARENT], env=env,
                                      capture_output=True, text=True, check=False)
                if proc.returncode:
                    raise SystemExit(f"{name}: {proc.stderr[-2000:]}")
                found = json.loads(proc.stdout)
                rows[name] += found
                per_round[name].append(statistics.median(r["cpu"] for r in found))
        load = os.getloadavg()
        print("| variant | child CPU ms | of which user ms | page faults | child wall ms | n |"
              "\n|---|---|---|---|---|---|")
        for name, found in rows.items():
            def med(key: str, found: list[dict[str, float]] = found) -> float:
                return statistics.median(r[key] for r in found)
            print(f"| {name} | {1e3 * med('cpu'):.1f} | {1e3 * med('user'):.1f} | "
                  f"{med('faults'):.0f} | {1e3 * med('wall'):.1f} | {len(found)} |")
        result = {"rows": rows, "load": load, "rounds": args.rounds}
        if args.baseline:
            base = per_round[f"baseline {args.baseline}"]
            ratio = statistics.median(a / b for a, b in zip(per_round["this tree"], base,
                                                             strict=True))
            result["paired_cpu_ratio"] = ratio
            print(f"\npaired child CPU ratio (this / baseline, median of rounds): {ratio:.3f}")
        print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        out = ROOT / "bench" / "results" / "forked_replay.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(home, ignore_errors=True)
        for tree in trees:
            shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    main()
