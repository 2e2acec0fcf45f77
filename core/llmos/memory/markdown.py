"""The ``markdown`` memory driver: plain files a human can read, edit and commit.

Layout under the root (``<workspace>/memory`` when chosen in config)::

    traces/<id>.md     one trace per file, Markdown with YAML front matter
    facts/<id>.md      one fact per file, same format
    runs/<id>.jsonl    a run's log, one JSON event per line: start, step..., update

Durability: traces and facts are written to a temporary file, fsynced and renamed over
the old one (``os.replace``), so a reader sees the old or the new file, never half of
one. Run logs are append-only; each event is one line written and fsynced at once, and a
torn last line (the writer was killed mid-write) is ignored. A file that cannot be read
is reported by ``problems()`` (file, line, problem) and skipped.

Lookups use a persistent side index of each directory (``llmos.memory.mdindex``: SQLite
with FTS5 in ``.cache/``), updated file by file when the directory changes, never rebuilt
while it is intact; parsed files are cached while their (inode, mtime, size) is
unchanged. Derived and transient files (``.cache/``, ``.lock``, temporary files) are
listed in the root's ``.gitignore``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from llmos.memory.base import MemoryBackend, Problem, RunNotFound, RunStateError
from llmos.memory.files import (
    StatKey,
    atomic_write,
    fcntl,
    fsync_dir,
    locked,
    pid_alive,
    stat_key,
)
from llmos.memory.markdown_format import (
    TraceFormatError,
    parse_fact,
    parse_trace,
    render_fact,
    render_trace,
)
from llmos.memory.mdindex import RACY_NS, Doc, DocIndex
from llmos.memory.models import Fact, RunRecord, Step, Trace, iso
from llmos.memory.text import fact_search_text, trace_search_text

__all__ = ["RACY_NS", "MarkdownMemory", "atomic_write"]

_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


class MarkdownMemory(MemoryBackend):
    """Memory as Markdown and JSON-lines files under ``root``."""

    name = "markdown"

    def __init__(self, root: Path | str, *, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable
        self.traces_dir = self.root / "traces"
        self.facts_dir = self.root / "facts"
        self.runs_dir = self.root / "runs"
        for d in (self.traces_dir, self.facts_dir, self.runs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.root / ".lock"
        cache = self.root / ".cache"
        self.traces = DocIndex(self.traces_dir, self._describe_trace, cache / "traces.db",
                               self._clean_temp_file)
        self.facts = DocIndex(self.facts_dir, self._describe_fact, cache / "facts.db",
                              self._clean_temp_file)
        for old in ("traces.json", "facts.json"):  # the JSON caches the index replaced
            with contextlib.suppress(OSError):
                (cache / old).unlink()
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            with contextlib.suppress(OSError):
                ignore.write_text("# derived or transient files of the llmos markdown memory\n"
                                  ".cache/\n.lock\n.*.tmp\n")
        self._runs: dict[str, tuple[int, int, RunRecord | None, Problem | None]] = {}
        self._parsed: OrderedDict[Path, tuple[StatKey, str]] = OrderedDict()  # JSON
        self._parsed_lock = threading.Lock()

    PARSED_CACHE = 4096

    def close(self) -> None:
        """Close the side indexes (they are always up to date, as the files are)."""
        for index in (self.traces, self.facts):
            index.close()

    def _read(self, path: Path, parse: Callable[..., Any]) -> Any:
        """A trace or fact file, parsed: from this handle's cache or the side index's copy
        while the file's (inode, mtime, size) is unchanged (a JSON decode, ~40x cheaper
        than parsing the Markdown and its YAML front matter), else from the file."""
        model = Trace if parse is parse_trace else Fact
        index = self.traces if path.parent == self.traces_dir else self.facts
        key = stat_key(path)
        with self._parsed_lock:
            hit = self._parsed.get(path)
            if hit is not None and hit[0] == key:
                self._parsed.move_to_end(path)
                return model.model_validate_json(hit[1])
        data = index.cached(path.name, key) if key[2] >= 0 else None
        if data is not None:
            with contextlib.suppress(ValueError):  # a damaged copy: read the file instead
                record = model.model_validate_json(data)
                self._remember(path, key, record, data)
                return record
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            with self._parsed_lock:
                self._parsed.pop(path, None)
            return None
        record = parse(text, str(path), default_id=path.name[:-3])
        self._remember(path, key, record)
        index.check_file(path.name, key)  # edited in place since it was indexed?
        return record

    def _remember(self, path: Path, key: StatKey, record: Any, data: str | None = None
                  ) -> None:
        data = record.model_dump_json() if data is None else data
        with self._parsed_lock:
            self._parsed[path] = (key, data)
            self._parsed.move_to_end(path)
            while len(self._parsed) > self.PARSED_CACHE:
                self._parsed.popitem(last=False)

    @staticmethod
    def _clean_temp_file(entry: os.DirEntry[str]) -> None:
        """Remove a temporary file left by a writer that was killed (met while the index
        scans a directory that changed: its creation changed the directory)."""
        m = _TMP.match(entry.name)
        if m and not pid_alive(int(m.group("pid"))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)

    # -- runs ----------------------------------------------------------------------------

    def _run_path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.jsonl"

    def _append(self, f: Any, event: dict[str, Any]) -> None:
        f.seek(0, os.SEEK_END)
        prefix = b""
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                prefix = b"\n"  # end a torn line left by a killed writer
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        f.write(prefix + line)
        f.flush()
        if self.durable:
            os.fsync(f.fileno())

    def _insert_run(self, run: RunRecord) -> None:
        path = self._run_path(run.id)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except FileExistsError:
            raise RunStateError(f"a run with id {run.id!r} already exists") from None
        with os.fdopen(fd, "r+b") as f:
            self._append(f, {"event": "start",
                             "run": run.model_dump(mode="json", exclude={"step_count"})})
        if self.durable:
            fsync_dir(self.runs_dir)

    def _with_run_file(self, run_id: str, fn: Callable[[Any], Any]) -> Any:
        path = self._run_path(run_id)
        try:
            f = open(path, "r+b")  # noqa: SIM115 - closed below, after unlocking
        except FileNotFoundError:
            raise RunNotFound(f"no run {run_id!r}") from None
        with f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                return fn(f)
            finally:
                if fcntl is not None:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _append_step(self, run_id: str, step: Step) -> Step:
        def go(f: Any) -> Step:
            _, steps, _ = self._fold(f.read(), str(self._run_path(run_id)))
            stored = step.model_copy(update={"index": len(steps)})
            self._append(f, {"event": "step", "step": stored.model_dump(mode="json")})
            return stored

        return self._with_run_file(run_id, go)

    def _update_run(self, run: RunRecord) -> None:
        data = run.model_dump(mode="json", exclude={"step_count"})
        self._with_run_file(run.id, lambda f: self._append(f, {"event": "update", "run": data}))

    @staticmethod
    def _fold(raw: bytes, source: str) -> tuple[RunRecord | None, list[Step], Problem | None]:
        run: dict[str, Any] | None = None
        steps: list[Step] = []
        problem: Problem | None = None
        lines = raw.split(b"\n")
        complete = lines[:-1]  # the part after the last newline is a torn write, if any
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                kind = event["event"]
                if kind in ("start", "update"):
                    run = event["run"]
                elif kind == "step":
                    steps.append(Step.model_validate(event["step"]))
                else:
                    raise ValueError(f"unknown event {kind!r}")
            except (ValueError, KeyError, TypeError) as exc:
                problem = problem or Problem(source, number, f"unreadable run event: {exc}")
        if run is None:
            if problem is None:
                problem = Problem(source, 1, "the run log has no start event")
            return None, steps, problem
        try:
            record = RunRecord.model_validate({**run, "step_count": len(steps)})
        except ValueError as exc:
            return None, steps, Problem(source, 1, f"unreadable run record: {exc}")
        return record, steps, problem

    def _read_run(self, path: Path) -> tuple[RunRecord | None, list[Step], Problem | None]:
        return self._fold(path.read_bytes(), str(path))

    def _load_run(self, run_id: str) -> RunRecord | None:
        try:
            run, _, _ = self._read_run(self._run_path(run_id))
        except FileNotFoundError:
            return None
        return run

    def _scan_runs(self) -> list[RunRecord]:
        seen: set[str] = set()
        with os.scandir(self.runs_dir) as entries:
            for entry in entries:
                if not entry.name.endswith(".jsonl") or entry.name.startswith("."):
                    continue
                seen.add(entry.name)
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                cached = self._runs.get(entry.name)
                if cached is not None and cached[:2] == (st.st_size, st.st_mtime_ns):
                    continue
                try:
                    run, _, problem = self._read_run(Path(entry.path))
                except OSError as exc:
                    run, problem = None, Problem(entry.path, 1, f"cannot read the file: {exc}")
                self._runs[entry.name] = (st.st_size, st.st_mtime_ns, run, problem)
        for name in [n for n in self._runs if n not in seen]:
            del self._runs[name]
        return [c[2] for c in self._runs.values() if c[2] is not None]

    def _iter_runs(self) -> Iterator[RunRecord]:
        runs = self._scan_runs()
        runs.sort(key=lambda r: (iso(r.started_at), r.id), reverse=True)
        yield from runs

    def _load_steps(self, run_id: str) -> list[Step]:
        try:
            _, steps, _ = self._read_run(self._run_path(run_id))
        except FileNotFoundError:
            return []
        return steps

    # -- traces --------------------------------------------------------------------------

    @staticmethod
    def _trace_doc(name: str, trace: Trace, stat: StatKey = (0, 0, -1)) -> Doc:
        return Doc(name, stat, trace.id, iso(trace.created_at), trace.goal_signature,
                   trace.demoted, (), frozenset(trace_search_text(trace).split()),
                   trace.model_dump_json())

    def _describe_trace(self, name: str, text: str) -> Doc:
        trace = parse_trace(text, str(self.traces_dir / name), default_id=name[:-3])
        return self._trace_doc(name, trace)

    def _read_trace(self, name: str) -> Trace | None:
        return self._read(self.traces_dir / name, parse_trace)

    def _write_trace(self, trace: Trace) -> None:
        name = f"{trace.id}.md"
        previous = self.traces.known_file(trace.id)  # no directory scan on every write
        path = self.traces_dir / name
        stat = atomic_write(path, render_trace(trace), durable=self.durable)
        self._remember(path, stat, trace)
        if previous is not None and previous != name:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.traces_dir / previous)
            self.traces.forget(previous)
        self.traces.note(self._trace_doc(name, trace, stat))

    def _upsert_trace(self, trace: Trace) -> None:
        self._write_trace(trace)

    def _load_trace(self, trace_id: str) -> Trace | None:
        name = f"{trace_id}.md"
        if not (self.traces_dir / name).exists():
            name = self.traces.file_for(trace_id) or name
        trace = self._read_trace(name)
        return trace if trace is not None and trace.id == trace_id else None

    def _read_docs(self, files: Sequence[str]) -> list[Trace]:
        out = []
        for file in files:
            with contextlib.suppress(TraceFormatError, OSError):
                trace = self._read_trace(file)
                if trace is not None:
                    out.append(trace)
        return out

    def _list_traces(self, limit: int | None, include_demoted: bool) -> list[Trace]:
        return self._read_docs(self.traces.newest(limit, unflagged=not include_demoted))

    def _find_traces(self, signature: str) -> list[Trace]:
        traces = self._read_docs(self.traces.files_for_key(signature))
        return [t for t in traces if t.goal_signature == signature]

    def _search_traces(self, terms: Sequence[str], limit: int) -> list[Trace]:
        return self._read_docs(self.traces.search(terms, limit))

    def _update_trace(self, trace_id: str, change: Callable[[Trace], Trace]) -> Trace | None:
        with locked(self._lock_path):
            trace = self._load_trace(trace_id)
            if trace is None:
                return None
            updated = change(trace)
            self._write_trace(updated)
            return updated

    def _delete_trace(self, trace_id: str) -> bool:
        name = self.traces.file_for(trace_id) or f"{trace_id}.md"
        try:
            os.unlink(self.traces_dir / name)
        except FileNotFoundError:
            return False
        if self.durable:
            fsync_dir(self.traces_dir)
        self.traces.forget(name)
        return True

    def _count_traces(self) -> int:
        return self.traces.count()

    # -- facts ---------------------------------------------------------------------------

    @staticmethod
    def _fact_doc(name: str, fact: Fact, stat: StatKey = (0, 0, -1)) -> Doc:
        return Doc(name, stat, fact.id, iso(fact.created_at), None, False, tuple(fact.tags),
                   frozenset(fact_search_text(fact).split()), fact.model_dump_json())

    def _describe_fact(self, name: str, text: str) -> Doc:
        fact = parse_fact(text, str(self.facts_dir / name), default_id=name[:-3])
        return self._fact_doc(name, fact)

    def _read_fact(self, name: str) -> Fact | None:
        return self._read(self.facts_dir / name, parse_fact)

    def _insert_fact(self, fact: Fact) -> None:
        name = f"{fact.id}.md"
        path = self.facts_dir / name
        stat = atomic_write(path, render_fact(fact), durable=self.durable)
        self._remember(path, stat, fact)
        self.facts.note(self._fact_doc(name, fact, stat))

    def _load_fact(self, fact_id: str) -> Fact | None:
        name = f"{fact_id}.md"
        if not (self.facts_dir / name).exists():
            name = self.facts.file_for(fact_id) or name
        fact = self._read_fact(name)
        return fact if fact is not None and fact.id == fact_id else None

    def _read_facts(self, files: Sequence[str]) -> list[Fact]:
        out = []
        for file in files:
            with contextlib.suppress(TraceFormatError, OSError):
                fact = self._read_fact(file)
                if fact is not None:
                    out.append(fact)
        return out

    def _list_facts(self, tag: str | None, limit: int | None) -> list[Fact]:
        return self._read_facts(self.facts.newest(limit, tag=tag))

    def _search_facts(self, terms: Sequence[str], limit: int) -> list[Fact]:
        return self._read_facts(self.facts.search(terms, limit))

    def _delete_fact(self, fact_id: str) -> bool:
        name = self.facts.file_for(fact_id) or f"{fact_id}.md"
        try:
            os.unlink(self.facts_dir / name)
        except FileNotFoundError:
            return False
        self.facts.forget(name)
        return True

    # -- housekeeping --------------------------------------------------------------------

    def skipped(self) -> list[Problem]:
        """The unreadable files the index knows of, without the full check ``problems``
        makes (which stats every file)."""
        found = [_with_fix(p, kind) for kind, index in (("trace", self.traces),
                                                         ("fact", self.facts))
                 for p in index.problem_list()]
        found += [c[3] for c in self._runs.values() if c[3] is not None]
        return sorted(found, key=lambda p: (p.file, p.line))

    def problems(self) -> list[Problem]:
        self.traces.refresh(full=True)  # a full check: files edited in place too
        self.facts.refresh(full=True)
        self._scan_runs()
        found = [_with_fix(p, kind) for kind, index in (("trace", self.traces),
                                                         ("fact", self.facts))
                 for p in index.problem_list()]
        found += [c[3] for c in self._runs.values() if c[3] is not None]
        return sorted(found, key=lambda p: (p.file, p.line))


def _with_fix(problem: Problem, kind: str) -> Problem:
    """An unreadable trace or fact file's problem, naming the record and how to remove it
    (its file name is its id)."""
    from dataclasses import replace

    from llmos.memory.base import REMOVE_WITH

    record_id = Path(problem.file).stem
    return replace(problem, record=f"{kind} {record_id}",
                   fix=REMOVE_WITH[kind].format(id=record_id))
