"""The ``llmos`` command: a thin client of the per-user command daemon, or the CLI itself.

The interpreter's start-up and llmos's ~500 imports cost most of a short command (a
FOLLOWER replay is ~35 ms of work in a ~400 ms process). The command daemon
(``llmos.daemon``) imports all of that once and forks a fresh child per command; this
client hands it the command (argv, cwd, the environment, the standard streams' file
descriptors, umask, CPU affinity, nice value, resource limits) and waits for its exit
status, relaying signals. It imports almost nothing (``_socket``, ``_signal``, ``array``,
``marshal``) so that it costs little more than a bare interpreter.

Whenever there is any doubt the command runs in this process exactly as before
(``llmos.cli.main``): ``LLMOS_DAEMON=0`` (or off/false/no), a command outside the few
that are served, standard streams not all open, interpreter options or ``PYTHON*``
variables that the daemon's interpreter would not share, an agent's process
(``LLMOS_AGENT_PROCESS``), no daemon yet (one is started in the background for the next
command), or a daemon that is not exactly as privileged, confined and up to date as this
process (it answers "fallback" and the command runs here).
"""

from __future__ import annotations

import os
import sys

#: Commands the daemon may serve: short, non-interactive, and built from the request
#: alone. Everything else (``shell``, ``worker``, ``schedule``, ``ui``, ``daemon``, plugin
#: commands, unknown names) runs in process.
SERVED = frozenset({"run", "route", "plugins", "tools", "traces", "runs", "facts", "budget",
                    "config", "stats"})

#: The global options of ``llmos.cli.cli``: name -> whether it takes a value. A test checks
#: this against the real option table; ``--version`` and ``--help`` run in process.
GLOBAL_OPTIONS = {"--workspace": True, "-w": True, "--set": True, "--project": True,
                  "-p": True, "--plugin": True, "--version": False, "--help": False,
                  "-h": False}

#: ``PYTHON*`` variables that do not change what the interpreter loads or how it runs
#: (the streams' settings they make are sent with the request), and PYTHONHASHSEED, whose
#: value is part of the socket's key: a daemon started with it hashes as its clients do
#: (tox sets one for every test run).
HARMLESS_PYTHON_VARS = frozenset({"PYTHONIOENCODING", "PYTHONUTF8",
                                  "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
                                  "PYTHONHASHSEED"})

#: Set in the environment of every process llmos starts for an agent's work (sandboxed
#: commands, Claude Code): such a process never uses (or starts) the daemon.
AGENT_MARKER = "LLMOS_AGENT_PROCESS"

#: Signals relayed to the command (through the daemon, which knows its pid).
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGWINCH", "SIGUSR1", "SIGUSR2",
             "SIGCONT")

PROTOCOL = 1
#: Exit status when the daemon disappears while it runs the command.
EXIT_DAEMON_LOST = 70

STATUS_FIELDS = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                 "NoNewPrivs", "Seccomp", "Seccomp_filters")
#: Fields older kernels do not have (then absent for both processes).
OPTIONAL_FIELDS = frozenset({"CapAmb", "Seccomp_filters"})
NAMESPACES = ("mnt", "pid", "net", "user", "ipc", "uts", "cgroup")


class Refused(Exception):
    """This invocation is not for the daemon (the reason is for ``llmos daemon status``)."""


# --- deciding -------------------------------------------------------------------------


def disabled_by_env(environ=os.environ) -> bool:
    return environ.get("LLMOS_DAEMON", "").strip().lower() in ("0", "off", "false", "no")


def command_of(args: list[str]) -> str | None:
    """The subcommand name after ``llmos``'s global options, or None when the command
    line is anything but plain (``--``, an unknown option, ``--version``, none)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            return None if arg.startswith("-") else arg
        name, eq, _ = arg.partition("=")
        if eq and name.startswith("--"):
            if not GLOBAL_OPTIONS.get(name):
                return None
            i += 1
        elif arg in GLOBAL_OPTIONS:
            if not GLOBAL_OPTIONS[arg]:
                return None
            i += 2
        elif arg[:2] in ("-w", "-p") and len(arg) > 2:
            i += 1
        else:
            return None
    return None


def refusal(argv: list[str], environ=os.environ) -> str | None:
    """Why this process must run the command itself (None: the daemon may serve it)."""
    if disabled_by_env(environ):
        return "LLMOS_DAEMON is off"
    if environ.get(AGENT_MARKER) is not None:
        return f"an agent's process ({AGENT_MARKER} is set)"
    command = command_of(argv[1:])
    if command not in SERVED:
        return f"command {command!r} is not served by the daemon"
    for name in environ:
        if name.startswith("PYTHON") and name not in HARMLESS_PYTHON_VARS:
            return f"{name} is set"
    if "COVERAGE_PROCESS_START" in environ:
        return "COVERAGE_PROCESS_START is set"
    flags = sys.flags
    if (sys._xoptions or sys.warnoptions or flags.verbose or flags.isolated or flags.debug
            or flags.inspect or flags.interactive or flags.dev_mode or flags.optimize
            or flags.no_site or flags.ignore_environment or flags.bytes_warning
            or flags.safe_path):
        return "the interpreter runs with options"
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if stream is None:
            return "a standard stream is closed"
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            return "a standard stream is closed"
    return None


# --- where the daemon lives -----------------------------------------------------------


def daemon_dir(environ=os.environ) -> str:
    """The per-user directory of the daemon's socket (not under HOME, XDG_* or TMPDIR,
    which tests change per test): ``LLMOS_DAEMON_DIR``, else ``/run/user/UID/llmos`` when
    ``/run/user/UID`` is the user's, else ``/tmp/llmos-UID``."""
    explicit = environ.get("LLMOS_DAEMON_DIR")
    if explicit:
        return os.path.abspath(explicit)
    uid = os.getuid()
    run = f"/run/user/{uid}"
    try:
        st = os.lstat(run)
        if (st.st_mode & 0o170000) == 0o040000 and st.st_uid == uid:
            return run + "/llmos"
    except OSError:
        pass
    return f"/tmp/llmos-{uid}"


def check_dir(path: str, create: bool) -> str | None:
    """Why ``path`` is not safe for the daemon's socket (None: it is): it must be a real
    directory (not a symlink) of this user, with no access for group or others."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            return f"cannot create {path}: {exc.strerror}"
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if (st.st_mode & 0o170000) == 0o120000:
        return f"{path} is a symbolic link"
    if (st.st_mode & 0o170000) != 0o040000:
        return f"{path} is not a directory"
    if st.st_uid != os.getuid():
        return f"{path} belongs to uid {st.st_uid}, not {os.getuid()}"
    if st.st_mode & 0o077:
        return f"{path} is accessible to group or others (mode {st.st_mode & 0o777:o})"
    return None


def socket_key(mine: dict | None = None) -> str:
    """The socket's name: a hash of what makes one daemon's interpreter this one's (uid,
    interpreter, module search path, flags, llmos version) and of this process's privileges and
    confinement (``attributes``: ids, capabilities, namespaces, ...), so a venv, a
    PYTHONPATH or a sandbox never reaches another's daemon, nor starts one in its place."""
    import llmos

    if mine is None:
        mine = attributes("self")
    compared = sorted((k, v) for k, v in mine.items() if not k.startswith("_"))
    text = repr((os.getuid(), sys.executable, list(sys.path), llmos.__version__, compared,
                 tuple(sys.flags), sys.getfilesystemencoding(),
                 os.environ.get("PYTHONHASHSEED")))
    # FNV-1a 64 twice (no hashlib import on the client's path); a name, not a secret
    h1, h2 = 0xCBF29CE484222325, 0x84222325CBF29CE4
    for byte in text.encode("utf-8", "surrogateescape"):
        h1 = ((h1 ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        h2 = ((h2 ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h1:016x}{h2:08x}"[:24]


def socket_path(directory: str, key: str) -> str:
    return f"{directory}/{key}.sock"


# --- who is on the other end ----------------------------------------------------------


def attributes(pid: int | str) -> dict:
    """What makes a process exactly as privileged and confined as another: ids, groups,
    capabilities, no_new_privs, seccomp, namespaces, LSM label (and, not compared,
    ``_umask`` and ``_cgroup``: a served command is moved into its client's control groups,
    so one daemon serves every terminal's scope). Raises OSError when /proc cannot tell."""
    base = f"/proc/{pid}"
    out: dict = {}
    with open(f"{base}/status", "rb") as f:
        for line in f.read().decode("ascii", "replace").splitlines():
            name, _, value = line.partition(":")
            if name in STATUS_FIELDS:
                out[name] = " ".join(value.split())
            elif name == "Umask":
                out["_umask"] = int(value.strip(), 8)
    missing = [n for n in STATUS_FIELDS if n not in out and n not in OPTIONAL_FIELDS]
    if missing:
        raise OSError(f"{base}/status lacks {', '.join(missing)}")
    for ns in NAMESPACES:
        out["ns:" + ns] = os.readlink(f"{base}/ns/{ns}")
    with open(f"{base}/cgroup", "rb") as f:  # not compared: a command joins its client's
        out["_cgroup"] = f.read()
    try:
        with open(f"{base}/attr/current", "rb") as f:
            out["lsm"] = f.read().rstrip(b"\0\n")
    except OSError as exc:  # no LSM: the same error for both processes
        out["lsm"] = f"unreadable {exc.errno}"
    return out


def differences(theirs: dict, ours: dict) -> list[str]:
    return sorted(k for k in set(theirs) | set(ours)
                  if not k.startswith("_") and theirs.get(k) != ours.get(k))


def peer_pid(sock) -> int:
    import _socket

    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    pid, uid, _gid = (int.from_bytes(creds[i:i + 4], sys.byteorder, signed=True)
                      for i in (0, 4, 8))
    if uid != os.getuid() or pid <= 0:
        raise Refused("the daemon's socket is held by another user")
    return pid


def same_process_attributes(pid: int, ours: dict) -> str | None:
    """None when process ``pid`` is exactly as privileged and confined as ``ours`` (this
    process's ``attributes``), else what differs."""
    try:
        theirs = attributes(pid)
    except OSError as exc:
        return f"cannot read /proc for process {pid}: {exc}"
    diff = differences(theirs, ours)
    return f"process {pid} differs in {', '.join(diff)}" if diff else None


def unservable(mine: dict) -> str | None:
    """Why a process with these attributes never uses a daemon: under no_new_privs it may
    be in a Landlock domain, which /proc does not show, so no daemon can be proven to be
    as confined as it."""
    if mine.get("NoNewPrivs", "0") != "0":
        return "no_new_privs is set (a Landlock domain cannot be compared)"
    return None


# --- the request ----------------------------------------------------------------------


def _stream_settings(stream) -> tuple:
    return (getattr(stream, "encoding", None) or "utf-8", getattr(stream, "errors", "strict"),
            bool(getattr(stream, "line_buffering", False)),
            bool(getattr(stream, "write_through", False)))


def _umask(mine: dict) -> int:
    if "_umask" in mine:
        return mine["_umask"]
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _rlimits() -> dict:
    import resource

    return {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource)
            if name.startswith("RLIMIT_")}


def _ignored_signals() -> list[int]:
    import _signal

    out = []
    for num in range(1, _signal.NSIG):
        try:
            if _signal.getsignal(num) == _signal.SIG_IGN:
                out.append(num)
        except (OSError, ValueError):
            pass
    return out


def build_request(key: str, mine: dict) -> dict:
    import llmos

    return {
        "op": "run", "protocol": PROTOCOL, "key": key, "version": llmos.__version__,
        "argv": list(sys.argv), "orig_argv": list(getattr(sys, "orig_argv", sys.argv)),
        "env": dict(os.environ), "umask": _umask(mine),
        "streams": [_stream_settings(s) for s in (sys.stdin, sys.stdout, sys.stderr)],
        "flags": tuple(sys.flags), "fsencoding": (sys.getfilesystemencoding(),
                                                  sys.getfilesystemencodeerrors()),
        "ignored": _ignored_signals(), "affinity": sorted(os.sched_getaffinity(0)),
        "nice": os.getpriority(os.PRIO_PROCESS, 0), "rlimits": _rlimits(),
    }


def send_message(sock, message: dict, fds: list[int] = ()) -> None:
    """One message: its length (with the file descriptors attached) then its body."""
    import _socket
    import array
    import marshal

    body = marshal.dumps(message)
    head = len(body).to_bytes(4, "big")
    ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    if sock.sendmsg([head], ancillary) != 4:
        raise OSError("short write")
    view = memoryview(body)
    while view:
        view = view[sock.send(view):]


class Lines:
    """The daemon's answers, one per line."""

    def __init__(self, sock) -> None:
        self.sock, self.buffer = sock, b""

    def next(self) -> str | None:
        while b"\n" not in self.buffer:
            try:
                data = self.sock.recv(4096)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            except OSError:
                data = b""
            if not data:
                return None
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode("utf-8", "replace")


def connect(path: str, mine: dict, timeout: float | None = None):
    """A connection to the daemon listening on ``path`` whose process is exactly as
    privileged and confined as this one (``mine``: its ``attributes``); Refused otherwise,
    NoDaemon when none listens."""
    import _socket

    if len(os.fsencode(path)) > 100:
        raise Refused(f"socket path too long: {path}")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        if timeout is not None:
            sock.settimeout(timeout)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NoDaemon(str(exc)) from None
        except OSError as exc:
            raise Refused(f"cannot connect to {path}: {exc}") from None
        pid = peer_pid(sock)
        differs = same_process_attributes(pid, mine)
        if differs:
            raise Refused(f"the daemon is not exactly as privileged and confined as this "
                          f"process ({differs})")
        if timeout is not None:
            sock.settimeout(None)
        return sock
    except BaseException:
        sock.close()
        raise


class NoDaemon(Refused):
    """Nothing listens on the socket."""


# --- starting the daemon --------------------------------------------------------------


_SECRETISH = ("KEY", "TOKEN", "SECRET", "PASSW", "CREDENTIAL", "AUTH", "COOKIE", "SESSION")


def spawn(path0: str) -> None:
    """Start a daemon in the background, fully detached (own session, standard streams on
    /dev/null, no other descriptor of ours), without waiting for it. Its environment is
    ours without secret-looking variables: it reads none before a request brings one."""
    env = {k: v for k, v in os.environ.items()
           if not any(word in k.upper() for word in _SECRETISH)}
    argv = [sys.executable, "-m", "llmos.daemon", "serve", "--path0", path0]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - in the child
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, 1 << 16)
                os.chdir("/")
                os.execve(sys.executable, argv, env)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


# --- running through the daemon -------------------------------------------------------


def _send_signal(sock, num: int) -> None:
    try:  # noqa: SIM105 - no contextlib import on the client's path
        sock.send(f"signal {num}\n".encode())
    except OSError:
        pass


class _Relay:
    """Relays this process's signals to the command; those that arrive before it started
    wait, and are raised here again if the command runs in process after all."""

    def __init__(self, sock) -> None:
        self.sock, self.started = sock, False
        self.pending: list[int] = []
        self.saved: dict[int, object] = {}

    def install(self) -> None:
        import _signal

        # relayed even when this process inherited them ignored: the command inherited
        # that too and decides (llmos handles SIGINT and SIGTERM itself), as in process
        for name in FORWARDED:
            num = getattr(_signal, name)
            self.saved[num] = _signal.signal(num, self.relay)
        if _signal.getsignal(_signal.SIGTSTP) != _signal.SIG_IGN:
            self.saved[_signal.SIGTSTP] = _signal.signal(_signal.SIGTSTP, self.stop)

    def relay(self, num: int, _frame) -> None:
        if self.started:
            _send_signal(self.sock, num)
        else:
            self.pending.append(num)

    def stop(self, num: int, _frame) -> None:  # Ctrl-Z: stop the command, then this client
        import _signal

        if not self.started:
            self.pending.append(num)
            return
        _send_signal(self.sock, num)
        _signal.signal(num, _signal.SIG_DFL)
        os.kill(os.getpid(), num)
        _signal.signal(num, self.stop)

    def go(self) -> None:
        self.started = True
        for num in self.pending:
            _send_signal(self.sock, num)
        self.pending = []

    def restore(self) -> None:
        import _signal

        for num, old in self.saved.items():
            _signal.signal(num, _signal.SIG_DFL if old is None else old)
        for num in self.pending:
            os.kill(os.getpid(), num)


def _die_like(code: int) -> None:
    """Leave with the command's status; a command killed by signal N kills this client
    with signal N, as shells expect."""
    if code < 0:
        import _signal

        num = -code
        _signal.signal(num, _signal.SIG_DFL)
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [num])
        os.kill(os.getpid(), num)
        os._exit(128 + num)
    os._exit(code)


def through_daemon(path0: str) -> bool:
    """Run this command through the daemon; False when it must run in process (nothing
    was started). Does not return when the daemon ran it."""
    try:
        mine = attributes("self")
    except OSError:
        return False
    if unservable(mine):
        return False
    directory = daemon_dir()
    if check_dir(directory, create=True):
        return False
    key = socket_key(mine)
    path = socket_path(directory, key)
    try:
        sock = connect(path, mine)
    except NoDaemon:
        spawn(path0)
        return False
    except Refused:
        return False
    try:
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        sock.close()
        return False
    lines = Lines(sock)
    relay = _Relay(sock)
    try:
        request = build_request(key, mine)  # (it reads the inherited dispositions first)
        relay.install()
        send_message(sock, request, [0, 1, 2, cwd])
        os.close(cwd)
        answer = lines.next()
    except OSError:
        answer = None
    if answer is None or not answer.startswith("started "):
        sock.close()
        if answer == "fallback stale":
            spawn(path0)  # the stale daemon has stopped listening: start a fresh one
        relay.restore()
        return False
    relay.go()
    while True:
        line = lines.next()
        if line is None:
            try:
                os.write(2, b"llmos: the command daemon stopped before the command ended "
                            b"(LLMOS_DAEMON=0 runs commands without it)\n")
            finally:
                os._exit(EXIT_DAEMON_LOST)
        if line.startswith("exit "):
            _die_like(int(line.split()[1]))


def main() -> None:
    """The ``llmos`` console script."""
    if refusal(sys.argv) is None and through_daemon(sys.path[0] if sys.path else ""):
        return  # pragma: no cover - through_daemon leaves the process
    from llmos.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
