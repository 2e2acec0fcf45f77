"""``llmos export training``: each format checked against the official SDK types (OpenAI,
Anthropic) and its rules; the TRL file loaded with ``datasets`` and rendered with the chat
template of the tokenizer file shipped here; a planted secret absent from every export."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from tests.export.conftest import SECRET

pytestmark = pytest.mark.cli

TOKENIZER = Path(__file__).parent / "tokenizer" / "tokenizer_config.json"


def check(value: Any, typed: Any) -> None:
    """``value`` against the JSON Schema of an official SDK's request types."""
    import jsonschema

    schema = TypeAdapter(typed).json_schema()
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(value))
    assert not errors, errors[0]


def export(cli, fmt: str, out: Path, *args: str) -> tuple[list[dict], dict]:
    result = cli("export", "training", "--format", fmt, "--out", str(out), "--json", *args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    return lines, json.loads(result.stdout)


def check_openai(line: dict) -> None:
    from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

    assert set(line) <= {"messages", "tools", "parallel_tool_calls"}
    check(line["messages"], list[ChatCompletionMessageParam])
    check(line["tools"], list[ChatCompletionFunctionToolParam])
    offered = {t["function"]["name"] for t in line["tools"]}
    called: set[str] = set()
    for message in line["messages"]:
        assert ("weight" in message) == (message["role"] == "assistant")
        if message["role"] == "assistant":
            assert message["weight"] in (0, 1)
            for call in message.get("tool_calls", ()):
                assert isinstance(call["function"]["arguments"], str)
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                assert call["function"]["name"] in offered
                called.add(call["id"])
        if message["role"] == "tool":
            assert message["tool_call_id"] in called  # answers a call made before it


def check_anthropic(line: dict) -> None:
    from anthropic.types import MessageParam, ToolParam

    check(line["messages"], list[MessageParam])
    check(line["tools"], list[ToolParam])
    roles = [m["role"] for m in line["messages"]]
    assert roles[0] == "user" and all(a != b for a, b in itertools.pairwise(roles))
    uses = {b["id"] for m in line["messages"] for b in m["content"] if b["type"] == "tool_use"}
    results = {b["tool_use_id"] for m in line["messages"] for b in m["content"]
               if b["type"] == "tool_result"}
    assert results == uses


def test_openai_export_is_chat_fine_tuning_jsonl(two_runs, export_cli, tmp_path):
    lines, report = export(export_cli, "openai", tmp_path / "openai.jsonl")
    assert report["examples"] == 2 == len(lines)
    for line in lines:
        check_openai(line)
    good, failed = lines
    roles = [m["role"] for m in good["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant",
                     "tool", "assistant", "tool", "assistant"]
    assistant = [m for m in good["messages"] if m["role"] == "assistant"]
    # the failed Read and its retry weigh 0; the rest of a successful run weighs 1
    assert [m["weight"] for m in assistant] == [1, 0, 0, 1, 1]
    assert assistant[0]["content"] == "I'll write the notes first."
    assert json.loads(assistant[3]["tool_calls"][0]["function"]["arguments"]) == {
        "command": "cat notes.txt"}
    assert all(m["weight"] == 0 for m in failed["messages"] if m["role"] == "assistant")
    assert report["zero_weight_turns"] == 2 + sum(1 for m in failed["messages"]
                                                  if m["role"] == "assistant")


def test_successful_only_and_since_leave_runs_out_and_say_why(two_runs, export_cli, tmp_path):
    lines, report = export(export_cli, "openai", tmp_path / "ok.jsonl", "--successful-only")
    assert len(lines) == 1 and report["skipped"] == {"failed (--successful-only)": 1}
    lines, report = export(export_cli, "anthropic", tmp_path / "later.jsonl",
                           "--since", "2999-01-01")
    assert lines == [] and report["skipped"] == {"older than --since": 2}
    bad = export_cli("export", "training", "--format", "openai", "--out",
                    str(tmp_path / "x.jsonl"), "--since", "last tuesday")
    assert bad.exit_code == 2 and "--since 'last tuesday'" in bad.output
    assert "Traceback" not in bad.output


def test_anthropic_export_is_lossless_messages(two_runs, export_cli, tmp_path):
    lines, _ = export(export_cli, "anthropic", tmp_path / "anthropic.jsonl")
    for line in lines:
        check_anthropic(line)
    good = lines[0]
    assert good["metadata"]["success"] and good["metadata"]["mode"] == "LEARNER"
    first = good["messages"][1]["content"]
    assert [b["type"] for b in first] == ["text", "tool_use"]
    failed_read = good["messages"][4]["content"][0]
    assert failed_read["type"] == "tool_result" and failed_read["is_error"] is True
    assert {"Write", "Read", "Bash"} <= {t["name"] for t in good["tools"]}
    write = next(t for t in good["tools"] if t["name"] == "Write")
    assert write["input_schema"]["required"] == ["file_path", "content"]


def render(template: str, messages: list, tools: list) -> tuple[str, list[str]]:
    """The chat template rendered as transformers does (sandboxed Jinja, trim/lstrip
    blocks, tojson as json.dumps, {% generation %} marking the assistant's tokens), with
    the generated spans returned beside the text."""
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    start, end = "\x01", "\x02"

    class Generation(Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_mark"), [], [], body).set_lineno(lineno)

        def _mark(self, caller):
            return f"{start}{caller()}{end}"

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation])
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    text = env.from_string(template).render(messages=messages, tools=tools,
                                            add_generation_prompt=False)
    spans = [part.split(end)[0] for part in text.split(start)[1:]]
    return text.replace(start, "").replace(end, ""), spans


def test_trl_export_loads_with_datasets_and_renders_with_the_chat_template(
    two_runs, export_cli, tmp_path
):
    import datasets

    out = tmp_path / "trl.jsonl"
    lines, _ = export(export_cli, "trl", out)
    call = lines[0]["messages"][2]["tool_calls"][0]
    assert isinstance(call["function"]["arguments"], dict)  # objects, not JSON strings
    dataset = datasets.load_dataset("json", data_files=str(out), split="train")
    assert dataset.num_rows == 2 and {"messages", "tools"} <= set(dataset.column_names)
    row = dataset[0]
    template = json.loads(TOKENIZER.read_text())["chat_template"]
    text, generated = render(template, row["messages"], row["tools"])
    assert text.startswith("<|im_start|>system\nYou are running inside llmos")
    assert '"name": "Bash"' in text  # the tools column reached the template
    # arguments come back exactly (no keys of other calls filled with nulls)
    assert '<tool_call>{"name": "Bash", "arguments": {"command": "cat notes.txt"}}' in text
    assert "<tool_response name=\"Bash\">\ntoken=[REDACTED]\nhello\n</tool_response>" in text
    # assistant_only_loss trains exactly the assistant turns
    assert len(generated) == 5
    assert generated[0].startswith("I'll write the notes first.<tool_call>")
    assert not any("tool_response" in g or "Save the notes" in g for g in generated)


def test_a_planted_secret_is_absent_from_every_export(two_runs, export_cli, tmp_path):
    for fmt in ("openai", "trl", "anthropic"):
        out = tmp_path / f"{fmt}.jsonl"
        export(export_cli, fmt, out)
        written = out.read_text()
        assert SECRET not in written and SECRET[4:20] not in written
        assert "[REDACTED]" in written  # it was there, in the goal, a file and an output
