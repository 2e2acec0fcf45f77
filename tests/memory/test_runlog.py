"""The run log as executors use it: recording runs and keeping successful runs' traces."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmos.memory.models import Step
from llmos.memory.runlog import promote_run_to_trace, recorded_run


def _learned(memory, goal: str = "Create primes.py printing the first 10 primes",
             success: bool = True, command: str = "python primes.py") -> str:
    run_id = memory.start_run(goal, "LEARNER")
    memory.record_step(run_id, Step(tool="Write", input={"file_path": "primes.py"}))
    memory.record_step(run_id, Step(tool="Bash", input={"command": command}))
    memory.finish_run(run_id, success=success, cost_usd=0.02)
    return run_id


async def test_only_a_successful_run_is_promoted(kernel) -> None:
    memory = kernel.memory
    assert promote_run_to_trace(memory, _learned(memory, success=False)) is None
    running = memory.start_run("g", "LEARNER")
    assert promote_run_to_trace(memory, running) is None
    empty = memory.start_run("Say hi", "LEARNER")
    memory.finish_run(empty, success=True)
    assert promote_run_to_trace(memory, empty) is None  # no tool calls: nothing to replay
    assert memory.count_traces() == 0
    run_id = _learned(memory)
    trace = promote_run_to_trace(memory, run_id)
    assert trace is not None and memory.get_trace(trace.id) == trace
    assert memory.get_run(run_id).trace_id == trace.id
    assert promote_run_to_trace(memory, run_id) == trace  # idempotent
    assert memory.count_traces() == 1


async def test_the_same_solution_again_counts_as_a_use(kernel) -> None:
    memory = kernel.memory
    first = promote_run_to_trace(memory, _learned(memory))
    again = promote_run_to_trace(memory, _learned(memory))
    assert again.id == first.id and again.usage_count == 2 and again.success_count == 2
    other = promote_run_to_trace(memory, _learned(memory, command="python3 primes.py"))
    assert other.id != first.id and memory.count_traces() == 2
    # the same calls for other values are a second instance: evidence, kept apart
    instance = promote_run_to_trace(memory, _learned(
        memory, "Create primes.py printing the first 20 primes"))
    assert instance.id not in (first.id, other.id) and memory.count_traces() == 3


def test_recorded_run_finishes_the_record(tmp_path: Path) -> None:
    from llmos.testing.memory_conformance import open_sqlite

    memory = open_sqlite(tmp_path)
    with recorded_run(memory, "ok goal") as run:
        run.finish(success=True, cost_usd=0.5)
    assert memory.get_run(run.id).status == "succeeded"
    with pytest.raises(RuntimeError), recorded_run(memory, "bad goal") as run:
        raise RuntimeError("model error 529")
    assert memory.get_run(run.id).error == "RuntimeError: model error 529"
    with pytest.raises(asyncio.CancelledError), recorded_run(memory, "stopped") as run:
        raise asyncio.CancelledError
    assert memory.get_run(run.id).status == "interrupted"
    with recorded_run(memory, "forgot") as run:
        pass
    assert memory.get_run(run.id).status == "failed"


async def test_the_runner_records_runs_and_keeps_traces(kernel, workspace: Path) -> None:
    """End to end through the kernel's runner with a scripted, free mode."""
    from llmos.runner import ModeOutcome, execute

    class Scripted:
        name = "SCRIPTED"
        description = "writes a file through the gate"
        paid = False

        def bid(self, goal, candidates, kernel):
            return None  # only runs when forced with mode=

        async def run(self, goal, context, *, progress=None, **_):
            await context.kernel.call_tool(
                "Write", {"file_path": "primes.py", "content": "print([2, 3, 5])\n"},
                context=context, source="model")
            return ModeOutcome(success=True, output="done", tool_calls=1)

    kernel.dispatch_modes.add("SCRIPTED", Scripted(), "tests")
    result = await execute(kernel, "Create primes.py printing 3 primes", mode="SCRIPTED")
    run = kernel.memory.get_run(result.run_id)
    assert (run.status, run.mode, run.step_count, run.output) == ("succeeded", "SCRIPTED", 1,
                                                                  "done")
    assert result.trace_id and run.trace_id == result.trace_id
    trace = kernel.memory.get_trace(result.trace_id)
    assert trace.steps[0].outcome.files[0].path == "primes.py"
    again = await execute(kernel, "Create primes.py printing 3 primes", mode="SCRIPTED")
    assert again.trace_id == result.trace_id
    assert kernel.memory.get_trace(result.trace_id).usage_count == 2
