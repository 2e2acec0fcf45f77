"""The postgres driver searches exactly like sqlite: same records, same order, on a corpus
large enough for common terms to be ignored, with accents, other scripts and digits."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from llmos.memory.models import Step
from llmos.memory.postgres import PostgresMemory
from llmos.testing.memory_conformance import make_trace, open_markdown, open_sqlite

WORDS = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma",
    "omega", "prime", "primes", "primer", "report", "chart", "table", "café", "naïve",
    "straße", "данные", "数据", "x86", "v2", "2025", "ü",
]


@pytest.fixture(scope="module", params=["sqlite", "markdown"])
def stores(request, llmos_postgres, tmp_path_factory: pytest.TempPathFactory):
    """(reference driver, postgres) holding the same records."""
    rng = random.Random(7)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    opener = open_sqlite if request.param == "sqlite" else open_markdown
    sqlite = opener(tmp_path_factory.mktemp(request.param))
    dsn = llmos_postgres.new_database()
    postgres = PostgresMemory(dsn)
    for i in range(400):
        words = " ".join(rng.sample(WORDS, 4))
        trace = make_trace(
            f"everywhere {words} item {i % 37}",
            steps=[Step(index=0, tool=rng.choice(["Bash", "Write"]),
                        input={"command": f"run {rng.choice(WORDS)}-{rng.choice(WORDS)}"})],
            created_at=base + timedelta(minutes=rng.randint(0, 50)),  # many equal times
        )
        sqlite.save_trace(trace)
        postgres.save_trace(trace)
        if i % 3 == 0:
            fact = sqlite.add_fact(f"{words} fact {i}", tags=[rng.choice(WORDS)])
            postgres._insert_fact(fact)
    # some traces change (stats, then a new goal) and some go: the term counts follow
    for trace in sqlite.list_traces(limit=30):
        for store in (sqlite, postgres):
            store.update_trace_stats(trace.id, "success")
    for trace in sqlite.list_traces(limit=10):
        changed = trace.model_copy(update={"goal_text": "replaced café goal prime"})
        sqlite.save_trace(changed)
        postgres.save_trace(changed)
    for trace in sqlite.list_traces(limit=40)[30:]:
        sqlite.delete_trace(trace.id)
        postgres.delete_trace(trace.id)
    yield sqlite, postgres
    sqlite.close()
    postgres.close()
    llmos_postgres.drop_database(dsn)


QUERIES = ["prime", "primes report", "alpha beta gamma", "everywhere", "everywhere item",
           "run sigma", "bash", "item 12", "zzz", "omega primer chart table kappa",
           "everywhere alpha", "1", "write", "CAFE", "naive strasse", "данн", "数据", "x8",
           "v", "20", "u", "replaced goal"]


@pytest.mark.parametrize("query", QUERIES)
def test_same_results_in_the_same_order(stores, query: str) -> None:
    sqlite, postgres = stores
    for limit in (1, 5, 50, 500):
        a = [t.id for t in sqlite.search_traces(query, limit=limit)]
        b = [t.id for t in postgres.search_traces(query, limit=limit)]
        assert a == b, (query, limit)
        fa = [f.id for f in sqlite.search_facts(query, limit=limit)]
        fb = [f.id for f in postgres.search_facts(query, limit=limit)]
        assert fa == fb, (query, limit)


def test_listings_agree(stores) -> None:
    sqlite, postgres = stores
    assert [t.id for t in sqlite.list_traces()] == [t.id for t in postgres.list_traces()]
    assert [f.id for f in sqlite.list_facts()] == [f.id for f in postgres.list_facts()]
    assert sqlite.count_traces() == postgres.count_traces()
    some = sqlite.list_traces(limit=1)[0]
    assert sqlite.get_trace(some.id) == postgres.get_trace(some.id)
