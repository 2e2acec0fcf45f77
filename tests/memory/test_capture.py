"""Trace capture: every tool call of a run is recorded as it happens, secrets removed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from llmos.calls import ToolCall, ToolResult

SECRET = "sk-ant-api03-capturetestsecret000000"


async def test_each_call_of_a_run_becomes_a_step(kernel, workspace: Path) -> None:
    memory = kernel.memory
    run_id = memory.start_run("Write notes.txt", "learner")
    ctx = kernel.context(run_id=run_id)
    content = "hello\nworld\n"
    await kernel.call_tool("Write", {"file_path": "notes.txt", "content": content},
                           context=ctx, source="replay")
    await kernel.call_tool("Read", {"file_path": "notes.txt"}, context=ctx, source="replay")
    steps = memory.run_steps(run_id)
    assert [(s.index, s.tool, s.source) for s in steps] == [(0, "Write", "replay"),
                                                            (1, "Read", "replay")]
    write, read = steps
    assert write.input == {"file_path": "notes.txt", "content": content}
    [written] = write.outcome.files
    assert written.path == "notes.txt"
    assert written.sha256 == hashlib.sha256(content.encode()).hexdigest()
    assert written.size == len(content)
    assert read.outcome.files == []  # read-only tools write nothing
    assert "hello" in read.outcome.excerpt and len(read.outcome.digest) == 64
    assert write.call_id and write.duration_s >= 0


async def test_calls_outside_a_run_are_not_recorded(kernel) -> None:
    await kernel.call_tool("Write", {"file_path": "a.txt", "content": "x"})
    assert kernel.memory.list_runs() == []


async def test_secrets_are_redacted_before_storage(kernel) -> None:
    memory = kernel.memory
    run_id = memory.start_run("g", "learner")
    ctx = kernel.context(run_id=run_id)
    await kernel.call_tool("Write", {"file_path": "env.sh",
                                     "content": f"export ANTHROPIC_API_KEY={SECRET}\n"},
                           context=ctx)
    await kernel.call_tool("Read", {"file_path": "env.sh"}, context=ctx)
    stored = repr(memory.run_steps(run_id))
    assert SECRET not in stored and "[REDACTED]" in stored


async def test_model_calls_observed_through_the_gate(kernel, workspace: Path) -> None:
    """Calls Claude Code made itself arrive through gateway.observe (the SDK bridge)."""
    memory = kernel.memory
    run_id = memory.start_run("Make a script", "learner")
    ctx = kernel.context(run_id=run_id)
    (workspace / "s.py").write_text("print(1)\n")
    gate = kernel.gateway
    await gate.observe(ToolCall("Write", {"file_path": str(workspace / "s.py"),
                                          "content": "print(1)\n"}, source="model"),
                       ToolResult(output={"type": "create"}), ctx)
    await gate.observe(ToolCall("Bash", {"command": "python s.py; exit 3"}, source="model"),
                       ToolResult(is_error=True, error="Exit code 3\n1"), ctx)
    await gate.observe(ToolCall("Bash", {"command": "python s.py"}, source="model"),
                       ToolResult(output={"stdout": "1\n", "stderr": "", "exit_code": 0}), ctx)
    write, failed, ok = memory.run_steps(run_id)
    assert write.outcome.files[0].path == "s.py"  # workspace-relative
    assert (failed.outcome.is_error, failed.outcome.exit_code) == (True, 3)
    assert (ok.outcome.is_error, ok.outcome.exit_code) == (False, 0)


async def test_a_refused_call_is_recorded_as_refused(workspace: Path, kernel_factory) -> None:
    async with kernel_factory(workspace, "security.backend=strict") as kernel:
        run_id = kernel.memory.start_run("g", "learner")
        result = await kernel.call_tool("Write", {"file_path": "x.txt", "content": "x"},
                                        context=kernel.context(run_id=run_id))
        assert result.is_error
        [step] = kernel.memory.run_steps(run_id)
        assert step.outcome.refused and step.outcome.is_error and step.outcome.files == []
        assert not (workspace / "x.txt").exists()


async def test_a_run_nobody_started_is_started_by_capture(kernel) -> None:
    ctx = kernel.context(run_id="adhoc-run", goal="Write a.txt", mode="CLI")
    await kernel.call_tool("Write", {"file_path": "a.txt", "content": "a"}, context=ctx)
    run = kernel.memory.get_run("adhoc-run")
    assert (run.goal, run.mode, run.status, run.step_count) == ("Write a.txt", "CLI",
                                                                 "running", 1)


async def test_recording_failures_never_break_the_call(kernel, workspace: Path) -> None:
    memory = kernel.memory
    run_id = memory.start_run("g", "learner")
    memory.finish_run(run_id, success=True)
    result = await kernel.call_tool("Write", {"file_path": "late.txt", "content": "x"},
                                    context=kernel.context(run_id=run_id))
    assert not result.is_error and (workspace / "late.txt").read_text() == "x"
    assert "RunStateError" in result.metadata["memory_error"]
    assert memory.run_steps(run_id) == []
