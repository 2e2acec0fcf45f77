"""Fixtures of the durable tests: a workspace whose memory, ledger and durable engine live
on a real PostgreSQL (``llmos_postgres_db``), and the worker processes on it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.durable.helpers import start


@pytest.fixture
def shared_workspace(llmos_workspace: Path, llmos_postgres_db: str,
                     monkeypatch: pytest.MonkeyPatch) -> Path:
    """``llmos_workspace`` with ``memory.backend = "postgres"`` on a fresh database
    (``LLMOS_DATABASE_URL``, as on a fleet of machines)."""
    monkeypatch.setenv("LLMOS_MEMORY__BACKEND", "postgres")
    monkeypatch.setenv("LLMOS_DATABASE_URL", llmos_postgres_db)
    return llmos_workspace


class Workers:
    """``llmos worker`` processes of one workspace; each is stopped at the end."""

    def __init__(self, workspace: Path, logs: Path) -> None:
        self.workspace, self.logs = workspace, logs
        self.procs: list = []

    def start(self, *args: str):
        log = self.logs / f"worker{len(self.procs)}.log"
        proc = start(self.workspace, "worker", *args, log=log)
        proc.log = log
        self.procs.append(proc)
        return proc

    def stop(self, proc, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if proc.poll() is None:
            os.kill(proc.pid, sig)
        return proc.wait(timeout)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def output(self) -> str:
        return "\n".join(p.log.read_text() for p in self.procs if p.log.exists())


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    found = Workers(Path(), logs)
    yield found
    found.stop_all()
