"""The conformance suite for memory backends: what every driver must do, as pytest tests.

A third-party backend runs it against itself by subclassing::

    from llmos.testing.memory_conformance import MemoryBackendConformance

    class TestMyMemory(MemoryBackendConformance):
        subprocess_factory = "my_pack.memory:open_store"  # optional: enables the kill test

        def make_backend(self, path):
            return MyMemory(path)  # ``path``: an empty directory the store may use

``make_backend(path)`` must return a backend on the store at ``path``; called twice with
the same path it must return two handles on the same store (persistence and concurrency
tests rely on that). Alternatively override the ``backend`` fixture; the tests that need
a second handle are then skipped. ``subprocess_factory`` names an importable
``module:function`` taking the same path, used to run a writer in a real subprocess
that is killed with SIGKILL mid-write.

The built-in drivers pass it: ``sqlite`` (``open_sqlite``) and ``markdown``
(``open_markdown``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from llmos.goals import analyze_goal, goal_signature
from llmos.memory.base import (
    FactNotFound,
    MemoryBackend,
    RunNotFound,
    RunStateError,
    TraceNotFound,
)
from llmos.memory.models import (
    FileDigest,
    RunOwner,
    Step,
    StepOutcome,
    Trace,
)
from llmos.memory.owner import current_owner

SECRET = "sk-ant-api03-CONFORMANCEsecret0123456789"


def open_sqlite(path: Path) -> MemoryBackend:
    from llmos.memory.sqlite import SqliteMemory

    path.mkdir(parents=True, exist_ok=True)
    return SqliteMemory(path / "memory.db")


def open_markdown(path: Path) -> MemoryBackend:
    from llmos.memory.markdown import MarkdownMemory

    return MarkdownMemory(path)


def make_trace(goal: str = "Create primes.py printing the first 10 primes", *,
               steps: list[Step] | None = None, **fields: Any) -> Trace:
    """A valid trace for ``goal`` (tests and benchmarks build on it)."""
    analyzed = analyze_goal(goal)
    steps = steps if steps is not None else [
        Step(index=0, tool="Write",
             input={"file_path": "primes.py", "content": "print([2, 3, 5, 7])\n"},
             outcome=StepOutcome(files=[FileDigest(path="primes.py", sha256="0" * 64, size=20)])),
        Step(index=1, tool="Bash", input={"command": "python primes.py"},
             outcome=StepOutcome(excerpt="[2, 3, 5, 7]\n", exit_code=0)),
    ]
    data: dict[str, Any] = {
        "goal_text": goal,
        "normalized_goal": analyzed.normalized,
        "goal_signature": analyzed.signature,
        "slots": list(analyzed.slots),
        "steps": steps,
        "tools_used": list(dict.fromkeys(s.tool for s in steps)),
        "estimated_cost_usd": 0.0123,
        "estimated_time_secs": 4.5,
    }
    data.update(fields)
    return Trace(**data)


# Inputs that are hard to store and read back exactly.
NASTY_INPUTS: list[dict[str, Any]] = [
    {"content": "line 1\n    indented\n\n```\nnot a fence\n```\n---\n# not a heading\n"},
    {"content": "  leading spaces\ttab\r\nwindows line\rcarriage", "empty": ""},
    {"yes": "yes", "no": "no", "null": "null", "num": "1.0", "date": "2024-01-01",
     "colon": "a: b", "hash": "# c", "star": "*x", "amp": "&y", "quote": "'\"", "bang": "!z"},
    {"unicode": "héllo wörld — 你好 🎉", "nested": {"list": [1, 2.5, None, True, "x"],
                                                     "deep": {"k": [{"a": []}, {}]}}},
    {"int": -7, "float": 1e-12, "big": 2**53, "bool": False, "none": None, "list": []},
    {"trailing": "ends with spaces   \nand a line  ", "only_newlines": "\n\n"},
]


class MemoryBackendConformance:
    """Subclass and implement ``make_backend`` (see the module docstring)."""

    subprocess_factory: ClassVar[str | None] = None

    def make_backend(self, path: Path) -> MemoryBackend:
        raise NotImplementedError

    @pytest.fixture
    def store_path(self, tmp_path: Path) -> Path:
        path = tmp_path / "store"
        path.mkdir()
        return path

    @pytest.fixture
    def backend(self, store_path: Path) -> Iterator[MemoryBackend]:
        try:
            backend = self.make_backend(store_path)
        except NotImplementedError:
            pytest.fail("implement make_backend(path) or override the backend fixture")
        yield backend
        backend.close()

    def reopen(self, store_path: Path) -> MemoryBackend:
        try:
            return self.make_backend(store_path)
        except NotImplementedError:
            pytest.skip("needs make_backend(path) to open a second handle")

    def _run(self, backend: MemoryBackend, goal: str = "Create primes.py printing the "
             "first 10 primes", *, steps: int = 2, success: bool = True, **finish: Any) -> str:
        run_id = backend.start_run(goal, "learner")
        backend.record_step(run_id, Step(tool="Write", input={
            "file_path": "primes.py", "content": "print([2, 3, 5, 7])\n"},
            outcome=StepOutcome(files=[FileDigest(path="primes.py", sha256="a" * 64)])))
        if steps > 1:
            backend.record_step(run_id, Step(tool="Bash", input={"command": "python primes.py"},
                                             outcome=StepOutcome(exit_code=0, excerpt="ok")))
        for i in range(2, steps):
            backend.record_step(run_id, Step(tool="Read", input={"file_path": f"f{i}.txt"}))
        backend.finish_run(run_id, success=success, **finish)
        return run_id

    # ------------------------------------------------------------------ the run log

    def test_start_run_is_recorded_as_running(self, backend: MemoryBackend) -> None:
        run_id = backend.start_run("Say hello", "learner")
        run = backend.get_run(run_id)
        assert (run.id, run.goal, run.mode, run.status) == (run_id, "Say hello", "learner",
                                                            "running")
        assert run.success is None and run.finished_at is None and run.step_count == 0
        assert run.owner == current_owner()
        assert abs((datetime.now(UTC) - run.started_at).total_seconds()) < 60

    def test_start_run_with_a_chosen_id(self, backend: MemoryBackend) -> None:
        assert backend.start_run("g", "learner", run_id="run-1.a_b") == "run-1.a_b"
        with pytest.raises(RunStateError):
            backend.start_run("again", "learner", run_id="run-1.a_b")
        assert backend.get_run("run-1.a_b").goal == "g"

    @pytest.mark.parametrize("bad", ["", "../escape", "a/b", ".hidden", "x" * 200, "sp ace"])
    def test_unsafe_run_ids_are_refused(self, backend: MemoryBackend, bad: str) -> None:
        with pytest.raises(ValueError):
            backend.start_run("g", "learner", run_id=bad)
        with pytest.raises(RunNotFound):
            backend.get_run(bad)

    def test_steps_are_numbered_in_order(self, backend: MemoryBackend) -> None:
        run_id = backend.start_run("g", "learner")
        stored = [backend.record_step(run_id, Step(tool=f"T{i}", input={"i": i}, duration_s=0.5,
                                                   source="model", call_id=f"c{i}"))
                  for i in range(5)]
        assert [s.index for s in stored] == [0, 1, 2, 3, 4]
        steps = backend.run_steps(run_id)
        assert steps == stored
        assert [s.input["i"] for s in steps] == [0, 1, 2, 3, 4]
        assert backend.get_run(run_id).step_count == 5

    def test_finish_run_records_the_outcome(self, backend: MemoryBackend) -> None:
        run_id = backend.start_run("g", "learner")
        done = backend.finish_run(run_id, success=True, cost_usd=0.25, input_tokens=100,
                                  output_tokens=20, output="all done", duration_s=1.5)
        assert done.status == "succeeded" and done.success is True
        assert (done.cost_usd, done.input_tokens, done.output_tokens) == (0.25, 100, 20)
        assert done.output == "all done" and done.duration_s == 1.5
        assert done.finished_at is not None and done.finished_at >= done.started_at
        assert backend.get_run(run_id) == done

    def test_failed_and_interrupted_runs(self, backend: MemoryBackend) -> None:
        failed = backend.start_run("g", "learner")
        run = backend.finish_run(failed, success=False, error="boom")
        assert (run.status, run.success, run.error) == ("failed", False, "boom")
        assert run.duration_s is not None and run.duration_s >= 0
        stopped = backend.start_run("g", "learner")
        run = backend.finish_run(stopped, success=False, status="interrupted")
        assert run.status == "interrupted"

    def test_a_finished_run_takes_no_more_changes(self, backend: MemoryBackend) -> None:
        run_id = self._run(backend)
        with pytest.raises(RunStateError):
            backend.finish_run(run_id, success=False)
        with pytest.raises(RunStateError):
            backend.record_step(run_id, Step(tool="Bash"))
        assert backend.get_run(run_id).status == "succeeded"

    def test_unknown_runs_are_not_found(self, backend: MemoryBackend) -> None:
        with pytest.raises(RunNotFound):
            backend.get_run("nope")
        with pytest.raises(RunNotFound):
            backend.run_steps("nope")
        with pytest.raises(RunNotFound):
            backend.record_step("nope", Step(tool="Bash"))
        with pytest.raises(RunNotFound):
            backend.finish_run("nope", success=True)
        with pytest.raises(RunNotFound):
            backend.set_run_trace("nope", "t")

    def test_list_runs_newest_first_with_filters(self, backend: MemoryBackend) -> None:
        ids = []
        for i in range(4):
            ids.append(backend.start_run(f"goal {i}", "learner"))
            time.sleep(0.002)
        backend.finish_run(ids[0], success=True)
        backend.finish_run(ids[1], success=False)
        assert [r.id for r in backend.list_runs()] == ids[::-1]
        assert [r.id for r in backend.list_runs(limit=2)] == ids[:1:-1]
        assert [r.id for r in backend.list_runs(status="running")] == [ids[3], ids[2]]
        assert [r.id for r in backend.list_runs(status="succeeded")] == [ids[0]]
        assert [r.id for r in backend.list_runs(status="failed")] == [ids[1]]
        assert backend.list_runs(status="interrupted") == []

    def test_a_run_whose_process_died_reads_as_interrupted(self, backend: MemoryBackend
                                                           ) -> None:
        child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                               capture_output=True, text=True, check=True)
        dead = RunOwner(pid=int(child.stdout), host=current_owner().host, started=None)
        run_id = backend.start_run("g", "learner", owner=dead)
        run = backend.get_run(run_id)
        assert run.status == "interrupted" and run.success is False and run.error
        assert [r.id for r in backend.list_runs(status="interrupted")] == [run_id]
        assert backend.list_runs(status="running") == []

    def test_runs_of_live_or_remote_owners_stay_running(self, backend: MemoryBackend) -> None:
        alive = RunOwner(pid=os.getppid(), host=current_owner().host)
        remote = RunOwner(pid=1, host="another-host.invalid")
        assert backend.get_run(backend.start_run("g", "x", owner=alive)).status == "running"
        assert backend.get_run(backend.start_run("g", "x", owner=remote)).status == "running"

    def test_set_run_trace_links_a_run(self, backend: MemoryBackend) -> None:
        run_id = self._run(backend)
        backend.set_run_trace(run_id, "trace-1")
        assert backend.get_run(run_id).trace_id == "trace-1"
        assert backend.get_run(run_id).status == "succeeded"

    def test_secrets_are_redacted_in_the_run_log(self, backend: MemoryBackend) -> None:
        run_id = backend.start_run(f"deploy with key {SECRET}", "learner")
        backend.record_step(run_id, Step(
            tool="Bash", input={"command": f"curl -H 'Authorization: Bearer {SECRET}'",
                                "env": {"DB_PASSWORD": "hunter2"}},
            outcome=StepOutcome(excerpt=f"token={SECRET}")))
        backend.finish_run(run_id, success=False, error=f"failed with {SECRET}",
                           output=f"password=hunter2 {SECRET}")
        stored = repr(backend.get_run(run_id)) + repr(backend.run_steps(run_id))
        assert SECRET not in stored and "hunter2" not in stored
        assert "[REDACTED]" in stored

    def test_everything_survives_reopening(self, backend: MemoryBackend, store_path: Path
                                           ) -> None:
        run_id = self._run(backend)
        trace = backend.save_trace(backend.trace_from_run(run_id))
        fact = backend.add_fact("pytest lives in .venv/bin", tags=["python"])
        backend.close()
        again = self.reopen(store_path)
        try:
            assert again.get_run(run_id).status == "succeeded"
            assert len(again.run_steps(run_id)) == 2
            assert again.get_trace(trace.id) == trace
            assert again.get_fact(fact.id) == fact
            assert [t.id for t in again.search_traces("primes")] == [trace.id]
        finally:
            again.close()

    # ------------------------------------------------------------------ traces

    def test_trace_from_run_is_built_from_its_steps(self, backend: MemoryBackend) -> None:
        goal = "Create primes.py printing the first 10 primes"
        run_id = backend.start_run(goal, "learner")
        backend.record_step(run_id, Step(tool="Write", input={"file_path": "primes.py"},
                                         outcome=StepOutcome(files=[FileDigest(
                                             path="primes.py", sha256="b" * 64)])))
        backend.record_step(run_id, Step(tool="Bash", input={"command": "pyhton primes.py"},
                                         outcome=StepOutcome(is_error=True, exit_code=127)))
        backend.record_step(run_id, Step(tool="Bash", input={"command": "rm -rf /"},
                                         outcome=StepOutcome(is_error=True, refused=True)))
        backend.record_step(run_id, Step(tool="Bash", input={"command": "python primes.py"},
                                         outcome=StepOutcome(exit_code=0)))
        backend.finish_run(run_id, success=True, cost_usd=0.05, duration_s=3.0,
                           output="Created primes.py.")
        trace = backend.trace_from_run(run_id)
        assert trace.goal_text == goal and trace.source_run == run_id
        assert trace.goal_signature == goal_signature(goal)
        assert trace.normalized_goal == "create <file.py> printing first <num> primes"
        assert [(s.kind, s.value) for s in trace.slots] == [("file", "primes.py"),
                                                            ("num", "10")]
        # the failed call stays (it is part of what the run saw); the refused one never ran
        assert [s.input.get("command") for s in trace.steps] == [
            None, "pyhton primes.py", "python primes.py"]
        assert [s.index for s in trace.steps] == [0, 1, 2]
        assert trace.answer == "Created primes.py."
        assert trace.steps[0].outcome.files[0].sha256 == "b" * 64
        assert trace.tools_used == ["Write", "Bash"]
        assert (trace.estimated_cost_usd, trace.estimated_time_secs) == (0.05, 3.0)
        assert (trace.usage_count, trace.success_count, trace.success_rating) == (1, 1, 1.0)
        assert len(backend.trace_from_run(run_id, include_errors=False).steps) == 2
        with pytest.raises(TraceNotFound):
            backend.get_trace(trace.id)  # built, not saved

    def test_save_and_get_a_trace(self, backend: MemoryBackend) -> None:
        trace = make_trace(last_used=datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
        stored = backend.save_trace(trace)
        assert stored == trace
        assert backend.get_trace(trace.id) == trace
        assert backend.count_traces() == 1

    def test_goal_fields_are_derived_from_the_goal(self, backend: MemoryBackend) -> None:
        stale = make_trace("Create primes.py").model_copy(
            update={"goal_text": "Delete primes.py"})  # signature of another goal
        stored = backend.save_trace(stale)
        assert stored.goal_signature == goal_signature("Delete primes.py")
        assert stored.normalized_goal == "delete <file.py>"
        assert [s.value for s in stored.slots] == ["primes.py"]
        assert backend.get_trace(stale.id) == stored
        assert backend.find_traces(signature=goal_signature("Create primes.py")) == []

    @pytest.mark.parametrize("payload", NASTY_INPUTS, ids=range(len(NASTY_INPUTS)))
    def test_step_inputs_read_back_exactly(self, backend: MemoryBackend, payload: dict) -> None:
        step = Step(index=0, tool="Write", input=payload,
                    outcome=StepOutcome(excerpt=str(payload.get("content", ""))))
        trace = make_trace("Write the file", steps=[step])
        backend.save_trace(trace)
        assert backend.get_trace(trace.id).steps[0].input == payload
        assert backend.get_trace(trace.id) == trace

    def test_odd_goal_texts_read_back_exactly(self, backend: MemoryBackend) -> None:
        for goal in ["multi\nline goal: with `code` and --- dashes", "  spaced  ", "# hash",
                     "yes", "émoji 🎉 goal", 'quote "it" and \'it\'']:
            trace = backend.save_trace(make_trace(goal))
            assert backend.get_trace(trace.id) == trace

    def test_save_trace_replaces_by_id(self, backend: MemoryBackend) -> None:
        trace = backend.save_trace(make_trace())
        changed = make_trace("Create fib.py printing fibonacci", id=trace.id, mode="mixed")
        backend.save_trace(changed)
        assert backend.get_trace(trace.id) == changed
        assert backend.count_traces() == 1
        assert backend.search_traces("first") == []  # the old goal is no longer indexed
        assert [t.id for t in backend.search_traces("fibonacci")] == [trace.id]

    def test_missing_traces_are_not_found(self, backend: MemoryBackend) -> None:
        for call in (lambda: backend.get_trace("nope"), lambda: backend.delete_trace("nope"),
                     lambda: backend.update_trace_stats("nope", "success"),
                     lambda: backend.get_trace("../../etc/passwd")):
            with pytest.raises(TraceNotFound):
                call()

    def test_list_traces_newest_first(self, backend: MemoryBackend) -> None:
        base = datetime(2025, 1, 1, tzinfo=UTC)
        ids = [backend.save_trace(make_trace(f"goal number {i}",
                                             created_at=base + timedelta(hours=i))).id
               for i in range(4)]
        backend.save_trace(backend.get_trace(ids[1]).model_copy(update={"demoted": True}))
        assert [t.id for t in backend.list_traces()] == ids[::-1]
        assert [t.id for t in backend.list_traces(limit=2)] == [ids[3], ids[2]]
        assert [t.id for t in backend.list_traces(include_demoted=False)] == [ids[3], ids[2],
                                                                            ids[0]]

    def test_find_traces_by_exact_signature(self, backend: MemoryBackend) -> None:
        old = backend.save_trace(make_trace("Create primes.py printing the first 10 primes",
                                            created_at=datetime(2025, 1, 1, tzinfo=UTC)))
        new = backend.save_trace(make_trace("create primes.py printing the first 20 primes",
                                            created_at=datetime(2025, 2, 1, tzinfo=UTC)))
        weak = backend.save_trace(make_trace("Create primes.py printing the first 30 primes",
                                             success_rating=0.5))
        backend.save_trace(make_trace("Delete primes.py"))
        signature = goal_signature("Create primes.py printing the first 99 primes")
        assert [t.id for t in backend.find_traces(signature=signature)] == [new.id, old.id,
                                                                            weak.id]
        assert backend.find_traces(signature=goal_signature("Delete notes.py"))[0].goal_text \
            == "Delete primes.py"
        assert backend.find_traces(signature=goal_signature("Copy primes.py")) == []
        assert backend.find_traces(signature=goal_signature("Delete primes.txt")) == []
        assert backend.find_traces(signature="0" * 16) == []

    def test_search_traces(self, backend: MemoryBackend) -> None:
        primes = backend.save_trace(make_trace("Create primes.py printing the first 10 primes"))
        fib = backend.save_trace(make_trace("Compute fibonacci numbers into fib.txt",
                                            steps=[Step(index=0, tool="Bash",
                                                        input={"command": "seq 10 | paste"})]))
        both = backend.save_trace(make_trace("Compare primes with fibonacci numbers"))
        assert {t.id for t in backend.search_traces("primes")} == {primes.id, both.id}
        assert {t.id for t in backend.search_traces("PRIME")} == {primes.id, both.id}  # prefix
        assert backend.search_traces("fibonacci primes")[0].id == both.id  # most terms first
        assert [t.id for t in backend.search_traces("paste")] == [fib.id]  # step inputs
        assert {t.id for t in backend.search_traces("bash")} >= {fib.id}  # tool names
        assert len(backend.search_traces("numbers", limit=1)) == 1
        assert backend.search_traces("zebra") == []

    @pytest.mark.parametrize("query", ["", "   ", "the of and", '"', "AND OR NOT", "*", "(",
                                       "NEAR(a b)", "col:val", "-x", "^", "{x}"])
    def test_search_never_fails_on_odd_queries(self, backend: MemoryBackend, query: str) -> None:
        backend.save_trace(make_trace())
        backend.add_fact("a fact")
        assert isinstance(backend.search_traces(query), list)
        assert isinstance(backend.search_facts(query), list)
        if not query.strip() or query == "the of and":
            assert backend.search_traces(query) == []

    def test_update_trace_stats(self, backend: MemoryBackend) -> None:
        trace = backend.save_trace(make_trace())
        when = datetime(2025, 6, 1, tzinfo=UTC)
        up = backend.update_trace_stats(trace.id, "success", at=when)
        assert (up.usage_count, up.success_count, up.failure_count) == (2, 2, 0)
        assert up.success_rating == 1.0 and up.last_used == when
        spotted = backend.update_trace_stats(trace.id, "diverged")
        assert (spotted.usage_count, spotted.failure_count, spotted.divergence_count) == (3, 0, 1)
        assert spotted.success_rating == 1.0  # spotting another world is no fault
        down = backend.update_trace_stats(trace.id, "failed")
        assert (down.usage_count, down.failure_count) == (4, 1)
        assert down.success_rating == pytest.approx(2 / 3, abs=1e-6) and not down.demoted
        assert backend.get_trace(trace.id) == down
        with pytest.raises(ValueError):
            backend.update_trace_stats(trace.id, "meh")  # type: ignore[arg-type]

    def test_a_trace_that_keeps_diverging_is_demoted(self, backend: MemoryBackend) -> None:
        trace = backend.save_trace(make_trace())
        for outcome in ("failed", "diverged", "failed", "failed"):
            trace = backend.update_trace_stats(trace.id, outcome, reason="step 2 failed")
        assert trace.demoted and trace.success_rating == 0.25
        assert "2 failed replays" in trace.demoted_reason and "step 2 failed" in (
            trace.demoted_reason)
        assert trace.id not in {t.id for t in backend.list_traces(include_demoted=False)}
        trace = backend.update_trace_stats(trace.id, "success")
        assert trace.demoted  # sticks

    def test_a_refused_replay_demotes_at_once_with_its_reason(
            self, backend: MemoryBackend) -> None:
        trace = backend.save_trace(make_trace())
        trace = backend.update_trace_stats(trace.id, "refused", reason="writes /etc/passwd")
        assert trace.demoted and trace.demoted_reason == "writes /etc/passwd"
        assert backend.get_trace(trace.id).demoted_reason == "writes /etc/passwd"

    def test_concurrent_stat_updates_are_not_lost(self, backend: MemoryBackend,
                                                  store_path: Path) -> None:
        trace = backend.save_trace(make_trace())
        handles = [self.reopen(store_path) for _ in range(3)]
        errors: list[BaseException] = []

        def bump(handle: MemoryBackend) -> None:
            try:
                for _ in range(10):
                    handle.update_trace_stats(trace.id, "success")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=bump, args=(h,)) for h in handles]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for h in handles:
            h.close()
        assert not errors
        assert backend.get_trace(trace.id).usage_count == 31

    def test_delete_trace(self, backend: MemoryBackend) -> None:
        keep = backend.save_trace(make_trace("Create primes.py"))
        gone = backend.save_trace(make_trace("Create primes.py"))
        backend.delete_trace(gone.id)
        with pytest.raises(TraceNotFound):
            backend.get_trace(gone.id)
        assert [t.id for t in backend.search_traces("primes")] == [keep.id]
        assert [t.id for t in backend.find_traces(signature=keep.goal_signature)] == [keep.id]
        assert backend.count_traces() == 1
        with pytest.raises(TraceNotFound):
            backend.delete_trace(gone.id)

    def test_secrets_are_redacted_in_traces(self, backend: MemoryBackend) -> None:
        trace = make_trace(f"use {SECRET}", steps=[Step(
            index=0, tool="Bash", input={"command": f"export API_KEY={SECRET}",
                                         "password": "hunter2"},
            outcome=StepOutcome(excerpt=SECRET))])
        stored = backend.save_trace(trace)
        text = repr(backend.get_trace(trace.id))
        assert SECRET not in text and "hunter2" not in text
        assert stored == backend.get_trace(trace.id)

    def test_saved_steps_are_renumbered(self, backend: MemoryBackend) -> None:
        steps = [Step(index=7, tool="A"), Step(index=None, tool="B")]
        trace = backend.save_trace(make_trace("g", steps=steps))
        assert [s.index for s in backend.get_trace(trace.id).steps] == [0, 1]

    # ------------------------------------------------------------------ facts

    def test_facts(self, backend: MemoryBackend) -> None:
        a = backend.add_fact("  The test suite runs with pytest -q  ", tags=["python", "tests"],
                             source_run="run-1")
        time.sleep(0.002)
        b = backend.add_fact("Deploys go through the staging cluster first",
                             tags=["deploy", "deploy", " "])
        assert a.text == "The test suite runs with pytest -q" and a.source_run == "run-1"
        assert b.tags == ["deploy"]
        assert backend.get_fact(a.id) == a
        assert [f.id for f in backend.list_facts()] == [b.id, a.id]
        assert [f.id for f in backend.list_facts(limit=1)] == [b.id]
        assert [f.id for f in backend.list_facts(tag="python")] == [a.id]
        assert backend.list_facts(tag="nope") == []
        assert [f.id for f in backend.search_facts("pytest")] == [a.id]
        assert [f.id for f in backend.search_facts("deploy")] == [b.id]  # text and tags
        assert [f.id for f in backend.search_facts("tests")] == [a.id]  # tag only
        backend.delete_fact(a.id)
        with pytest.raises(FactNotFound):
            backend.get_fact(a.id)
        with pytest.raises(FactNotFound):
            backend.delete_fact(a.id)
        assert backend.search_facts("pytest") == []

    def test_facts_need_text_and_lose_secrets(self, backend: MemoryBackend) -> None:
        with pytest.raises(ValueError):
            backend.add_fact("   ")
        fact = backend.add_fact(f"the staging key is {SECRET}")
        assert SECRET not in backend.get_fact(fact.id).text

    def test_a_fresh_store_has_no_problems(self, backend: MemoryBackend) -> None:
        self._run(backend)
        assert backend.problems() == []

    # ------------------------------------------------------------------ durability

    def test_a_killed_writer_loses_no_committed_record(self, store_path: Path) -> None:
        if not self.subprocess_factory:
            pytest.skip("set subprocess_factory = 'module:function' to run the kill test")
        committed = run_and_kill_writer(self.subprocess_factory, store_path, records=40)
        check_committed(self.reopen(store_path), committed)


_WRITER = """
import importlib, sys
from pathlib import Path
from llmos.memory.models import Step, StepOutcome
module, _, name = sys.argv[1].partition(":")
memory = getattr(importlib.import_module(module), name)(Path(sys.argv[2]))
i = 0
while True:
    run_id = memory.start_run(f"Create file_{i}.txt with {i} lines", "learner")
    print("run", run_id, flush=True)
    step = memory.record_step(run_id, Step(tool="Write", input={
        "file_path": f"file_{i}.txt", "content": "x" * 3000 + str(i)}, outcome=StepOutcome()))
    print("step", run_id, step.index, flush=True)
    memory.finish_run(run_id, success=True, cost_usd=0.001)
    print("finished", run_id, flush=True)
    trace = memory.save_trace(memory.trace_from_run(run_id))
    print("trace", trace.id, flush=True)
    memory.update_trace_stats(trace.id, "success")
    print("used", trace.id, flush=True)
    fact = memory.add_fact(f"fact number {i}", tags=["n"])
    print("fact", fact.id, flush=True)
    i += 1
"""


def run_and_kill_writer(factory: str, path: Path, *, records: int = 40,
                        timeout_s: float = 60.0) -> list[list[str]]:
    """Run a writer in a subprocess, SIGKILL it once it has committed ``records`` records,
    and return every commit it reported (``[kind, id, ...]``)."""
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, factory, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(lines) < records:
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"the writer exited early:\n{err}")
            lines.append(line)
            if time.monotonic() > deadline:
                raise AssertionError("the writer is too slow")
    finally:
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
    lines += rest.splitlines(keepends=True)
    return [line.split() for line in lines if line.endswith("\n")]


def check_committed(memory: MemoryBackend, committed: list[list[str]]) -> None:
    """Every reported commit is readable, and the store as a whole still reads."""
    try:
        finished = {c[1] for c in committed if c[0] == "finished"}
        uses: dict[str, int] = {}
        for kind, record_id, *rest in committed:
            if kind == "run":
                run = memory.get_run(record_id)
                assert run.status in ("succeeded", "interrupted")
                # a finish the writer reported is durable; one it was killed before
                # reporting may or may not have committed
                if record_id in finished:
                    assert run.status == "succeeded"
            elif kind == "step":
                assert len(memory.run_steps(record_id)) > int(rest[0])
            elif kind in ("trace", "used"):
                memory.get_trace(record_id)
                uses[record_id] = 2 if kind == "used" else uses.get(record_id, 1)
            elif kind == "fact":
                memory.get_fact(record_id)
        for trace_id, count in uses.items():
            assert memory.get_trace(trace_id).usage_count >= count
        assert len(memory.list_runs(limit=None)) >= len({c[1] for c in committed
                                                         if c[0] == "run"})
        assert memory.count_traces() >= len(uses)
        memory.list_traces()
        memory.list_facts()
        memory.search_traces("file")
        memory.search_facts("fact")
    finally:
        memory.close()


__all__ = [
    "NASTY_INPUTS",
    "MemoryBackendConformance",
    "check_committed",
    "make_trace",
    "open_markdown",
    "open_sqlite",
    "run_and_kill_writer",
]
