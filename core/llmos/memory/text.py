"""Full-text search, the same in every backend: one tokenizer (letters and digits, case-
and accent-folded, like SQLite FTS5's ``unicode61 remove_diacritics 2``) and one ranking.

A query matches records containing any of its terms, each as a prefix of a token
(``prime`` finds ``primes``). Records are ranked by the summed idf of the terms they
contain, then newest first; terms common to most records are ignored (see
``selective_terms``)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from llmos.memory.models import Fact, Trace

K = TypeVar("K")
_WORD = re.compile(r"[^\W_]+")
MAX_QUERY_TERMS = 32
TRACE_TEXT_CHARS = 4000

STOPWORDS = frozenset(
    """
    a an and are as at be but by do does for from how i in into is it its me my of on or
    our please so than that the their then there these this to too was we what when where
    which who will with you your
    """.split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased, accent-free runs of letters and digits."""
    if text.isascii():
        return _WORD.findall(text.lower())
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    return _WORD.findall(folded)


def query_terms(text: str) -> list[str]:
    """The distinct searchable terms of a query, stopwords dropped, in order."""
    seen: dict[str, None] = {}
    for token in tokenize(text):
        if token not in STOPWORDS:
            seen.setdefault(token)
    return list(seen)[:MAX_QUERY_TERMS]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def trace_search_text(trace: Trace) -> str:
    """What a trace is found by: its goal, its tools, the files it wrote and (the start of)
    the text of its inputs, as space-separated tokens."""
    parts = [trace.goal_text, " ".join(trace.tools_used)]
    parts += [f.path for step in trace.steps for f in step.outcome.files]
    inputs = " ".join(s for step in trace.steps for s in _strings(step.input))
    parts.append(inputs[:TRACE_TEXT_CHARS])
    return " ".join(tokenize(" ".join(parts)))


def fact_search_text(fact: Fact) -> str:
    return " ".join(tokenize(" ".join([fact.text, *fact.tags])))


# -- ranking, shared by every driver so that they return the same results in the same order

SELECTIVE_FRACTION = 0.5
SELECTIVE_MIN_DOCS = 50
"""A term found in more than this share of the records (and in more than
``SELECTIVE_MIN_DOCS`` of them) says little about relevance and is ignored, unless every
term of the query is that common; then only the rarest one is used. This also bounds the
work of a search: common terms are never expanded."""
LARGE_FRACTION = 0.05
LARGE_MIN_DOCS = 1000
"""In a large store, a term in more than this share (and more than ``LARGE_MIN_DOCS``
records) is common too: expanding tens of thousands of postings per query is what made
routing slow at 100k traces, and such terms add almost nothing to the ranking."""
MAX_POSTINGS = 2000
"""And a term in more than this many records is common whatever the size of the store,
so that the work of a search does not grow with it: at most ``MAX_POSTINGS`` postings
per query term are expanded (its idf is then under log(1 + N / 2000), about 3.9 at 100k
records, against about 9 for a term in ten records). Below 40,000 records the share
above decides alone."""


def idf(total: int, df: int) -> float:
    """BM25's inverse document frequency (always positive)."""
    return math.log(1 + (total - df + 0.5) / (df + 0.5))


def is_common(df_bound: int, total: int) -> bool:
    return df_bound > min(max(SELECTIVE_MIN_DOCS, SELECTIVE_FRACTION * total),
                          max(LARGE_MIN_DOCS, LARGE_FRACTION * total), MAX_POSTINGS)


def selective_terms(terms: Sequence[str], df_bound: Mapping[str, int], total: int
                    ) -> list[str]:
    """The terms a search uses, given an upper bound of each term's document frequency
    (the sum of the frequencies of the tokens it is a prefix of)."""
    present = [t for t in terms if df_bound.get(t, 0) > 0]
    chosen = [t for t in present if not is_common(df_bound[t], total)]
    if not chosen and present:
        chosen = [min(present, key=lambda t: (df_bound[t], t))]
    return chosen


def score(postings: Mapping[str, set[K]], total: int) -> dict[K, float]:
    """Each record's relevance: the summed idf of the terms it contains. Terms are added
    in query order, so every driver computes the very same floating-point number."""
    scores: dict[K, float] = {}
    for keys in postings.values():
        weight = idf(total, len(keys))
        if not scores:
            scores = dict.fromkeys(keys, weight)
            continue
        get = scores.get
        for key in keys:
            scores[key] = get(key, 0.0) + weight
    return scores


def prefix_upper(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
