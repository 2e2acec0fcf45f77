"""An on-disk HTTP cache under the workspace state dir, revalidated with ETag / Last-Modified.

One file per URL: a JSON header line, a newline, then the body. Files are written to a
temporary name and renamed, so a reader never sees half an entry. The least recently
used entries are evicted when the directory grows past its size limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUFFIX = ".entry"


@dataclass
class CacheEntry:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    stored_at: float = field(default_factory=time.time)

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    def validators(self) -> dict[str, str]:
        """Conditional request headers that let the server answer 304 Not Modified."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


def cacheable(status: int, headers: dict[str, str]) -> bool:
    """Only complete 200 responses that can be revalidated and do not forbid storing."""
    control = headers.get("cache-control", "").lower()
    directives = {d.strip().split("=")[0] for d in control.split(",")}
    if status != 200 or "no-store" in directives:
        return False
    return bool(headers.get("etag") or headers.get("last-modified"))


class DiskCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def _path(self, url: str) -> Path:
        return self.root / (hashlib.sha256(url.encode()).hexdigest() + SUFFIX)

    def get(self, url: str) -> CacheEntry | None:
        if not self.enabled:
            return None
        path = self._path(url)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        header, _, body = raw.partition(b"\n")
        try:
            meta: dict[str, Any] = json.loads(header)
            if meta["url"] != url or meta["length"] != len(body):
                raise ValueError("entry does not match")
            return CacheEntry(url, meta["status"], meta["headers"], body, meta["stored_at"])
        except (ValueError, KeyError, TypeError):
            with contextlib.suppress(OSError):
                path.unlink()  # corrupt or colliding: forget it
            return None

    def touch(self, url: str) -> None:
        """Mark an entry as just used (eviction is least-recently-used by mtime)."""
        with contextlib.suppress(OSError):
            os.utime(self._path(url))

    def put(self, entry: CacheEntry) -> bool:
        meta = {
            "url": entry.url,
            "status": entry.status,
            "headers": entry.headers,
            "length": len(entry.body),
            "stored_at": entry.stored_at,
        }
        blob = json.dumps(meta, ensure_ascii=True).encode() + b"\n" + entry.body
        if not self.enabled or len(blob) > self.max_bytes:
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(blob)
            os.replace(tmp, self._path(entry.url))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.evict()
        return True

    def size(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _entries(self) -> list[tuple[float, int, Path]]:
        found = []
        if not self.root.is_dir():
            return found
        for path in self.root.glob("*" + SUFFIX):
            with contextlib.suppress(OSError):
                stat = path.stat()
                found.append((stat.st_mtime, stat.st_size, path))
        return found

    def evict(self) -> None:
        """Remove least recently used entries until the cache fits its limit."""
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
            total -= size
