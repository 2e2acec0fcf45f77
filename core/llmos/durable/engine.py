"""The DBOS engine of a workspace: which system database, one configuration, launch.

The system database is where DBOS keeps workflows, their steps, queues and schedules:

* one machine (the default): a SQLite file, ``.llmos/durable.sqlite`` in the workspace
  (llmos's protected state: nothing the agent runs can write it);
* many machines: the PostgreSQL that holds the shared memory (``memory.backend =
  "postgres"``, its DSN from ``[memory] dsn`` or ``LLMOS_DATABASE_URL``), DBOS's tables in
  their own ``dbos`` schema.

Every process uses the same application name and version, so a worker can recover the
goals of another that died (DBOS recovers by executor id and application version).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from llmos import __version__
from llmos.config import ConfigError

if TYPE_CHECKING:
    from llmos.kernel import Kernel

APP_NAME = "llmos"
APP_VERSION = f"llmos-{__version__}"
GOALS_QUEUE = "llmos-goals"
RUN_WORKFLOW = "llmos.run"
_MIGRATED: set[str] = set()
SCHEDULED_WORKFLOW = "llmos.scheduled"


def goal_spec(goal: str, *, project: str | None = None, budget_usd: float | None = None,
              mode: str | None = None) -> dict[str, Any]:
    """The input of the ``llmos.run`` workflow (plain JSON-ready values)."""
    return {"goal": goal, "project": project, "budget_usd": budget_usd, "mode": mode}


def database_url(kernel: Kernel) -> str:
    """The DBOS system database of ``kernel``'s workspace (see the module docstring)."""
    memory = kernel.config.memory
    if memory.backend == "postgres":
        dsn = getattr(memory, "dsn", None) or os.environ.get("LLMOS_DATABASE_URL")
        if dsn:
            return str(dsn)
    return f"sqlite:///{kernel.workspace.state_dir / 'durable.sqlite'}"


class EngineUnreachable(ConfigError):
    """The durable engine's database cannot be reached."""


def masked(url: str) -> str:
    """``url`` without its password."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


@contextmanager
def reachable(url: str) -> Iterator[None]:
    """Turn "cannot connect to the system database" into a message that names it."""
    import logging

    import sqlalchemy as sa

    dbos_logger = logging.getLogger("dbos")
    dbos_logger.disabled = True  # its own traceback of a refused connection says no more
    try:
        yield
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
        where = ("the PostgreSQL of memory.dsn / LLMOS_DATABASE_URL" if is_shared(url)
                 else "the workspace's SQLite file")
        raise EngineUnreachable(
            f"cannot reach the durable engine's database {masked(url)} ({where}): {reason}; "
            "start the server or fix the DSN") from None
    finally:
        dbos_logger.disabled = False


def is_shared(url: str) -> bool:
    return url.startswith(("postgresql:", "postgres:", "postgresql+"))


def sqlalchemy_url(url: str) -> str:
    """``url`` as SQLAlchemy names it with the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def new_executor_id(kind: str) -> str:
    """A unique executor id: this process only (so launching recovers nothing of others';
    recovery of a dead worker's goals is asked for explicitly)."""
    return f"{kind}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def config(url: str, executor_id: str, *, scheduler_poll_s: float = 1.0) -> dict[str, Any]:
    """DBOS's configuration for this process."""
    return {
        "name": APP_NAME,
        "system_database_url": url,
        "application_version": APP_VERSION,
        "executor_id": executor_id,
        "log_level": "WARNING",
        "scheduler_polling_interval_sec": scheduler_poll_s,
        "notification_listener_polling_interval_sec": 0.2,
    }


def launch(url: str, executor_id: str, *, scheduler_poll_s: float = 1.0) -> Any:
    """Configure and launch DBOS in this process (workflows registered); returns ``DBOS``."""
    from dbos import DBOS

    from llmos.durable import workflows

    workflows.register()
    DBOS(config=config(url, executor_id, scheduler_poll_s=scheduler_poll_s))
    with reachable(url):
        DBOS.launch()
    return DBOS


def shutdown(grace_s: int = 0) -> None:
    from dbos import DBOS

    DBOS.destroy(workflow_completion_timeout_sec=grace_s)


def client(url: str) -> Any:
    """A DBOS client on ``url``: enqueue goals, manage schedules, read workflows, without
    launching anything."""
    from dbos import DBOS, DBOSClient

    with reachable(url):
        if url not in _MIGRATED:
            DBOS.migrate(url)  # creates the tables on first use (idempotent)
            _MIGRATED.add(url)
        return DBOSClient(system_database_url=url, application_name=APP_NAME)
