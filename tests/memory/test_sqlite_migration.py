"""Migration m004 of the sqlite memory: a database written before it (search text in the
record tables, FTS5 over them) is moved to the narrow search tables, and searches,
writes and deletes behave as in a database created new."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from llmos.memory.models import Fact, iso
from llmos.memory.sqlite import _FACT_TEXT, _TRACE_TEXT, SqliteMemory, migrations
from llmos.memory.text import fact_search_text, trace_search_text
from llmos.storage import Migrations, open_database
from llmos.testing.memory_conformance import make_trace

GOALS = ["Create primes.txt listing primes", "Write squares.csv with squares",
         "Delete the old logs folder", "Summarize notes.md into summary.md",
         "Create cubes.json with cubes", "Write primes.csv with the first primes"]


def old_database(path: Path):
    """A database as the driver wrote it before m004, with traces and facts in it."""
    before = Migrations("memory")
    for name, fn in migrations._steps:
        if name.startswith("m004"):
            break
        before(fn)
    db = open_database(path)
    before.apply(db)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    traces = [make_trace(goal, created_at=base + timedelta(minutes=i % 3))
              for i, goal in enumerate(GOALS)]
    with db.conn:
        for trace in traces:
            text = trace_search_text(trace)
            db.execute("INSERT INTO memory_traces (id, goal_signature, created_at, demoted,"
                       " data, search_text) VALUES (?, ?, ?, ?, ?, ?)",
                       (trace.id, trace.goal_signature, iso(trace.created_at), 0,
                        trace.model_dump_json(), text))
            _TRACE_TEXT.maintain(db, None, text)
        for i, words in enumerate(["primes are odd", "squares grow", "logs rotate"]):
            fact = Fact(id=f"fact{i}", text=words, tags=["t"],
                        created_at=base + timedelta(minutes=i))
            fact_text = fact_search_text(fact)
            db.execute("INSERT INTO memory_facts (id, created_at, data, search_text)"
                       " VALUES (?, ?, ?, ?)", (fact.id, iso(fact.created_at),
                                                fact.model_dump_json(), fact_text))
            db.execute("INSERT INTO memory_fact_tags VALUES (?, 't')", (fact.id,))
            _FACT_TEXT.maintain(db, None, fact_text)
    db.conn.close()
    return traces


def columns(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


def test_an_old_database_is_migrated_and_searches_as_a_new_one(tmp_path: Path) -> None:
    old_path = tmp_path / "old.db"
    traces = old_database(old_path)
    assert "search_text" in columns(old_path, "memory_traces")
    assert "memory_traces_fts" in tables(old_path)

    migrated = SqliteMemory(old_path)
    new = SqliteMemory(tmp_path / "new.db")
    for trace in traces:
        new.save_trace(trace)
    for fact in migrated.list_facts():
        new._insert_fact(fact)

    assert "search_text" not in columns(old_path, "memory_traces")
    assert "search_text" not in columns(old_path, "memory_facts")
    assert not {"memory_traces_fts", "memory_facts_fts"} & tables(old_path)
    assert {"memory_trace_text", "memory_trace_fts", "memory_fact_fts"} <= tables(old_path)
    assert "m004_narrow_search_index" in {
        row[0] for row in migrated.db.execute("SELECT name FROM _migrations")}
    for query in ["primes", "primes squares", "cubes json", "create", "logs notes", "zzz"]:
        for limit in (1, 3, 10):
            assert ([t.id for t in migrated.search_traces(query, limit=limit)]
                    == [t.id for t in new.search_traces(query, limit=limit)]), query
            assert ([f.id for f in migrated.search_facts(query, limit=limit)]
                    == [f.id for f in new.search_facts(query, limit=limit)]), query
    assert [t.id for t in migrated.search_traces("primes", limit=10)]  # it finds something
    assert migrated.count_traces() == len(GOALS)
    assert [f.id for f in migrated.search_facts("rotate")] == ["fact2"]

    # writes after the migration keep the index in step
    first = traces[0]
    migrated.update_trace_stats(first.id, "success")
    edited = migrated.get_trace(first.id).model_copy(update={"goal_text": "Plant tulips"})
    migrated.save_trace(edited)
    assert [t.id for t in migrated.search_traces("tulips")] == [first.id]
    migrated.delete_trace(traces[1].id)
    assert migrated.search_traces("squares") == []
    migrated.delete_fact("fact1")
    assert migrated.search_facts("squares grow") == []
    assert migrated.count_traces() == len(GOALS) - 1
    migrated.close()
    new.close()

    again = SqliteMemory(old_path)  # opening again applies nothing more
    assert [t.id for t in again.search_traces("tulips")] == [first.id]
    again.close()
