"""The ``sqlite`` memory driver (the default): tables in the workspace's database, FTS5
over goals, trace text and facts. Every write is one transaction; WAL keeps readers and a
killed writer apart, so a committed record survives the process that wrote it."""

from __future__ import annotations

import heapq
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from llmos.memory.base import (
    MemoryBackend,
    Problem,
    RunStateError,
    UnreadableRecord,
    decode_many,
    decode_one,
    record_problem,
)
from llmos.memory.models import Fact, RunRecord, Step, Trace, iso
from llmos.memory.text import (
    fact_search_text,
    idf,
    is_common,
    prefix_upper,
    score,
    selective_terms,
    trace_search_text,
)
from llmos.storage import Migrations, immediate, open_database

migrations = Migrations("memory")


_M001 = """
        CREATE TABLE memory_runs (
            id TEXT PRIMARY KEY, goal TEXT NOT NULL, mode TEXT NOT NULL,
            status TEXT NOT NULL, success INTEGER, cost_usd REAL NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
            duration_s REAL, started_at TEXT NOT NULL, finished_at TEXT, error TEXT,
            output TEXT, trace_id TEXT, owner TEXT
        );;
        CREATE INDEX memory_runs_started ON memory_runs (started_at DESC);;
        CREATE TABLE memory_steps (
            run_id TEXT NOT NULL REFERENCES memory_runs (id) ON DELETE CASCADE,
            idx INTEGER NOT NULL, data TEXT NOT NULL,
            PRIMARY KEY (run_id, idx)
        );;
        CREATE TABLE memory_traces (
            id TEXT PRIMARY KEY, goal_signature TEXT NOT NULL, created_at TEXT NOT NULL,
            demoted INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL, search_text TEXT NOT NULL
        );;
        CREATE INDEX memory_traces_signature ON memory_traces (goal_signature);;
        CREATE INDEX memory_traces_created ON memory_traces (created_at DESC, id DESC);;
        CREATE VIRTUAL TABLE memory_traces_fts USING fts5 (
            search_text, content='memory_traces', content_rowid='rowid',
            tokenize='unicode61 remove_diacritics 2'
        );;
        CREATE TRIGGER memory_traces_ai AFTER INSERT ON memory_traces BEGIN
            INSERT INTO memory_traces_fts (rowid, search_text)
            VALUES (new.rowid, new.search_text);
        END;;
        CREATE TRIGGER memory_traces_ad AFTER DELETE ON memory_traces BEGIN
            INSERT INTO memory_traces_fts (memory_traces_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
        END;;
        CREATE TRIGGER memory_traces_au AFTER UPDATE ON memory_traces BEGIN
            INSERT INTO memory_traces_fts (memory_traces_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
            INSERT INTO memory_traces_fts (rowid, search_text)
            VALUES (new.rowid, new.search_text);
        END;;
        CREATE TABLE memory_facts (
            id TEXT PRIMARY KEY, created_at TEXT NOT NULL, data TEXT NOT NULL,
            search_text TEXT NOT NULL
        );;
        CREATE INDEX memory_facts_created ON memory_facts (created_at DESC, id DESC);;
        CREATE TABLE memory_fact_tags (
            fact_id TEXT NOT NULL REFERENCES memory_facts (id) ON DELETE CASCADE,
            tag TEXT NOT NULL, PRIMARY KEY (fact_id, tag)
        );;
        CREATE INDEX memory_fact_tags_tag ON memory_fact_tags (tag);;
        CREATE VIRTUAL TABLE memory_facts_fts USING fts5 (
            search_text, content='memory_facts', content_rowid='rowid',
            tokenize='unicode61 remove_diacritics 2'
        );;
        CREATE TRIGGER memory_facts_ai AFTER INSERT ON memory_facts BEGIN
            INSERT INTO memory_facts_fts (rowid, search_text)
            VALUES (new.rowid, new.search_text);
        END;;
        CREATE TRIGGER memory_facts_ad AFTER DELETE ON memory_facts BEGIN
            INSERT INTO memory_facts_fts (memory_facts_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
        END;;
        CREATE TABLE memory_trace_terms (
            term TEXT PRIMARY KEY, df INTEGER NOT NULL
        ) WITHOUT ROWID;;
        CREATE TABLE memory_fact_terms (
            term TEXT PRIMARY KEY, df INTEGER NOT NULL
        ) WITHOUT ROWID;;
"""


@migrations
def m001_runs_traces_facts(db: sqlite_utils.Database) -> None:
    # One statement at a time: executescript() would commit the migration's transaction.
    for statement in _M001.split(";;"):
        if statement.strip():
            db.execute(statement)


@migrations
def m002_goal_normalization_2(db: sqlite_utils.Database) -> None:
    """Goal normalization 2 (file kinds, folders, synonyms): signatures recomputed."""
    from llmos.goals import analyze_goal

    rows = db.execute("SELECT id, data FROM memory_traces").fetchall()
    for trace_id, data in rows:
        record = json.loads(data)
        goal = analyze_goal(record["goal_text"])
        record.update(normalized_goal=goal.normalized, goal_signature=goal.signature,
                      slots=[slot.model_dump(mode="json") for slot in goal.slots])
        db.execute("UPDATE memory_traces SET goal_signature = ?, data = ? WHERE id = ?",
                   (goal.signature, json.dumps(record), trace_id))


@migrations
def m003_run_parent(db: sqlite_utils.Database) -> None:
    """A run's parent: the ORCHESTRATOR run it is a sub-goal of."""
    db.execute("ALTER TABLE memory_runs ADD COLUMN parent_run TEXT")
    db.execute("CREATE INDEX memory_runs_parent ON memory_runs (parent_run)")


@migrations
def m004_narrow_search_index(db: sqlite_utils.Database) -> None:
    """Search text out of the record tables: the FTS5 index is over narrow tables (id,
    created_at, search_text) so that ranking never reads a record's JSON; the old FTS
    tables and triggers go, the new index is built from the existing rows."""
    for kind, table in (("trace", "memory_traces"), ("fact", "memory_facts")):
        for trigger in ("ai", "ad", "au"):
            db.execute(f"DROP TRIGGER IF EXISTS {table}_{trigger}")
        db.execute(f"DROP TABLE IF EXISTS {table}_fts")
        index = _TRACE_TEXT if kind == "trace" else _FACT_TEXT
        schema = text_schema(index.text, index.fts)
        db.execute(schema[0])
        db.execute(f"INSERT INTO {index.text} (id, created_at, search_text)"
                   f" SELECT id, created_at, search_text FROM {table} ORDER BY rowid")
        for statement in schema[1:]:
            db.execute(statement)
        db.execute(f"INSERT INTO {index.fts} ({index.fts}) VALUES ('rebuild')")
        db.execute(f"ALTER TABLE {table} DROP COLUMN search_text")


@migrations
def m005_ranked_search_rows(db: sqlite_utils.Database) -> None:
    """Search rows numbered in (created_at, id) order (``FullTextIndex.place``), so that
    the newest of equally relevant records are the largest rowids of the postings; the
    FTS5 index is built again over the renumbered rows (the term frequencies stay)."""
    for index in (_TRACE_TEXT, _FACT_TEXT):
        text, fts = index.text, index.fts
        for trigger in ("ai", "ad", "au"):
            db.execute(f"DROP TRIGGER IF EXISTS {text}_{trigger}")
        db.execute(f"DROP TABLE IF EXISTS {fts}")
        db.execute(f"DROP INDEX IF EXISTS {text}_created")
        db.execute(f"ALTER TABLE {text} RENAME TO {text}_old")
        schema = text_schema(text, fts)
        db.execute(schema[0])
        db.execute(f"INSERT INTO {text} (rowid, id, created_at, search_text)"
                   f" SELECT {FullTextIndex.GAP} * row_number() OVER (ORDER BY created_at, id),"
                   f" id, created_at, search_text FROM {text}_old")
        for statement in schema[1:]:
            db.execute(statement)
        db.execute(f"INSERT INTO {fts} ({fts}) VALUES ('rebuild')")
        db.execute(f"DROP TABLE {text}_old")


_RUN_COLUMNS = (
    "id", "goal", "mode", "status", "success", "cost_usd", "input_tokens", "output_tokens",
    "duration_s", "started_at", "finished_at", "error", "output", "trace_id", "owner",
    "parent_run",
)


def _run_row(run: RunRecord) -> dict[str, Any]:
    data = run.model_dump(mode="json", exclude={"step_count"})
    data["owner"] = json.dumps(data["owner"]) if data["owner"] is not None else None
    data["success"] = None if run.success is None else int(run.success)
    data["started_at"] = iso(run.started_at)
    data["finished_at"] = iso(run.finished_at) if run.finished_at else None
    return data


def _run_from(row: Sequence[Any], step_count: int) -> RunRecord:
    data = dict(zip((*_RUN_COLUMNS, "step_count"), (*row, step_count), strict=True))
    data["owner"] = json.loads(data["owner"]) if data["owner"] else None
    data["success"] = None if data["success"] is None else bool(data["success"])
    return RunRecord.model_validate(data)


_SELECT_RUN = (
    f"SELECT {', '.join('r.' + c for c in _RUN_COLUMNS)},"
    " (SELECT count(*) FROM memory_steps s WHERE s.run_id = r.id) FROM memory_runs r"
)


def text_schema(text: str, fts: str, extra: str = "") -> list[str]:
    """The statements that create a search index: ``text`` holds each record's id,
    creation time and search text (narrow rows: no record JSON; ``extra`` adds column
    definitions), ``fts`` is an FTS5 table over it (external content) kept in step by
    triggers (a row whose rowid changes moves in the FTS index too). Rowids follow the
    records' (created_at, id) order: see ``FullTextIndex.place``."""
    return [
        f"CREATE TABLE {text} (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
        f" created_at TEXT NOT NULL, search_text TEXT NOT NULL{extra})",
        f"CREATE INDEX {text}_created ON {text} (created_at DESC, id DESC)",
        f"CREATE VIRTUAL TABLE {fts} USING fts5 (search_text, content='{text}',"
        " content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER {text}_ai AFTER INSERT ON {text} BEGIN"
        f" INSERT INTO {fts} (rowid, search_text) VALUES (new.rowid, new.search_text); END",
        f"CREATE TRIGGER {text}_ad AFTER DELETE ON {text} BEGIN"
        f" INSERT INTO {fts} ({fts}, rowid, search_text)"
        " VALUES ('delete', old.rowid, old.search_text); END",
        f"CREATE TRIGGER {text}_au AFTER UPDATE OF rowid, search_text ON {text} BEGIN"
        f" INSERT INTO {fts} ({fts}, rowid, search_text)"
        " VALUES ('delete', old.rowid, old.search_text);"
        f" INSERT INTO {fts} (rowid, search_text) VALUES (new.rowid, new.search_text); END",
    ]


def top_by_mask(postings: dict[str, set[int]], total: int, limit: int
                ) -> tuple[list[int], list[int], Callable[[int], float]]:
    """``text.score``'s best ``limit`` records without scoring each one: a record's score
    depends only on which terms it has, so groups of records with the same terms are
    taken best group first (set operations, in C) until ``limit`` is reached. Returns
    the records above the cut score (fewer than ``limit``), those tied at it (all of
    them; the caller keeps the newest) and each record's score."""
    sets = [postings[t] for t in postings]
    if len(sets) > 8:  # 255 groups at most; beyond that, score each record
        scored = score(postings, total)
        if not scored:
            return [], [], scored.__getitem__
        cut = heapq.nlargest(limit, scored.values())[-1]
        return ([r for r, v in scored.items() if v > cut],
                [r for r, v in scored.items() if v == cut], scored.__getitem__)
    weights = [idf(total, len(keys)) for keys in sets]
    by_score: dict[float, list[int]] = {}
    for mask in range(1, 1 << len(sets)):
        value = 0.0  # added in query order, as text.score does: the same float
        for i, w in enumerate(weights):
            if mask >> i & 1:
                value = value + w
        by_score.setdefault(value, []).append(mask)
    above: list[int] = []
    tied: list[int] = []
    for value in sorted(by_score, reverse=True):
        group: set[int] = set()
        for mask in by_score[value]:
            inside = sorted((sets[i] for i in range(len(sets)) if mask >> i & 1), key=len)
            found = inside[0].intersection(*inside[1:])
            if found:
                found.difference_update(*(sets[i] for i in range(len(sets))
                                          if not mask >> i & 1))
                group |= found
        if len(above) + len(group) < limit:
            above += group
        else:
            tied = list(group)
            break

    def score_of(r: int) -> float:
        value = 0.0
        for i, keys in enumerate(sets):
            if r in keys:
                value = value + weights[i]
        return value

    return above, tied, score_of


class FullTextIndex:
    """Ranked search (``llmos.memory.text``'s rules) over a table made by ``text_schema``
    plus a table of token document frequencies (the row '' counts the records), which
    says which terms are worth expanding. Shared by the sqlite driver and the markdown
    driver's side index, so both rank alike by construction.

    The text table's rowids are *ranks*: integers in the records' (created_at, id) order
    (``place``), so FTS5's postings, which are sorted by rowid, are sorted newest last,
    and "equal scores, newest first, then by id" is "the largest rowids", with no lookup
    of any record's creation time.

    Cost of a search, flat in the number of records N: one range sum per query term in
    the frequency table (O(log V) plus the term's expansions); then the postings of the
    selective terms only, one JSON array each, at most ``text.MAX_POSTINGS`` per term (a
    term in more records is common and never expanded); scoring by groups of records
    with the same terms (set operations); the newest of the records tied at the cut
    score are the largest rowids among them; then the ids of the ``limit`` records
    returned (rowid lookups) and, by the caller, their JSON. When every term is common,
    the answer is the newest records with the rarest one: FTS5 reads its postings from
    the largest rowid down and stops after ``limit``. Before ranks, ties were sorted by
    looking each one up (about 1.2 us a tie at 100k records, thousands of ties for a
    common-ish word: the p99 of routing) or by walking the records newest first."""

    GAP = 1 << 20
    """Rank distance between records added in order (the usual case: each new record is
    the newest); a record placed between two others takes the midpoint, and when there
    is no room left the ranks around it are spread out again (``_relabel``)."""
    BOUND = 1 << 62  # ranks stay strictly between -BOUND and BOUND
    MIN_SPACING = 1 << 10  # spacing a relabelled window must get, at the least

    def __init__(self, text: str, fts: str, terms: str) -> None:
        self.text, self.fts, self.terms = text, fts, terms

    def schema(self, extra: str = "") -> list[str]:
        return [*text_schema(self.text, self.fts, extra),
                f"CREATE TABLE {self.terms} (term TEXT PRIMARY KEY, df INTEGER NOT NULL)"
                " WITHOUT ROWID"]

    def maintain(self, db: Any, old: str | None, new: str | None) -> None:
        """Inside the write transaction: ``old``/``new`` search text, None = no record."""
        conn = getattr(db, "conn", db)
        before = set(old.split()) if old is not None else set()
        after = set(new.split()) if new is not None else set()
        if old is None and new is not None:
            before.discard("")
            after.add("")
        elif old is not None and new is None:
            before.add("")
        conn.executemany(
            f"INSERT INTO {self.terms} (term, df) VALUES (?, 1)"
            " ON CONFLICT (term) DO UPDATE SET df = df + 1",
            [(t,) for t in after - before],
        )
        gone = [(t,) for t in before - after]
        conn.executemany(f"UPDATE {self.terms} SET df = df - 1 WHERE term = ?", gone)
        conn.executemany(f"DELETE FROM {self.terms} WHERE term = ? AND df <= 0 AND term != ''",
                         gone)

    # -- ranks ---------------------------------------------------------------------------

    def _neighbours(self, conn: Any, created: str, record_id: str, count: int
                    ) -> tuple[list[int], list[int]]:
        """The rowids of up to ``count`` records before (nearest first) and after the
        position of (created, record_id) in (created_at, id) order."""
        below = [r for (r,) in conn.execute(
            f"SELECT rowid FROM {self.text} WHERE (created_at, id) < (?, ?)"
            " ORDER BY created_at DESC, id DESC LIMIT ?", (created, record_id, count))]
        above = [r for (r,) in conn.execute(
            f"SELECT rowid FROM {self.text} WHERE (created_at, id) > (?, ?)"
            " ORDER BY created_at, id LIMIT ?", (created, record_id, count))]
        return below, above

    def place(self, db: Any, record_id: str, created: str) -> int:
        """Inside the write transaction, before inserting a record that is not in the
        table: the rowid it must be inserted with so that rowids keep (created_at, id)
        order. Other records' rowids may change (their FTS entries move with them)."""
        conn = getattr(db, "conn", db)
        below, above = self._neighbours(conn, created, record_id, 1)
        lo, hi = (below[0] if below else None), (above[0] if above else None)
        if lo is None and hi is None:
            return 0
        if hi is None:
            if lo + self.GAP < self.BOUND:
                return lo + self.GAP
        elif lo is None:
            if hi - self.GAP > -self.BOUND:
                return hi - self.GAP
        elif hi - lo >= 2:
            return (lo + hi) // 2
        return self._relabel(conn, record_id, created)

    def _relabel(self, conn: Any, record_id: str, created: str) -> int:
        """Spread out the ranks of a window of records around the new record's position
        (doubling it until there is room: amortized O(log N) moves per insertion) and
        return the new record's rank."""
        count = 8
        while True:
            below, above = self._neighbours(conn, created, record_id, count + 1)
            window = [*reversed(below[:count]), None, *above[:count]]
            lo = below[count] if len(below) > count else -self.BOUND
            hi = above[count] if len(above) > count else self.BOUND
            step = (hi - lo) // (len(window) + 1)
            whole = len(below) <= count and len(above) <= count
            if step >= self.MIN_SPACING or (whole and step >= 2):
                break
            if whole:  # cannot happen below 2**51 records
                raise RuntimeError(f"no room left to order the records of {self.text}")
            count *= 2
        labels = [lo + step * (i + 1) for i in range(len(window))]
        moves = [(old, new) for old, new in zip(window, labels, strict=True)
                 if old is not None and old != new]
        # no move may land on a rank still held: those going down in ascending order,
        # then those going up in descending order
        ordered = sorted((m for m in moves if m[1] < m[0]), key=lambda m: m[0])
        ordered += sorted((m for m in moves if m[1] > m[0]), key=lambda m: -m[0])
        conn.executemany(f"UPDATE {self.text} SET rowid = ? WHERE rowid = ?",
                         [(new, old) for old, new in ordered])
        return labels[window.index(None)]

    # -- search --------------------------------------------------------------------------

    def search(self, db: Any, terms: Sequence[str], limit: int) -> list[str]:
        """The ids of the best ``limit`` records, best first."""
        row = db.execute(f"SELECT df FROM {self.terms} WHERE term = ''").fetchone()
        total = row[0] if row else 0
        bounds = {
            term: db.execute(
                f"SELECT coalesce(sum(df), 0) FROM {self.terms} WHERE term >= ? AND term < ?",
                (term, prefix_upper(term)),
            ).fetchone()[0]
            for term in terms
        }
        chosen = selective_terms(terms, bounds, total)
        if not chosen:
            return []
        if len(chosen) == 1 and is_common(bounds[chosen[0]], total):
            # every term is common: all records with the rarest one score alike, so the
            # answer is the newest of them, the largest rowids of its postings
            best = [r for (r,) in db.execute(
                f"SELECT rowid FROM {self.fts} WHERE {self.fts} MATCH ?"
                " ORDER BY rowid DESC LIMIT ?", (f'"{chosen[0]}"*', limit))]
        else:
            postings = {  # one JSON array per term: far cheaper than a row each
                term: set(json.loads(db.execute(
                    f"SELECT json_group_array(rowid) FROM {self.fts} WHERE {self.fts} MATCH ?",
                    (f'"{term}"*',)).fetchone()[0]))
                for term in chosen
            }
            above, tied, scores = top_by_mask(postings, total, limit)
            wanted = limit - len(above)
            if len(tied) > wanted:  # the newest ties: the largest ranks
                tied = heapq.nlargest(wanted, tied)
            best = sorted(above + tied, key=lambda r: (scores(r), r), reverse=True)[:limit]
        if not best:
            return []
        ids = dict(db.execute(
            f"SELECT rowid, id FROM {self.text} WHERE rowid IN (SELECT value FROM json_each(?))",
            (json.dumps(best),)).fetchall())
        return [ids[r] for r in best if r in ids]

    def upsert(self, db: Any, record_id: str, created: str, text: str) -> None:
        """Inside the write transaction: the record's row (ranked), its FTS entry and the
        term frequencies, for a table with no other columns than ``text_schema``'s."""
        conn = getattr(db, "conn", db)
        old = conn.execute(f"SELECT rowid, created_at, search_text FROM {self.text}"
                           " WHERE id = ?", (record_id,)).fetchone()
        self.maintain(conn, old[2] if old else None, text)
        if old is not None and old[1] == created:
            if old[2] != text:
                conn.execute(f"UPDATE {self.text} SET search_text = ? WHERE rowid = ?",
                             (text, old[0]))
            return
        if old is not None:
            conn.execute(f"DELETE FROM {self.text} WHERE rowid = ?", (old[0],))
        conn.execute(f"INSERT INTO {self.text} (rowid, id, created_at, search_text)"
                     " VALUES (?, ?, ?, ?)",
                     (self.place(conn, record_id, created), record_id, created, text))

    def remove(self, db: Any, record_id: str) -> None:
        """Inside the write transaction: the record's row, FTS entry and frequencies."""
        conn = getattr(db, "conn", db)
        old = conn.execute(f"SELECT rowid, search_text FROM {self.text} WHERE id = ?",
                           (record_id,)).fetchone()
        if old is not None:
            self.maintain(conn, old[1], None)
            conn.execute(f"DELETE FROM {self.text} WHERE rowid = ?", (old[0],))


_TRACE_TEXT = FullTextIndex("memory_trace_text", "memory_trace_fts", "memory_trace_terms")
_FACT_TEXT = FullTextIndex("memory_fact_text", "memory_fact_fts", "memory_fact_terms")


class SqliteMemory(MemoryBackend):
    """Memory in an SQLite database file (by default the workspace's ``llmos.db``)."""

    name = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.db = open_database(self.path)
        self._lock = threading.RLock()
        migrations.apply(self.db)

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def _write(self, fn: Callable[[], Any]) -> Any:
        with self._lock, immediate(self.db):
            return fn()

    # -- runs ----------------------------------------------------------------------------

    def _insert_run(self, run: RunRecord) -> None:
        row = _run_row(run)

        def go() -> None:
            if self.db.execute("SELECT 1 FROM memory_runs WHERE id = ?", (run.id,)).fetchone():
                raise RunStateError(f"a run with id {run.id!r} already exists")
            self.db.execute(
                f"INSERT INTO memory_runs ({', '.join(_RUN_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(_RUN_COLUMNS))})",
                [row[c] for c in _RUN_COLUMNS],
            )

        self._write(go)

    def _append_step(self, run_id: str, step: Step) -> Step:
        def go() -> Step:
            (index,) = self.db.execute(
                "SELECT coalesce(max(idx) + 1, 0) FROM memory_steps WHERE run_id = ?", (run_id,)
            ).fetchone()
            stored = step.model_copy(update={"index": index})
            self.db.execute(
                "INSERT INTO memory_steps (run_id, idx, data) VALUES (?, ?, ?)",
                (run_id, index, stored.model_dump_json()),
            )
            return stored

        return self._write(go)

    def _update_run(self, run: RunRecord) -> None:
        row = _run_row(run)
        columns = [c for c in _RUN_COLUMNS if c != "id"]
        self._write(
            lambda: self.db.execute(
                f"UPDATE memory_runs SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
                [*(row[c] for c in columns), run.id],
            )
        )

    def _load_run(self, run_id: str) -> RunRecord | None:
        rows = self._query(f"{_SELECT_RUN} WHERE r.id = ?", (run_id,))
        return self._run_or_raise(rows[0]) if rows else None

    def _iter_runs(self) -> Iterator[RunRecord]:
        offset, page = 0, 200
        while True:
            rows = self._query(
                f"{_SELECT_RUN} ORDER BY r.started_at DESC, r.rowid DESC LIMIT ? OFFSET ?",
                (page, offset),
            )
            for row in rows:
                run = self._run_or_skip(row)
                if run is not None:
                    yield run
            if len(rows) < page:
                return
            offset += page

    def _load_steps(self, run_id: str) -> list[Step]:
        rows = self._query(
            "SELECT data FROM memory_steps WHERE run_id = ? ORDER BY idx", (run_id,)
        )
        return self._decode_rows(Step, "step", [(run_id, data) for (data,) in rows])

    # -- traces --------------------------------------------------------------------------

    def _store_trace(self, trace: Trace) -> None:
        text = trace_search_text(trace)
        created = iso(trace.created_at)
        _TRACE_TEXT.upsert(self.db, trace.id, created, text)
        self.db.execute(
            "INSERT INTO memory_traces (id, goal_signature, created_at, demoted, data)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " goal_signature = excluded.goal_signature, created_at = excluded.created_at,"
            " demoted = excluded.demoted, data = excluded.data",
            (trace.id, trace.goal_signature, created, int(trace.demoted),
             trace.model_dump_json()),
        )

    def _upsert_trace(self, trace: Trace) -> None:
        self._write(lambda: self._store_trace(trace))

    def _load_trace(self, trace_id: str) -> Trace | None:
        rows = self._query("SELECT data FROM memory_traces WHERE id = ?", (trace_id,))
        return self._decode_one(Trace, "trace", trace_id, rows[0][0]) if rows else None

    def _list_traces(self, limit: int | None, include_demoted: bool) -> list[Trace]:
        where = "" if include_demoted else "WHERE demoted = 0"
        rows = self._query(
            f"SELECT id, data FROM memory_traces {where} ORDER BY created_at DESC, id DESC"
            " LIMIT ?", (-1 if limit is None else limit,),
        )
        return self._decode_rows(Trace, "trace", rows)

    def _find_traces(self, signature: str) -> list[Trace]:
        rows = self._query(
            "SELECT id, data FROM memory_traces WHERE goal_signature = ?", (signature,)
        )
        return self._decode_rows(Trace, "trace", rows)

    def _search_traces(self, terms: Sequence[str], limit: int) -> list[Trace]:
        with self._lock:
            found = _TRACE_TEXT.search(self.db, terms, limit)
            data = self._data_by_id("memory_traces", found)
        return self._decode_rows(Trace, "trace", [(i, data[i]) for i in found if i in data])

    def _data_by_id(self, table: str, ids: Sequence[str]) -> dict[str, Any]:
        return dict(self.db.execute(
            f"SELECT id, data FROM {table} WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),)).fetchall())

    def _update_trace(self, trace_id: str, change: Callable[[Trace], Trace]) -> Trace | None:
        def go() -> Trace | None:
            row = self.db.execute(
                "SELECT data FROM memory_traces WHERE id = ?", (trace_id,)
            ).fetchone()
            if row is None:
                return None
            updated = change(self._decode_one(Trace, "trace", trace_id, row[0]))
            self._store_trace(updated)
            return updated

        return self._write(go)

    def _delete_trace(self, trace_id: str) -> bool:
        def go() -> bool:
            _TRACE_TEXT.remove(self.db, trace_id)
            return self.db.execute("DELETE FROM memory_traces WHERE id = ?",
                                   (trace_id,)).rowcount > 0

        return self._write(go)

    def _count_traces(self) -> int:
        return self._query("SELECT count(*) FROM memory_traces")[0][0]

    # -- facts ---------------------------------------------------------------------------

    def _insert_fact(self, fact: Fact) -> None:
        def go() -> None:
            text = fact_search_text(fact)
            self.db.execute(
                "INSERT INTO memory_facts (id, created_at, data) VALUES (?, ?, ?)",
                (fact.id, iso(fact.created_at), fact.model_dump_json()),
            )
            _FACT_TEXT.upsert(self.db, fact.id, iso(fact.created_at), text)
            self.db.conn.executemany(
                "INSERT INTO memory_fact_tags (fact_id, tag) VALUES (?, ?)",
                [(fact.id, tag) for tag in fact.tags],
            )

        self._write(go)

    def _load_fact(self, fact_id: str) -> Fact | None:
        rows = self._query("SELECT data FROM memory_facts WHERE id = ?", (fact_id,))
        return self._decode_one(Fact, "fact", fact_id, rows[0][0]) if rows else None

    def _list_facts(self, tag: str | None, limit: int | None) -> list[Fact]:
        lim = -1 if limit is None else limit
        if tag is None:
            rows = self._query(
                "SELECT id, data FROM memory_facts ORDER BY created_at DESC, id DESC LIMIT ?",
                (lim,),
            )
        else:
            rows = self._query(
                "SELECT f.id, f.data FROM memory_facts f JOIN memory_fact_tags t"
                " ON t.fact_id = f.id"
                " WHERE t.tag = ? ORDER BY f.created_at DESC, f.id DESC LIMIT ?",
                (tag, lim),
            )
        return self._decode_rows(Fact, "fact", rows)

    def _search_facts(self, terms: Sequence[str], limit: int) -> list[Fact]:
        with self._lock:
            found = _FACT_TEXT.search(self.db, terms, limit)
            data = self._data_by_id("memory_facts", found)
        return self._decode_rows(Fact, "fact", [(i, data[i]) for i in found if i in data])

    def _delete_fact(self, fact_id: str) -> bool:
        def go() -> bool:
            _FACT_TEXT.remove(self.db, fact_id)
            return self.db.execute("DELETE FROM memory_facts WHERE id = ?",
                                   (fact_id,)).rowcount > 0

        return self._write(go)

    # -- unreadable records: skipped where listed, reported by problems() ----------------

    def _decode_rows(self, model: Any, kind: str, rows: Sequence[tuple[Any, Any]]) -> list[Any]:
        skipped = self.__dict__.setdefault("_skipped", {})
        return decode_many(model, rows, kind=kind, where=str(self.path), problems=skipped)

    def skipped(self) -> list[Problem]:
        return list(self.__dict__.get("_skipped", {}).values())

    def _decode_one(self, model: Any, kind: str, record_id: str, raw: Any) -> Any:
        return decode_one(model, raw, kind=kind, record_id=record_id, where=str(self.path))

    def _run_or_raise(self, row: Sequence[Any]) -> RunRecord:
        try:
            return _run_from(row[:-1], row[-1])
        except (ValueError, TypeError) as exc:  # ValidationError is a ValueError
            raise UnreadableRecord(f"run {row[0]} in {self.path} "
                                   f"{record_problem('', 'run', row[0], exc).problem}") from None

    def _run_or_skip(self, row: Sequence[Any]) -> RunRecord | None:
        try:
            return _run_from(row[:-1], row[-1])
        except (ValueError, TypeError) as exc:
            skipped = self.__dict__.setdefault("_skipped", {})
            skipped[("run", str(row[0]))] = record_problem(str(self.path), "run", row[0], exc)
            return None

    def problems(self) -> list[Problem]:
        """Every stored run, step, trace and fact that cannot be read."""
        where, found = str(self.path), []
        for row in self._query(_SELECT_RUN):
            try:
                _run_from(row[:-1], row[-1])
            except (ValueError, TypeError) as exc:
                found.append(record_problem(where, "run", row[0], exc))
        checks = ((Step, "step", "SELECT run_id, data FROM memory_steps"),
                  (Trace, "trace", "SELECT id, data FROM memory_traces"),
                  (Fact, "fact", "SELECT id, data FROM memory_facts"))
        for model, kind, sql in checks:
            problems: dict[tuple[str, str], Problem] = {}
            decode_many(model, self._query(sql), kind=kind, where=where, problems=problems)
            found += problems.values()
        return found


def _id_in(data: str) -> str | None:
    """The id of a stored record's JSON, found even when the record does not parse."""
    match = re.search(r'"id"\s*:\s*"([^"]{1,128})"', data or "")
    return match.group(1) if match else None
