"""Which executors are alive, so DBOS can recover the goals of one that died.

DBOS recovers a process's pending workflows when that process starts again with the same
executor id; across machines it needs to be told whose workflows to recover (its
Conductor service does this). Here every launched llmos engine (a worker, ``llmos runs
resume``) writes a heartbeat row in the system database; a worker that finds an
executor silent for longer than ``recover_after_s`` asks DBOS to recover that
executor's pending workflows (``DBOS._recover_pending_workflows``: each one is put back
on a queue and started by exactly one executor) and forgets the row.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Any

import sqlalchemy as sa

from llmos.durable.engine import sqlalchemy_url

_META = sa.MetaData()
EXECUTORS = sa.Table(
    "llmos_executors", _META,
    sa.Column("executor_id", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
)


class Liveness:
    """The heartbeat table, on the engine's system database. Times are the database's
    clock, so machines whose clocks disagree still agree on who went silent."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True)
        with contextlib.suppress(sa.exc.IntegrityError, sa.exc.ProgrammingError,
                                 sa.exc.OperationalError):
            _META.create_all(self.engine, checkfirst=True)  # two at once: one wins
        self._now = sa.text(
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
            if self.engine.dialect.name == "postgresql"
            else "SELECT (julianday('now') - 2440587.5) * 86400.0")

    def now(self, conn: Any) -> float:
        return float(conn.execute(self._now).scalar_one())

    def beat(self, executor_id: str, kind: str) -> None:
        with self.engine.begin() as conn:
            now = self.now(conn)
            updated = conn.execute(sa.update(EXECUTORS).where(
                EXECUTORS.c.executor_id == executor_id).values(seen_at=now)).rowcount
            if not updated:
                conn.execute(sa.insert(EXECUTORS).values(
                    executor_id=executor_id, host=socket.gethostname(), pid=os.getpid(),
                    kind=kind, seen_at=now))

    def silent(self, older_than_s: float) -> list[str]:
        """Executors not heard from for ``older_than_s``."""
        with self.engine.begin() as conn:
            cutoff = self.now(conn) - older_than_s
            rows = conn.execute(sa.select(EXECUTORS.c.executor_id).where(
                EXECUTORS.c.seen_at < cutoff)).fetchall()
        return [r[0] for r in rows]

    def forget(self, executor_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(EXECUTORS).where(EXECUTORS.c.executor_id == executor_id))

    def workers(self) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(EXECUTORS)).mappings().fetchall()
        return [dict(r) for r in rows]

    def close(self) -> None:
        self.engine.dispose()


class Monitor(threading.Thread):
    """Beats for this executor; a worker's monitor also recovers silent executors' goals."""

    def __init__(self, liveness: Liveness, executor_id: str, kind: str, *,
                 interval_s: float = 1.0, recover_after_s: float | None = None,
                 on_error: Any = None) -> None:
        super().__init__(name="llmos-liveness", daemon=True)
        self.liveness, self.executor_id, self.kind = liveness, executor_id, kind
        self.interval_s, self.recover_after_s = interval_s, recover_after_s
        self.on_error = on_error or (lambda message: None)
        self.stopped = threading.Event()
        self.recovered: list[str] = []
        liveness.beat(executor_id, kind)

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                self.liveness.beat(self.executor_id, self.kind)
                if self.recover_after_s is not None:
                    self._recover()
            except Exception as exc:  # a database hiccup: try again at the next beat
                self.on_error(f"liveness: {type(exc).__name__}: {exc}")

    def _recover(self) -> None:
        from dbos import DBOS

        for gone in self.liveness.silent(self.recover_after_s or 0):
            if gone == self.executor_id:
                continue
            handles = DBOS._recover_pending_workflows([gone])
            self.liveness.forget(gone)
            self.recovered.extend(h.workflow_id for h in handles)

    def stop(self, *, forget: bool) -> None:
        """Stop beating; ``forget`` the row when nothing of this executor is left pending
        (else it goes silent and a worker recovers what is left)."""
        self.stopped.set()
        if forget:
            self.liveness.forget(self.executor_id)
