"""The memory-backend contract.

A driver subclasses ``MemoryBackend`` and implements the storage primitives (the
``_``-prefixed abstract methods). The public methods are shared: they validate ids,
redact secrets before anything reaches storage, stamp times, apply the statistics rule
and turn a dead owner's ``running`` run into ``interrupted``. So every driver behaves
alike, and the conformance suite (``llmos.testing.memory_conformance``) proves it.

Drivers are registered through ``llmos_register_memory_backends``::

    @llmos.hookimpl
    def llmos_register_memory_backends(register):
        register("mine", lambda kernel: MyMemory(...), description="...")
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from llmos.errors import OperationFailed
from llmos.goals import analyze_goal
from llmos.memory.models import (
    ID_PATTERN,
    TRACE_OUTCOMES,
    Fact,
    RunOwner,
    RunRecord,
    RunStatus,
    Step,
    StepOutcome,
    Trace,
    TraceOutcome,
    apply_outcome,
    check_id,
    excerpt,
    new_id,
    utcnow,
)
from llmos.memory.owner import current_owner, owner_alive
from llmos.memory.redaction import redact_obj, redact_text
from llmos.memory.text import query_terms


class RunNotFound(LookupError):
    """No run with that id."""


class TraceNotFound(LookupError):
    """No trace with that id."""


class FactNotFound(LookupError):
    """No fact with that id."""


class RunStateError(ValueError):
    """The run exists but cannot take this change (already finished, or already exists)."""


@dataclass(frozen=True)
class Problem:
    """A stored record that could not be read: where, what is wrong with it and, when the
    record has an id, which record (``"trace abc"``) and how to remove it."""

    file: str
    line: int
    problem: str
    record: str | None = None
    fix: str | None = None

    def __str__(self) -> str:
        about = self.record or ""
        if self.fix:
            about += f"{'; ' if about else ''}remove it with `{self.fix}`"
        return f"{self.file}:{self.line}: {self.problem}" + (f" ({about})" if about else "")

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "problem": self.problem,
                "record": self.record, "fix": self.fix}


REMOVE_WITH = {"trace": "llmos traces rm {id}", "fact": "llmos memory facts rm {id}"}
"""The command that removes an unreadable record of each kind."""


class UnreadableRecord(OperationFailed):
    """A stored record exists but cannot be read (bad JSON, failed validation)."""


def validation_reason(exc: Exception) -> str:
    """A one-line reason for a record that failed to parse or validate."""
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(part) for part in first.get("loc", ())) or "record"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{loc}: {first.get('msg', 'invalid')}{more}"
    return f"{type(exc).__name__}: {exc}"[:300]


def record_problem(where: str, kind: str, record_id: str | None, exc: Exception,
                   line: int = 0) -> Problem:
    """The problem report for an unreadable record of ``kind`` (trace, fact, run, step)."""
    fix = REMOVE_WITH[kind].format(id=record_id) if record_id and kind in REMOVE_WITH else None
    return Problem(where, line, f"cannot be read: {validation_reason(exc)}",
                   record=f"{kind} {record_id or '?'}", fix=fix)


M = TypeVar("M", bound=BaseModel)


def decode_record(model: type[M], raw: str | bytes | dict[str, Any]) -> M:
    """A stored record parsed and validated (raises ValidationError or ValueError)."""
    if isinstance(raw, dict):
        return model.model_validate(raw)
    return model.model_validate_json(raw)


def decode_many(model: type[M], rows: Iterable[tuple[str | None, Any]], *, kind: str,
                where: str, problems: dict[tuple[str, str], Problem] | None = None
                ) -> list[M]:
    """The readable records of ``(id, raw)`` rows; the others are skipped (and reported
    in ``problems`` when given), so one bad record never hides the good ones."""
    out: list[M] = []
    for record_id, raw in rows:
        try:
            out.append(decode_record(model, raw))
        except (ValidationError, ValueError, TypeError, RecursionError) as exc:
            if problems is not None:
                problems[(kind, str(record_id))] = record_problem(where, kind, record_id, exc)
    return out


def decode_one(model: type[M], raw: Any, *, kind: str, record_id: str, where: str) -> M:
    """One stored record, or UnreadableRecord saying what is wrong and how to remove it."""
    try:
        return decode_record(model, raw)
    except (ValidationError, ValueError, TypeError, RecursionError) as exc:
        problem = record_problem(where, kind, record_id, exc)
        hint = f"; remove it with `{problem.fix}`" if problem.fix else ""
        raise UnreadableRecord(f"{kind} {record_id} in {where} {problem.problem}{hint}"
                               ) from None


def redact_step(step: Step) -> Step:
    clean = redact_obj({"input": step.input, "excerpt": step.outcome.excerpt})
    outcome = step.outcome.model_copy(update={"excerpt": clean["excerpt"]})
    return step.model_copy(update={"input": clean["input"], "outcome": outcome})


def redact_trace(trace: Trace) -> Trace:
    """The goal and the steps redacted (the goal's derived fields are recomputed on save)."""
    clean = redact_obj({
        "goal": trace.goal_text,
        "answer": trace.answer,
        "steps": [{"input": s.input, "excerpt": s.outcome.excerpt} for s in trace.steps],
    })
    steps = [
        s.model_copy(update={"input": c["input"], "outcome": s.outcome.model_copy(
            update={"excerpt": c["excerpt"]})})
        for s, c in zip(trace.steps, clean["steps"], strict=True)
    ]
    return trace.model_copy(update={"goal_text": clean["goal"], "answer": clean["answer"],
                                    "steps": steps})


def _known(record_id: str, error: type[LookupError], what: str) -> str:
    """An id that could name a record; anything else (``../x``) is simply not found."""
    if not isinstance(record_id, str) or not ID_PATTERN.match(record_id):
        raise error(f"no {what} {record_id!r}")
    return record_id


def effective_status(run: RunRecord) -> RunRecord:
    """A running run whose owning process is gone reads as interrupted."""
    if run.status == "running" and not owner_alive(run.owner):
        return run.model_copy(
            update={"status": "interrupted", "success": False,
                    "error": run.error or "the process running it stopped before it finished"}
        )
    return run


class MemoryBackend(abc.ABC):
    """L2 run log, L3 execution traces and L4 facts, behind one driver."""

    name: ClassVar[str] = ""

    # ------------------------------------------------------------------ L2: run log

    def start_run(
        self,
        goal: str,
        mode: str = "learner",
        *,
        run_id: str | None = None,
        owner: RunOwner | None = None,
        parent_run: str | None = None,
    ) -> str:
        """Record that a run started (durably, before it does anything); return its id.
        ``owner`` is the process running it (default: this one); ``parent_run`` the run
        it is a sub-goal of."""
        run_id = check_id(run_id, "run id") if run_id is not None else new_id()
        record = RunRecord(
            id=run_id,
            goal=redact_text(goal),
            mode=mode,
            started_at=utcnow(),
            owner=owner or current_owner(),
            parent_run=parent_run,
        )
        self._insert_run(record)
        return run_id

    def record_step(self, run_id: str, step: Step) -> Step:
        """Append a tool call to a running run; returns it with its ``index`` (from 0)."""
        run = self.get_run(run_id)
        if run.status != "running":
            raise RunStateError(f"run {run_id} is {run.status}; it takes no more steps")
        clean = redact_step(step)
        clean = clean.model_copy(
            update={"outcome": clean.outcome.model_copy(
                update={"excerpt": excerpt(clean.outcome.excerpt)})}
        )
        return self._append_step(run_id, clean)

    def finish_run(
        self,
        run_id: str,
        *,
        success: bool,
        status: RunStatus | None = None,
        cost_usd: float = 0.0,
        input_tokens: int = 0,
        output_tokens: int = 0,
        duration_s: float | None = None,
        error: str | None = None,
        output: str | None = None,
        trace_id: str | None = None,
    ) -> RunRecord:
        """Record how a run ended. ``status`` defaults to succeeded / failed from
        ``success``; pass ``"interrupted"`` for a run stopped by the user."""
        run = self._load_run(_known(run_id, RunNotFound, "run"))
        if run is None:
            raise RunNotFound(f"no run {run_id!r}")
        if run.status != "running":
            raise RunStateError(f"run {run_id} already finished ({run.status})")
        status = status or ("succeeded" if success else "failed")
        if status == "running":
            raise ValueError("finish_run needs a final status, not 'running'")
        finished = utcnow()
        if duration_s is None:
            duration_s = max(0.0, (finished - run.started_at).total_seconds())
        done = run.model_copy(
            update={
                "status": status,
                "success": bool(success) and status == "succeeded",
                "cost_usd": float(cost_usd),
                "input_tokens": int(input_tokens),
                "output_tokens": int(output_tokens),
                "duration_s": float(duration_s),
                "finished_at": finished,
                "error": redact_text(error) if error is not None else None,
                "output": redact_text(output) if output is not None else None,
                "trace_id": trace_id if trace_id is not None else run.trace_id,
            }
        )
        self._update_run(done)
        return self.get_run(run_id)

    def set_run_trace(self, run_id: str, trace_id: str) -> None:
        """Link a finished run to the trace learned from (or replayed for) it."""
        run = self._load_run(_known(run_id, RunNotFound, "run"))
        if run is None:
            raise RunNotFound(f"no run {run_id!r}")
        self._update_run(run.model_copy(update={"trace_id": trace_id}))

    def get_run(self, run_id: str) -> RunRecord:
        run = self._load_run(_known(run_id, RunNotFound, "run"))
        if run is None:
            raise RunNotFound(f"no run {run_id!r}")
        return effective_status(run)

    def list_runs(self, *, limit: int | None = 50, status: RunStatus | None = None
                  ) -> list[RunRecord]:
        """Runs, newest first, optionally only those with ``status``."""
        out: list[RunRecord] = []
        for run in self._iter_runs():
            run = effective_status(run)
            if status is not None and run.status != status:
                continue
            out.append(run)
            if limit is not None and len(out) >= limit:
                break
        return out

    def run_steps(self, run_id: str) -> list[Step]:
        """A run's recorded steps, in order."""
        if self._load_run(_known(run_id, RunNotFound, "run")) is None:
            raise RunNotFound(f"no run {run_id!r}")
        return self._load_steps(run_id)

    # ------------------------------------------------------------------ L3: traces

    def save_trace(self, trace: Trace) -> Trace:
        """Insert or replace a trace (by id), secrets redacted; returns what was stored.
        ``normalized_goal``, ``goal_signature`` and ``slots`` are derived from
        ``goal_text`` (``llmos.goals``), whatever the trace said."""
        check_id(trace.id, "trace id")
        clean = redact_trace(Trace.model_validate(trace.model_dump()))
        goal = analyze_goal(clean.goal_text)
        clean = clean.model_copy(update={"normalized_goal": goal.normalized,
                                         "goal_signature": goal.signature,
                                         "slots": list(goal.slots)})
        for i, step in enumerate(clean.steps):
            if step.index != i:
                clean.steps[i] = step.model_copy(update={"index": i})
        self._upsert_trace(clean)
        return clean

    def trace_from_run(self, run_id: str, *, include_errors: bool = True) -> Trace:
        """A trace built from a run's recorded steps (not saved), with the run's final
        answer. Refused calls never ran and are left out; failed calls stay (a Read of a
        missing file is part of what the run saw) unless ``include_errors`` is False."""
        run = self.get_run(run_id)
        steps = [
            s for s in self.run_steps(run_id)
            if not s.outcome.refused and (include_errors or not s.outcome.is_error)
        ]
        steps = [s.model_copy(update={"index": i}) for i, s in enumerate(steps)]
        goal = analyze_goal(run.goal)
        now = utcnow()
        return Trace(
            goal_text=run.goal,
            normalized_goal=goal.normalized,
            goal_signature=goal.signature,
            slots=list(goal.slots),
            steps=steps,
            created_at=now,
            last_used=now,
            estimated_cost_usd=run.cost_usd,
            estimated_time_secs=run.duration_s or 0.0,
            mode=run.mode,
            tools_used=list(dict.fromkeys(s.tool for s in steps)),
            source_run=run.id,
            answer=run.output or "",
        )

    def get_trace(self, trace_id: str) -> Trace:
        trace = self._load_trace(_known(trace_id, TraceNotFound, "trace"))
        if trace is None:
            raise TraceNotFound(f"no trace {trace_id!r}")
        return trace

    def list_traces(self, *, limit: int | None = None, include_demoted: bool = True
                    ) -> list[Trace]:
        """Traces, newest first."""
        return self._list_traces(limit, include_demoted)

    def find_traces(self, *, signature: str) -> list[Trace]:
        """Traces whose goal signature is ``signature``: best rated, then most recent first."""
        traces = self._find_traces(signature)
        traces.sort(key=lambda t: (t.created_at, t.id), reverse=True)
        traces.sort(key=lambda t: t.success_rating, reverse=True)
        return traces

    def search_traces(self, text: str, *, limit: int = 10) -> list[Trace]:
        """Full-text search over goals and trace text: any term, as a prefix; most
        relevant first. A query with no searchable term finds nothing."""
        terms = query_terms(text)
        if not terms or limit <= 0:
            return []
        return self._search_traces(terms, limit)

    def update_trace_stats(self, trace_id: str, outcome: TraceOutcome, *,
                           at: datetime | None = None, reason: str | None = None) -> Trace:
        """Count one more use of a trace (atomically) and return it updated; ``reason``
        says why when the use demotes it."""
        if outcome not in TRACE_OUTCOMES:
            raise ValueError(f"unknown trace outcome {outcome!r}; use {', '.join(TRACE_OUTCOMES)}")
        _known(trace_id, TraceNotFound, "trace")
        trace = self._update_trace(
            trace_id, lambda t: apply_outcome(t, outcome, at, reason=redact_text(reason or "")
                                              or None))
        if trace is None:
            raise TraceNotFound(f"no trace {trace_id!r}")
        return trace

    def delete_trace(self, trace_id: str) -> None:
        if not self._delete_trace(_known(trace_id, TraceNotFound, "trace")):
            raise TraceNotFound(f"no trace {trace_id!r}")

    def count_traces(self) -> int:
        return self._count_traces()

    # ------------------------------------------------------------------ L4: facts

    def add_fact(self, text: str, *, tags: Iterable[str] = (), source_run: str | None = None
                 ) -> Fact:
        text = redact_text(text.strip())
        if not text:
            raise ValueError("a fact needs some text")
        clean_tags = list(dict.fromkeys(t.strip() for t in tags if t and t.strip()))
        fact = Fact(text=text, tags=clean_tags, source_run=source_run)
        self._insert_fact(fact)
        return fact

    def get_fact(self, fact_id: str) -> Fact:
        fact = self._load_fact(_known(fact_id, FactNotFound, "fact"))
        if fact is None:
            raise FactNotFound(f"no fact {fact_id!r}")
        return fact

    def list_facts(self, *, tag: str | None = None, limit: int | None = None) -> list[Fact]:
        """Facts, newest first, optionally only those tagged ``tag``."""
        return self._list_facts(tag, limit)

    def search_facts(self, text: str, *, limit: int = 10) -> list[Fact]:
        """Full-text search over facts and their tags, like ``search_traces``."""
        terms = query_terms(text)
        if not terms or limit <= 0:
            return []
        return self._search_facts(terms, limit)

    def delete_fact(self, fact_id: str) -> None:
        if not self._delete_fact(_known(fact_id, FactNotFound, "fact")):
            raise FactNotFound(f"no fact {fact_id!r}")

    # ------------------------------------------------------------------ housekeeping

    def problems(self) -> list[Problem]:
        """Stored records that could not be read (and were skipped)."""
        return []

    def skipped(self) -> list[Problem]:
        """The unreadable records the reads so far skipped: cheap, for a warning after a
        listing (``problems`` checks every record). Drivers whose ``problems`` is cheap
        need not override this."""
        return self.problems()

    def close(self) -> None:  # noqa: B027 - optional for drivers
        """Release files and connections."""

    def __enter__(self) -> MemoryBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ driver primitives

    @abc.abstractmethod
    def _insert_run(self, run: RunRecord) -> None:
        """Store a new run durably; raise RunStateError when the id exists."""

    @abc.abstractmethod
    def _append_step(self, run_id: str, step: Step) -> Step:
        """Durably append a step with the next index; return it with the index set."""

    @abc.abstractmethod
    def _update_run(self, run: RunRecord) -> None:
        """Durably replace a run's fields (never its steps)."""

    @abc.abstractmethod
    def _load_run(self, run_id: str) -> RunRecord | None:
        """The run as stored (with ``step_count``), or None."""

    @abc.abstractmethod
    def _iter_runs(self) -> Iterator[RunRecord]:
        """All runs, newest ``started_at`` first."""

    @abc.abstractmethod
    def _load_steps(self, run_id: str) -> list[Step]: ...

    @abc.abstractmethod
    def _upsert_trace(self, trace: Trace) -> None: ...

    @abc.abstractmethod
    def _load_trace(self, trace_id: str) -> Trace | None: ...

    @abc.abstractmethod
    def _list_traces(self, limit: int | None, include_demoted: bool) -> list[Trace]:
        """Newest ``created_at`` first (ties: id descending)."""

    @abc.abstractmethod
    def _find_traces(self, signature: str) -> list[Trace]: ...

    @abc.abstractmethod
    def _search_traces(self, terms: Sequence[str], limit: int) -> list[Trace]:
        """The best ``limit`` traces for the terms, by the rules of ``llmos.memory.text``
        (tokens of ``trace_search_text``; ``selective_terms``, ``score``; ties newest
        first, then by id), so that every driver returns the same list."""

    @abc.abstractmethod
    def _update_trace(self, trace_id: str, change: Any) -> Trace | None:
        """Atomically (across processes) replace a trace by ``change(trace)``; None when
        there is no such trace."""

    @abc.abstractmethod
    def _delete_trace(self, trace_id: str) -> bool: ...

    @abc.abstractmethod
    def _count_traces(self) -> int: ...

    @abc.abstractmethod
    def _insert_fact(self, fact: Fact) -> None: ...

    @abc.abstractmethod
    def _load_fact(self, fact_id: str) -> Fact | None: ...

    @abc.abstractmethod
    def _list_facts(self, tag: str | None, limit: int | None) -> list[Fact]:
        """Newest ``created_at`` first (ties: id descending)."""

    @abc.abstractmethod
    def _search_facts(self, terms: Sequence[str], limit: int) -> list[Fact]:
        """Like ``_search_traces``, over the tokens of ``fact_search_text``."""

    @abc.abstractmethod
    def _delete_fact(self, fact_id: str) -> bool: ...


__all__ = [
    "FactNotFound",
    "MemoryBackend",
    "Problem",
    "RunNotFound",
    "RunStateError",
    "StepOutcome",
    "TraceNotFound",
    "UnreadableRecord",
    "effective_status",
    "redact_step",
    "redact_trace",
]
