"""Scale-out: goals per second with 1, 2 and 4 ``llmos worker`` processes.

Run from the repository root:

    python bench/scale/run.py                       # 1, 2, 4 workers; PostgreSQL and SQLite
    python bench/scale/run.py --replays 100 --learners 10 --workers 1,2,4,8

For each system (one throwaway PostgreSQL holding memory, ledger and the DBOS system
database; and the embedded default: the workspace's SQLite files) and each worker count,
on a fresh workspace: one goal is learned (``llmos run``, the scripted model server), the
workers are started and waited for, then

- replays: ``--replays`` submissions of the learned goal (each a FOLLOWER run appending
  a line to a file), timed from the first submission to the last run finished;
- learner runs: ``--learners`` distinct goals, each solved by the real Claude Code CLI
  against the scripted model server (a Bash call, then an answer), timed the same way.

Goals are submitted through ``llmos.api.submit`` from this process and their completion
read from the DBOS system database. Every run is checked (succeeded, the replays' lines
all on disk). Prints a table and writes JSON (default bench/results/scale.json). The
machine's other load moves these figures: the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LLMOS = str(Path(sys.executable).parent / "llmos")
TICK = "Append a tick line to ticks.txt"


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "LLMOS_KERNEL__INTERACTIVE": "never", **extra}


def _llmos(workspace: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([LLMOS, "-w", str(workspace), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"llmos {' '.join(args)}: {done.stdout}{done.stderr}")
    return done.stdout


def _wait(predicate, seconds: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def _statuses(url: str, ids: list[str]) -> list[str]:
    from llmos.durable import engine

    client = engine.client(url)
    try:
        return [w.status for w in client.list_workflows(workflow_ids=ids)]
    finally:
        client.destroy()


def one(system: str, workers: int, args: argparse.Namespace, pg: Any) -> dict[str, Any]:
    from llmos.testing.model_server import ScriptedModelServer

    with ScriptedModelServer() as server:  # a script of its own: no turn left from before
        return _one(system, workers, args, server, pg)


def _one(system: str, workers: int, args: argparse.Namespace, server: Any,
         pg: Any) -> dict[str, Any]:
    from llmos.api import submit
    from llmos.durable import engine
    from llmos.kernel import Kernel

    scratch = Path(tempfile.mkdtemp(prefix=f"llmos-scale-{system}-"))
    workspace = scratch / "ws"
    workspace.mkdir()
    extra = dict(server.env())
    if system == "postgres":
        extra.update(LLMOS_MEMORY__BACKEND="postgres", LLMOS_DATABASE_URL=pg.new_database())
    env = _env(extra)
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    procs: list[subprocess.Popen[str]] = []
    try:
        _llmos(workspace, env, "budget", "set", "100")
        server.script.tool_use("Bash", {"command": "echo tick >> ticks.txt"})
        server.script.text("Done.")
        _llmos(workspace, env, "run", TICK)
        url = engine.database_url(Kernel(workspace))
        logs = []
        for n in range(workers):
            log = scratch / f"worker{n}.log"
            logs.append(log)
            procs.append(subprocess.Popen([LLMOS, "-w", str(workspace), "worker"], env=env,
                                          stdout=open(log, "w"),  # noqa: SIM115
                                          stderr=subprocess.STDOUT, text=True))
        if not _wait(lambda: all("taking goals" in p.read_text() for p in logs), 120):
            raise RuntimeError("workers did not start: " + " ".join(p.read_text() for p in logs))

        def batch(goals: list[str], budget: float | None, mode: str | None = None) -> float:
            started = time.perf_counter()
            ids = [submit(g, workspace=workspace, budget_usd=budget, mode=mode)
                   for g in goals]
            if not _wait(lambda: all(s in ("SUCCESS", "ERROR") for s in _statuses(url, ids)),
                         900, every=0.2):
                raise RuntimeError("goals did not finish")
            took = time.perf_counter() - started
            results = _statuses(url, ids)
            if results.count("SUCCESS") != len(ids):
                raise RuntimeError(f"not every goal succeeded: {results}")
            return took

        replay_s = batch([TICK] * args.replays, None)
        lines = (workspace / "ticks.txt").read_text().splitlines()
        if len(lines) != 1 + args.replays:
            raise RuntimeError(f"{len(lines)} ticks on disk, expected {1 + args.replays}")
        for n in range(args.learners):
            server.script.tool_use("Bash", {"command": f"echo {n} >> learned.txt"})
            server.script.text("Done.")
        learner_goals = [f"Append learner line {n} of {system}{workers} to learned.txt"
                         for n in range(args.learners)]
        # LEARNER forced: similar goals would otherwise replay what the first ones learned
        learner_s = batch(learner_goals, 1.0, "LEARNER") if args.learners else 0.0
        return {"system": system, "workers": workers, "replays": args.replays,
                "replay_s": round(replay_s, 2),
                "replays_per_s": round(args.replays / replay_s, 2),
                "learners": args.learners, "learner_s": round(learner_s, 2),
                "learners_per_s": round(args.learners / learner_s, 3) if learner_s else None}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="comma list of worker counts")
    parser.add_argument("--replays", type=int, default=40)
    parser.add_argument("--learners", type=int, default=6)
    parser.add_argument("--systems", default="postgres,sqlite")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "core"))
    systems = args.systems.split(",")
    pg, skipped = None, None
    if "postgres" in systems:
        from llmos.testing.postgres import PostgresUnavailable, start_server

        try:
            pg = start_server()
        except PostgresUnavailable as exc:
            skipped = str(exc)
            systems.remove("postgres")
    rows = []
    load = os.getloadavg()[0]
    try:
        for system in systems:
            for workers in (int(w) for w in args.workers.split(",")):
                rows.append(one(system, workers, args, pg))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        if pg is not None:
            pg.stop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "load_before": load, "cpus": os.cpu_count(),
                               "postgres_skipped": skipped}, indent=2))
    print(f"goals per second; {args.replays} replays and {args.learners} scripted learner "
          f"runs per row; {os.cpu_count()} CPUs, load {load:.1f} before")
    print(f"{'system':10} {'workers':>7} {'replays/s':>10} {'learner runs/s':>15}")
    for r in rows:
        learners = f"{r['learners_per_s']:.2f}" if r["learners_per_s"] else "-"
        print(f"{r['system']:10} {r['workers']:>7} {r['replays_per_s']:>10.2f} "
              f"{learners:>15}")
    if skipped:
        print(f"postgres skipped: {skipped}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
