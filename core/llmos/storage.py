"""The kernel's SQLite database: WAL, a busy timeout, numbered migrations per namespace.

Modelled on simonw/llm: each namespace (the kernel, a memory backend, a pack) keeps an
ordered list of migration functions; the ones applied are recorded in ``_migrations``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS_TABLE = "_migrations"


def open_database(path: Path | str) -> sqlite_utils.Database:
    """Open (creating) a database that two processes may share safely."""
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return sqlite_utils.Database(conn)


@contextlib.contextmanager
def immediate(db: sqlite_utils.Database) -> Iterator[None]:
    """A ``BEGIN IMMEDIATE`` transaction: takes the write lock before reading, so a
    read-check-write sequence is atomic across connections and processes."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


class Migrations:
    """An ordered, named list of migrations for one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._steps: list[tuple[str, Migration]] = []

    def __call__(self, fn: Migration) -> Migration:
        """Decorator: append ``fn`` as the next migration."""
        self._steps.append((fn.__name__, fn))
        return fn

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._steps]

    def apply(self, db: sqlite_utils.Database) -> list[str]:
        """Apply pending migrations, each in its own transaction; return those applied.

        When every migration is recorded already (every process after the first), this
        is one read: no write lock is taken, so processes opening the same database at
        once do not queue for it."""
        if self._all_recorded(db):
            return []
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
            " namespace TEXT NOT NULL, number INTEGER NOT NULL, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL DEFAULT (datetime('now')),"
            " PRIMARY KEY (namespace, number))"
        )
        applied: list[str] = []
        for number, (name, fn) in enumerate(self._steps, start=1):
            with immediate(db):
                done = db.execute(
                    f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE namespace = ? AND number = ?",
                    (self.namespace, number),
                ).fetchone()
                if not done:
                    fn(db)
                    db.execute(
                        f"INSERT INTO {MIGRATIONS_TABLE} (namespace, number, name)"
                        " VALUES (?, ?, ?)",
                        (self.namespace, number, name),
                    )
                    applied.append(name)
        return applied

    def _all_recorded(self, db: sqlite_utils.Database) -> bool:
        try:
            rows = db.execute(
                f"SELECT number FROM {MIGRATIONS_TABLE} WHERE namespace = ?", (self.namespace,)
            ).fetchall()
        except sqlite3.OperationalError:  # no migrations table yet
            return False
        return {row[0] for row in rows} >= set(range(1, len(self._steps) + 1))
