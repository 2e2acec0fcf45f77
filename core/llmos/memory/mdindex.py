"""The persistent side index of a directory of Markdown records (traces or facts): ids,
signatures, flags, tags and the tokens full-text search uses, in an SQLite database
(``<memory>/.cache/<dir>.db``) kept in step with the files, which stay the source of
truth.

Every file is indexed under its (inode, mtime_ns, size). A process opening the index
does not read the files or the whole index: it compares the directory's mtime with the
one recorded at the last scan. Creating, deleting or renaming a file (an atomic
rewrite, ``git checkout``, most editors) changes it; then the directory's names and
inodes (``os.scandir``, no per-file ``stat``) are compared with the index and only new,
replaced or removed files are read or dropped. A file edited in place keeps its inode
and the directory's mtime: it is noticed when it is read (a record read from a file whose
stat differs from the index is indexed again); each process compares the stat of
``STAT_SLICE`` files (all in a small store, a random run of names in a larger one), so
the next process notices it in a store of up to 1,000 records and one of about the next
size / 1,000 in a larger one; and a full check
(``refresh(full=True)``, run by ``problems()``, i.e. ``llmos memory check``) compares
every file's stat.
Memory stays bounded: nothing is held per record between calls.

The index is derived data: missing, unreadable, corrupt or of another version, it is
deleted and rebuilt from the files. Search uses ``llmos.memory.sqlite.FullTextIndex``,
the sqlite driver's own code, so both drivers rank alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmos.memory.base import Problem
from llmos.memory.files import StatKey, stat_key
from llmos.memory.markdown_format import TraceFormatError
from llmos.memory.sqlite import FullTextIndex

RACY_NS = 2_000_000_000
"""A directory modified this recently before a scan is rescanned next time (timestamps
can be as coarse as 2 s on some file systems)."""

# 5: rowids in (created, id) order; 4: records as JSON; 3: SQLite side index;
# 2: goal normalization 2, JSON
VERSION = 5
_TEXT = FullTextIndex("docs", "docs_fts", "docs_terms")


@dataclass(slots=True)
class Doc:
    file: str
    stat: StatKey
    id: str
    created: str
    key: str | None = None
    flag: bool = False
    tags: tuple[str, ...] = ()
    tokens: frozenset[str] = field(default_factory=frozenset)
    data: str | None = None  # the parsed record as JSON, read instead of the file


class DocIndex:
    """What the files of one directory hold, for lookups without reading them all."""

    STAT_SLICE = 1000  # files whose stat a process compares with the index when it starts
    BATCH = 1000  # files indexed per transaction while catching up with many changes

    def __init__(self, directory: Path, describe: Callable[[str, str], Doc],
                 cache: Path, junk: Callable[[os.DirEntry[str]], None] | None = None) -> None:
        self.dir = directory
        self.junk = junk  # called with each dot file met while scanning (temporary files)
        self.cache = cache  # the index database
        self.describe = describe  # (file name, text) -> Doc, raises TraceFormatError
        self.lock = threading.RLock()  # one handle may be used from several threads
        self._conn: sqlite3.Connection | None = None
        self._checked = False  # this process has compared the directory at least once
        self._unsaved = 0  # kept for callers of the JSON-cache era: writes commit at once

    # -- the database --------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        try:
            return self._open_file()
        except (OSError, RuntimeError, sqlite3.Error):
            # no writable index (a read-only checkout, a full disk): one in memory for this
            # process, built from the files as the first refresh finds them all new
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._create(conn)
            return conn

    def _open_file(self) -> sqlite3.Connection:
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            conn = None
            try:
                conn = sqlite3.connect(str(self.cache), timeout=30.0, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 30000")
                conn.execute("PRAGMA journal_mode = WAL")
                # WAL + NORMAL: a crash may lose the last changes (caught up from the
                # files: the directory's mtime differs), never corrupts the index
                conn.execute("PRAGMA synchronous = NORMAL")
                row = conn.execute("SELECT value FROM meta WHERE name = 'version'").fetchone() \
                    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'"
                                    ).fetchone() else None
                if row is not None and row[0] == str(VERSION):
                    conn.execute("SELECT count(*) FROM files WHERE 0").fetchone()
                    return conn
                if row is None and not conn.execute(
                        "SELECT 1 FROM sqlite_master WHERE type = 'table'").fetchone():
                    self._create(conn)
                    return conn
            except sqlite3.DatabaseError:
                pass
            if conn is not None:
                conn.close()
            if attempt == 2:
                break
            self._delete_files()  # corrupt, foreign or of another version: rebuild
        raise RuntimeError(f"cannot create the memory index {self.cache}")

    def _delete_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.cache}{suffix}")

    @staticmethod
    def _create(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                conn.execute("COMMIT")  # another process created it meanwhile
                return
            statements = [
                "CREATE TABLE files (file TEXT PRIMARY KEY, ino INTEGER NOT NULL,"
                " mtime INTEGER NOT NULL, size INTEGER NOT NULL, problem_line INTEGER,"
                " problem TEXT)",
                "CREATE INDEX files_problem ON files (file) WHERE problem IS NOT NULL",
                *_TEXT.schema(", file TEXT NOT NULL UNIQUE, key TEXT, flag INTEGER NOT NULL,"
                              " tags TEXT NOT NULL, data TEXT"),
                "CREATE INDEX docs_key ON docs (key)",
                "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)",
            ]
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES ('version', ?)", (str(VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- maintenance (inside a transaction) ----------------------------------------------

    def _drop(self, conn: sqlite3.Connection, file: str) -> None:
        row = conn.execute("SELECT search_text FROM docs WHERE file = ?", (file,)).fetchone()
        if row is not None:
            _TEXT.maintain(conn, row[0], None)
            conn.execute("DELETE FROM docs WHERE file = ?", (file,))
        conn.execute("DELETE FROM files WHERE file = ?", (file,))

    def _put(self, conn: sqlite3.Connection, doc: Doc) -> None:
        """Index ``doc`` (its file dropped first), or record why it cannot be."""
        self._drop(conn, doc.file)
        owner = conn.execute("SELECT file FROM docs WHERE id = ?", (doc.id,)).fetchone()
        if owner is not None:
            self._put_problem(conn, doc.file, doc.stat, 1,
                              f"id {doc.id!r} is already used by {owner[0]}; skipped")
            return
        text = " ".join(sorted(doc.tokens))
        conn.execute("INSERT INTO files (file, ino, mtime, size) VALUES (?, ?, ?, ?)",
                     (doc.file, *doc.stat))
        conn.execute("INSERT INTO docs (rowid, id, created_at, search_text, file, key, flag,"
                     " tags, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (_TEXT.place(conn, doc.id, doc.created), doc.id, doc.created, text,
                      doc.file, doc.key, int(doc.flag),
                      json.dumps(list(doc.tags)), doc.data))
        _TEXT.maintain(conn, None, text)

    def _put_problem(self, conn: sqlite3.Connection, file: str, stat: StatKey, line: int,
                     problem: str) -> None:
        conn.execute("INSERT OR REPLACE INTO files (file, ino, mtime, size, problem_line,"
                     " problem) VALUES (?, ?, ?, ?, ?, ?)", (file, *stat, line, problem))

    def _load(self, conn: sqlite3.Connection, name: str) -> None:
        path = self.dir / name
        stat = stat_key(path)  # before reading: a later change shows as a new key
        self._drop(conn, name)
        try:
            doc = self.describe(name, path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except TraceFormatError as exc:
            self._put_problem(conn, name, stat, exc.line, exc.problem)
            return
        except (OSError, UnicodeDecodeError) as exc:
            self._put_problem(conn, name, stat, 1, f"cannot read the file: {exc}")
            return
        doc.stat = stat
        self._put(conn, doc)

    def note(self, doc: Doc) -> None:
        """A file this process has just written."""
        with self.lock, self._transaction() as conn:
            self._put(conn, doc)

    def forget(self, file: str) -> None:
        with self.lock, self._transaction() as conn:
            self._drop(conn, file)
            self._retry_problems(conn)

    def _retry_problems(self, conn: sqlite3.Connection) -> None:
        """Files skipped for a duplicate id may be indexable now."""
        for (name,) in conn.execute("SELECT file FROM files WHERE problem LIKE 'id %'"
                                    " ORDER BY file").fetchall():
            self._load(conn, name)

    # -- keeping in step with the directory ----------------------------------------------

    def refresh(self, full: bool = False) -> None:
        """Bring the index up to date with the directory: see the module docstring."""
        with self.lock:
            try:
                self._refresh(full)
            except sqlite3.DatabaseError:  # corrupt under us: rebuild from the files
                self.close()
                self._delete_files()
                self._refresh(True)

    def _meta(self, name: str) -> int | None:
        row = self.conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def _refresh(self, full: bool) -> None:
        try:
            mtime: int | None = os.stat(self.dir).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if not full and mtime is not None and mtime == self._meta("dir_mtime"):
            scanned = self._meta("scanned_at") or 0
            if scanned - mtime > RACY_NS and not self._problem_files_changed():
                if not self._checked:
                    self._checked = True
                    self._check_slice()
                return
        scanned_at = time.time_ns()
        with self._transaction() as conn:
            if full:
                self._full_scan(conn)
            else:
                self._rescan(conn)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('dir_mtime', ?)",
                         (None if mtime is None else str(mtime),))
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('scanned_at', ?)",
                         (str(scanned_at),))
        if not self._checked and not full:
            self._check_slice()
        self._checked = True

    def _check_slice(self) -> None:
        """Once per process: compare the stat of ``STAT_SLICE`` files with the index (all
        of them in a small store; in a larger one, those following a random name,
        wrapping around), so that a file edited in place is noticed by the next process
        in a small store and after about size / STAT_SLICE processes in a large one, at
        a bounded cost and with no write to the index when nothing changed."""
        start = self._slice_start()
        rows = self.conn.execute(
            "SELECT file, ino, mtime, size FROM files WHERE file > ? ORDER BY file LIMIT ?",
            (start, self.STAT_SLICE)).fetchall()
        if len(rows) < self.STAT_SLICE:
            rows += self.conn.execute(
                "SELECT file, ino, mtime, size FROM files WHERE file <= ? ORDER BY file"
                " LIMIT ?", (start, self.STAT_SLICE - len(rows))).fetchall()
        changed = []
        try:
            fd = os.open(self.dir, os.O_RDONLY)
        except OSError:
            return
        try:  # relative to the directory: no path building, no lookup of its parents
            for f, i, m, s in rows:
                try:
                    st = os.stat(f, dir_fd=fd)
                    if (st.st_ino, st.st_mtime_ns, st.st_size) != (i, m, s):
                        changed.append(f)
                except OSError:
                    changed.append(f)
        finally:
            os.close(fd)
        if changed:
            with self._transaction() as conn:
                for name in changed:
                    self._load(conn, name)
                self._retry_problems(conn)

    @staticmethod
    def _slice_start() -> str:
        return os.urandom(8).hex()  # file names are ids: mostly 16 hex digits

    def _problem_files_changed(self) -> bool:
        rows = self.conn.execute(
            "SELECT file, ino, mtime, size FROM files WHERE problem IS NOT NULL").fetchall()
        return any(stat_key(self.dir / f) != (i, m, s) for f, i, m, s in rows)

    def _entries(self, with_stat: bool) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError), os.scandir(self.dir) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    if self.junk is not None:
                        self.junk(entry)
                elif entry.name.endswith(".md"):
                    if not with_stat:
                        found[entry.name] = entry.inode()
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        st = entry.stat()
                        found[entry.name] = (st.st_ino, st.st_mtime_ns, st.st_size)
        return found

    def _apply(self, conn: sqlite3.Connection, gone: list[str], fresh: list[str]) -> None:
        for name in gone:
            self._drop(conn, name)
        for n, name in enumerate(sorted(fresh), start=1):  # of two files with one id,
            self._load(conn, name)  # the first (by name) wins
            if n % self.BATCH == 0:  # a first build of a large store: keep what is done
                conn.execute("COMMIT")
                conn.execute("BEGIN IMMEDIATE")
        if gone or fresh:
            self._retry_problems(conn)
        if len(fresh) >= self.BATCH:
            # a first build or a large catch-up: files come in name order, not creation
            # order, so ranks were spread out again and again (FullTextIndex.place) and
            # the FTS index holds many small segments; merged into one (0.4 s at 100k)
            conn.execute(f"INSERT INTO {_TEXT.fts} ({_TEXT.fts}) VALUES ('optimize')")

    def _rescan(self, conn: sqlite3.Connection) -> None:
        """Names and inodes only: new, replaced and removed files."""
        seen = self._entries(with_stat=False)
        known = dict(conn.execute("SELECT file, ino FROM files").fetchall())
        problems = {f: (i, m, s) for f, i, m, s in conn.execute(
            "SELECT file, ino, mtime, size FROM files WHERE problem IS NOT NULL")}
        gone = [name for name in known if name not in seen]
        fresh = [name for name, ino in seen.items()
                 if known.get(name) != ino
                 or (name in problems and stat_key(self.dir / name) != problems[name])]
        self._apply(conn, gone, fresh)

    def _full_scan(self, conn: sqlite3.Connection) -> None:
        """Every file's (inode, mtime, size): also finds files edited in place."""
        seen = self._entries(with_stat=True)
        known = {f: (i, m, s) for f, i, m, s in conn.execute(
            "SELECT file, ino, mtime, size FROM files")}
        gone = [name for name in known if name not in seen]
        fresh = [name for name, key in seen.items() if known.get(name) != key]
        self._apply(conn, gone, fresh)

    def check_file(self, file: str, stat: StatKey) -> None:
        """``file`` was just read with ``stat``: index it again if that is not the stat
        it is indexed under (it was edited in place)."""
        with self.lock:
            row = self.conn.execute("SELECT ino, mtime, size FROM files WHERE file = ?",
                                    (file,)).fetchone()
            if row is not None and tuple(row) != tuple(stat):
                with self._transaction() as conn:
                    self._load(conn, file)

    def cached(self, file: str, stat: StatKey) -> str | None:
        """The record's JSON as indexed, if ``file`` still has the ``stat`` it was indexed
        under."""
        with self.lock:
            row = self.conn.execute(
                "SELECT d.data FROM files f JOIN docs d ON d.file = f.file WHERE f.file = ?"
                " AND f.ino = ? AND f.mtime = ? AND f.size = ?", (file, *stat)).fetchone()
            return row[0] if row else None

    def save(self) -> None:
        """Nothing to do: every change is committed when it is made."""

    # -- queries -------------------------------------------------------------------------

    def _ensure(self) -> None:
        if not self._checked:
            self.refresh()

    def known_file(self, doc_id: str) -> str | None:
        """The file indexed for an id, without looking at the directory again."""
        with self.lock:
            row = self.conn.execute("SELECT file FROM docs WHERE id = ?", (doc_id,)).fetchone()
            return row[0] if row else None

    def file_for(self, doc_id: str) -> str | None:
        with self.lock:
            self.refresh()
            return self.known_file(doc_id)

    def files_for_key(self, key: str) -> list[str]:
        with self.lock:
            self.refresh()
            return [f for (f,) in self.conn.execute(
                "SELECT file FROM docs WHERE key = ? ORDER BY file", (key,))]

    def count(self) -> int:
        with self.lock:
            self.refresh()
            row = self.conn.execute("SELECT df FROM docs_terms WHERE term = ''").fetchone()
            return row[0] if row else 0  # kept with the documents: no count(*) scan

    def newest(self, limit: int | None, *, unflagged: bool = False, tag: str | None = None
               ) -> list[str]:
        """Files of the newest records (``created`` descending, then id), optionally only
        unflagged ones or those with ``tag``."""
        where, params = [], []
        if unflagged:
            where.append("flag = 0")
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(docs.tags) WHERE value = ?)")
            params.append(tag)
        sql = (f"SELECT file FROM docs {'WHERE ' + ' AND '.join(where) if where else ''}"
               " ORDER BY created_at DESC, id DESC LIMIT ?")
        with self.lock:
            self.refresh()
            return [f for (f,) in self.conn.execute(sql, (*params, -1 if limit is None
                                                          else limit))]

    def search(self, terms: Sequence[str], limit: int) -> list[str]:
        """Files of the best ``limit`` records by ``llmos.memory.text``'s ranking."""
        with self.lock:
            self.refresh()
            ids = _TEXT.search(self.conn, terms, limit)
            files = dict(self.conn.execute(
                "SELECT id, file FROM docs WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),)).fetchall())
            return [files[i] for i in ids if i in files]

    def problem_list(self) -> list[Problem]:
        with self.lock:
            return [Problem(str(self.dir / f), line or 1, problem) for f, line, problem in
                    self.conn.execute("SELECT file, problem_line, problem FROM files"
                                      " WHERE problem IS NOT NULL ORDER BY file")]
