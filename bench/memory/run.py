"""Memory backends: insert and lookup at 1k, 10k and 100k traces, for both drivers.

Run from the repository root:

    .venv/bin/python bench/memory/run.py                      # 1k, 10k, 100k; both drivers
    .venv/bin/python bench/memory/run.py --sizes 1000,10000 --drivers sqlite

Prints a table and writes JSON (default bench/memory/results.json). For each driver the
store grows 0 -> 1k -> 10k -> 100k traces through ``save_trace``; at each size it measures

- insert: ``save_trace`` latency (median, p99) and throughput over the traces just added;
- lookup by signature (``find_traces``, hits and misses), full-text ``search_traces``
  (limit 10) and ``get_trace`` by id: median and p99 over many random queries;
- open: a fresh handle's first lookup (the markdown driver loads its index cache and
  checks every file's stat; "cold" is the same without the cache: every file is parsed);
- size on disk (apparent bytes; sqlite: database + WAL after a checkpoint).

Markdown writes fsync the file and its directory, as in real use. That makes inserts
slow on most disks, so beyond ``--durable-max`` traces (default 10,000) the markdown
store is filled with fsync off and only the first ``--durable-max`` inserts are timed
durably; the JSON says which. Markdown lookups are measured once the index is warm
(the directory was last changed more than 2 s earlier, see ``RACY_NS``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmos.goals import analyze_goal
from llmos.memory.base import MemoryBackend
from llmos.memory.markdown import RACY_NS, MarkdownMemory
from llmos.memory.models import FileDigest, Step, StepOutcome, Trace
from llmos.memory.sqlite import SqliteMemory

VERBS = ["create", "delete", "update", "rename", "summarize", "fetch", "compile", "test",
         "deploy", "convert", "plot", "sort", "parse", "index", "backup", "archive"]
NOUNS = ["primes", "report", "invoice", "dataset", "notebook", "service", "script", "config",
         "schema", "chart", "table", "log", "cache", "queue", "model", "page"]
EXTS = ["py", "csv", "json", "md", "txt", "yaml", "html", "sql"]
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda",
         "sigma", "omega", "quantum", "robot", "web", "sensor", "matrix", "vector", "tensor",
         "stream", "batch", "cluster", "shard", "replica"]


def make_goal(rng: random.Random, i: int) -> str:
    verb, noun, ext = rng.choice(VERBS), rng.choice(NOUNS), rng.choice(EXTS)
    extra = " ".join(rng.sample(WORDS, 3))
    return (f"{verb} {noun}_{i % 5000}.{ext} with the first {rng.randint(1, 999)} rows "
            f"using {extra} mode {i // 5000}")


def make_trace(rng: random.Random, i: int) -> Trace:
    goal = analyze_goal(make_goal(rng, i))
    name = goal.slots[0].value if goal.slots else f"f{i}.txt"
    body = "\n".join(f"line {j}: {' '.join(rng.sample(WORDS, 4))}" for j in range(12))
    steps = [
        Step(index=0, tool="Write", input={"file_path": name, "content": body},
             outcome=StepOutcome(files=[FileDigest(path=name, sha256=f"{i:064x}",
                                                   size=len(body))])),
        Step(index=1, tool="Bash", input={"command": f"python -m tool --in {name} --n {i}"},
             outcome=StepOutcome(exit_code=0, excerpt="ok", digest=f"{i:064x}")),
        Step(index=2, tool="Read", input={"file_path": name},
             outcome=StepOutcome(excerpt=body[:200])),
    ]
    return Trace(goal_text=goal.text, normalized_goal=goal.normalized,
                 goal_signature=goal.signature, slots=list(goal.slots), steps=steps,
                 tools_used=["Write", "Bash", "Read"], estimated_cost_usd=0.01 + i % 7 / 100,
                 estimated_time_secs=3.0)


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"median_ms": round(statistics.median(ordered) * 1e3, 4),
            "p99_ms": round(p99 * 1e3, 4), "n": len(ordered)}


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def disk_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.stat(os.path.join(root, name)).st_size
    return total


def open_driver(driver: str, root: Path, durable: bool = True) -> MemoryBackend:
    if driver == "sqlite":
        return SqliteMemory(root / "memory.db")
    return MarkdownMemory(root, durable=durable)


def measure(memory: MemoryBackend, traces: list[Trace], rng: random.Random, lookups: int
            ) -> dict[str, Any]:
    known = rng.sample(traces, min(lookups, len(traces)))
    misses = [f"{rng.getrandbits(64):016x}" for _ in range(lookups // 4)]
    sigs = [t.goal_signature for t in known] + misses
    rng.shuffle(sigs)
    it = iter(sigs)
    by_signature = timed(lambda: memory.find_traces(signature=next(it)), len(sigs))
    queries = [" ".join(rng.sample(t.goal_text.split(), 3)) for t in known[: lookups // 2]]
    qi = iter(queries)
    search = timed(lambda: memory.search_traces(next(qi), limit=10), len(queries))
    ids = iter([t.id for t in known])
    by_id = timed(lambda: memory.get_trace(next(ids)), len(known))
    return {"find_by_signature": quantiles(by_signature), "search_fts": quantiles(search),
            "get_by_id": quantiles(by_id)}


def first_lookup(driver: str, root: Path, trace: Trace) -> float:
    """Seconds from opening a store to the answer of its first lookup."""
    t0 = time.perf_counter()
    memory = open_driver(driver, root)
    memory.find_traces(signature=trace.goal_signature)
    elapsed = time.perf_counter() - t0
    memory.close()
    return round(elapsed, 3)


def run_driver(driver: str, sizes: list[int], lookups: int, durable_max: int, workdir: Path,
               seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    root = workdir / driver
    root.mkdir(parents=True)
    memory = open_driver(driver, root)
    traces: list[Trace] = []
    results = []
    for size in sizes:
        fresh = [make_trace(rng, i) for i in range(len(traces), size)]
        durable_n = len(fresh) if driver == "sqlite" else max(0, min(len(fresh),
                                                                  durable_max - len(traces)))
        samples = []
        start = time.perf_counter()
        for n, trace in enumerate(fresh):
            if driver == "markdown" and n == durable_n:
                memory.close()
                memory = open_driver(driver, root, durable=False)
            t0 = time.perf_counter()
            memory.save_trace(trace)
            samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if driver == "markdown":
            memory.close()
            memory = open_driver(driver, root, durable=True)
        traces += fresh
        row: dict[str, Any] = {"driver": driver, "traces": size}
        row["insert"] = {**quantiles(samples[:durable_n] or samples),
                         "durable": durable_n > 0,
                         "timed_inserts": durable_n or len(samples),
                         "fill_seconds": round(elapsed, 2),
                         "per_second": round(len(fresh) / elapsed, 1)}
        if durable_n < len(samples):
            row["insert"]["non_durable"] = quantiles(samples[durable_n:])
        if driver == "markdown":
            time.sleep(RACY_NS / 1e9 + 0.2)  # let the index settle (see RACY_NS)
        memory.search_traces("warm up")
        row.update(measure(memory, traces, rng, lookups))
        row["open_first_lookup_s"] = first_lookup(driver, root, traces[0])
        if driver == "markdown":  # and without the index cache: every file is parsed
            cache = root / ".cache"
            shutil.move(cache, workdir / "cache-aside")
            row["open_cold_first_lookup_s"] = first_lookup(driver, root, traces[0])
            shutil.rmtree(cache, ignore_errors=True)
            shutil.move(workdir / "cache-aside", cache)
        if isinstance(memory, SqliteMemory):
            memory.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        row["disk_bytes"] = disk_bytes(root)
        row["disk_bytes_per_trace"] = round(row["disk_bytes"] / size, 1)
        assert memory.count_traces() == size
        results.append(row)
        print(format_row(row), flush=True)
    memory.close()
    return results


HEADER = (f"{'driver':<9}{'traces':>8} | {'insert med/p99 ms':>18} {'ins/s':>8} | "
          f"{'by sig med/p99 ms':>18} | {'FTS med/p99 ms':>18} | {'by id med/p99':>15} | "
          f"{'open s':>7} {'cold s':>7} | {'disk MB':>8} {'B/trace':>8}")


def format_row(row: dict[str, Any]) -> str:
    def pair(q: dict[str, float]) -> str:
        return f"{q['median_ms']:.3f}/{q['p99_ms']:.3f}"

    ins = row["insert"]
    star = "" if ins["durable"] else "*"
    return (f"{row['driver']:<9}{row['traces']:>8} | {pair(ins) + star:>18} "
            f"{ins['per_second']:>8.0f} | {pair(row['find_by_signature']):>18} | "
            f"{pair(row['search_fts']):>18} | {pair(row['get_by_id']):>15} | "
            f"{row['open_first_lookup_s']:>7.3f} "
            f"{row.get('open_cold_first_lookup_s', row['open_first_lookup_s']):>7.3f} | "
            f"{row['disk_bytes'] / 1e6:>8.1f} "
            f"{row['disk_bytes_per_trace']:>8.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--drivers", default="sqlite,markdown")
    parser.add_argument("--lookups", type=int, default=1000, help="Queries per measurement.")
    parser.add_argument("--durable-max", type=int, default=10_000,
                        help="Markdown: traces written with fsync before fsync is turned off.")
    parser.add_argument("--workdir", help="Where stores are built (default: a temp dir).")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="llmos-bench-"))
    print(HEADER)
    print("-" * len(HEADER))
    results = []
    try:
        for driver in args.drivers.split(","):
            results += run_driver(driver, sizes, args.lookups, args.durable_max, workdir,
                                  args.seed)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print("* insert timed with fsync off (beyond --durable-max); see JSON for details")
    report = {"python": sys.version.split()[0], "platform": platform.platform(),
              "cpus": os.cpu_count(), "lookups": args.lookups, "results": results}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
