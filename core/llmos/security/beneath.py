"""Resolve user-supplied paths beneath a directory without following symlinks out of it.

Resolution is done by the kernel, not by string manipulation: ``openat2(2)``
with ``RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`` from a descriptor of the
workspace where the syscall exists, else a component-by-component walk with
``O_PATH | O_NOFOLLOW`` descriptors that follows relative symlinks itself and
refuses absolute ones (the semantics of ``RESOLVE_BENEATH``).

``resolve_beneath`` answers "where does this path lead"; between that answer
and a later ``open`` by name a symlink could be swapped in. ``open_beneath``
closes that gap: it opens the file relative to a descriptor of its resolved
parent, with ``O_NOFOLLOW`` on the last component.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Literal

PATH_MAX = 4096
NAME_MAX = 255
_MAX_SYMLINK_HOPS = 40

DenialCode = Literal[
    "invalid", "expansion", "outside", "symlink", "hardlink", "special", "workspace"
]


class PathDenied(Exception):
    """A path that may not be used; ``code`` says which kind of refusal it is."""

    def __init__(self, reason: str, *, code: DenialCode = "outside") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code: DenialCode = code


# --------------------------------------------------------------------------- openat2

_SYS_OPENAT2 = 437  # same number on every architecture that has it
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_openat2_works: bool | None = None


def _openat2(dirfd: int, path: str, flags: int) -> int:
    """``openat2(dirfd, path, flags, RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS)``."""
    how = _OpenHow(flags=flags, mode=0, resolve=_RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_int(dirfd),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def openat2_available() -> bool:
    """Whether ``openat2`` with ``RESOLVE_BENEATH`` works in this process (cached)."""
    global _openat2_works
    if _openat2_works is None:
        try:
            fd = _openat2(os.open("/", os.O_PATH | os.O_CLOEXEC), ".", os.O_PATH | os.O_CLOEXEC)
        except OSError:
            _openat2_works = False
        else:
            os.close(fd)
            _openat2_works = True
    return _openat2_works


# --------------------------------------------------------------------------- resolution

_O_LOOKUP = os.O_PATH | os.O_CLOEXEC


def _validate(user_path: object) -> str:
    if not isinstance(user_path, str):
        raise PathDenied(f"path must be a string, got {type(user_path).__name__}", code="invalid")
    if user_path == "":
        raise PathDenied("empty path", code="invalid")
    if "\x00" in user_path:
        raise PathDenied("path contains a NUL byte", code="invalid")
    for ch in user_path:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise PathDenied(f"path contains the control or format character U+{ord(ch):04X}",
                             code="invalid")
    if len(os.fsencode(user_path)) >= PATH_MAX:
        raise PathDenied(f"path is longer than PATH_MAX ({PATH_MAX} bytes)", code="invalid")
    for part in user_path.split("/"):
        if len(os.fsencode(part)) > NAME_MAX:
            raise PathDenied(f"a path component is longer than NAME_MAX ({NAME_MAX} bytes)",
                             code="invalid")
    if user_path.startswith("~"):
        raise PathDenied("'~' is not expanded; give a path inside the workspace", code="expansion")
    if user_path.startswith("$"):
        raise PathDenied("'$' variables are not expanded; give a literal path", code="expansion")
    return user_path


def _workspace_root(workspace: Path) -> Path:
    real = Path(os.path.realpath(workspace))
    if not real.is_dir():
        raise PathDenied(f"workspace {workspace} is not an existing directory", code="workspace")
    return real


def _relative_parts(workspace: Path, real_ws: Path, user_path: str) -> list[str]:
    """The components of ``user_path`` relative to the workspace (lexically, no ``..`` folding)."""
    pure = PurePosixPath(user_path)
    if pure.is_absolute():
        for base in (real_ws, Path(os.path.abspath(workspace))):
            try:
                rel = pure.relative_to(PurePosixPath(base))
            except ValueError:
                continue
            return [p for p in rel.parts if p != "."]
        where = "/proc" if pure.parts[1:2] == ("proc",) else "an absolute path"
        raise PathDenied(f"{where} outside the workspace: {user_path}", code="outside")
    return [p for p in pure.parts if p != "."]


def _escapes_lexically(parts: list[str]) -> bool:
    depth = 0
    for part in parts:
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return True
    return False


def _fd_path(fd: int) -> Path:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError as exc:
        raise PathDenied(f"cannot verify where the path leads ({exc.strerror})",
                         code="invalid") from exc
    if not target.startswith("/") or target.endswith(" (deleted)"):
        raise PathDenied("the path leads to a deleted or unnamed file", code="invalid")
    return Path(target)


def _walk_open(root_fd: int, parts: list[str]) -> int:
    """Open ``parts`` beneath ``root_fd`` like ``RESOLVE_BENEATH``, without ``openat2``."""
    stack = [os.dup(root_fd)]
    queue = list(parts)
    hops = 0
    try:
        while queue:
            part = queue.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) == 1:
                    raise OSError(errno.EXDEV, "escapes beneath root", part)
                os.close(stack.pop())
                continue
            fd = os.open(part, _O_LOOKUP | os.O_NOFOLLOW, dir_fd=stack[-1])
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                os.close(fd)
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise OSError(errno.ELOOP, "too many symlinks", part)
                target = os.readlink(part, dir_fd=stack[-1])
                if target.startswith("/"):
                    raise OSError(errno.EXDEV, "absolute symlink", part)
                queue = [p for p in target.split("/") if p] + queue
                continue
            if queue and not stat.S_ISDIR(mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, "not a directory", part)
            stack.append(fd)
        result = stack.pop()
        return result
    finally:
        for fd in stack:
            os.close(fd)


def _open_beneath(root_fd: int, parts: list[str], use_openat2: bool) -> int:
    if not parts:
        return os.dup(root_fd)
    if use_openat2:
        return _openat2(root_fd, "/".join(parts), _O_LOOKUP)
    return _walk_open(root_fd, parts)


def _denial_for(exc: OSError, parts: list[str], user_path: str) -> PathDenied:
    if exc.errno == errno.EXDEV:
        if _escapes_lexically(parts):
            return PathDenied(f"'..' escapes the workspace: {user_path}", code="outside")
        return PathDenied(f"a symlink in {user_path} points outside the workspace",
                          code="symlink")
    if exc.errno == errno.ELOOP:
        return PathDenied(f"too many or forbidden symlinks in {user_path}", code="symlink")
    if exc.errno == errno.ENOTDIR:
        return PathDenied(f"a component of {user_path} is not a directory", code="invalid")
    if exc.errno == errno.ENAMETOOLONG:
        return PathDenied(f"{user_path} is too long", code="invalid")
    return PathDenied(f"cannot resolve {user_path}: {exc.strerror}", code="invalid")


def resolve_beneath(
    workspace: Path,
    user_path: str,
    *,
    for_write: bool = False,
    use_openat2: bool | None = None,
) -> Path:
    """The real path ``user_path`` names, proven to lie beneath ``workspace``.

    Relative paths are taken from the workspace root; absolute ones must name a
    place inside it. Symlinks are followed only while they stay beneath the
    workspace. Paths that do not exist yet are allowed (for writes): the longest
    existing prefix is resolved beneath, and the missing rest may not contain
    ``..`` nor start with a dangling symlink (for writes). For writes an existing
    target must be a regular file with a single link, or a directory.

    ``use_openat2`` forces (True) or forbids (False) the ``openat2`` syscall; by
    default it is used when the kernel offers it. Raises ``PathDenied``.
    """
    _validate(user_path)
    real_ws = _workspace_root(workspace)
    parts = _relative_parts(workspace, real_ws, user_path)
    if _escapes_lexically(parts):
        raise PathDenied(f"'..' escapes the workspace: {user_path}", code="outside")
    with_openat2 = openat2_available() if use_openat2 is None else use_openat2
    root_fd = os.open(real_ws, _O_LOOKUP | os.O_DIRECTORY)
    try:
        return _resolve_from(root_fd, real_ws, parts, user_path, for_write, with_openat2)
    finally:
        os.close(root_fd)


def _resolve_from(
    root_fd: int, real_ws: Path, parts: list[str], user_path: str, for_write: bool,
    with_openat2: bool,
) -> Path:
    try:
        fd = _open_beneath(root_fd, parts, with_openat2)
    except FileNotFoundError:
        return _resolve_missing(root_fd, real_ws, parts, user_path, for_write, with_openat2)
    except OSError as exc:
        raise _denial_for(exc, parts, user_path) from exc
    try:
        real = _fd_path(fd)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    _require_beneath(real, real_ws, user_path)
    if stat.S_ISREG(st.st_mode):
        if for_write and st.st_nlink > 1:
            raise PathDenied(f"{user_path} is a hard link ({st.st_nlink} names); writing it "
                             "could change a file outside the workspace", code="hardlink")
    elif not stat.S_ISDIR(st.st_mode):
        raise PathDenied(f"{user_path} is not a regular file or directory", code="special")
    return real


def _resolve_missing(
    root_fd: int, real_ws: Path, parts: list[str], user_path: str, for_write: bool,
    with_openat2: bool,
) -> Path:
    """Resolve the longest existing prefix of ``parts``; the rest will be created."""
    for cut in range(len(parts) - 1, -1, -1):
        try:
            fd = _open_beneath(root_fd, parts[:cut], with_openat2)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise _denial_for(exc, parts, user_path) from exc
        break
    else:  # pragma: no cover - the empty prefix is the workspace itself
        raise PathDenied("the workspace disappeared", code="workspace")
    missing = parts[cut:]
    try:
        parent = _fd_path(fd)
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise PathDenied(f"a component of {user_path} is not a directory", code="invalid")
        try:
            first = os.stat(missing[0], dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            first = None
    finally:
        os.close(fd)
    _require_beneath(parent, real_ws, user_path)
    if first is not None and stat.S_ISLNK(first.st_mode) and for_write:
        raise PathDenied(f"{user_path} goes through a dangling symlink; writing would "
                             "create its target", code="symlink")
    if ".." in missing:
        raise PathDenied(f"'..' after a missing directory cannot be verified: {user_path}",
                         code="invalid")
    return parent.joinpath(*missing)


def _require_beneath(real: Path, real_ws: Path, user_path: str) -> None:
    if real != real_ws and not real.is_relative_to(real_ws):
        raise PathDenied(f"{user_path} resolves outside the workspace", code="outside")




def open_beneath(
    workspace: Path,
    user_path: str,
    flags: int,
    mode: int = 0o644,
    *,
    make_parents: bool = False,
    use_openat2: bool | None = None,
) -> int:
    """Open ``user_path`` beneath ``workspace`` without a check-then-use race.

    The parent directory is resolved beneath the workspace (creating missing
    directories one by one when ``make_parents``), and the last component is
    opened relative to that directory's descriptor with ``O_NOFOLLOW``, so a
    symlink swapped in after ``resolve_beneath`` cannot redirect the open. Files
    opened for writing must not have other hard links. Returns a descriptor the
    caller closes; raises ``PathDenied`` (or ``OSError`` for ordinary failures
    such as a missing file opened without ``O_CREAT``).
    """
    _validate(user_path)
    real_ws = _workspace_root(workspace)
    parts = _relative_parts(workspace, real_ws, user_path)
    if not parts or parts[-1] == ".." or _escapes_lexically(parts):
        raise PathDenied(f"{user_path} does not name a file beneath the workspace",
                         code="outside")
    with_openat2 = openat2_available() if use_openat2 is None else use_openat2
    root_fd = os.open(real_ws, _O_LOOKUP | os.O_DIRECTORY)
    try:
        parent_fd = _open_parent(root_fd, parts[:-1], user_path, make_parents, with_openat2)
    finally:
        os.close(root_fd)
    try:
        _require_beneath(_fd_path(parent_fd), real_ws, user_path)
        try:
            fd = os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathDenied(f"{user_path} is a symlink; open its target instead",
                                 code="symlink") from exc
            raise
    finally:
        os.close(parent_fd)
    st = os.fstat(fd)
    writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND)
    if writing and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        os.close(fd)
        raise PathDenied(f"{user_path} is a hard link ({st.st_nlink} names)", code="hardlink")
    return fd


def _open_parent(root_fd: int, parts: list[str], user_path: str, make_parents: bool,
                 with_openat2: bool) -> int:
    """A descriptor of the directory ``parts`` beneath ``root_fd``, optionally creating it."""
    try:
        return _open_beneath(root_fd, parts, with_openat2)
    except FileNotFoundError:
        if not make_parents or ".." in parts:
            raise
    except OSError as exc:
        raise _denial_for(exc, parts, user_path) from exc
    current = os.dup(root_fd)
    try:
        for part in parts:
            if part in ("", "."):
                continue
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=current)
            try:
                nxt = _open_beneath(current, [part], with_openat2)
            except OSError as exc:
                raise _denial_for(exc, [part], user_path) from exc
            os.close(current)
            current = nxt
        return current
    except BaseException:
        os.close(current)
        raise
