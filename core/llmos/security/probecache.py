"""Verdicts of checks that never change between runs, remembered by a content hash.

The policy's rule examples and the sandbox capability probe give the same answer every
time on the same code, binaries and kernel, yet cost tens of milliseconds (and child
processes) per run. ``remembered(kind, key, compute)`` runs ``compute`` once per
``key`` -- a hash of everything the answer depends on -- and keeps the answer in the
user's cache directory (``LLMOS_CACHE_DIR``, else the platform's cache dir for
``llmos``), one file per key: two llmos versions (or checkouts) used by turns each find
their own answer instead of evicting each other's, and the oldest entries beyond
``KEEP`` per kind are removed. A different key (a changed rules file, another bwrap
binary, another kernel) runs the check again; an unreadable, foreign or corrupt entry
is ignored; a cache that cannot be written only costs the saving. Failures are never
remembered.

Nothing here decides a verdict: a remembered answer is only used where the check would
have produced that very answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

FORMAT = 1
#: Entries kept per kind (the newest); each is a few hundred bytes.
KEEP = 16


def cache_dir() -> Path:
    """Where the remembered answers live."""
    explicit = os.environ.get("LLMOS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    import platformdirs

    return Path(platformdirs.user_cache_dir("llmos"))


def digest(parts: Iterable[str | bytes]) -> str:
    """A sha256 over ``parts``, each length-prefixed (so no two lists hash alike)."""
    h = hashlib.sha256(f"llmos-probecache-{FORMAT}\0{sys.version}\0{sys.platform}".encode())
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def tree_parts(root: Path, pattern: str = "*.py") -> list[str | bytes]:
    """Every file matching ``pattern`` beneath ``root``: its relative path and content."""
    parts: list[str | bytes] = []
    for path in sorted(root.rglob(pattern)):
        if "__pycache__" in path.parts:
            continue
        parts += [path.relative_to(root).as_posix(), path.read_bytes()]
    return parts


_own_code: tuple[str | bytes, ...] | None = None


def code_parts() -> list[str | bytes]:
    """``tree_parts`` of this security package as this process runs it: read once per
    process (the rules and probes that run are the ones imported when it started, so a
    file edited later changes neither them nor this), and readable ahead by a fork
    server's parent (``llmos.kernel.prewarm``)."""
    global _own_code
    if _own_code is None:
        _own_code = tuple(tree_parts(Path(__file__).resolve().parent))
    return list(_own_code)


def file_identity(path: str | os.PathLike[str] | None) -> str:
    """A cheap identity of a (binary) file: its resolved path, size, mtime and inode."""
    if path is None:
        return "none"
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"missing {path}: {exc.errno}"
    return f"{os.path.realpath(path)} {st.st_size} {st.st_mtime_ns} {st.st_ino} {st.st_dev}"


def entry_path(kind: str, key: str) -> Path:
    """The file that holds the answer of ``kind`` for ``key``."""
    return cache_dir() / f"{kind}-{key[:32]}.json"


def lookup(kind: str, key: str) -> Any | None:
    """The answer remembered for ``key``, or None."""
    try:
        data = json.loads(entry_path(kind, key).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return None
    return data.get("value")


def store(kind: str, key: str, value: Any) -> None:
    """Remember ``value`` for ``key`` (replacing the previous answer atomically)."""
    path = entry_path(kind, key)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{kind}-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump({"format": FORMAT, "key": key, "value": value}, out)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _prune(path, kind)


def _prune(stored: Path, kind: str) -> None:
    """Remove the oldest entries of ``kind`` beyond ``KEEP`` (never the one just stored)."""
    def age(path: Path) -> int:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return 0

    others = sorted((p for p in stored.parent.glob(f"{kind}-*.json") if p != stored),
                    key=age, reverse=True)
    for old in others[KEEP - 1:]:
        with contextlib.suppress(OSError):
            old.unlink()


def remembered(kind: str, key: str, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """``(answer, True)`` when remembered for ``key``, else ``(compute(), False)``, stored
    (``compute`` raising stores nothing). Answers are JSON values."""
    value = lookup(kind, key)
    if value is not None:
        return value, True
    value = compute()
    store(kind, key, value)
    return value, False
