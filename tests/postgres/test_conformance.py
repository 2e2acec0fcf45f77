"""The ``postgres`` memory driver passes the conformance suite, on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmos.memory.base import MemoryBackend
from llmos.testing.memory_conformance import MemoryBackendConformance
from llmos.testing.postgres import open_postgres_store


class TestPostgresConformance(MemoryBackendConformance):
    subprocess_factory = "llmos.testing.postgres:open_postgres_store"

    @pytest.fixture
    def store_path(self, tmp_path: Path, llmos_postgres_db: str) -> Path:
        path = tmp_path / "store"
        path.mkdir()
        (path / "dsn").write_text(llmos_postgres_db)
        return path

    def make_backend(self, path: Path) -> MemoryBackend:
        return open_postgres_store(path)
