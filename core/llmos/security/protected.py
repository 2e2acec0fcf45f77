"""llmos's own state: the one definition of what nothing the agent runs may write.

``ProtectedPaths`` lists, for one workspace, the entries that only a human's ``llmos``
command changes: the workspace config ``llmos.toml``, the state directory ``.llmos/``
(database, audit, caches), generated plugins ``plugins/generated/``, the agents' folder
``agents/`` (an agent's tool list is policy: it changes only through the validated,
recorded ``create_agent``/``modify_agent`` tools or ``llmos agents``), the memory folder
of a file-based memory backend, git's hooks and config (they run code on the host at
the user's next ``git`` command) and the shell rc files a login or interactive shell
reads from the workspace root. Paths outside the workspace (the user config file) are
listed too, for Claude Code's sandbox settings.

Every enforcement point reads this one list:

* the path policy (``paths.check_path`` / ``check_path_tool``): file tools, plugin tools;
* the shell policy's write targets (``shellpaths``): redirections, ``cp``, ``tee``, ...;
* the bubblewrap sandbox: each entry is bound read-only over the writable workspace, a
  missing one is covered by an empty read-only placeholder (so it cannot be created),
  and each directory on the way to an entry is bound onto itself so it cannot be
  renamed away (``sandbox.bwrap_args``);
* Landlock, where bwrap cannot run: write access is granted only to the parts of the
  workspace that hold no protected entry (``writable_roots``);
* Claude Code's sandbox and permission rules in LEARNER (``claude_code_sandbox_settings``).

``protected_paths(kernel)`` adds what depends on the kernel's config (the memory folder).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from llmos.kernel import Kernel

Kind = Literal["file", "dir"]

#: The shell rc files a shell started with HOME at the workspace would read.
RC_FILES = (".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc",
            ".zshenv", ".zprofile", ".zlogin", ".zlogout", ".envrc")


@dataclass(frozen=True)
class Entry:
    """One protected path, relative to the workspace, and what it holds."""

    rel: PurePosixPath
    kind: Kind
    what: str

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(part.lower() for part in self.rel.parts)


STATE_ENTRIES: tuple[Entry, ...] = (
    Entry(PurePosixPath("llmos.toml"), "file", "llmos's workspace configuration"),
    Entry(PurePosixPath(".llmos"), "dir", "llmos's state (database, ledger, audit)"),
    Entry(PurePosixPath("plugins/generated"), "dir", "llmos's generated plugins"),
    Entry(PurePosixPath("agents"), "dir", "the agents' definitions (their prompts and tool "
          "lists are policy; change them with create_agent/modify_agent or llmos agents)"),
    Entry(PurePosixPath(".git/hooks"), "dir", "git's hooks (they run on the host)"),
    Entry(PurePosixPath(".git/config"), "file", "git's config (it can run code on the host)"),
    *(Entry(PurePosixPath(name), "file", "a shell rc file") for name in RC_FILES),
)


@dataclass(frozen=True)
class ProtectedPaths:
    """The protected entries of one workspace (and absolute paths outside it)."""

    workspace: Path
    entries: tuple[Entry, ...]
    outside: tuple[Path, ...] = ()

    def find(self, rel: PurePosixPath | str) -> Entry | None:
        """The entry ``rel`` (workspace-relative) is, or lies beneath; None if none."""
        parts = tuple(p.lower() for p in PurePosixPath(rel).parts if p not in ("", "."))
        for entry in self.entries:
            key = entry.key
            if parts[: len(key)] == key:
                return entry
        return None

    def holding(self, rel: PurePosixPath | str) -> Entry | None:
        """An entry that lies strictly beneath ``rel`` (moving or deleting ``rel`` would
        take it along); None if none, or when ``rel`` is the workspace itself."""
        parts = tuple(p.lower() for p in PurePosixPath(rel).parts if p not in ("", "."))
        if not parts:
            return None
        for entry in self.entries:
            key = entry.key
            if len(key) > len(parts) and key[: len(parts)] == parts:
                return entry
        return None

    def reason(self, entry: Entry) -> str:
        return (f"{entry.rel}{'/' if entry.kind == 'dir' else ''} is {entry.what}: nothing "
                "the agent runs may change it (a human's llmos command does)")

    def absolute(self) -> Iterator[tuple[Path, Entry]]:
        """Each entry as an absolute path under the real workspace."""
        root = Path(os.path.realpath(self.workspace))
        for entry in self.entries:
            yield root.joinpath(*entry.rel.parts), entry

    def all_absolute(self) -> list[str]:
        """Every protected path as an absolute string, outside ones included."""
        return [*(str(p) for p, _ in self.absolute()), *(str(p) for p in self.outside)]

    def with_extra(self, entries: Iterable[Entry], outside: Iterable[Path] = ()) -> ProtectedPaths:
        known = {e.key for e in self.entries}
        added = tuple(e for e in entries if e.key not in known)
        return ProtectedPaths(self.workspace, (*self.entries, *added),
                              (*self.outside, *outside))


def base_protected_paths(workspace: Path) -> ProtectedPaths:
    """The entries every llmos workspace protects, whatever the config says."""
    from llmos.config import user_config_path

    return ProtectedPaths(Path(workspace), STATE_ENTRIES, (user_config_path(),))


def protected_paths(kernel: Kernel) -> ProtectedPaths:
    """The workspace's protected entries plus the memory folder the config chose."""
    root = Path(os.path.realpath(kernel.workspace.root))
    extra: list[Entry] = []
    outside: list[Path] = []
    roots: list[Path] = []
    if kernel.config.memory.backend == "markdown":
        from llmos.memory.backends import MARKDOWN_DIR

        roots.append(root / MARKDOWN_DIR)
    opened = kernel.__dict__.get("memory")  # only a backend that is already open
    backend_root = getattr(opened, "root", None)
    if isinstance(backend_root, (str, Path)):
        roots.append(Path(backend_root))
    for path in roots:
        real = Path(os.path.realpath(path))
        if real.is_relative_to(root) and real != root:
            extra.append(Entry(PurePosixPath(real.relative_to(root)), "dir",
                               "llmos's memory folder (traces, facts, run logs)"))
        elif real != root:
            outside.append(real)
    return kernel.workspace.protected_paths().with_extra(extra, outside)


def writable_roots(protected: ProtectedPaths) -> tuple[list[Path], list[Path]]:
    """For Landlock (which can only grant): (writable, read-only) paths covering the
    workspace so that no protected entry lies beneath a writable one.

    Directories on the way to a protected entry are split into their children; the
    directories themselves stay read-only (no new entries directly in them).
    """
    root = Path(os.path.realpath(protected.workspace))
    keys = [entry.key for entry in protected.entries]
    writable: list[Path] = []
    readonly: list[Path] = [root]

    def split(directory: Path, depth_parts: tuple[str, ...]) -> None:
        try:
            children = sorted(os.listdir(directory))
        except OSError:
            return
        for name in children:
            parts = (*depth_parts, name.lower())
            child = directory / name
            if child.is_symlink():
                continue  # a rule on a link would grant its target (outside, perhaps)
            if any(key == parts for key in keys):
                continue  # a protected entry: read-only (beneath the read-only root)
            if any(key[: len(parts)] == parts for key in keys) and child.is_dir():
                split(child, parts)
            else:
                writable.append(child)

    split(root, ())
    return writable, readonly


# --------------------------------------------------------------------------- bwrap binds
class UnprotectablePath(RuntimeError):
    """A protected entry cannot be bound read-only (it is a symlink); nothing was run."""


_PLACEHOLDERS: dict[str, str] = {}


def _placeholder(kind: Kind) -> str:
    """An empty, read-only file or directory to mount over a missing protected entry."""
    if kind not in _PLACEHOLDERS or not os.path.lexists(_PLACEHOLDERS[kind]):
        import tempfile

        base = tempfile.mkdtemp(prefix="llmos-placeholder-")
        path = os.path.join(base, "empty")
        if kind == "dir":
            os.mkdir(path, 0o555)
        else:
            with open(path, "w"):
                pass
            os.chmod(path, 0o444)
        _PLACEHOLDERS[kind] = path
    return _PLACEHOLDERS[kind]


def bwrap_protection(protected: ProtectedPaths,
                     placeholders: list[str] | None = None) -> list[str]:
    """bwrap arguments, placed after the workspace's read-write bind, that make every
    protected entry read-only, and impossible to create, rename or remove.

    An existing entry is bound read-only onto itself. A missing one gets an empty
    read-only placeholder mounted where its first missing component would be (bwrap
    makes that mount point, listed in ``placeholders``; ``SandboxLease`` removes it
    afterwards). Each
    directory on the way is bound onto itself, read-write: a mount point cannot be
    renamed away to swap in a fresh ``.git`` or ``plugins/``. A symlink on the way
    raises ``UnprotectablePath``.
    """
    root = Path(os.path.realpath(protected.workspace))
    args: list[str] = []
    done: set[str] = set()
    missing: set[str] = set()  # placeholders: what is beneath them is covered by them
    for entry in protected.entries:
        current = root
        parts = entry.rel.parts
        for index, part in enumerate(parts):
            current = current / part
            last = index == len(parts) - 1
            key = str(current)
            if key in missing:
                break  # decided missing above (even if another sandbox made it since)
            if os.path.islink(current):
                raise UnprotectablePath(
                    f"{current.relative_to(root)} is a symlink, so llmos cannot keep "
                    f"{entry.rel} ({entry.what}) read-only in the sandbox; replace the link "
                    "with the real file or directory")
            if not os.path.lexists(current):
                if key not in done:
                    kind: Kind = entry.kind if last else "dir"
                    args += ["--ro-bind", _placeholder(kind), key]
                    done.add(key)
                    missing.add(key)
                    if placeholders is not None:
                        placeholders.append(key)
                break
            if last or not current.is_dir():
                if key not in done:
                    args += ["--ro-bind", key, key]
                    done.add(key)
                break
            if key not in done:
                args += ["--bind", key, key]
                done.add(key)
    return args


def _lock_path(workspace: Path) -> str:
    import hashlib
    import tempfile

    digest = hashlib.sha256(os.fsencode(os.path.realpath(workspace))).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"llmos-sandbox-{digest}.lock")


class SandboxLease:
    """Held while a sandboxed command is prepared and runs in a workspace (a shared
    lock). The mount points bwrap makes for placeholders are noted beside the lock
    (``note``, once the command line is built); on release, the last sandbox out (an
    exclusive lock, taken only when no other sandbox of this workspace runs) removes those
    still empty."""

    def __init__(self, protected: ProtectedPaths, placeholders: list[str]) -> None:
        self.protected = protected
        self.placeholders = placeholders
        self._lock = _lock_path(protected.workspace)
        self._fd = -1

    def __enter__(self) -> SandboxLease:
        import fcntl

        self._fd = os.open(self._lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        self.note()
        return self

    def note(self) -> None:
        """Record the placeholders listed so far (before bwrap makes them)."""
        if self.placeholders:
            note = os.open(self._lock + ".made", os.O_WRONLY | os.O_CREAT | os.O_APPEND
                           | os.O_CLOEXEC, 0o600)
            try:
                os.write(note, "".join(f"{p}\n" for p in self.placeholders).encode())
            finally:
                os.close(note)

    def __exit__(self, *exc: object) -> None:
        import fcntl

        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # another sandbox runs here; the last one cleans up
            try:
                with open(self._lock + ".made", encoding="utf-8") as handle:
                    made = handle.read().splitlines()
            except FileNotFoundError:
                return
            remove_placeholders(made)
            os.unlink(self._lock + ".made")
        finally:
            os.close(self._fd)


def remove_placeholders(paths: Iterable[str]) -> None:
    """Remove mount points bwrap made for placeholders, if still empty (deepest first)."""
    for path in sorted(set(paths), key=len, reverse=True):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)  # only when empty
            elif os.path.isfile(path) and not os.path.islink(path) and (
                    os.path.getsize(path) == 0):
                os.unlink(path)
        except OSError:
            continue
