"""Both drivers search alike: same records, same order, on a corpus large enough for
common terms to be ignored."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmos.memory.models import Step
from llmos.memory.text import trace_search_text
from llmos.testing.memory_conformance import make_trace, open_markdown, open_sqlite

WORDS = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma",
    "omega", "prime", "primes", "primer", "report", "chart", "table",
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory):
    rng = random.Random(42)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    sqlite = open_sqlite(tmp_path_factory.mktemp("sqlite"))
    markdown = open_markdown(tmp_path_factory.mktemp("markdown"))
    for i in range(400):
        words = " ".join(rng.sample(WORDS, 4))
        trace = make_trace(
            f"everywhere {words} item {i % 37}",
            steps=[Step(index=0, tool=rng.choice(["Bash", "Write"]),
                        input={"command": f"run {rng.choice(WORDS)}"})],
            created_at=base + timedelta(minutes=rng.randint(0, 50)),  # many equal times
        )
        sqlite.save_trace(trace)
        markdown.save_trace(trace)
        if i % 3 == 0:
            fact = sqlite.add_fact(f"{words} fact {i}", tags=[rng.choice(WORDS)])
            markdown._insert_fact(fact)
    yield sqlite, markdown
    sqlite.close()
    markdown.close()


QUERIES = ["prime", "primes report", "alpha beta gamma", "everywhere", "everywhere item",
           "run sigma", "bash", "item 12", "zzz", "omega primer chart table kappa",
           "everywhere alpha", "1", "write"]


@pytest.mark.parametrize("query", QUERIES)
def test_same_results_in_the_same_order(stores, query: str) -> None:
    sqlite, markdown = stores
    for limit in (1, 5, 50):
        a = [t.id for t in sqlite.search_traces(query, limit=limit)]
        b = [t.id for t in markdown.search_traces(query, limit=limit)]
        assert a == b, (query, limit)
        fa = [f.id for f in sqlite.search_facts(query, limit=limit)]
        fb = [f.id for f in markdown.search_facts(query, limit=limit)]
        assert fa == fb, (query, limit)


def test_common_terms_are_ignored(stores) -> None:
    sqlite, _ = stores
    # "everywhere" is in every trace: alone it still finds (the newest) traces ...
    assert len(sqlite.search_traces("everywhere", limit=10)) == 10
    # ... but next to a selective term it adds nothing: every hit has the selective term
    hits = sqlite.search_traces("everywhere omega", limit=400)
    assert hits and all("omega" in trace_search_text(t).split() for t in hits)


def test_ranking_prefers_more_and_rarer_terms(stores) -> None:
    sqlite, _ = stores
    hits = sqlite.search_traces("alpha beta gamma", limit=50)
    counts = [len({"alpha", "beta", "gamma"} & set(trace_search_text(t).split()))
              for t in hits]
    assert counts[0] == 3
    assert counts == sorted(counts, reverse=True)


def test_equal_scores_are_newest_first(stores, tmp_path: Path) -> None:
    sqlite, _ = stores
    hits = sqlite.search_traces("omega", limit=400)
    keys = [(t.created_at, t.id) for t in hits]
    assert keys == sorted(keys, reverse=True)  # one term: all scores are equal
