"""Both built-in drivers pass the conformance suite that third-party backends run."""

from __future__ import annotations

from pathlib import Path

from llmos.memory.base import MemoryBackend
from llmos.testing.memory_conformance import (
    MemoryBackendConformance,
    open_markdown,
    open_sqlite,
)


class TestSqliteConformance(MemoryBackendConformance):
    subprocess_factory = "llmos.testing.memory_conformance:open_sqlite"

    def make_backend(self, path: Path) -> MemoryBackend:
        return open_sqlite(path)


class TestMarkdownConformance(MemoryBackendConformance):
    subprocess_factory = "llmos.testing.memory_conformance:open_markdown"

    def make_backend(self, path: Path) -> MemoryBackend:
        return open_markdown(path)
