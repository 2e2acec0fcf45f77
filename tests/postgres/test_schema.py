"""The schema: numbered migrations applied once even when many workers start together, and
unreadable rows reported by problems() instead of breaking every listing."""

from __future__ import annotations

import multiprocessing

import psycopg
import pytest

from llmos.memory.postgres import MIGRATIONS, PostgresMemory
from llmos.testing.memory_conformance import make_trace


def _open_both(dsn: str, start, results) -> None:
    from llmos.economy import TokenEconomy

    start.wait()
    try:
        PostgresMemory(dsn).close()
        TokenEconomy.postgres(dsn).close()
        results.put("ok")
    except Exception as exc:  # reported to the test
        results.put(f"{type(exc).__name__}: {exc}")


def test_many_workers_starting_at_once_migrate_once(llmos_postgres_db: str) -> None:
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_open_both, args=(llmos_postgres_db, start, results))
               for _ in range(6)]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == ["ok"] * 6
    with psycopg.connect(llmos_postgres_db) as conn:
        versions = dict(conn.execute(
            "SELECT component, version FROM llmos_schema_versions").fetchall())
        (accounts,) = conn.execute("SELECT count(*) FROM economy_account").fetchone()
    assert versions == {"memory": len(MIGRATIONS), "economy": 1}
    assert accounts == 1


def test_a_newer_schema_is_refused_with_the_fix(llmos_postgres_db: str) -> None:
    PostgresMemory(llmos_postgres_db).close()
    with psycopg.connect(llmos_postgres_db, autocommit=True) as conn:
        conn.execute("UPDATE llmos_schema_versions SET version = 99 WHERE component = 'memory'")
    with pytest.raises(RuntimeError, match="upgrade llmos"):
        PostgresMemory(llmos_postgres_db)


def test_an_unreadable_row_is_a_problem_not_a_crash(llmos_postgres_db: str) -> None:
    memory = PostgresMemory(llmos_postgres_db)
    try:
        good = memory.save_trace(make_trace("Create good.txt"))
        bad = memory.save_trace(make_trace("Create bad.txt"))
        with psycopg.connect(llmos_postgres_db, autocommit=True) as conn:
            conn.execute("UPDATE memory_traces SET data = '{not json' WHERE id = %s", (bad.id,))
        assert [t.id for t in memory.list_traces()] == [good.id]
        problems = memory.problems()
        assert [p.file for p in problems] == [f"postgres:memory_traces/{bad.id}"]
        assert "unreadable record" in problems[0].problem
    finally:
        memory.close()


def test_a_broken_connection_is_opened_again(llmos_postgres_db: str) -> None:
    memory = PostgresMemory(llmos_postgres_db)
    try:
        trace = memory.save_trace(make_trace("Create again.txt"))
        with psycopg.connect(llmos_postgres_db, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (memory.conn.info.backend_pid,))
        assert memory.get_trace(trace.id) == trace  # a read is repeated on a new connection
        memory.add_fact("writes work again")
        assert [f.text for f in memory.list_facts()] == ["writes work again"]
    finally:
        memory.close()
