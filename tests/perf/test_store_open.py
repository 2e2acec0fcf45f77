"""Opening a memory store and routing over it costs nothing that grows with the store
(issue 12, item 2): no statement scans a whole trace table, an unchanged markdown store
is not listed nor read, and a search expands a bounded number of postings. Structural
checks, no timing: the figures are in bench/learning/route_latency.py."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest

from llmos.learning.matching import best_match
from llmos.memory import text
from llmos.memory.markdown import MarkdownMemory
from llmos.memory.mdindex import RACY_NS, DocIndex
from llmos.memory.sqlite import SqliteMemory
from llmos.testing.memory_conformance import make_trace

GOALS = ["Create primes_{i}.txt listing {i} primes", "Write squares_{i}.csv with squares",
         "Delete the old logs_{i} folder", "Summarize notes_{i}.md into summary.md"]
ROUTED = ["Create primes_3.txt listing 3 primes", "Create primes_99.txt listing 99 primes",
          "Remove squares_2.csv", "Plot the temperatures of sensors", "summary notes logs"]


def fill(store, n: int = 60) -> None:
    for i in range(n):
        store.save_trace(make_trace(GOALS[i % len(GOALS)].format(i=i)))


def test_routing_on_sqlite_runs_no_full_table_scan(tmp_path: Path) -> None:
    store = SqliteMemory(tmp_path / "memory.db")
    fill(store)
    store.close()
    statements: list[str] = []
    store = SqliteMemory(tmp_path / "memory.db")  # an open, as a new process makes it
    store.db.conn.set_trace_callback(statements.append)
    for goal in ROUTED:
        best_match(store, goal)
        store.search_traces(goal)
    store.db.conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert any("memory_trace_fts" in s for s in selects)  # the searches did run
    full_scans = []
    for sql in set(selects):
        for row in store.db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall():
            detail = row[-1]
            # a scan of a whole table (not of an index walked newest first and cut short)
            if re.fullmatch(r"SCAN (memory_traces|memory_trace_text|memory_facts)\b.*", detail) \
                    and "INDEX" not in detail:
                full_scans.append((sql, detail))
    assert full_scans == []


def test_a_full_table_scan_would_be_caught(tmp_path: Path) -> None:
    """The check above can fail: the plan of a statement that reads every trace."""
    store = SqliteMemory(tmp_path / "memory.db")
    plan = store.db.execute("EXPLAIN QUERY PLAN SELECT id FROM memory_traces"
                            " WHERE data LIKE '%x%'").fetchall()
    assert any(re.fullmatch(r"SCAN memory_traces\b.*", row[-1]) for row in plan)


@pytest.fixture
def settled_markdown(tmp_path: Path) -> Path:
    store = MarkdownMemory(tmp_path)
    fill(store)
    store.count_traces()
    store.close()
    traces = tmp_path / "traces"
    past = os.stat(traces).st_mtime_ns - 2 * RACY_NS  # as if the last write was a while ago
    os.utime(traces, ns=(past, past))
    MarkdownMemory(tmp_path).count_traces()  # the scan that records the directory as seen
    return tmp_path


def test_opening_an_unchanged_markdown_store_lists_and_reads_nothing(
        settled_markdown: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmos.memory.markdown as driver
    import llmos.memory.mdindex as mdindex

    listed: list[str] = []
    real_scandir = os.scandir

    def scandir(path=".", *args):
        listed.append(str(path))
        return real_scandir(path, *args)

    parsed: list[str] = []
    real_parse = driver.parse_trace
    monkeypatch.setattr(mdindex.os, "scandir", scandir)
    monkeypatch.setattr(driver.os, "scandir", scandir)
    monkeypatch.setattr(driver, "parse_trace",
                        lambda t, source, **kw: parsed.append(source) or real_parse(t, source,
                                                                                   **kw))
    monkeypatch.setattr(DocIndex, "STAT_SLICE", 10)
    stats: list[str] = []
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if "dir_fd" in kwargs:  # the per-process check of a slice of the files
            stats.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(mdindex.os, "stat", stat)
    store = MarkdownMemory(settled_markdown)
    for goal in ROUTED:
        best_match(store, goal)
    assert listed == []  # the directory was not listed ...
    assert parsed == []  # ... no Markdown file parsed (the index holds each record's JSON)
    assert len(stats) == 10  # ... and one slice of the files stat'ed, once
    assert store.count_traces() == 60


def test_a_search_expands_a_bounded_number_of_postings() -> None:
    for total in (10**3, 10**4, 10**5, 10**6, 10**7):
        bound = max(df for df in range(0, total + 1, max(1, total // 10000))
                    if not text.is_common(df, total))
        assert bound <= text.MAX_POSTINGS
    assert text.is_common(text.MAX_POSTINGS + 1, 10**6)
    assert not text.is_common(400, 1000)  # a small store keeps its share rule


def test_the_side_index_is_one_sqlite_file_per_directory(settled_markdown: Path) -> None:
    conn = sqlite3.connect(settled_markdown / ".cache" / "traces.db")
    try:
        assert conn.execute("SELECT count(*) FROM files").fetchone()[0] == 60
    finally:
        conn.close()
