"""The token economy: a durable budget in integer micro-dollars.

Before a paid step the worst case is reserved (``LowBatteryError`` when it does not fit);
afterwards the reservation is committed with the real cost or released. Every change is
one ``BEGIN IMMEDIATE`` transaction, so concurrent runs, in one process or several,
can never overspend. A reservation whose owning process died is charged in full: that
is what the process may have spent before it died.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
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


class TokenEconomy:
    """The battery. All amounts are integer micro-dollars; USD helpers convert at the edge."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.settled_runs: list[str] = []
        self.db = db
        migrations.apply(db)
        # host:pid@start — the start time tells a reused pid from the process that owned it
        started = _process_start(os.getpid())
        self._owner = f"{socket.gethostname()}:{os.getpid()}" + (f"@{started}" if started else "")

    def _account(self) -> tuple[int, int]:
        row = self.db.execute(
            "SELECT balance_micro, reserved_micro FROM economy_account WHERE id = 1"
        ).fetchone()
        return row[0], row[1]

    def _log(self, kind: str, amount: int, balance: int, **extra: Any) -> None:
        self.db.execute(
            "INSERT INTO economy_ledger (ts, kind, amount_micro, balance_micro, reservation_id,"
            " run_id, description, input_tokens, output_tokens)"
            " VALUES (strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?, ?, ?, ?, ?, ?, ?, ?)",
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
        with immediate(self.db):
            self.db.execute("UPDATE economy_account SET balance_micro = ? WHERE id = 1", (amount,))
            self._log("set", amount, amount, description=description)

    def reserve(self, usd: float, *, run_id: str | None = None, what: str = "run") -> Reservation:
        return self.reserve_micro(to_micro(usd), run_id=run_id, what=what)

    def reserve_micro(self, amount: int, *, run_id: str | None = None, what: str = "run"
                      ) -> Reservation:
        """Set ``amount`` aside, or raise ``LowBatteryError`` when it does not fit."""
        if amount < 0:
            raise ValueError("a reservation cannot be negative")
        with immediate(self.db):
            balance, reserved = self._account()
            if amount > balance - reserved:
                raise LowBatteryError(amount, balance - reserved, what)
            rid = uuid.uuid4().hex
            self.db.execute(
                "UPDATE economy_account SET reserved_micro = reserved_micro + ? WHERE id = 1",
                (amount,),
            )
            self.db.execute(
                "INSERT INTO economy_reservations VALUES (?, ?, 'open', ?, ?, ?,"
                " strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                (rid, amount, run_id, what, self._owner),
            )
            self._log("reserve", amount, balance, reservation_id=rid, run_id=run_id,
                      description=what)
        return Reservation(rid, amount, run_id)

    def _close(self, reservation: Reservation, status: str) -> int:
        row = self.db.execute(
            "SELECT amount_micro, status FROM economy_reservations WHERE id = ?",
            (reservation.id,),
        ).fetchone()
        if row is None or row[1] != "open":
            raise ValueError(f"reservation {reservation.id} is not open")
        self.db.execute(
            "UPDATE economy_reservations SET status = ? WHERE id = ?", (status, reservation.id)
        )
        self.db.execute(
            "UPDATE economy_account SET reserved_micro = reserved_micro - ? WHERE id = 1",
            (row[0],),
        )
        return row[0]

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
        with immediate(self.db):
            self._close(reservation, "committed")
            self.db.execute(
                "UPDATE economy_account SET balance_micro = balance_micro - ? WHERE id = 1",
                (cost,),
            )
            self._log("commit", cost, self._account()[0], reservation_id=reservation.id,
                      run_id=reservation.run_id, description=description,
                      input_tokens=input_tokens, output_tokens=output_tokens)

    def release(self, reservation: Reservation, description: str = "released") -> None:
        with immediate(self.db):
            amount = self._close(reservation, "released")
            self._log("release", amount, self._account()[0], reservation_id=reservation.id,
                      run_id=reservation.run_id, description=description)

    def release_stale(self, alive=None) -> int:
        """Settle open reservations whose owning process on this host has died (their runs
        are added to ``settled_runs``, for the run log to record what they were charged).

        Each is charged in full, not released: the process may have spent up to it (a
        model request in flight when it was killed is still billed)."""
        host = socket.gethostname()
        alive = alive or _pid_alive
        rows = self.db.execute(
            "SELECT id, amount_micro, run_id, owner FROM economy_reservations WHERE status='open'"
        ).fetchall()
        released = 0
        for rid, amount, run_id, owner in rows:
            owner_host, _, rest = (owner or "").rpartition(":")
            pid, _, started = rest.partition("@")
            if owner_host != host or not pid.isdigit():
                continue
            if not alive(int(pid)) or (started and _process_start(int(pid)) != started):
                try:
                    self.commit_micro(
                        Reservation(rid, amount, run_id), amount,
                        description="owner process died: charged what it may have spent",
                    )
                    released += 1
                    if run_id:
                        self.settled_runs.append(run_id)
                except ValueError:
                    pass
        return released

    def run_spent_micro(self, run_id: str) -> int:
        """What the ledger charged ``run_id`` so far (committed, not counting open ones)."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(amount_micro), 0) FROM economy_ledger"
            " WHERE kind = 'commit' AND run_id = ?", (run_id,),
        ).fetchone()
        return int(row[0])

    def open_reservations(self, run_id: str | None = None) -> list[Reservation]:
        """Reservations not yet settled (of one run, or all)."""
        sql = "SELECT id, amount_micro, run_id FROM economy_reservations WHERE status = 'open'"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " AND run_id = ?"
            args = (run_id,)
        return [Reservation(*row) for row in self.db.execute(sql, args).fetchall()]

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, ts, kind, amount_micro, balance_micro, run_id, description,"
            " input_tokens, output_tokens FROM economy_ledger ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
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
