"""A writer killed with SIGKILL mid-write: the store still reads, nothing committed is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmos.testing.memory_conformance import check_committed, run_and_kill_writer

FACTORIES = {
    "sqlite": "llmos.testing.memory_conformance:open_sqlite",
    "markdown": "llmos.testing.memory_conformance:open_markdown",
}


@pytest.mark.parametrize("driver", sorted(FACTORIES))
def test_repeated_kills_at_different_moments(driver: str, tmp_path: Path) -> None:
    from llmos.testing.memory_conformance import open_markdown, open_sqlite

    opener = {"sqlite": open_sqlite, "markdown": open_markdown}[driver]
    committed: list[list[str]] = []
    for records in (7, 23, 61):  # a different point in the write cycle each time
        committed += run_and_kill_writer(FACTORIES[driver], tmp_path, records=records)
        check_committed(opener(tmp_path), committed)
    memory = opener(tmp_path)
    try:
        runs = memory.list_runs(limit=None)
        assert all(r.status in ("succeeded", "interrupted") for r in runs)
        assert sum(r.status == "succeeded" for r in runs) >= sum(
            c[0] == "finished" for c in committed)
        if driver == "markdown":
            leftovers = [p for p in (tmp_path / "traces").iterdir() if p.name.endswith(".tmp")]
            assert leftovers == []  # temp files of killed writers are cleaned on open
    finally:
        memory.close()
