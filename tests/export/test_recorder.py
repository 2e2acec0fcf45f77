"""The recorder keeps what the model saw: the context plugins add to a goal is part of the
user turn, as the model received it."""

from __future__ import annotations

import json

import pytest

import llmos
from llmos.export.training import export_training
from llmos.kernel import Kernel
from llmos.runner import execute

pytestmark = pytest.mark.cli


class Brevity:
    @llmos.hookimpl
    def llmos_user_prompt_submit(self, goal, context):
        return "Context from memory: the user likes one-line answers."


async def test_injected_context_is_part_of_the_exported_user_turn(llmos_model_server,
                                                                  llmos_workspace, tmp_path):
    llmos_model_server.script.text("Paris.")
    async with Kernel(llmos_workspace, plugins={"brevity": Brevity()}, load_entry_points=False,
                      interactive=False) as kernel:
        kernel.economy.set_balance(5)
        result = await execute(kernel, "What is the capital of France?")
        assert result.success, result.error
        out = tmp_path / "a.jsonl"
        report = export_training(kernel, "anthropic", out)
    seen = json.dumps(llmos_model_server.conversation_requests[0].body["messages"])
    assert "the user likes one-line answers" in seen
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    user = line["messages"][0]["content"]
    assert [b["text"] for b in user] == [
        "What is the capital of France?",
        "Context from memory: the user likes one-line answers."]
    assert line["messages"][1]["content"] == [{"type": "text", "text": "Paris."}]
    assert report.examples == 1 and report.runs == [result.run_id]


async def test_parallel_calls_are_one_turn_and_their_results_one_message(
    llmos_model_server, llmos_workspace, tmp_path
):
    from llmos.testing.model_server import text, tool_use

    (llmos_workspace / "a.txt").write_text("A\n")
    (llmos_workspace / "b.txt").write_text("B\n")
    llmos_model_server.script.turn(
        text("Reading both."),
        tool_use("Read", {"file_path": str(llmos_workspace / "a.txt")}),
        tool_use("Read", {"file_path": str(llmos_workspace / "b.txt")}),
    ).text("A and B.")
    async with Kernel(llmos_workspace, load_entry_points=False, interactive=False) as kernel:
        kernel.economy.set_balance(5)
        result = await execute(kernel, "Read a.txt and b.txt")
        assert result.success, result.error
        export_training(kernel, "anthropic", tmp_path / "a.jsonl")
        export_training(kernel, "openai", tmp_path / "o.jsonl")
    (anthropic,) = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [m["role"] for m in anthropic["messages"]] == ["user", "assistant", "user",
                                                          "assistant"]
    assert [b["type"] for b in anthropic["messages"][1]["content"]] == [
        "text", "tool_use", "tool_use"]
    results = anthropic["messages"][2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result"]
    # parallel calls may finish in either order: each result answers its own call
    asked = {b["id"]: b["input"]["file_path"] for b in anthropic["messages"][1]["content"]
             if b["type"] == "tool_use"}
    for block in results:
        letter = "A" if asked[block["tool_use_id"]].endswith("a.txt") else "B"
        assert letter in json.dumps(block["content"])
    (openai,) = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    roles = [m["role"] for m in openai["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant"]
    assert len(openai["messages"][2]["tool_calls"]) == 2
