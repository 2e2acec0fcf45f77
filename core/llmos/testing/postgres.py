"""A real, throwaway PostgreSQL server for tests (fixtures of the ``llmos`` pytest plugin).

Usage::

    def test_something(llmos_postgres):            # session-scoped: one server per session
        dsn = llmos_postgres.dsn                    # postgresql://postgres@127.0.0.1:PORT/postgres
        ...

    def test_isolated(llmos_postgres_db):          # function-scoped: a fresh, empty database
        dsn = llmos_postgres_db                     # postgresql://postgres@127.0.0.1:PORT/t_<hex>
        ...

    # or, for several databases in one test (e.g. two workspaces on one or two databases):
    def test_two(llmos_postgres):
        dsn_a = llmos_postgres.new_database()
        dsn_b = llmos_postgres.new_database()

To point llmos at a database (memory and the budget ledger, ``llmos.memory.postgres``)::

    @pytest.fixture
    def llmos_settings(llmos_postgres_db):        # for llmos_kernel / llmos_cli
        return ["memory.backend=postgres", f"memory.dsn={llmos_postgres_db}"]

    # or a subprocess / worker: --set memory.backend=postgres with LLMOS_DATABASE_URL=<dsn>

``llmos_postgres`` is a :class:`PostgresServer`: it runs ``initdb`` and ``pg_ctl start`` on a
temporary data directory, listening on 127.0.0.1 only (no Unix socket outside the data
directory), on a free port, with ``trust`` authentication for the superuser ``postgres``
(nothing else can reach it: loopback only, a throwaway cluster). ``initdb`` refuses root, so
when the tests run as root the server runs as the ``postgres`` system user (Debian's
``postgresql`` package creates it); otherwise as the current user. At the end of the session
exactly the server this fixture started is stopped (``pg_ctl stop`` on its own data
directory) and the data directory removed.

Each database made by :meth:`PostgresServer.new_database` (and so each ``llmos_postgres_db``)
is created from ``template0`` with a unique name, so tests never see each other's rows; the
per-test fixture drops its database afterwards.

Where PostgreSQL cannot start (``initdb``/``pg_ctl`` not found, or no ``postgres`` user when
running as root) the tests that use these fixtures are skipped with the reason and what to
install (``apt-get install postgresql``; ``pip install 'llmos[postgres]'`` for psycopg). With
``CI=true`` in the environment they fail instead: CI must not lose these tests silently.

The binaries are looked up on ``PATH``, then in ``/usr/lib/postgresql/*/bin`` (Debian), or
in ``$LLMOS_PG_BIN`` if set. Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

INSTALL_HINT = (
    "install PostgreSQL's server binaries (Debian/Ubuntu: apt-get install postgresql) "
    "or set LLMOS_PG_BIN to the directory holding initdb and pg_ctl"
)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says what to install."""


def _find_bin_dir() -> Path:
    explicit = os.environ.get("LLMOS_PG_BIN")
    if explicit:
        if (Path(explicit) / "initdb").exists() and (Path(explicit) / "pg_ctl").exists():
            return Path(explicit)
        raise PostgresUnavailable(f"LLMOS_PG_BIN={explicit} has no initdb/pg_ctl; {INSTALL_HINT}")
    # Debian's wrappers on PATH (pg_wrapper) need a cluster config; prefer the real binaries.
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).resolve().parent
    raise PostgresUnavailable(f"PostgreSQL's initdb/pg_ctl were not found; {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """A PostgreSQL cluster this process started; :attr:`dsn` reaches its ``postgres`` db."""

    bin_dir: Path
    root: Path
    port: int = 0
    user: str | None = None  # the system user the server runs as (None: the current user)
    pid: int | None = None
    _databases: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    # -- lifecycle -------------------------------------------------------------------------

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=120, cwd=self.root, check=False
        )

    def start(self) -> None:
        init = self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip() or init.stdout}")
        last_error = ""
        for _attempt in range(5):  # a free port can be taken between probing and binding
            self.port = _free_port()
            options = (
                f"-p {self.port} -h 127.0.0.1 -k {self.data_dir} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            started = self._run(
                "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir),
                "-l", str(self.log_path), "-o", options,
            )
            if started.returncode == 0:
                pid_file = self.data_dir / "postmaster.pid"
                with contextlib.suppress(OSError, ValueError, IndexError):
                    self.pid = int(pid_file.read_text().splitlines()[0])
                return
            last_error = started.stderr.strip() or started.stdout.strip()
            with contextlib.suppress(OSError):
                last_error += "\n" + self.log_path.read_text()[-2000:]
        raise PostgresUnavailable(f"pg_ctl start failed: {last_error}")

    def stop(self) -> None:
        if self.pid is not None:
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))
            self.pid = None
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases -------------------------------------------------------------------------

    def new_database(self, prefix: str = "t") -> str:
        """Create a fresh database (from ``template0``) and return its DSN."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        self._databases.append(name)
        return self.dsn_for(name)

    def drop_database(self, dsn_or_name: str) -> None:
        import psycopg

        name = dsn_or_name.rsplit("/", 1)[-1]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server() -> PostgresServer:
    """Start a throwaway server (raises :class:`PostgresUnavailable` with the reason)."""
    bin_dir = _find_bin_dir()
    user: str | None = None
    if os.geteuid() == 0:
        import pwd

        try:
            account = pwd.getpwnam("postgres")
        except KeyError as error:
            raise PostgresUnavailable(
                "running as root and there is no 'postgres' system user to run the server "
                f"as (initdb refuses root); {INSTALL_HINT}"
            ) from error
        if shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root and runuser (util-linux) is missing")
        user = "postgres"
        root = Path(tempfile.mkdtemp(prefix="llmos-pg-"))
        os.chown(root, account.pw_uid, account.pw_gid)
    else:
        root = Path(tempfile.mkdtemp(prefix="llmos-pg-"))
    server = PostgresServer(bin_dir=bin_dir, root=root, user=user)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL tests cannot run: {reason}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message + " (CI=true: not skipping)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def llmos_postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server on 127.0.0.1 for the whole session (see module doc)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed; pip install 'llmos[postgres]'")
    try:
        server = start_server()
    except PostgresUnavailable as error:
        _unavailable(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def llmos_postgres_db(llmos_postgres: PostgresServer) -> Iterator[str]:
    """The DSN of a fresh, empty database on ``llmos_postgres``, dropped after the test."""
    dsn = llmos_postgres.new_database()
    yield dsn
    with contextlib.suppress(Exception):
        llmos_postgres.drop_database(dsn)


def open_postgres_store(path: Path):
    """The memory conformance suite's opener for the ``postgres`` driver: ``path`` holds a
    file ``dsn`` naming the database (so a subprocess can open the same store)."""
    from llmos.memory.postgres import PostgresMemory

    return PostgresMemory((Path(path) / "dsn").read_text().strip())
