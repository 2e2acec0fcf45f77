"""The token economy: a durable budget in integer micro-dollars.

Before a paid step the worst case is reserved (``LowBatteryError`` when it does not fit);
afterwards the reservation is committed with the real cost or released. A reservation
whose owner died is charged in full: that is what it may have spent before it died.

One ``TokenEconomy`` (the arithmetic and the rules), two storages (the SQL per dialect):

- **SQLite** (``TokenEconomy(db)``, the workspace database, the default): every change is
  one ``BEGIN IMMEDIATE`` transaction, so concurrent runs, in one process or several on
  this machine, can never overspend. A reservation's owner is ``host:pid@start``; a dead
  owner is one whose pid is gone (or reused) on this host.
- **PostgreSQL** (``TokenEconomy.postgres(dsn)``; the kernel uses it when
  ``memory.backend = "postgres"``, on the same database, so every worker on every machine
  shares one budget): every change is one transaction that first takes the account row's
  lock (``SELECT ... FOR UPDATE``), so all changes are serialized and the budget is never
  overspent, whatever the number of processes or machines. A dead owner is found with
  PostgreSQL's session advisory locks: each economy holds one lock (a key unique among
  live sessions, recorded with its reservations) for as long as its connection lives;
  the server drops it when the connection dies (process killed, machine gone: once TCP
  notices, see ``tcp_keepalives_idle``). ``release_stale`` settles the open reservations
  whose owner's lock it can take. No clocks, heartbeats or pids: it works across hosts.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from llmos.storage import Migrations, immediate

MICRO = 1_000_000

migrations = Migrations("economy")


@migrations
def m001_account_and_ledger(db: sqlite_utils.Database) -> None:
    db["economy_account"].create(
        {"id": int, "balance_micro": int, "reserved_micro": int}, pk="id"
    )
    db["economy_account"].insert({"id": 1, "balance_micro": 0, "reserved_micro": 0})
    db["economy_reservations"].create(
        {
            "id": str,
            "amount_micro": int,
            "status": str,
            "run_id": str,
            "description": str,
            "owner": str,
            "created_at": str,
        },
        pk="id",
    )
    db["economy_ledger"].create(
        {
            "id": int,
            "ts": str,
            "kind": str,
            "amount_micro": int,
            "balance_micro": int,
            "reservation_id": str,
            "run_id": str,
            "description": str,
            "input_tokens": int,
            "output_tokens": int,
        },
        pk="id",
    )


@migrations
def m002_owner_lock(db: sqlite_utils.Database) -> None:
    """The owner's advisory-lock key (PostgreSQL's ledger; always NULL here): one
    reservations table, one set of statements for both dialects."""
    db.execute("ALTER TABLE economy_reservations ADD COLUMN owner_lock INTEGER")


class LowBatteryError(Exception):
    """A paid step does not fit in what is left of the budget."""

    def __init__(self, needed_micro: int, available_micro: int, what: str = "this step") -> None:
        super().__init__(
            f"low battery: {what} needs up to ${needed_micro / MICRO:.4f} but only "
            f"${available_micro / MICRO:.4f} is available; raise it with `llmos budget set USD`"
        )
        self.needed_micro = needed_micro
        self.available_micro = available_micro


MAX_BUDGET_USD = 1_000_000.0


def check_budget_usd(usd: float) -> None:
    """Refuse a budget that is not a finite amount between $0 and $1,000,000."""
    if not math.isfinite(usd) or usd < 0 or usd > MAX_BUDGET_USD:
        raise ValueError(
            f"a budget must be a number of dollars from 0 to {MAX_BUDGET_USD:,.0f}, "
            f"not {usd!r}; for example: llmos budget set 5"
        )


def to_micro(usd: float) -> int:
    return round(usd * MICRO)


@dataclass(frozen=True)
class Reservation:
    id: str
    amount_micro: int
    run_id: str | None


# -- storage: the SQL per dialect ---------------------------------------------------------
# Statements are written once, with ``?`` placeholders and ``{now}`` for the current UTC
# time as text; each storage translates them.

_PG_NOW = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#: The advisory-lock class of the owners' locks (the other key is the owner's).
OWNER_LOCK_CLASS = 0x6C6C6D6F  # "llmo"
#: Key of the advisory lock taken while the ledger's migrations are applied.
PG_MIGRATION_LOCK = 0x6C6C6D6F73_02

PG_MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE economy_account (id INTEGER PRIMARY KEY, balance_micro BIGINT NOT NULL,"
        " reserved_micro BIGINT NOT NULL)",
        "INSERT INTO economy_account VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING",
        "CREATE TABLE economy_reservations (id TEXT PRIMARY KEY, amount_micro BIGINT NOT NULL,"
        " status TEXT NOT NULL, run_id TEXT, description TEXT, owner TEXT, created_at TEXT,"
        " owner_lock INTEGER)",
        "CREATE INDEX economy_reservations_open ON economy_reservations (status, run_id)",
        "CREATE TABLE economy_ledger (id BIGSERIAL PRIMARY KEY, ts TEXT NOT NULL,"
        " kind TEXT NOT NULL, amount_micro BIGINT NOT NULL, balance_micro BIGINT NOT NULL,"
        " reservation_id TEXT, run_id TEXT, description TEXT, input_tokens BIGINT,"
        " output_tokens BIGINT)",
        "CREATE INDEX economy_ledger_run ON economy_ledger (run_id, kind)",
    ],
]


class SqliteLedger:
    """The ledger in an SQLite database (the workspace's): ``BEGIN IMMEDIATE`` writes."""

    dialect = "sqlite"
    owner_lock: int | None = None

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        migrations.apply(db)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        sql = sql.replace("{now}", "strftime('%Y-%m-%dT%H:%M:%fZ','now')")
        return self.db.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with immediate(self.db):
            yield

    def owner_gone(self, owner: str | None, owner_lock: int | None,
                   alive: Callable[[int], bool] | None) -> bool:
        """Whether the process that owns a reservation has died (this host only)."""
        owner_host, _, rest = (owner or "").rpartition(":")
        pid, _, started = rest.partition("@")
        if owner_host != socket.gethostname() or not pid.isdigit():
            return False
        alive = alive or _pid_alive
        return not alive(int(pid)) or bool(started and _process_start(int(pid)) != started)

    def checked(self) -> None:
        """``release_stale`` is done with the owners ``owner_gone`` said were gone."""

    def close(self) -> None:
        """The database belongs to the caller (the kernel's workspace database)."""


class PostgresLedger:
    """The ledger in PostgreSQL: writes serialized on the account row's lock; owners
    identified by session advisory locks (see the module docstring)."""

    dialect = "postgres"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = threading.RLock()
        self._taken: list[int] = []
        self._closed = False
        self.owner_lock: int | None = None
        self.conn = self._open()

    def _open(self) -> Any:
        from llmos.memory.postgres import apply_migrations, connect

        conn = connect(self.dsn)
        try:
            apply_migrations(conn, "economy", PG_MIGRATIONS, PG_MIGRATION_LOCK)
            self.owner_lock = self._take_owner_lock(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _take_owner_lock(self, conn: Any) -> int:
        """This ledger's owner key (``llmos.memory.postgres.take_owner_lock``): no open
        reservation carries it."""
        from llmos.memory.postgres import take_owner_lock

        return take_owner_lock(
            conn, OWNER_LOCK_CLASS, self.owner_lock,
            "SELECT 1 FROM economy_reservations WHERE status = 'open' AND owner_lock = %s"
            " LIMIT 1")

    def _live(self) -> Any:
        """The connection, opened again when it broke (a change that saw it break failed
        and may be retried by the caller; the next ones work)."""
        if self.conn.broken and not self._closed:
            self.conn = self._open()
        return self.conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        sql = sql.replace("?", "%s").replace("{now}", _PG_NOW)
        with self._lock:
            cursor = self._live().execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock, self._live().transaction():
            # every change takes the account row first: changes are serialized, and each
            # statement after the lock sees every change committed before it
            self.conn.execute("SELECT 1 FROM economy_account WHERE id = 1 FOR UPDATE")
            yield

    def owner_gone(self, owner: str | None, owner_lock: int | None,
                   alive: Callable[[int], bool] | None) -> bool:
        """Gone when nobody holds its lock any more (then we hold it until ``checked``)."""
        if owner_lock is None or owner_lock == self.owner_lock or owner_lock in self._taken:
            return owner_lock in self._taken
        with self._lock:
            (got,) = self.conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (OWNER_LOCK_CLASS, owner_lock)
            ).fetchone()
        if got:
            self._taken.append(owner_lock)
        return bool(got)

    def checked(self) -> None:
        with self._lock:
            for key in self._taken:
                self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", (OWNER_LOCK_CLASS, key))
            self._taken.clear()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.conn.close()


# -- the economy: the arithmetic and the rules, once -------------------------------------


class TokenEconomy:
    """The battery. All amounts are integer micro-dollars; USD helpers convert at the edge.

    ``TokenEconomy(db)`` keeps it in an SQLite database; ``TokenEconomy.postgres(dsn)`` in
    PostgreSQL, shared by every process that opens the same database."""

    def __init__(self, db: sqlite_utils.Database | SqliteLedger | PostgresLedger) -> None:
        self.settled_runs: list[str] = []
        self.store = db if isinstance(db, (SqliteLedger, PostgresLedger)) else SqliteLedger(db)
        # host:pid@start — the start time tells a reused pid from the process that owned it
        started = _process_start(os.getpid())
        self._owner = f"{socket.gethostname()}:{os.getpid()}" + (f"@{started}" if started else "")

    @classmethod
    def postgres(cls, dsn: str) -> TokenEconomy:
        """The economy in the PostgreSQL database at ``dsn`` (psycopg 3)."""
        return cls(PostgresLedger(dsn))

    @property
    def db(self) -> sqlite_utils.Database:
        """The SQLite database (SQLite storage only)."""
        if not isinstance(self.store, SqliteLedger):
            raise AttributeError("this economy is kept in PostgreSQL, not an SQLite database")
        return self.store.db

    def close(self) -> None:
        """Release the storage's connection (PostgreSQL; the SQLite one is the caller's)."""
        self.store.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.store.query(sql, params)

    def _account(self) -> tuple[int, int]:
        row = self._query(
            "SELECT balance_micro, reserved_micro FROM economy_account WHERE id = 1"
        )[0]
        return int(row[0]), int(row[1])

    def _log(self, kind: str, amount: int, balance: int, **extra: Any) -> None:
        self._query(
            "INSERT INTO economy_ledger (ts, kind, amount_micro, balance_micro, reservation_id,"
            " run_id, description, input_tokens, output_tokens)"
            " VALUES ({now}, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                kind,
                amount,
                balance,
                extra.get("reservation_id"),
                extra.get("run_id"),
                extra.get("description", ""),
                extra.get("input_tokens"),
                extra.get("output_tokens"),
            ),
        )

    @property
    def balance_micro(self) -> int:
        """What is left, not counting open reservations."""
        return self._account()[0]

    @property
    def available_micro(self) -> int:
        """What a new reservation may still take."""
        balance, reserved = self._account()
        return balance - reserved

    def status(self) -> dict[str, Any]:
        balance, reserved = self._account()
        return {
            "balance_usd": balance / MICRO,
            "reserved_usd": reserved / MICRO,
            "available_usd": (balance - reserved) / MICRO,
            "balance_micro": balance,
            "reserved_micro": reserved,
        }

    def set_balance(self, usd: float, description: str = "budget set") -> None:
        check_budget_usd(usd)
        amount = to_micro(usd)
        with self.store.transaction():
            self._query("UPDATE economy_account SET balance_micro = ? WHERE id = 1", (amount,))
            self._log("set", amount, amount, description=description)

    def reserve(self, usd: float, *, run_id: str | None = None, what: str = "run") -> Reservation:
        return self.reserve_micro(to_micro(usd), run_id=run_id, what=what)

    def reserve_micro(self, amount: int, *, run_id: str | None = None, what: str = "run"
                      ) -> Reservation:
        """Set ``amount`` aside, or raise ``LowBatteryError`` when it does not fit."""
        if amount < 0:
            raise ValueError("a reservation cannot be negative")
        with self.store.transaction():
            balance, reserved = self._account()
            if amount > balance - reserved:
                raise LowBatteryError(amount, balance - reserved, what)
            rid = uuid.uuid4().hex
            self._query(
                "UPDATE economy_account SET reserved_micro = reserved_micro + ? WHERE id = 1",
                (amount,),
            )
            self._query(
                "INSERT INTO economy_reservations (id, amount_micro, status, run_id,"
                " description, owner, created_at, owner_lock)"
                " VALUES (?, ?, 'open', ?, ?, ?, {now}, ?)",
                (rid, amount, run_id, what, self._owner, self.store.owner_lock),
            )
            self._log("reserve", amount, balance, reservation_id=rid, run_id=run_id,
                      description=what)
        return Reservation(rid, amount, run_id)

    def _close(self, reservation: Reservation, status: str) -> int:
        rows = self._query(
            "SELECT amount_micro, status FROM economy_reservations WHERE id = ?",
            (reservation.id,),
        )
        if not rows or rows[0][1] != "open":
            raise ValueError(f"reservation {reservation.id} is not open")
        self._query(
            "UPDATE economy_reservations SET status = ? WHERE id = ?", (status, reservation.id)
        )
        self._query(
            "UPDATE economy_account SET reserved_micro = reserved_micro - ? WHERE id = 1",
            (rows[0][0],),
        )
        return int(rows[0][0])

    def commit(
        self,
        reservation: Reservation,
        cost_usd: float,
        *,
        description: str = "",
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> None:
        """Settle a reservation with the real cost (which may exceed it: the truth is kept)."""
        self.commit_micro(reservation, to_micro(cost_usd), description=description,
                          input_tokens=input_tokens, output_tokens=output_tokens)

    def commit_micro(
        self,
        reservation: Reservation,
        cost: int,
        *,
        description: str = "",
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> None:
        """``commit`` in micro-dollars."""
        with self.store.transaction():
            self._close(reservation, "committed")
            self._query(
                "UPDATE economy_account SET balance_micro = balance_micro - ? WHERE id = 1",
                (cost,),
            )
            self._log("commit", cost, self._account()[0], reservation_id=reservation.id,
                      run_id=reservation.run_id, description=description,
                      input_tokens=input_tokens, output_tokens=output_tokens)

    def release(self, reservation: Reservation, description: str = "released") -> None:
        with self.store.transaction():
            amount = self._close(reservation, "released")
            self._log("release", amount, self._account()[0], reservation_id=reservation.id,
                      run_id=reservation.run_id, description=description)

    def release_stale(self, alive: Callable[[int], bool] | None = None) -> int:
        """Settle open reservations whose owner has died (SQLite: its process on this host;
        PostgreSQL: its session, on any host). Their runs are added to ``settled_runs``,
        for the run log to record what they were charged.

        Each is charged in full, not released: the owner may have spent up to it (a
        model request in flight when it was killed is still billed)."""
        rows = self._query(
            "SELECT id, amount_micro, run_id, owner, owner_lock FROM economy_reservations"
            " WHERE status = 'open'"
        )
        released = 0
        try:
            for rid, amount, run_id, owner, owner_lock in rows:
                if not self.store.owner_gone(owner, owner_lock, alive):
                    continue
                try:
                    self.commit_micro(
                        Reservation(rid, int(amount), run_id), int(amount),
                        description="owner process died: charged what it may have spent",
                    )
                except ValueError:  # settled meanwhile (by its owner or another worker)
                    continue
                released += 1
                if run_id:
                    self.settled_runs.append(run_id)
        finally:
            self.store.checked()
        return released

    def run_spent_micro(self, run_id: str) -> int:
        """What the ledger charged ``run_id`` so far (committed, not counting open ones)."""
        row = self._query(
            "SELECT COALESCE(SUM(amount_micro), 0) FROM economy_ledger"
            " WHERE kind = 'commit' AND run_id = ?", (run_id,),
        )[0]
        return int(row[0])

    def open_reservations(self, run_id: str | None = None) -> list[Reservation]:
        """Reservations not yet settled (of one run, or all)."""
        sql = "SELECT id, amount_micro, run_id FROM economy_reservations WHERE status = 'open'"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " AND run_id = ?"
            args = (run_id,)
        return [Reservation(rid, int(amount), run) for rid, amount, run
                in self._query(sql + " ORDER BY created_at, id", args)]

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT id, ts, kind, amount_micro, balance_micro, run_id, description,"
            " input_tokens, output_tokens FROM economy_ledger ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            {
                "id": r[0],
                "ts": r[1],
                "kind": r[2],
                "amount_usd": r[3] / MICRO,
                "balance_usd": r[4] / MICRO,
                "run_id": r[5],
                "description": r[6],
                "input_tokens": r[7],
                "output_tokens": r[8],
            }
            for r in rows
        ]


def _process_start(pid: int) -> str | None:
    """When a process started (clock ticks since boot, from /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode() if len(fields) > 19 else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
