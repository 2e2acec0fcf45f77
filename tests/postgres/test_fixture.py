"""The throwaway PostgreSQL fixture: a real server, one fresh database per test."""

from __future__ import annotations

import os

import psycopg

from llmos.testing.postgres import PostgresServer


def test_server_runs_on_loopback_as_non_root(llmos_postgres: PostgresServer) -> None:
    assert llmos_postgres.dsn.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg.connect(llmos_postgres.dsn) as conn:
        (version,) = conn.execute("SHOW server_version").fetchone()
        (listen,) = conn.execute("SHOW listen_addresses").fetchone()
    assert version
    assert listen == "127.0.0.1"
    assert llmos_postgres.pid is not None
    owner = os.stat(llmos_postgres.data_dir).st_uid
    assert owner != 0


def test_each_test_database_is_fresh(llmos_postgres_db: str, llmos_postgres) -> None:
    with psycopg.connect(llmos_postgres_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE marker (x int)")
        conn.execute("INSERT INTO marker VALUES (1)")
    other = llmos_postgres.new_database()
    with psycopg.connect(other) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'marker'"
        ).fetchone()
    assert count == 0
    llmos_postgres.drop_database(other)


def test_missing_binaries_name_what_to_install(tmp_path, monkeypatch) -> None:
    import pytest

    from llmos.testing.postgres import PostgresUnavailable, start_server

    monkeypatch.setenv("LLMOS_PG_BIN", str(tmp_path))  # no initdb there
    with pytest.raises(PostgresUnavailable, match="apt-get install postgresql"):
        start_server()


def test_unavailable_skips_with_the_reason_and_fails_under_ci(monkeypatch) -> None:
    import pytest

    from llmos.testing.postgres import _unavailable

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="initdb was not found"):
        _unavailable("initdb was not found")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: not skipping"):
        _unavailable("initdb was not found")
