"""The sqlite driver lives in the workspace database beside the kernel's own tables."""

from __future__ import annotations

from pathlib import Path

from llmos.memory.sqlite import SqliteMemory, migrations
from llmos.storage import open_database
from llmos.testing.memory_conformance import make_trace


def test_memory_tables_share_the_workspace_database(workspace: Path, kernel_factory) -> None:
    kernel = kernel_factory(workspace)
    kernel.economy.set_balance(5.0)
    memory = kernel.memory
    assert isinstance(memory, SqliteMemory)
    assert memory.path == workspace / ".llmos" / "llmos.db"
    memory.save_trace(make_trace())
    db = open_database(workspace / ".llmos" / "llmos.db")
    tables = set(db.table_names())
    assert {"memory_runs", "memory_steps", "memory_traces", "memory_facts",
            "economy_ledger"} <= tables
    applied = db.execute("SELECT namespace, name FROM _migrations WHERE namespace = 'memory'"
                         ).fetchall()
    assert applied == [("memory", name) for name in migrations.names]


def test_migrations_apply_once(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    first = SqliteMemory(path)
    first.save_trace(make_trace())
    first.close()
    again = SqliteMemory(path)
    assert again.count_traces() == 1
    assert migrations.apply(again.db) == []
