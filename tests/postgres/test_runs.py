"""A run whose worker died reads as interrupted from any host: its owner's session lock is
free once its connection is gone, where a pid on another machine says nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psycopg

from llmos.memory.postgres import PostgresMemory

_WORKER = """
import sys, time
from llmos.memory.postgres import PostgresMemory
memory = PostgresMemory(sys.argv[1])
print(memory.start_run("Create a.txt", "learner"), flush=True)
time.sleep(600)
"""


def test_a_dead_workers_run_reads_as_interrupted_on_any_host(llmos_postgres_db: str) -> None:
    memory = PostgresMemory(llmos_postgres_db)
    mine = memory.start_run("Create mine.txt", "learner")
    worker = subprocess.Popen([sys.executable, "-c", _WORKER, llmos_postgres_db],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        run_id = worker.stdout.readline().strip()
        # as if it ran on another machine: its pid cannot be checked from here
        with psycopg.connect(llmos_postgres_db, autocommit=True) as conn:
            conn.execute("UPDATE memory_runs SET owner = %s WHERE id = %s",
                         ('{"pid": 1, "host": "elsewhere.invalid", "started": null}', run_id))
        assert memory.get_run(run_id).status == "running"
        assert {r.id for r in memory.list_runs(status="running")} == {mine, run_id}
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    deadline = time.monotonic() + 60
    while memory.get_run(run_id).status == "running" and time.monotonic() < deadline:
        time.sleep(0.1)  # the server drops the lock once it sees the connection close
    run = memory.get_run(run_id)
    assert run.status == "interrupted" and run.success is False and run.error
    assert [r.id for r in memory.list_runs(status="interrupted")] == [run_id]
    assert [r.id for r in memory.list_runs(status="running")] == [mine]  # ours is alive
    # the record itself still says running: whoever resumes or settles it may finish it
    memory.finish_run(run_id, success=False, status="interrupted", cost_usd=0.01)
    assert memory.get_run(run_id).cost_usd == 0.01
    memory.close()
