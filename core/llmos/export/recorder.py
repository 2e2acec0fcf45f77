"""Keeps what the model saw and said during one model session, for training data.

``learn`` (``llmos.cortex.learner``) makes one recorder per session and passes it every
message the SDK yields; at the end the conversation is redacted and stored beside the
run record (``ConversationStore``). Kept in the Anthropic Messages shape, which is
lossless: the system prompt llmos gave, the user turn (with the context plugins added to
it), each assistant turn's blocks
(text, thinking, tool_use) and the tool_result blocks the model read, plus the JSON
Schemas of the tools it was offered. Subagent messages (inside a tool call) are left out.
Recording never breaks a run: a failure is logged and the session is simply not kept.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from llmos.memory.redaction import redact_obj

if TYPE_CHECKING:
    from llmos.calls import CallContext

log = logging.getLogger("llmos.export")

MCP_PREFIX = "mcp__llmos__"


def _system_text(options: Any) -> str:
    """What llmos told the model about its job (Claude Code's preset prompt is its own)."""
    prompt = getattr(options, "system_prompt", None)
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, dict):
        return str(prompt.get("append") or "")
    return ""


class ConversationRecorder:
    """One model session's conversation, built from the SDK's messages as they arrive."""

    def __init__(self, context: CallContext, prompt: str, options: Any) -> None:
        self.context = context
        self.system = _system_text(options)
        self.messages: list[dict[str, Any]] = [
            {"role": "user", "content": [{"type": "text", "text": prompt}]}]
        self.offered: list[str] = []
        self.result: dict[str, Any] = {}
        self._last_id: str | None = None
        self.broken: str | None = None
        self._listen_for_context(options)

    def _listen_for_context(self, options: Any) -> None:
        """What ``llmos_user_prompt_submit`` hooks add to the goal (memory injection)
        reaches the model beside it; keep it as a second text block of the user turn."""
        matchers = (getattr(options, "hooks", None) or {}).get("UserPromptSubmit") or []
        for matcher in matchers:
            matcher.hooks = [self._keeping_context(fn) for fn in matcher.hooks]

    def _keeping_context(self, hook: Any) -> Any:
        async def keep(input_data: Any, tool_use_id: Any, ctx: Any) -> Any:
            answer = await hook(input_data, tool_use_id, ctx)
            added = ((answer or {}).get("hookSpecificOutput") or {}).get("additionalContext")
            if isinstance(added, str) and added:
                self.messages[0]["content"].append({"type": "text", "text": added})
            return answer

        return keep

    def observe(self, message: Any) -> None:
        """Take one SDK message into the conversation (never raises)."""
        if self.broken:
            return
        try:
            self._observe(message)
        except Exception as exc:
            self.broken = f"{type(exc).__name__}: {exc}"
            log.warning("conversation of run %s not kept: %s", self.context.run_id, exc)

    def _observe(self, message: Any) -> None:
        from claude_agent_sdk import AssistantMessage, ResultMessage, SystemMessage, UserMessage

        if isinstance(message, SystemMessage):
            if message.subtype == "init":
                self.offered = [str(t) for t in message.data.get("tools") or []]
        elif isinstance(message, AssistantMessage):
            if message.parent_tool_use_id is None:
                self._assistant(message)
        elif isinstance(message, UserMessage):
            if message.parent_tool_use_id is None and isinstance(message.content, list):
                self._tool_results(message.content)
        elif isinstance(message, ResultMessage):
            self.result = {"subtype": message.subtype, "is_error": message.is_error,
                           "num_turns": message.num_turns}

    def _assistant(self, message: Any) -> None:
        from claude_agent_sdk import TextBlock, ThinkingBlock, ToolUseBlock

        blocks: list[dict[str, Any]] = []
        for block in message.content:
            if isinstance(block, TextBlock):
                blocks.append({"type": "text", "text": block.text})
            elif isinstance(block, ThinkingBlock):
                blocks.append({"type": "thinking", "thinking": block.thinking,
                               "signature": block.signature or ""})
            elif isinstance(block, ToolUseBlock):
                blocks.append({"type": "tool_use", "id": block.id, "name": block.name,
                               "input": dict(block.input)})
        if not blocks:
            return
        last = self.messages[-1]
        # Claude Code sends each block of one model message as its own AssistantMessage
        if last["role"] == "assistant" and message.message_id and \
                message.message_id == self._last_id:
            last["content"].extend(blocks)
        else:
            self.messages.append({"role": "assistant", "content": blocks})
        self._last_id = message.message_id

    def _tool_results(self, content: list[Any]) -> None:
        from claude_agent_sdk import ToolResultBlock

        blocks = [{"type": "tool_result", "tool_use_id": b.tool_use_id,
                   "content": b.content if b.content is not None else "",
                   "is_error": bool(b.is_error)}
                  for b in content if isinstance(b, ToolResultBlock)]
        if not blocks:
            return
        last = self.messages[-1]
        if last["role"] == "user" and all(b.get("type") == "tool_result"
                                          for b in last["content"]):
            last["content"].extend(blocks)
        else:
            self.messages.append({"role": "user", "content": blocks})
        self._last_id = None

    def tools(self) -> list[dict[str, Any]]:
        """The offered tools whose JSON Schema llmos knows (its own tools, and Claude
        Code's file and shell tools, which llmos implements for replays), and every tool
        the model called (a permissive schema where none is known)."""
        registry = self.context.kernel.tools
        used = [b["name"] for m in self.messages if m["role"] == "assistant"
                for b in m["content"] if b["type"] == "tool_use"]
        out: dict[str, dict[str, Any]] = {}
        for name in [*self.offered, *used]:
            if name in out:
                continue
            tool = registry.get(name.removeprefix(MCP_PREFIX))
            if tool is not None:
                out[name] = {"name": name, "description": tool.description,
                             "input_schema": tool.input_schema()}
            elif name in used:
                out[name] = {"name": name, "description": f"{name} (Claude Code tool)",
                             "input_schema": {"type": "object"}}
        return list(out.values())

    def save(self) -> None:
        """Store the conversation, redacted, beside the run (never raises)."""
        context = self.context
        if self.broken or context.run_id is None or len(self.messages) < 2:
            return
        try:
            from llmos.export.store import ConversationStore

            clean = redact_obj({"system": self.system, "messages": self.messages,
                                "tools": self.tools()})
            ConversationStore(context.kernel.db).add(
                context.run_id, mode=str(context.extra.get("mode", "")),
                simulated=bool(context.extra.get("simulated")), system=clean["system"],
                tools=clean["tools"], messages=clean["messages"], result=self.result)
        except Exception as exc:
            log.warning("conversation of run %s not kept: %s", context.run_id, exc)
