"""Bridges the SDK's hooks to the kernel: the kernel's verdict is the permission decision.

- PreToolUse: every tool Claude wants to call (built-in or plugin) goes through
  ``gateway.resolve``; allow or deny is returned to the CLI, and a deny reason reaches the
  model as the tool's error. Plugin tools (``mcp__llmos__*``) are gated when their handler
  runs ``gateway.call`` (``call_for_model``), so they are let through here and decided
  exactly once.
- Every call the model makes, built-in or plugin, is reported through one method,
  ``HookBridge.report``: it counts the call (the run's ``tool_calls``), shows it as live
  progress and lists a refusal (``context.extra["refusals"]``: tool, rule, reason).
- PostToolUse / PostToolUseFailure: outcomes go to ``gateway.observe`` (trace capture,
  audit, events).
- UserPromptSubmit: ``llmos_user_prompt_submit`` hooks add context (memory injection).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmos.calls import CallContext, Decision, ToolCall, ToolResult

MCP_SERVER = "llmos"
MCP_PREFIX = f"mcp__{MCP_SERVER}__"

Progress = Callable[[str, dict[str, Any]], None]


def _no_progress(kind: str, data: dict[str, Any]) -> None:
    return None


class HookBridge:
    """The SDK hook callbacks for one run."""

    def __init__(self, context: CallContext, progress: Progress | None = None) -> None:
        self.context = context
        self.kernel = context.kernel
        self.progress = progress or _no_progress
        self.calls: dict[str, ToolCall] = {}
        self.tool_calls = 0
        # the plugin tools' handlers (``call_for_model``) report through this bridge
        context.extra["hook_bridge"] = self

    def report(self, tool: str, tool_input: dict[str, Any], decision: Decision | None,
               result: ToolResult | None = None) -> None:
        """The one place a tool call the model made is counted, shown and, when it was
        refused, listed. ``decision`` None: the input was invalid and nothing ran."""
        self.tool_calls += 1
        verdict = decision.verdict if decision is not None else "allow"
        reason = decision.reason if decision is not None else ""
        self.progress("tool", {"tool": tool, "input": tool_input, "verdict": verdict,
                               "reason": reason})
        if decision is not None and verdict != "allow":
            self.context.extra.setdefault("refusals", []).append(
                {"tool": tool, "rule": decision.rule, "reason": decision.reason})
        elif result is not None and result.is_error:
            self.progress("tool_error", {"tool": tool, "error": result.error})

    def _call_for(self, input_data: dict[str, Any], tool_use_id: str | None) -> ToolCall:
        call_id = tool_use_id or input_data.get("tool_use_id") or uuid.uuid4().hex[:12]
        existing = self.calls.get(call_id)
        if existing is not None:
            return existing
        call = ToolCall(
            input_data.get("tool_name", ""),
            dict(input_data.get("tool_input") or {}),
            source="model",
            call_id=call_id,
        )
        self.calls[call_id] = call
        return call

    async def pre_tool_use(self, input_data: dict[str, Any], tool_use_id: str | None, _ctx: Any):
        call = self._call_for(input_data, tool_use_id)
        if call.tool.startswith(MCP_PREFIX):
            return _permission("allow", "llmos tools are checked by the kernel's gate as they run")
        decision = await self.kernel.gateway.resolve(call, self.context)
        self.report(call.tool, call.input, decision)
        if decision.verdict != "allow":
            reason = f"refused by llmos policy ({decision.rule or 'policy'}): {decision.reason}"
            await self.kernel.gateway.observe(
                call, ToolResult(is_error=True, error=reason, decision=decision), self.context
            )
            return _permission("deny", reason)
        return _permission("allow", decision.reason or "allowed by llmos policy")

    async def post_tool_use(self, input_data: dict[str, Any], tool_use_id: str | None, _ctx: Any):
        call = self._call_for(input_data, tool_use_id)
        if not call.tool.startswith(MCP_PREFIX):
            duration = (input_data.get("duration_ms") or 0) / 1000
            result = ToolResult(output=input_data.get("tool_response"), duration_s=duration)
            await self.kernel.gateway.observe(call, result, self.context)
        return {}

    async def post_tool_use_failure(
        self, input_data: dict[str, Any], tool_use_id: str | None, _ctx: Any
    ):
        call = self._call_for(input_data, tool_use_id)
        if not call.tool.startswith(MCP_PREFIX):
            result = ToolResult(is_error=True, error=str(input_data.get("error", "")),
                                duration_s=(input_data.get("duration_ms") or 0) / 1000)
            await self.kernel.gateway.observe(call, result, self.context)
            self.progress("tool_error", {"tool": call.tool, "error": result.error})
        return {}

    async def user_prompt_submit(
        self, input_data: dict[str, Any], tool_use_id: str | None, _ctx: Any
    ):
        extra = self.extra_context(str(input_data.get("prompt", "")))
        if not extra:
            return {}
        return {
            "hookSpecificOutput": {
                "hookEventName": "UserPromptSubmit",
                "additionalContext": extra,
            }
        }

    def extra_context(self, goal: str) -> str:
        parts = self.kernel.pm.hook.llmos_user_prompt_submit(goal=goal, context=self.context)
        return "\n\n".join(p for p in parts if p)

    def sdk_hooks(self) -> dict[str, list[Any]]:
        from claude_agent_sdk import HookMatcher

        return {
            "PreToolUse": [HookMatcher(hooks=[self.pre_tool_use])],
            "PostToolUse": [HookMatcher(hooks=[self.post_tool_use])],
            "PostToolUseFailure": [HookMatcher(hooks=[self.post_tool_use_failure])],
            "UserPromptSubmit": [HookMatcher(hooks=[self.user_prompt_submit])],
        }


def _permission(verdict: str, reason: str) -> dict[str, Any]:
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": verdict,
            "permissionDecisionReason": reason,
        }
    }


IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
MAX_IMAGE_BYTES = 5_000_000


def image_blocks(result: ToolResult, workspace: Path) -> list[dict[str, Any]]:
    """Images a tool's output names (``{"images": [{"path": ..., "mime_type":
    "image/png"}]}``, files beneath the workspace), as image content the model sees."""
    output = result.output
    if result.is_error or not isinstance(output, dict) or not isinstance(
            output.get("images"), list):
        return []
    blocks = []
    root = workspace.resolve()
    for image in output["images"][:4]:
        if not isinstance(image, dict) or image.get("mime_type") not in IMAGE_TYPES:
            continue
        try:
            path = Path(str(image.get("path", ""))).resolve()
            if not path.is_relative_to(root) or path.stat().st_size > MAX_IMAGE_BYTES:
                continue
            data = base64.b64encode(path.read_bytes()).decode()
        except (OSError, ValueError):
            continue
        blocks.append({"type": "image", "data": data, "mimeType": image["mime_type"]})
    return blocks


def mcp_server(context: CallContext) -> Any:
    """The kernel's tools offered to Claude as an in-process SDK MCP server."""
    from claude_agent_sdk import create_sdk_mcp_server, tool

    kernel = context.kernel
    sdk_tools = []
    for registered in kernel.tools:
        if not registered.meta.offer_to_model:
            continue

        async def handler(args: dict[str, Any], _name: str = registered.name) -> dict[str, Any]:
            return await call_for_model(context, _name, args)

        sdk_tools.append(
            tool(registered.name, registered.description, registered.input_schema())(handler)
        )
    if not sdk_tools:
        return None
    return create_sdk_mcp_server(MCP_SERVER, tools=sdk_tools)


async def call_for_model(context: CallContext, name: str, args: dict[str, Any], *,
                         images: bool = True) -> dict[str, Any]:
    """A plugin tool called by the model (an SDK MCP handler): through the whole gate,
    reported like every other call the model makes (``HookBridge.report``), answered as
    MCP content (with the images the tool's output names)."""
    from llmos.tools import ToolInputError

    kernel = context.kernel
    bridge = context.extra.get("hook_bridge")
    try:
        result = await kernel.gateway.call(ToolCall(name, dict(args), source="model"), context)
    except ToolInputError as exc:
        if isinstance(bridge, HookBridge):
            bridge.report(name, dict(args), None, ToolResult(is_error=True, error=str(exc)))
        return {"content": [{"type": "text", "text": str(exc)}], "is_error": True}
    if isinstance(bridge, HookBridge):
        bridge.report(name, dict(args), result.decision, result)
    blocks = image_blocks(result, kernel.workspace.root) if images else []
    return {"content": [{"type": "text", "text": result.text}, *blocks],
            "is_error": result.is_error}
