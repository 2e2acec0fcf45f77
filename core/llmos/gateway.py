"""The tool gateway: the one gate every tool call passes, whoever makes it.

validate input (the policy and the ``llmos_pre_tool_use`` hooks see the validated,
converted input the tool will run with) → security backend + hooks (deny wins) → resolve
``ask`` with a human or deny ("allow for this run" covers the same tool with the same
normalized input, never the whole tool) → run under the watchdog → cap the output at
``kernel.max_output_bytes`` → ``llmos_post_tool_use`` hooks → events. Calls the model
makes to Claude Code's own tools use ``resolve`` and ``observe``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from llmos.calls import CallContext, Decision, ToolCall, ToolResult, strictest
from llmos.tools import ToolError, ToolInputError
from llmos.watchdog import DeadlineExceeded, watch

if TYPE_CHECKING:
    from llmos.kernel import Kernel

Asker = Callable[[ToolCall, Decision], Awaitable[str] | str]
"""Asks a human about a call; answers "once", "run" (allow for this run) or "deny"."""


class UnknownTool(LookupError):
    pass


#: Fields of Claude Code's own tools that describe a call without changing what it does.
_CLAUDE_NOTE_FIELDS = {"Bash": ("description", "timeout", "run_in_background")}


def scope_key(call: ToolCall, kernel: Kernel) -> str:
    """What an "allow for this run" answer covers: the tool and its normalized input
    (``note`` fields such as a description left out, command strings stripped)."""
    tool = kernel.tools.get(call.tool)
    if tool is not None:
        notes = {name for name, kind in tool.input_kinds().items() if kind == "note"}
    else:
        notes = set(_CLAUDE_NOTE_FIELDS.get(call.tool, ()))
    normalized = {key: value.strip() if isinstance(value, str) and key == "command" else value
                  for key, value in call.input.items() if key not in notes}
    return f"{call.tool}:{input_digest(normalized)}"


def input_digest(data: Any) -> str:
    """A short, stable digest of a tool input, for audit records."""
    blob = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class ToolGateway:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.asker: Asker | None = None

    async def decide(self, call: ToolCall, context: CallContext) -> Decision:
        """The strictest verdict of the security backend and every pre_tool_use hook."""
        unbounded = input_problem(call)
        if unbounded is not None:  # nothing judges (or records) an input it cannot read
            decision = Decision.deny(unbounded, "input.bounds")
            self.kernel.bus.publish("policy.decision", run_id=context.run_id, tool=call.tool,
                                    source=call.source, input_digest="",
                                    decision=decision.verdict, rule=decision.rule,
                                    reason=decision.reason)
            return decision
        decisions: list[Decision] = []
        try:
            backend = self.kernel.security
            decisions.append(await _maybe_await(backend.decide(call, context)))
        except Exception as exc:  # a policy that cannot decide must not allow
            decisions.append(
                Decision.deny(f"security backend failed: {type(exc).__name__}: {exc}",
                              "security.error")
            )
        try:
            results = self.kernel.pm.hook.llmos_pre_tool_use(call=call, context=context)
            for result in results:
                result = await _maybe_await(result)
                if result is not None:
                    decisions.append(result)
        except Exception as exc:
            decisions.append(
                Decision.deny(f"a pre_tool_use hook failed: {type(exc).__name__}: {exc}",
                              "hook.error")
            )
        decision = strictest(decisions) or Decision.deny("no policy decided", "policy.none")
        record = {
            "run_id": context.run_id,
            "tool": call.tool,
            "source": call.source,
            "input_digest": input_digest(call.input),
            "decision": decision.verdict,
            "rule": decision.rule,
            "reason": decision.reason,
        }
        self.kernel.audit.record(**record)
        self.kernel.bus.publish("policy.decision", **record)
        return decision

    async def resolve(self, call: ToolCall, context: CallContext) -> Decision:
        """``decide``, then turn ``ask`` into allow or deny: a human answers, or nobody can."""
        decision = await self.decide(call, context)
        if decision.verdict != "ask":
            return decision
        approved: set[str] = context.extra.setdefault("approved_calls", set())
        key = scope_key(call, self.kernel)
        if key in approved:
            return Decision.allow(f"approved for this run ({decision.reason})", decision.rule)
        if not context.interactive or self.asker is None:
            return Decision.deny(
                f"needs approval ({decision.reason}) but nobody is there to approve it; "
                "run interactively or change the security policy",
                decision.rule,
            )
        answer = await _maybe_await(self.asker(call, decision))
        if answer == "run":
            approved.add(key)
        if answer in ("once", "run"):
            return Decision.allow(f"approved by the user ({decision.reason})", decision.rule)
        return Decision.deny(f"refused by the user ({decision.reason})", decision.rule)

    async def observe(self, call: ToolCall, result: ToolResult, context: CallContext) -> None:
        """Cap the output (Claude Code's own tools' results too), run the post_tool_use
        hooks and publish the outcome."""
        limit = self.kernel.config.kernel.max_output_bytes
        if not result.metadata.get("truncated_bytes"):
            result.output, cut = cap_output(result.output, limit)
            if cut:
                result.metadata["truncated_bytes"] = cut
        try:
            self.kernel.pm.hook.llmos_post_tool_use(call=call, result=result, context=context)
        except Exception as exc:
            result.metadata["post_hook_error"] = f"{type(exc).__name__}: {exc}"
        self.kernel.bus.publish(
            "tool.finished",
            run_id=context.run_id,
            tool=call.tool,
            source=call.source,
            call_id=call.call_id,
            is_error=result.is_error,
            duration_s=result.duration_s,
        )

    async def call(self, call: ToolCall, context: CallContext) -> ToolResult:
        """Run a registered tool through the whole gate. Never raises for tool failures."""
        tool = self.kernel.tools.get(call.tool)
        if tool is None:
            known = ", ".join(t.name for t in self.kernel.tools) or "none"
            raise UnknownTool(f"no tool named {call.tool!r}; registered tools: {known}")
        unbounded = input_problem(call)  # size, nesting, text: before anything reads it
        if unbounded is not None:
            raise ToolInputError(unbounded)
        # raises ToolInputError before anything runs (an unknown field included; a
        # replayed Claude Code call may carry fields Claude Code added, see validate)
        args = tool.validate(call.input, strict=call.source != "replay")
        # the policy and the hooks judge exactly what the tool will run with
        call = ToolCall(call.tool, validated_input(args), source=call.source,
                        call_id=call.call_id)
        decision = await self.resolve(call, context)
        if decision.verdict != "allow":
            result = ToolResult(
                is_error=True,
                error=f"refused by policy ({decision.rule or 'policy'}): {decision.reason}",
                decision=decision,
            )
            await self.observe(call, result, context)
            return result
        self.kernel.bus.publish(
            "tool.started", run_id=context.run_id, tool=call.tool, call_id=call.call_id
        )
        started = time.perf_counter()
        try:
            output = await watch(
                tool.func(args, context),
                seconds=tool.meta.timeout_s or self.kernel.config.kernel.tool_timeout_s,
                what=f"tool {call.tool}",
            )
            output, cut = cap_output(output, self.kernel.config.kernel.max_output_bytes)
            result = ToolResult(output=output, decision=decision)
            if cut:
                result.metadata["truncated_bytes"] = cut
        except (ToolError, DeadlineExceeded) as exc:
            error, _ = cap_output(str(exc), self.kernel.config.kernel.max_output_bytes)
            result = ToolResult(is_error=True, error=error, decision=decision)
        except Exception as exc:  # a crashing tool is a failed call, not a crashed kernel
            result = ToolResult(
                is_error=True, error=f"tool {call.tool} crashed: {type(exc).__name__}: {exc}",
                decision=decision,
            )
        result.duration_s = time.perf_counter() - started
        await self.observe(call, result, context)
        return result


def input_problem(call: ToolCall) -> str | None:
    """Why a tool input, from any source (command line, model, replay), is out of bounds:
    nested deeper than ``llmos.bounds.MAX_DEPTH``, larger than ``MAX_BYTES``, text that is
    not valid Unicode, a number that is not finite. None when it is within them."""
    from llmos.bounds import check_value
    from llmos.errors import BadInput

    if not isinstance(call.input, dict):
        return f"the input of tool {call.tool} must be a JSON object"
    try:
        check_value(call.input, f"the input of tool {call.tool}")
    except BadInput as exc:
        return str(exc)
    return None


def validated_input(args: Any) -> dict[str, Any]:
    """A validated input model as the JSON-ready dict the tool runs with: converted values
    and defaults included (a default path is checked like a given one), unset ``None``
    defaults left out."""
    full = args.model_dump(mode="json", by_alias=True)
    given = args.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return {key: value for key, value in full.items() if key in given or value is not None}


def cap_output(output: Any, max_bytes: int) -> tuple[Any, int]:
    """``output`` with every string over its share of ``max_bytes`` cut to a head and a
    tail around a ``[... truncated N bytes ...]`` marker, and long lists shortened; the
    number of bytes left out. Small outputs come back unchanged."""
    from llmos.security.bounded import BoundedBuffer, truncation_marker

    size = len(json.dumps(output, default=str, ensure_ascii=False).encode())
    if size <= max_bytes:
        return output, 0
    share = max(_water_level(_string_sizes(output), max_bytes), 256)
    cut = 0

    def shorten(value: Any) -> Any:
        nonlocal cut
        if isinstance(value, str):
            data = value.encode()
            if len(data) <= share:
                return value
            buffer = BoundedBuffer(share)
            buffer.write(data)
            cut += buffer.truncated
            return buffer.text()
        if isinstance(value, dict):
            return {key: shorten(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            items = [shorten(item) for item in value]
            while len(items) > 2 and len(json.dumps(items, default=str).encode()) > max_bytes:
                keep = len(items) // 2
                dropped = items[keep:]
                cut += len(json.dumps(dropped, default=str).encode())
                items = [*items[:keep], truncation_marker(
                    len(json.dumps(dropped, default=str).encode())).strip()]
            return items
        return value

    return shorten(output), cut


def _string_sizes(value: Any) -> list[int]:
    if isinstance(value, str):
        return [len(value.encode())]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _string_sizes(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _string_sizes(v)]
    return []


def _water_level(sizes: list[int], budget: int) -> int:
    """The largest share such that strings cut to it fit ``budget`` together: small
    strings keep their size, the budget they leave goes to the long ones."""
    left, count = budget, len(sizes)
    for size in sorted(sizes):
        if size * count > left:
            return left // count
        left -= size
        count -= 1
    return budget


__all__ = ["Asker", "ToolGateway", "ToolInputError", "UnknownTool", "cap_output",
           "input_digest", "scope_key", "validated_input"]
