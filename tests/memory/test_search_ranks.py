"""Search rows are ranked: their rowids follow the records' (created_at, id) order, so the
newest of equally relevant records are the largest rowids of the FTS postings, found with
no lookup (``llmos.memory.sqlite.FullTextIndex.place``). These tests insert records out of
order, with many equal creation times, move and delete them, with the rank gaps shrunk so
that windows are relabelled all the time, and check the order, the FTS index and every
search against a brute-force reference of ``llmos.memory.text``'s rules."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmos.memory.models import Step, iso
from llmos.memory.sqlite import FullTextIndex
from llmos.memory.text import (
    is_common,
    query_terms,
    score,
    selective_terms,
    trace_search_text,
)
from llmos.testing.memory_conformance import make_trace, open_markdown, open_sqlite

WORDS = ["alpha", "beta", "gamma", "delta", "prime", "primes", "primer", "report", "chart",
         "table", "omega", "kappa"]
QUERIES = ["prime", "primes report", "alpha beta gamma", "everywhere", "everywhere item",
           "chart", "item 3", "omega kappa table", "bash", "zzz", "everywhere alpha"]


def reference(records: dict[str, tuple[str, str]], query: str, limit: int) -> list[str]:
    """``text``'s ranking by brute force over (created_at, search text) by id."""
    terms = query_terms(query)
    tokens = {i: set(text.split()) for i, (_, text) in records.items()}
    total = len(records)
    bounds = {}
    for term in terms:
        bounds[term] = sum(1 for toks in tokens.values() for tok in toks if tok.startswith(term))
    chosen = selective_terms(terms, bounds, total)
    if not chosen:
        return []
    postings = {t: {i for i, toks in tokens.items() if any(x.startswith(t) for x in toks)}
                for t in chosen}
    if len(chosen) == 1 and is_common(bounds[chosen[0]], total):
        scored = dict.fromkeys(postings[chosen[0]], 0.0)
    else:
        scored = score(postings, total)
    order = sorted(scored, key=lambda i: (scored[i], records[i][0], i), reverse=True)
    return order[:limit]


def assert_ranked(conn: sqlite3.Connection, text: str, fts: str) -> None:
    by_rank = [i for (i,) in conn.execute(f"SELECT id FROM {text} ORDER BY rowid")]
    by_time = [i for (i,) in conn.execute(f"SELECT id FROM {text} ORDER BY created_at, id")]
    assert by_rank == by_time
    conn.execute(f"INSERT INTO {fts} ({fts}) VALUES ('integrity-check')")  # raises if not


@pytest.fixture
def tight_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranks 4 apart: nearly every insertion out of order relabels a window."""
    monkeypatch.setattr(FullTextIndex, "GAP", 4)
    monkeypatch.setattr(FullTextIndex, "MIN_SPACING", 1)


@pytest.mark.parametrize("driver", ["sqlite", "markdown"])
def test_ranks_follow_creation_order_and_search_matches_the_reference(
        tmp_path: Path, tight_ranks: None, driver: str) -> None:
    rng = random.Random(7)
    store = open_sqlite(tmp_path) if driver == "sqlite" else open_markdown(tmp_path)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    records: dict[str, tuple[str, str]] = {}
    traces = {}

    def check() -> None:
        if driver == "sqlite":
            assert_ranked(store.db.conn, "memory_trace_text", "memory_trace_fts")
        else:
            store.traces.refresh()
            assert_ranked(store.traces.conn, "docs", "docs_fts")
        for query in QUERIES:
            for limit in (1, 4, 30):
                expected = reference(records, query, limit)
                assert [t.id for t in store.search_traces(query, limit=limit)] == expected, (
                    query, limit)

    for round_ in range(4):
        for i in range(60):
            n = 60 * round_ + i
            trace = make_trace(
                f"everywhere {' '.join(rng.sample(WORDS, 3))} item {n % 7}",
                steps=[Step(index=0, tool=rng.choice(["Bash", "Write"]),
                            input={"command": f"run {rng.choice(WORDS)}"})],
                # out of order, many equal: most insertions land between two records
                created_at=base + timedelta(minutes=rng.randint(0, 12)),
            )
            store.save_trace(trace)
            traces[trace.id] = trace
            records[trace.id] = (iso(trace.created_at), trace_search_text(trace))
        check()
        for trace_id in rng.sample(sorted(traces), 10):  # moved in time, or deleted
            if rng.random() < 0.5:
                moved = traces[trace_id].model_copy(
                    update={"created_at": base + timedelta(minutes=rng.randint(0, 12))})
                store.save_trace(moved)
                traces[trace_id] = moved
                records[trace_id] = (iso(moved.created_at), trace_search_text(moved))
            else:
                store.delete_trace(trace_id)
                del traces[trace_id], records[trace_id]
        check()
    store.close()


def test_every_term_common_takes_the_newest_by_rank(tmp_path: Path, tight_ranks: None
                                                    ) -> None:
    """A query all of whose terms are common answers with the newest records holding
    the rarest one, taken from the end of its postings."""
    store = open_sqlite(tmp_path)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    rng = random.Random(3)
    records = {}
    for n in range(120):
        trace = make_trace(f"shared words {'rare' if n % 2 else ''} {n}",
                           created_at=base + timedelta(seconds=rng.randint(0, 30)))
        store.save_trace(trace)
        records[trace.id] = (iso(trace.created_at), trace_search_text(trace))
    assert is_common(120, 120)  # both terms are in every record
    for limit in (1, 5, 50):
        assert ([t.id for t in store.search_traces("shared words", limit=limit)]
                == reference(records, "shared words", limit))
    store.close()


def test_a_relabel_moves_neighbours_without_losing_them(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Records squeezed into one spot: the window around it is spread out again (the
    rows and their FTS entries move), the inserted record lands in order."""
    monkeypatch.setattr(FullTextIndex, "GAP", 1 << 3)
    monkeypatch.setattr(FullTextIndex, "MIN_SPACING", 2)
    store = open_sqlite(tmp_path)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    ids = []
    for n in range(40):  # same time: ordered by id, each new id between two others
        trace = make_trace(f"squeeze {n}", created_at=at)
        trace = trace.model_copy(update={"id": f"{'m' if n % 2 else 'a'}{n:03d}"})
        store.save_trace(trace)
        ids.append(trace.id)
    conn = store.db.conn
    assert_ranked(conn, "memory_trace_text", "memory_trace_fts")
    ranks = [r for (r,) in conn.execute("SELECT rowid FROM memory_trace_text ORDER BY rowid")]
    assert len(set(ranks)) == 40
    assert [t.id for t in store.search_traces("squeeze", limit=40)] == sorted(ids, reverse=True)
    store.close()


def test_a_markdown_index_rebuilt_in_batches_ranks_and_searches_alike(
        tmp_path: Path, tight_ranks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first build reads files in name order (not creation order): ranks are spread
    out again and again, the FTS index is merged at the end; searches are unchanged."""
    from llmos.memory.mdindex import DocIndex

    monkeypatch.setattr(DocIndex, "BATCH", 7)
    rng = random.Random(5)
    store = open_markdown(tmp_path)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    records = {}
    for n in range(80):
        trace = make_trace(f"everywhere {' '.join(rng.sample(WORDS, 3))} item {n % 5}",
                           created_at=base + timedelta(seconds=rng.randint(0, 20)))
        store.save_trace(trace)
        records[trace.id] = (iso(trace.created_at), trace_search_text(trace))
    store.close()
    index = tmp_path / ".cache" / "traces.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    again = open_markdown(tmp_path)
    assert again.count_traces() == 80
    assert_ranked(again.traces.conn, "docs", "docs_fts")
    for query in QUERIES:
        for limit in (1, 4, 30):
            assert ([t.id for t in again.search_traces(query, limit=limit)]
                    == reference(records, query, limit)), (query, limit)
    again.close()
