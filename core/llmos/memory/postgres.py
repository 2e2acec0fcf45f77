"""The ``postgres`` memory driver: runs, steps, traces and facts in a PostgreSQL database
shared by any number of processes and machines (psycopg 3, ``pip install 'llmos[postgres]'``).

- Every write is one transaction. A trace's statistics are updated under a row lock
  (``SELECT ... FOR UPDATE``), so concurrent ``update_trace_stats`` from many workers lose
  no update; a deadlock or serialization failure is retried.
- The schema is created and upgraded by numbered migrations (``llmos_schema_versions``),
  applied under a transaction-scoped advisory lock: many workers starting at once apply
  each migration exactly once, the others wait and see it done.
- Full-text search follows ``llmos.memory.text``'s rules exactly, as the other drivers do:
  the stored search text is indexed as a ``tsvector`` (``simple`` configuration, GIN), a
  term is a prefix query (``term:*``), a table of token frequencies bounds each term's
  document frequency, and ranking (``selective_terms``, ``score``, ties newest first then
  by id) is computed by the shared code. Text columns that are sorted use the ``C``
  collation, so the order is the byte order the other drivers use, whatever the
  database's locale.

psycopg is imported only when this driver is opened.
"""

from __future__ import annotations

import heapq
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from llmos.memory.base import (
    REMOVE_WITH,
    MemoryBackend,
    Problem,
    RunStateError,
    effective_status,
)
from llmos.memory.models import Fact, RunRecord, RunStatus, Step, Trace, iso
from llmos.memory.owner import current_owner
from llmos.memory.text import (
    fact_search_text,
    is_common,
    prefix_upper,
    score,
    selective_terms,
    trace_search_text,
)

SCHEMA_COMPONENT = "memory"
#: Key of the advisory lock taken while migrations are applied (any constant bigint).
MIGRATION_LOCK = 0x6C6C6D6F73_01  # "llmos" 1

MIGRATIONS: list[list[str]] = [
    # 1: runs, steps, traces, facts and their search terms
    [
        """CREATE TABLE memory_runs (
            seq BIGSERIAL UNIQUE, id TEXT COLLATE "C" PRIMARY KEY, goal TEXT NOT NULL,
            mode TEXT NOT NULL, status TEXT NOT NULL, success BOOLEAN,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            input_tokens BIGINT NOT NULL DEFAULT 0, output_tokens BIGINT NOT NULL DEFAULT 0,
            duration_s DOUBLE PRECISION, started_at TEXT COLLATE "C" NOT NULL,
            finished_at TEXT, error TEXT, output TEXT, trace_id TEXT, owner TEXT,
            parent_run TEXT
        )""",
        "CREATE INDEX memory_runs_started ON memory_runs (started_at DESC, seq DESC)",
        "CREATE INDEX memory_runs_parent ON memory_runs (parent_run)",
        """CREATE TABLE memory_steps (
            run_id TEXT COLLATE "C" NOT NULL REFERENCES memory_runs (id) ON DELETE CASCADE,
            idx INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run_id, idx)
        )""",
        """CREATE TABLE memory_traces (
            id TEXT COLLATE "C" PRIMARY KEY, goal_signature TEXT NOT NULL,
            created_at TEXT COLLATE "C" NOT NULL, demoted BOOLEAN NOT NULL DEFAULT FALSE,
            data TEXT NOT NULL, search_text TEXT NOT NULL,
            search_vec TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED
        )""",
        "CREATE INDEX memory_traces_signature ON memory_traces (goal_signature)",
        "CREATE INDEX memory_traces_created ON memory_traces (created_at DESC, id DESC)",
        "CREATE INDEX memory_traces_search ON memory_traces USING GIN (search_vec)",
        """CREATE TABLE memory_facts (
            id TEXT COLLATE "C" PRIMARY KEY, created_at TEXT COLLATE "C" NOT NULL,
            data TEXT NOT NULL, search_text TEXT NOT NULL,
            search_vec TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED
        )""",
        "CREATE INDEX memory_facts_created ON memory_facts (created_at DESC, id DESC)",
        "CREATE INDEX memory_facts_search ON memory_facts USING GIN (search_vec)",
        """CREATE TABLE memory_fact_tags (
            fact_id TEXT COLLATE "C" NOT NULL REFERENCES memory_facts (id) ON DELETE CASCADE,
            tag TEXT NOT NULL, PRIMARY KEY (fact_id, tag)
        )""",
        "CREATE INDEX memory_fact_tags_tag ON memory_fact_tags (tag)",
        'CREATE TABLE memory_trace_terms (term TEXT COLLATE "C" PRIMARY KEY, df BIGINT NOT NULL)',
        'CREATE TABLE memory_fact_terms (term TEXT COLLATE "C" PRIMARY KEY, df BIGINT NOT NULL)',
    ],
    # 2: the workspace folder a trace was recorded in (workers' workspaces may differ)
    ["ALTER TABLE memory_traces ADD COLUMN root TEXT"],
    # 3: the advisory lock its owner holds while a run is running (see RUN_OWNER_LOCK_CLASS)
    ["ALTER TABLE memory_runs ADD COLUMN owner_lock INTEGER",
     "CREATE INDEX memory_runs_running ON memory_runs (owner_lock) WHERE status = 'running'"],
]
#: The advisory-lock class of run owners: each open driver holds one lock of this class
#: for as long as its connection lives and records the key with the runs it starts, so a
#: reader on any host tells a running run from one whose process died (its lock is free).
RUN_OWNER_LOCK_CLASS = 0x6C6C6D72  # "llmr"

_RETRYABLE = ("40001", "40P01")  # serialization_failure, deadlock_detected
RETRIES = 20


DSN_ENV = "LLMOS_DATABASE_URL"
DSN_EXAMPLE = "postgresql://llmos:PASSWORD@db.example:5432/llmos"
CONNECT_TIMEOUT_S = 10


def mask_dsn(dsn: str | None) -> str | None:
    """The DSN with its password replaced by ``***`` (URL or ``key=value`` form)."""
    if not dsn:
        return dsn
    masked = re.sub(r"^(\w+://[^:/@?#]*:)[^@/?#]*(@)", r"\1***\2", dsn)
    masked = re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", masked)
    return masked


def _scrub(message: str, dsn: str) -> str:
    """An error message with the DSN (and its password) never shown in clear."""
    import psycopg.conninfo

    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except Exception:
        password = None
    message = message.replace(dsn, mask_dsn(dsn) or "")
    if password:
        message = message.replace(str(password), "***")
    return message


def connect(dsn: str) -> Any:
    """An autocommit psycopg connection (transactions are explicit)."""
    import psycopg

    extra: dict[str, Any] = {}
    if "connect_timeout" not in dsn:
        extra["connect_timeout"] = CONNECT_TIMEOUT_S
    if "keepalives" not in dsn:  # notice a server (or a network path) that went away
        extra.update(keepalives=1, keepalives_idle=30, keepalives_interval=10,
                     keepalives_count=3)
    return psycopg.connect(dsn, autocommit=True, application_name="llmos", **extra)


def resolve_dsn(dsn: str | None, origin: str, environ: Any = None) -> tuple[str, str]:
    """The DSN to use and where it came from: ``memory.dsn`` (from any config layer:
    ``--set``, ``LLMOS_MEMORY__DSN``, llmos.toml, the user's config) wins, then
    ``LLMOS_DATABASE_URL``; neither set is a ConfigError saying how to set one."""
    import os

    from llmos.config import ConfigError

    environ = os.environ if environ is None else environ
    if dsn:
        return dsn, origin
    if environ.get(DSN_ENV):
        return environ[DSN_ENV], f"environment variable {DSN_ENV}"
    raise ConfigError(
        "memory.backend = 'postgres' needs a database to connect to and none is set: add "
        f"[memory] dsn = \"{DSN_EXAMPLE}\" to the workspace's llmos.toml, pass "
        f"--set memory.dsn=..., or set {DSN_ENV}"
    )


def open_configured(dsn: str | None, origin: str, environ: Any = None, *,
                    schema: str | None = None, root: str | None = None) -> PostgresMemory:
    """The driver on the configured database; every way of failing to reach it is a
    ConfigError naming the source of the DSN and the fix (never its password)."""
    return _open_configured(lambda url: PostgresMemory(url, schema=schema, root=root),
                            dsn, origin, environ)


def open_configured_economy(dsn: str | None, origin: str, environ: Any = None) -> Any:
    """The token economy (``llmos.economy``) in the configured database, like
    ``open_configured``: one database holds every worker's memory and budget."""
    from llmos.economy import TokenEconomy

    return _open_configured(TokenEconomy.postgres, dsn, origin, environ)


def _open_configured(factory: Callable[[str], Any], dsn: str | None, origin: str,
                     environ: Any) -> Any:
    from llmos.config import ConfigError

    dsn, source = resolve_dsn(dsn, origin, environ)
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "memory.backend = 'postgres' needs psycopg 3, which is not installed: "
            "pip install 'llmos[postgres]'"
        ) from None
    try:
        return factory(dsn)
    except psycopg.Error as exc:
        detail = _scrub(str(exc).strip(), dsn).replace("\n", " ")
        raise ConfigError(
            f"{_scrub(source, dsn)}: cannot use the PostgreSQL database {mask_dsn(dsn)}: {detail} "
            "(start the server, or fix the DSN: memory.dsn or "
            f"{DSN_ENV}, postgresql://user:password@host:port/database)"
        ) from None


def take_owner_lock(conn: Any, lock_class: int, previous: int | None, in_use: str) -> int:
    """A session advisory lock ``(lock_class, key)`` naming this process as an owner, held
    until the connection closes (autocommit: a session lock, not a transaction's): the
    ``previous`` key after a reconnect (what it owns stays its own), else a random key no
    live session holds and no record still carries (``in_use``: a query on the key that
    returns a row when a record does)."""
    import secrets

    key = previous
    while True:
        if key is not None:
            (got,) = conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                  (lock_class, key)).fetchone()
            if got and (key == previous or conn.execute(in_use, (key,)).fetchone() is None):
                return key
            if got:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (lock_class, key))
        key = secrets.randbelow(2**31 - 1) + 1


def apply_migrations(conn: Any, component: str, migrations: Sequence[Sequence[str]],
                     lock_key: int) -> int:
    """Bring ``component``'s schema up to date (numbered migrations, each once, under an
    advisory lock so that concurrent starters wait for each other); return the version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS llmos_schema_versions ("
            " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        row = conn.execute(
            "SELECT version FROM llmos_schema_versions WHERE component = %s", (component,)
        ).fetchone()
        version = row[0] if row else 0
        if version > len(migrations):
            raise RuntimeError(
                f"the database's {component} schema is version {version}, newer than this "
                f"llmos knows ({len(migrations)}); upgrade llmos"
            )
        for number, statements in enumerate(migrations[version:], start=version + 1):
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO llmos_schema_versions (component, version) VALUES (%s, %s)"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, number),
            )
            version = number
    return version


def retrying(fn: Callable[[], Any]) -> Any:
    """Run a transaction function again after a deadlock or serialization failure."""
    import psycopg

    for attempt in range(RETRIES):
        try:
            return fn()
        except psycopg.errors.OperationalError as exc:
            if getattr(exc, "sqlstate", None) not in _RETRYABLE or attempt == RETRIES - 1:
                raise
            time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


_RUN_COLUMNS = (
    "id", "goal", "mode", "status", "success", "cost_usd", "input_tokens", "output_tokens",
    "duration_s", "started_at", "finished_at", "error", "output", "trace_id", "owner",
    "parent_run",
)
_WRITTEN_RUN_COLUMNS = (*_RUN_COLUMNS, "owner_lock")

_SELECT_RUN = (
    f"SELECT {', '.join('r.' + c for c in _RUN_COLUMNS)},"
    " (SELECT count(*) FROM memory_steps s WHERE s.run_id = r.id) FROM memory_runs r"
)
_SELECT_RUN_LOCK = _SELECT_RUN.replace(" FROM memory_runs r", ", r.owner_lock FROM memory_runs r")


def _run_row(run: RunRecord) -> dict[str, Any]:
    data = run.model_dump(mode="json", exclude={"step_count"})
    data["owner"] = json.dumps(data["owner"]) if data["owner"] is not None else None
    data["started_at"] = iso(run.started_at)
    data["finished_at"] = iso(run.finished_at) if run.finished_at else None
    return data


def _run_from(row: Sequence[Any]) -> RunRecord:
    data = dict(zip((*_RUN_COLUMNS, "step_count"), row, strict=True))
    data["owner"] = json.loads(data["owner"]) if data["owner"] else None
    return RunRecord.model_validate(data)


def _tsquery(term: str) -> str:
    # terms are runs of letters and digits (llmos.memory.text): nothing to escape
    return f"'{term}':*"


class _FullText:
    """Ranked search over one table, by ``llmos.memory.text``'s rules."""

    def __init__(self, table: str, terms: str) -> None:
        self.table, self.terms = table, terms

    def maintain(self, conn: Any, old: str | None, new: str | None) -> None:
        """Inside the write transaction: ``old``/``new`` search text, None = no record.
        Term rows are locked in sorted order, so concurrent writers cannot deadlock."""
        before = set(old.split()) if old is not None else set()
        after = set(new.split()) if new is not None else set()
        if old is None and new is not None:
            before.discard("")
            after.add("")
        elif old is not None and new is None:
            before.add("")
        added, gone = sorted(after - before), sorted(before - after)
        if added:
            conn.execute(
                f"INSERT INTO {self.terms} AS t (term, df)"
                " SELECT term, 1 FROM unnest(%s::text[]) AS term ORDER BY term"
                " ON CONFLICT (term) DO UPDATE SET df = t.df + 1",
                (added,),
            )
        if gone:
            conn.execute(
                f"UPDATE {self.terms} SET df = df - 1 WHERE term = ANY(%s::text[])", (gone,)
            )
            conn.execute(
                f"DELETE FROM {self.terms} WHERE term = ANY(%s::text[]) AND df <= 0"
                " AND term <> ''",
                (gone,),
            )

    def search(self, conn: Any, terms: Sequence[str], limit: int, extra: str = "NULL"
               ) -> list[tuple[str, Any]]:
        """``(data, extra)`` of the best ``limit`` records, best first."""
        # the record count and each term's bound, in one round trip
        total, counted = conn.execute(
            f"SELECT (SELECT df FROM {self.terms} WHERE term = ''), array("
            f"  SELECT coalesce((SELECT sum(df) FROM {self.terms}"
            "                    WHERE term >= u.lo AND term < u.hi), 0)"
            "  FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS u(lo, hi, n)"
            "  ORDER BY u.n)",
            (list(terms), [prefix_upper(term) for term in terms]),
        ).fetchone()
        total = int(total or 0)
        bounds = {term: int(value) for term, value in zip(terms, counted, strict=True)}
        chosen = selective_terms(terms, bounds, total)
        if not chosen:
            return []
        if len(chosen) == 1 and is_common(bounds[chosen[0]], total):
            # every term is common: all records with the rarest one score alike
            rows = conn.execute(
                f"SELECT data, {extra} FROM {self.table}"
                " WHERE search_vec @@ to_tsquery('simple', %s)"
                " ORDER BY created_at DESC, id DESC LIMIT %s",
                (_tsquery(chosen[0]), limit),
            ).fetchall()
            return [(data, more) for data, more in rows]
        postings: dict[str, set[str]] = {term: set() for term in chosen}  # in query order
        for n, record_id in conn.execute(
            f"SELECT u.n, m.id FROM unnest(%s::text[]) WITH ORDINALITY AS u(q, n)"
            f" JOIN {self.table} m ON m.search_vec @@ to_tsquery('simple', u.q)",
            ([_tsquery(term) for term in chosen],),
        ):
            postings[chosen[n - 1]].add(record_id)
        scores = score(postings, total)
        if not scores:
            return []
        cut = heapq.nlargest(limit, scores.values())[-1]
        above = [r for r, v in scores.items() if v > cut]  # fewer than `limit`
        tied = [r for r, v in scores.items() if v == cut]
        found: dict[str, tuple[str, Any]] = {}
        created: dict[str, str] = {}
        if above:
            for rid, when, value, more in conn.execute(
                f"SELECT id, created_at, data, {extra} FROM {self.table}"
                " WHERE id = ANY(%s::text[])", (above,)
            ):
                created[rid], found[rid] = when, (value, more)
        best = sorted((r for r in above if r in created),
                      key=lambda r: (scores[r], created[r], r), reverse=True)
        wanted = limit - len(best)
        if wanted > 0 and tied:
            for rid, value, more in conn.execute(
                f"SELECT id, data, {extra} FROM {self.table} WHERE id = ANY(%s::text[])"
                " ORDER BY created_at DESC, id DESC LIMIT %s",
                (tied, wanted),
            ):
                best.append(rid)
                found[rid] = (value, more)
        return [found[r] for r in best]


_TRACE_TEXT = _FullText("memory_traces", "memory_trace_terms")
_FACT_TEXT = _FullText("memory_facts", "memory_fact_terms")


class PostgresMemory(MemoryBackend):
    """Memory in a PostgreSQL database, reached by ``dsn`` (``postgresql://...``).

    ``schema`` keeps the tables in their own PostgreSQL schema (a project's memory:
    ``project_<name>``; default: the connection's ``search_path``, normally ``public``).
    ``root`` is the workspace folder of this worker: a trace is stored with the folder it
    was recorded in, and read back with the paths in its steps that led into that folder
    leading into this one, so workers whose workspaces are at different paths replay
    each other's traces (as sharing projects do)."""

    name = "postgres"

    def __init__(self, dsn: str, *, schema: str | None = None, root: str | None = None
                 ) -> None:
        self.dsn, self.schema = dsn, schema
        self.root = str(root) if root is not None else None
        self._lock = threading.RLock()
        self._problems: dict[tuple[str, str], str] = {}
        self._closed = False
        self.owner_lock: int | None = None
        self.conn = self._open()

    def _open(self) -> Any:
        conn = connect(self.dsn)
        try:
            if self.schema:
                from psycopg import sql

                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        sql.Identifier(self.schema)))
                conn.execute(sql.SQL("SET search_path TO {}").format(
                    sql.Identifier(self.schema)))
            apply_migrations(conn, SCHEMA_COMPONENT, MIGRATIONS, MIGRATION_LOCK)
            self.owner_lock = self._take_owner_lock(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _take_owner_lock(self, conn: Any) -> int:
        """This driver's run-owner key (see ``take_owner_lock``): no running run carries it."""
        return take_owner_lock(
            conn, RUN_OWNER_LOCK_CLASS, self.owner_lock,
            "SELECT 1 FROM memory_runs WHERE status = 'running' AND owner_lock = %s LIMIT 1")

    def _owner_gone(self, run: RunRecord, owner_lock: int | None) -> bool:
        """Whether a running run's owner (on any host) has died: nobody holds its lock."""
        if owner_lock is None or owner_lock == self.owner_lock:
            return False
        # read-only: pg_locks shows every session's advisory locks (two-key form:
        # classid, objid, objsubid = 2), so concurrent readers never disturb each other
        rows = self._query(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s::oid AND objid = %s::oid AND objsubid = 2",
            (RUN_OWNER_LOCK_CLASS, owner_lock),
        )
        return not rows

    def _status(self, run: RunRecord, owner_lock: int | None) -> RunRecord:
        """``effective_status`` (a dead owner on this host), and on PostgreSQL also an
        owner on another host whose session is gone: the run reads as interrupted."""
        run = effective_status(run)
        # on this host the owner's pid says it all (a live process may have closed this
        # driver and still run); elsewhere only its lock can tell
        remote = run.owner is None or run.owner.host != current_owner().host
        if run.status == "running" and remote and self._owner_gone(run, owner_lock):
            return run.model_copy(update={
                "status": "interrupted", "success": False,
                "error": run.error or "the worker running it stopped before it finished"})
        return run

    def get_run(self, run_id: str) -> RunRecord:
        run = super().get_run(run_id)
        if run.status != "running":
            return run
        rows = self._query("SELECT owner_lock FROM memory_runs WHERE id = %s", (run_id,))
        return self._status(run, rows[0][0] if rows else None)

    def list_runs(self, *, limit: int | None = 50, status: RunStatus | None = None
                  ) -> list[RunRecord]:
        """Runs, newest first, optionally only those with ``status`` (as they read)."""
        out: list[RunRecord] = []
        for run, owner_lock in self._iter_runs_with_locks():
            run = self._status(run, owner_lock)
            if status is not None and run.status != status:
                continue
            out.append(run)
            if limit is not None and len(out) >= limit:
                break
        return out

    def _live(self) -> Any:
        """The connection, opened again when the last one broke (the server restarted,
        the network dropped): a read is repeated on the new one; a write that saw it
        break fails (it may or may not have committed), the next ones work."""
        if self.conn.broken and not self._closed:
            self.conn = self._open()
        return self.conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.conn.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with self._lock:
            try:
                return self._live().execute(sql, params).fetchall()
            except psycopg.OperationalError:
                if not self.conn.broken or self._closed:
                    raise
            return self._live().execute(sql, params).fetchall()  # a read: safe to repeat

    def _write(self, fn: Callable[[], Any]) -> Any:
        def once() -> Any:
            with self.conn.transaction():
                return fn()

        with self._lock:
            self._live()
            return retrying(once)

    def _parse(self, model: Any, table: str, record_id: str, data: str) -> Any:
        try:
            value = model.model_validate_json(data)
        except ValueError as exc:
            self._problems[(table, record_id)] = f"unreadable record: {exc}".splitlines()[0]
            return None
        self._problems.pop((table, record_id), None)
        return value

    # -- runs ----------------------------------------------------------------------------

    def _row(self, run: RunRecord) -> dict[str, Any]:
        row = _run_row(run)
        # a run this process owns carries this driver's lock key; one recorded for another
        # owner is judged by its pid and host only
        row["owner_lock"] = self.owner_lock if run.owner == current_owner() else None
        return row

    def _insert_run(self, run: RunRecord) -> None:
        row = self._row(run)

        def go() -> None:
            inserted = self.conn.execute(
                f"INSERT INTO memory_runs ({', '.join(_WRITTEN_RUN_COLUMNS)}) VALUES "
                f"({', '.join(['%s'] * len(_WRITTEN_RUN_COLUMNS))}) ON CONFLICT (id) DO NOTHING"
                " RETURNING id",
                [row[c] for c in _WRITTEN_RUN_COLUMNS],
            ).fetchone()
            if inserted is None:
                raise RunStateError(f"a run with id {run.id!r} already exists")

        self._write(go)

    def _append_step(self, run_id: str, step: Step) -> Step:
        def go() -> Step:
            # the run's row lock orders concurrent appenders of one run
            self.conn.execute("SELECT 1 FROM memory_runs WHERE id = %s FOR UPDATE", (run_id,))
            (index,) = self.conn.execute(
                "SELECT coalesce(max(idx) + 1, 0) FROM memory_steps WHERE run_id = %s",
                (run_id,),
            ).fetchone()
            stored = step.model_copy(update={"index": index})
            self.conn.execute(
                "INSERT INTO memory_steps (run_id, idx, data) VALUES (%s, %s, %s)",
                (run_id, index, stored.model_dump_json()),
            )
            return stored

        return self._write(go)

    def _update_run(self, run: RunRecord) -> None:
        row = self._row(run)
        columns = [c for c in _WRITTEN_RUN_COLUMNS if c != "id"]
        self._write(
            lambda: self.conn.execute(
                f"UPDATE memory_runs SET {', '.join(f'{c} = %s' for c in columns)}"
                " WHERE id = %s",
                [*(row[c] for c in columns), run.id],
            )
        )

    def _load_run(self, run_id: str) -> RunRecord | None:
        rows = self._query(f"{_SELECT_RUN} WHERE r.id = %s", (run_id,))
        return _run_from(rows[0]) if rows else None

    def _iter_runs(self) -> Iterator[RunRecord]:
        for run, _ in self._iter_runs_with_locks():
            yield run

    def _iter_runs_with_locks(self) -> Iterator[tuple[RunRecord, int | None]]:
        offset, page = 0, 200
        while True:
            rows = self._query(
                f"{_SELECT_RUN_LOCK} ORDER BY r.started_at DESC, r.seq DESC LIMIT %s OFFSET %s",
                (page, offset),
            )
            for row in rows:
                yield _run_from(row[:-1]), row[-1]
            if len(rows) < page:
                return
            offset += page

    def _load_steps(self, run_id: str) -> list[Step]:
        rows = self._query(
            "SELECT idx, data FROM memory_steps WHERE run_id = %s ORDER BY idx", (run_id,)
        )
        steps = [self._parse(Step, "memory_steps", f"{run_id}/{idx}", data)
                 for idx, data in rows]
        return [s for s in steps if s is not None]

    # -- traces --------------------------------------------------------------------------

    def _store_trace(self, trace: Trace, root: str | None) -> None:
        """Inside a write transaction: insert or replace, the search terms kept exact;
        ``root``: the workspace folder the trace's paths lead into."""
        text = trace_search_text(trace)
        # serialize writers of this id, even when the row does not exist yet
        self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('llmos-trace:' || %s, 0))",
            (trace.id,),
        )
        old = self.conn.execute(
            "SELECT search_text FROM memory_traces WHERE id = %s FOR UPDATE", (trace.id,)
        ).fetchone()
        _TRACE_TEXT.maintain(self.conn, old[0] if old else None, text)
        self.conn.execute(
            "INSERT INTO memory_traces (id, goal_signature, created_at, demoted, data,"
            " search_text, root) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO"
            " UPDATE SET goal_signature = excluded.goal_signature,"
            " created_at = excluded.created_at, demoted = excluded.demoted,"
            " data = excluded.data, search_text = excluded.search_text, root = excluded.root",
            (trace.id, trace.goal_signature, iso(trace.created_at), bool(trace.demoted),
             trace.model_dump_json(), text, root),
        )

    def _upsert_trace(self, trace: Trace) -> None:
        self._write(lambda: self._store_trace(trace, self.root))

    def _traces(self, rows: Sequence[tuple[Any, ...]]) -> list[Trace]:
        out = []
        for rid, data, root in rows:
            trace = self._parse(Trace, "memory_traces", rid, data)
            if trace is not None:
                out.append(self._here(trace, root))
        return out

    def _here(self, trace: Trace, root: str | None) -> Trace:
        """The trace as this worker runs it: paths into the folder it was recorded in
        lead into this worker's workspace instead."""
        if self.root is None or root is None or root == self.root:
            return trace
        from pathlib import Path

        from llmos.projects import rebase_trace

        return rebase_trace(trace, Path(root), Path(self.root))

    def _load_trace(self, trace_id: str) -> Trace | None:
        found = self._traces(self._query(
            "SELECT id, data, root FROM memory_traces WHERE id = %s", (trace_id,)))
        return found[0] if found else None

    def _list_traces(self, limit: int | None, include_demoted: bool) -> list[Trace]:
        where = "" if include_demoted else "WHERE NOT demoted"
        return self._traces(self._query(
            f"SELECT id, data, root FROM memory_traces {where}"
            " ORDER BY created_at DESC, id DESC LIMIT %s",
            (limit,),
        ))

    def _find_traces(self, signature: str) -> list[Trace]:
        return self._traces(self._query(
            "SELECT id, data, root FROM memory_traces WHERE goal_signature = %s",
            (signature,)))

    def _search_traces(self, terms: Sequence[str], limit: int) -> list[Trace]:
        with self._lock:
            found = _TRACE_TEXT.search(self._live(), terms, limit, extra="root")
        return [self._here(trace, root) for data, root in found  # unreadable ones skipped
                if (trace := self._parse(Trace, "memory_traces", _id_in(data), data))]

    def _update_trace(self, trace_id: str, change: Callable[[Trace], Trace]) -> Trace | None:
        def go() -> Trace | None:
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('llmos-trace:' || %s, 0))",
                (trace_id,),
            )
            row = self.conn.execute(
                "SELECT data, root FROM memory_traces WHERE id = %s FOR UPDATE", (trace_id,)
            ).fetchone()
            if row is None:
                return None
            updated = change(Trace.model_validate_json(row[0]))  # as recorded, where recorded
            self._store_trace(updated, row[1])
            return self._here(updated, row[1])

        return self._write(go)

    def _delete_trace(self, trace_id: str) -> bool:
        def go() -> bool:
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('llmos-trace:' || %s, 0))",
                (trace_id,),
            )
            old = self.conn.execute(
                "SELECT search_text FROM memory_traces WHERE id = %s FOR UPDATE", (trace_id,)
            ).fetchone()
            if old is None:
                return False
            _TRACE_TEXT.maintain(self.conn, old[0], None)
            self.conn.execute("DELETE FROM memory_traces WHERE id = %s", (trace_id,))
            return True

        return self._write(go)

    def _count_traces(self) -> int:
        return self._query("SELECT count(*) FROM memory_traces")[0][0]

    # -- facts ---------------------------------------------------------------------------

    def _insert_fact(self, fact: Fact) -> None:
        def go() -> None:
            text = fact_search_text(fact)
            self.conn.execute(
                "INSERT INTO memory_facts (id, created_at, data, search_text)"
                " VALUES (%s, %s, %s, %s)",
                (fact.id, iso(fact.created_at), fact.model_dump_json(), text),
            )
            _FACT_TEXT.maintain(self.conn, None, text)
            if fact.tags:
                self.conn.execute(
                    "INSERT INTO memory_fact_tags (fact_id, tag)"
                    " SELECT %s, tag FROM unnest(%s::text[]) AS tag",
                    (fact.id, list(fact.tags)),
                )

        self._write(go)

    def _facts(self, rows: Sequence[tuple[Any, ...]]) -> list[Fact]:
        facts = [self._parse(Fact, "memory_facts", rid, data) for rid, data in rows]
        return [f for f in facts if f is not None]

    def _load_fact(self, fact_id: str) -> Fact | None:
        found = self._facts(self._query(
            "SELECT id, data FROM memory_facts WHERE id = %s", (fact_id,)))
        return found[0] if found else None

    def _list_facts(self, tag: str | None, limit: int | None) -> list[Fact]:
        if tag is None:
            rows = self._query(
                "SELECT id, data FROM memory_facts ORDER BY created_at DESC, id DESC LIMIT %s",
                (limit,),
            )
        else:
            rows = self._query(
                "SELECT f.id, f.data FROM memory_facts f"
                " JOIN memory_fact_tags t ON t.fact_id = f.id"
                " WHERE t.tag = %s ORDER BY f.created_at DESC, f.id DESC LIMIT %s",
                (tag, limit),
            )
        return self._facts(rows)

    def _search_facts(self, terms: Sequence[str], limit: int) -> list[Fact]:
        with self._lock:
            found = _FACT_TEXT.search(self._live(), terms, limit)
        return [fact for data, _ in found  # unreadable ones skipped
                if (fact := self._parse(Fact, "memory_facts", _id_in(data), data))]

    def _delete_fact(self, fact_id: str) -> bool:
        def go() -> bool:
            old = self.conn.execute(
                "SELECT search_text FROM memory_facts WHERE id = %s FOR UPDATE", (fact_id,)
            ).fetchone()
            if old is None:
                return False
            _FACT_TEXT.maintain(self.conn, old[0], None)
            self.conn.execute("DELETE FROM memory_facts WHERE id = %s", (fact_id,))
            return True

        return self._write(go)

    # -- housekeeping --------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        """Stored rows that do not parse as their record (skipped when read): every row
        is checked."""
        for table, model in (("memory_traces", Trace), ("memory_facts", Fact)):
            for record_id, data in self._query(f"SELECT id, data FROM {table}"):
                self._parse(model, table, record_id, data)
        for run_id, idx, data in self._query("SELECT run_id, idx, data FROM memory_steps"):
            self._parse(Step, "memory_steps", f"{run_id}/{idx}", data)
        kinds = {"memory_traces": "trace", "memory_facts": "fact", "memory_steps": "step"}
        return [
            Problem(file=f"postgres:{table}/{record_id}", line=0, problem=problem,
                    record=f"{kinds.get(table, table)} {record_id}",
                    fix=REMOVE_WITH.get(kinds.get(table, ""), "").format(id=record_id) or None)
            for (table, record_id), problem in sorted(self._problems.items())
        ]


def _id_in(data: str) -> str:
    """The id of a stored record's JSON, found even when the record does not parse."""
    import re

    match = re.search(r'"id"\s*:\s*"([^"]{1,128})"', data or "")
    return match.group(1) if match else "?"
