"""The in-memory index of a directory of Markdown records (traces or facts): ids,
signatures, flags and the tokens full-text search uses, kept in step with the files."""

from __future__ import annotations

import bisect
import contextlib
import heapq
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmos.memory.base import Problem
from llmos.memory.files import StatKey, atomic_write, stat_key
from llmos.memory.markdown_format import TraceFormatError
from llmos.memory.text import is_common, prefix_upper, score, selective_terms

RACY_NS = 2_000_000_000
"""A directory modified this recently before a scan is rescanned next time (timestamps
can be as coarse as 2 s on some file systems)."""


@dataclass(slots=True)
class Doc:
    file: str
    stat: StatKey
    id: str
    created: str
    key: str | None = None
    flag: bool = False
    tags: tuple[str, ...] = ()
    tokens: frozenset[str] = field(default_factory=frozenset)

    def cached(self) -> list[Any]:
        return [*self.stat, self.id, self.created, self.key, self.flag, list(self.tags),
                " ".join(sorted(self.tokens))]

    @classmethod
    def from_cache(cls, file: str, row: list[Any]) -> Doc:
        ino, mtime, size, doc_id, created, key, flag, tags, tokens = row
        return cls(file, (ino, mtime, size), doc_id, created, key, bool(flag), tuple(tags),
                   frozenset(tokens.split()))


class DocIndex:
    """What the files of one directory hold, for lookups without reading them all.

    The first refresh reads the index cache (``.cache/<dir>.json``, written by earlier
    processes) and re-reads only the files whose (inode, mtime, size) changed since; later
    refreshes rescan the directory only when it changed (renames and new files change
    it), re-reading files whose inode changed. Files that could not be read are few and
    are checked every time, since they are often fixed in place.
    """

    CACHE_VERSION = 2  # 2: goal normalization 2
    SAVE_AFTER = 200  # parsed files before the cache is rewritten mid-session

    def __init__(self, directory: Path, describe: Callable[[str, str], Doc],
                 cache: Path) -> None:
        self.dir = directory
        self.cache = cache
        self.describe = describe  # (file name, text) -> Doc, raises TraceFormatError
        self.docs: dict[str, Doc] = {}
        self.by_id: dict[str, str] = {}
        self.by_key: dict[str, set[str]] = {}
        self.postings: dict[str, set[str]] = {}
        self.problems: dict[str, Problem] = {}
        self._problem_stats: dict[str, StatKey] = {}
        self._vocab: list[str] | None = None
        self._order: list[tuple[str, str, str]] | None = None  # (created, id, file), sorted
        self._dir_mtime: int | None = None
        self._scanned_at = 0
        self._unsaved = 0
        self.lock = threading.RLock()  # one handle may be used from several threads

    # -- maintenance ---------------------------------------------------------------------

    def _add(self, doc: Doc) -> None:
        self.docs[doc.file] = doc
        if self._order is not None:
            bisect.insort(self._order, (doc.created, doc.id, doc.file))
        self.by_id[doc.id] = doc.file
        if doc.key is not None:
            self.by_key.setdefault(doc.key, set()).add(doc.file)
        for token in doc.tokens:
            bucket = self.postings.get(token)
            if bucket is None:
                self.postings[token] = {doc.file}
                self._vocab = None
            else:
                bucket.add(doc.file)

    def _remove(self, file: str) -> None:
        self.problems.pop(file, None)
        self._problem_stats.pop(file, None)
        doc = self.docs.pop(file, None)
        if doc is None:
            return
        if self._order is not None:
            entry = (doc.created, doc.id, doc.file)
            i = bisect.bisect_left(self._order, entry)
            if i < len(self._order) and self._order[i] == entry:
                del self._order[i]
        if self.by_id.get(doc.id) == file:
            del self.by_id[doc.id]
        if doc.key is not None:
            bucket = self.by_key.get(doc.key)
            if bucket is not None:
                bucket.discard(file)
                if not bucket:
                    del self.by_key[doc.key]
        for token in doc.tokens:
            bucket = self.postings.get(token)
            if bucket is not None:
                bucket.discard(file)
                if not bucket:
                    del self.postings[token]
                    self._vocab = None

    def _accept(self, doc: Doc) -> None:
        owner = self.by_id.get(doc.id)
        if owner is not None and owner != doc.file:
            self._problem(doc.file, 1, f"id {doc.id!r} is already used by {owner}; skipped")
        else:
            self._add(doc)

    def _load(self, name: str) -> None:
        self._remove(name)
        path = self.dir / name
        stat = stat_key(path)  # before reading: a later change shows as a new key
        try:
            doc = self.describe(name, path.read_text(encoding="utf-8"))
        except TraceFormatError as exc:
            self._problem(name, exc.line, exc.problem)
            return
        except (OSError, UnicodeDecodeError) as exc:
            self._problem(name, 1, f"cannot read the file: {exc}")
            return
        doc.stat = stat
        self._unsaved += 1
        self._accept(doc)

    def _problem(self, name: str, line: int, problem: str) -> None:
        self.problems[name] = Problem(str(self.dir / name), line, problem)
        self._problem_stats[name] = stat_key(self.dir / name)

    def _problem_files_changed(self) -> bool:
        return any(stat_key(self.dir / name) != key for name, key in self._problem_stats.items())

    def note(self, doc: Doc) -> None:
        """A file this process has just written."""
        with self.lock:
            self._remove(doc.file)
            self._add(doc)
            self._unsaved += 1

    def forget(self, file: str) -> None:
        with self.lock:
            self._remove(file)
            self._unsaved += 1

    def _first_scan(self) -> None:
        """Start from the cache of an earlier process, re-reading only changed files."""
        cached: dict[str, list[Any]] = {}
        try:
            data = json.loads(self.cache.read_text(encoding="utf-8"))
            if data.get("version") == self.CACHE_VERSION:
                cached = data["docs"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            cached = {}
        with contextlib.suppress(FileNotFoundError), os.scandir(self.dir) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if not entry.name.endswith(".md") or entry.name.startswith("."):
                    continue
                row = cached.get(entry.name)
                try:
                    st = entry.stat()
                    if row is not None and list(row[:3]) == [st.st_ino, st.st_mtime_ns,
                                                             st.st_size]:
                        self._accept(Doc.from_cache(entry.name, row))
                        continue
                except (OSError, ValueError, TypeError):
                    pass
                self._load(entry.name)

    def refresh(self) -> None:
        with self.lock:
            self._refresh()

    def _refresh(self) -> None:
        try:
            mtime = os.stat(self.dir).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if self._dir_mtime is None and not self.docs and not self.problems:
            scanned_at = time.time_ns()
            self._first_scan()
        elif (
            mtime is not None
            and mtime == self._dir_mtime
            and self._scanned_at - mtime > RACY_NS
            and not self._problem_files_changed()
        ):
            return
        else:
            scanned_at = time.time_ns()
            self._rescan()
        self._dir_mtime = mtime
        self._scanned_at = scanned_at
        if self._unsaved >= self.SAVE_AFTER or (self._unsaved and self._dir_mtime is not None
                                                and len(self.docs) < self.SAVE_AFTER):
            self.save()

    def _rescan(self) -> None:
        seen: dict[str, int] = {}
        with contextlib.suppress(FileNotFoundError), os.scandir(self.dir) as entries:
            for entry in entries:
                if entry.name.endswith(".md") and not entry.name.startswith("."):
                    seen[entry.name] = entry.inode()
        gone = [n for n in (*self.docs, *self.problems) if n not in seen]
        for name in gone:
            self.forget(name)
        docs, problems = self.docs, self.problems
        fresh = [
            name for name, inode in seen.items()
            if not ((doc := docs.get(name)) is not None and doc.stat[0] == inode)
            and not (doc is None and name in problems
                     and self._problem_stats.get(name) == stat_key(self.dir / name))
        ]
        for name in sorted(fresh):  # sorted: of two files with one id, the first wins
            self._load(name)
        if gone or fresh:  # a duplicate id may have become free
            for name in [n for n in self.problems if n in seen]:
                self._load(name)

    def save(self) -> None:
        """Write the cache of this index (derived data: safe to delete at any time). Only
        a handle that has scanned the directory writes it: a partial cache would make the
        next process read every file again."""
        with self.lock:
            if self._dir_mtime is None or not self.dir.is_dir():
                return
            data = {"version": self.CACHE_VERSION,
                    "docs": {name: doc.cached() for name, doc in self.docs.items()}}
        with contextlib.suppress(OSError):
            self.cache.parent.mkdir(exist_ok=True)
            atomic_write(self.cache, json.dumps(data, separators=(",", ":")), durable=False)
            self._unsaved = 0

    # -- queries -------------------------------------------------------------------------

    def known_file(self, doc_id: str) -> str | None:
        """The file indexed for an id, without looking at the directory again."""
        with self.lock:
            return self.by_id.get(doc_id)

    def file_for(self, doc_id: str) -> str | None:
        with self.lock:
            self._refresh()
            return self.by_id.get(doc_id)

    def newest(self, limit: int | None, keep: Callable[[Doc], bool] = lambda d: True
               ) -> list[Doc]:
        with self.lock:
            self._refresh()
            found = []
            for doc in self._newest_first():
                if keep(doc):
                    found.append(doc)
                    if limit is not None and len(found) >= limit:
                        break
            return found

    def _newest_first(self) -> Iterator[Doc]:
        if self._order is None:  # built when first needed, then kept in order
            self._order = sorted((d.created, d.id, d.file) for d in self.docs.values())
        for _, _, file in reversed(self._order):
            yield self.docs[file]

    def search(self, terms: Sequence[str], limit: int) -> list[Doc]:
        """The best ``limit`` documents by ``llmos.memory.text``'s ranking."""
        with self.lock:
            return self._search(terms, limit)

    def _search(self, terms: Sequence[str], limit: int) -> list[Doc]:
        self._refresh()
        if self._vocab is None:
            self._vocab = sorted(self.postings)
        vocab = self._vocab
        expansions: dict[str, list[str]] = {}
        for term in terms:
            start = bisect.bisect_left(vocab, term)
            end = bisect.bisect_left(vocab, prefix_upper(term), start)
            expansions[term] = vocab[start:end]
        bounds = {t: sum(len(self.postings[tok]) for tok in toks)
                  for t, toks in expansions.items()}
        chosen = selective_terms(terms, bounds, len(self.docs))
        if len(chosen) == 1 and is_common(bounds[chosen[0]], len(self.docs)):
            # every term is common: the newest records with the rarest one, as in sqlite
            term, found = chosen[0], []
            for doc in self._newest_first():
                if any(token.startswith(term) for token in doc.tokens):
                    found.append(doc)
                    if len(found) >= limit:
                        break
            return found
        postings = {t: set().union(*(self.postings[tok] for tok in expansions[t]))
                    for t in chosen}
        scores = score(postings, len(self.docs))
        docs = self.docs
        best = heapq.nlargest(limit, scores,
                              key=lambda f: (scores[f], docs[f].created, docs[f].id))
        return [docs[f] for f in best]
