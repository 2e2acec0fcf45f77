"""PostgreSQL memory and ledger next to SQLite, on one machine: per-operation latency.

Run from the repository root (needs PostgreSQL's server binaries, as the tests do):

    .venv/bin/python bench/memory/postgres.py              # 1,000 traces
    .venv/bin/python bench/memory/postgres.py --traces 10000

A throwaway server is started like the tests' (``llmos.testing.postgres``: 127.0.0.1,
fsync off, so commits cost no disk flush: this measures llmos's work and the round trips,
not the disk), and stopped at the end. For each storage: ``save_trace`` (mean over the
corpus), ``update_trace_stats``, ``search_traces`` (limit 5) and a ledger
reserve + commit pair, each the mean over repeated calls.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from llmos.economy import TokenEconomy
from llmos.memory.postgres import PostgresMemory
from llmos.storage import open_database
from llmos.testing.memory_conformance import make_trace, open_sqlite
from llmos.testing.postgres import start_server

WORDS = "alpha beta gamma delta epsilon zeta theta kappa lambda sigma".split()


def mean_ms(fn, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    return (time.perf_counter() - start) / count * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    server = start_server()
    try:
        dsn = server.new_database()
        scratch = Path(tempfile.mkdtemp())
        stores = {"sqlite": (open_sqlite(scratch / "memory"),
                             TokenEconomy(open_database(scratch / "ledger.db"))),
                  "postgres": (PostgresMemory(dsn), TokenEconomy.postgres(dsn))}
        print(f"{'storage':9s} {'save_trace':>11s} {'stats':>8s} "
              f"{'search@' + str(args.traces):>12s} {'reserve+commit':>15s}  (ms)")
        for name, (memory, economy) in stores.items():
            ids: list[str] = []
            save = mean_ms(lambda i, m=memory, ids=ids: ids.append(m.save_trace(make_trace(
                f"Create {WORDS[i % 10]}_{i}.txt with {WORDS[(i * 7) % 10]} item {i}")).id),
                args.traces)
            stats = mean_ms(lambda i, m=memory, ids=ids: m.update_trace_stats(
                ids[i % len(ids)], "success"), args.repeat)
            search = mean_ms(lambda i, m=memory: m.search_traces(
                f"{WORDS[i % 10]} item {i}", limit=5), args.repeat)
            economy.set_balance(1000)
            ledger = mean_ms(lambda i, e=economy: e.commit_micro(
                e.reserve_micro(1000, run_id=f"r{i}"), 500), args.repeat)
            print(f"{name:9s} {save:11.2f} {stats:8.2f} {search:12.2f} {ledger:15.2f}")
            memory.close()
            economy.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
