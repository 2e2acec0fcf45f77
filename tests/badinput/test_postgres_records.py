"""The PostgreSQL memory driver tolerates a bad record like the others: skipped by list
and search, reported with its id and how to remove it, removable with traces rm."""

from __future__ import annotations

import json

import pytest

from tests.badinput.conftest import trace_markdown, write

psycopg = pytest.importorskip("psycopg")


def test_an_unreadable_trace_in_postgres(cli, llmos_postgres_db, tmp_path):
    args = ("--set", "memory.backend=postgres", "--set", f"memory.dsn={llmos_postgres_db}")
    write(tmp_path / "in" / "good.md", trace_markdown("good", goal="write hello.py"))
    write(tmp_path / "in" / "bad.md", trace_markdown("bad", goal="write hello.py"))
    assert cli(*args, "traces", "import", str(tmp_path / "in")).exit_code == 0
    with psycopg.connect(llmos_postgres_db, autocommit=True) as conn:
        cur = conn.execute("UPDATE memory_traces SET data = %s WHERE id = 'bad'",
                           ('{"id": "bad", "success_rating": null}',))
        assert cur.rowcount == 1
    for command in (("traces", "list", "--json"),
                    ("traces", "list", "--json", "--search", "hello")):
        listed = cli(*args, *command)
        assert listed.exit_code == 0, listed.output
        assert [t["id"] for t in json.loads(listed.stdout)] == ["good"]
    check = cli(*args, "memory", "check", "--json")
    assert check.exit_code == 1
    [problem] = json.loads(check.stdout)
    assert problem["record"] == "trace bad" and problem["fix"] == "llmos traces rm bad"
    assert cli(*args, "traces", "rm", "bad").exit_code == 0
    assert cli(*args, "memory", "check").exit_code == 0
