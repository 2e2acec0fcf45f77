"""Storage: numbered migrations recorded once, WAL, and two processes on one workspace."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from llmos.storage import Migrations, open_database


def test_migrations_are_numbered_recorded_and_applied_once(tmp_path):
    migrations = Migrations("notes")

    @migrations
    def m001_create(db):
        db["notes"].create({"id": int, "text": str}, pk="id")

    @migrations
    def m002_add_tags(db):
        db["notes"].add_column("tags", str)

    db = open_database(tmp_path / "s.db")
    assert migrations.apply(db) == ["m001_create", "m002_add_tags"]
    assert migrations.apply(db) == []
    rows = list(db.query("SELECT namespace, number, name FROM _migrations ORDER BY number"))
    assert [(r["namespace"], r["number"], r["name"]) for r in rows] == [
        ("notes", 1, "m001_create"),
        ("notes", 2, "m002_add_tags"),
    ]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_failing_migration_leaves_nothing_half_done(tmp_path):
    migrations = Migrations("broken")

    @migrations
    def m001_ok(db):
        db["a"].create({"id": int}, pk="id")

    @migrations
    def m002_fails(db):
        db.execute("CREATE TABLE b (id INTEGER)")
        raise RuntimeError("disk on fire")

    db = open_database(tmp_path / "s.db")
    with pytest.raises(RuntimeError, match="disk on fire"):
        migrations.apply(db)
    assert db["a"].exists() and not db["b"].exists()
    assert [r["name"] for r in db.query("SELECT name FROM _migrations")] == ["m001_ok"]


WRITER = textwrap.dedent(
    """
    import sys
    from llmos.storage import open_database
    db = open_database(sys.argv[1])
    for i in range(300):
        db.execute("INSERT INTO hits (who, n) VALUES (?, ?)", (sys.argv[2], i))
    """
)


def test_two_processes_write_one_database_at_once(tmp_path):
    path = tmp_path / "shared.db"
    db = open_database(path)
    db.execute("CREATE TABLE hits (who TEXT, n INTEGER)")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), who]) for who in ("a", "b")
    ]
    assert [p.wait(60) for p in procs] == [0, 0]
    counts = dict(db.execute("SELECT who, count(*) FROM hits GROUP BY who").fetchall())
    assert counts == {"a": 300, "b": 300}
