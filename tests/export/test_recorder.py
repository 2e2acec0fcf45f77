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
