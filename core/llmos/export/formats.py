"""One kept conversation as one training example, in each format.

- ``anthropic``: the Messages API shape as kept (lossless ``tool_use``/``tool_result``
  blocks), with ``system``, ``tools`` and ``metadata``.
- ``openai``: chat fine-tuning JSONL: ``messages`` (system, user, assistant with
  ``tool_calls`` whose ``function.arguments`` is a JSON string, ``tool`` messages with
  ``tool_call_id``), a top-level ``tools`` list of functions and ``weight`` 0 on an
  assistant turn that failed or was retried (every turn of a failed run).
- ``trl``: the same conversation with ``arguments`` as objects and ``tools`` as its own
  column, for TRL's ``SFTTrainer`` (``assistant_only_loss`` trains the assistant turns).

Thinking blocks and images cannot be said in the chat formats; they are counted in
``Example.dropped`` and left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("openai", "trl", "anthropic")


@dataclass
class Example:
    """A conversation to export, with what the run record says about it."""

    run_id: str
    system: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    success: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, what: str) -> None:
        self.dropped[what] = self.dropped.get(what, 0) + 1


def failed_calls(messages: list[dict[str, Any]]) -> set[str]:
    """Ids of tool calls that failed (an error result) or were made again later with the
    same input (retried)."""
    errors = {b["tool_use_id"] for m in messages if m["role"] == "user"
              for b in m["content"] if b.get("type") == "tool_result" and b.get("is_error")}
    calls = [(b["id"], b["name"], json.dumps(b["input"], sort_keys=True))
             for m in messages if m["role"] == "assistant"
             for b in m["content"] if b.get("type") == "tool_use"]
    retried = {cid for i, (cid, name, args) in enumerate(calls)
               if any((n, a) == (name, args) for _, n, a in calls[i + 1:])}
    return errors | retried


def result_text(content: Any, example: Example) -> str:
    """A tool result's content as text (images are left out and counted)."""
    if isinstance(content, str):
        return content
    parts = []
    for item in content or ():
        if isinstance(item, dict) and item.get("type") == "text":
            parts.append(str(item.get("text", "")))
        else:
            example.drop("non-text tool result part")
    return "\n".join(parts)


def _functions(example: Example) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t["name"], "description":
             t.get("description", ""), "parameters": t.get("input_schema") or
             {"type": "object"}}} for t in example.tools]


def chat_messages(example: Example, *, arguments_as_string: bool, weights: bool
                  ) -> list[dict[str, Any]]:
    """The conversation as chat messages (OpenAI's roles; TRL uses the same)."""
    bad = failed_calls(example.messages)
    names = {b["id"]: b["name"] for m in example.messages if m["role"] == "assistant"
             for b in m["content"] if b.get("type") == "tool_use"}
    out: list[dict[str, Any]] = []
    if example.system:
        out.append({"role": "system", "content": example.system})
    for message in example.messages:
        if message["role"] == "assistant":
            turn = _assistant(message, example, bad, arguments_as_string, weights)
            if turn.get("content") or turn.get("tool_calls"):
                out.append(turn)
            else:  # only thinking: nothing a chat format can say
                example.drop("empty assistant turn")
            continue
        texts = []
        for block in message["content"]:
            kind = block.get("type")
            if kind == "tool_result":
                tool = {"role": "tool", "tool_call_id": block["tool_use_id"],
                        "content": result_text(block.get("content"), example)}
                if not arguments_as_string:
                    tool["name"] = names.get(block["tool_use_id"], "")
                out.append(tool)
            elif kind == "text":
                texts.append(block["text"])
            else:
                example.drop(f"user {kind} block")
        if texts:
            out.append({"role": "user", "content": "\n".join(texts)})
    return out


def _assistant(message: dict[str, Any], example: Example, bad: set[str],
               arguments_as_string: bool, weights: bool) -> dict[str, Any]:
    texts, calls = [], []
    for block in message["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            args = json.dumps(block["input"], ensure_ascii=False) if arguments_as_string \
                else block["input"]
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": args}})
        else:
            example.drop(f"assistant {kind} block")
    turn: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) or None}
    if calls:
        turn["tool_calls"] = calls
    if not arguments_as_string and turn["content"] is None:
        turn["content"] = ""
    if weights:
        good = example.success and not any(c["id"] in bad for c in calls)
        turn["weight"] = 1 if good else 0
    return turn


def to_openai(example: Example) -> dict[str, Any]:
    line: dict[str, Any] = {"messages": chat_messages(example, arguments_as_string=True,
                                                      weights=True)}
    if example.tools:
        line["tools"] = _functions(example)
    return line


def to_trl(example: Example) -> dict[str, Any]:
    return {"messages": chat_messages(example, arguments_as_string=False, weights=False),
            "tools": _functions(example)}


def to_anthropic(example: Example) -> dict[str, Any]:
    line: dict[str, Any] = {"system": example.system, "messages": example.messages,
                            "tools": example.tools, "metadata": example.metadata}
    return line


CONVERTERS = {"openai": to_openai, "trl": to_trl, "anthropic": to_anthropic}
