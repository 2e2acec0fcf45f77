"""The pack's plugin module, loaded by llmos through the ``llmos`` entry point.

It uses only the public hooks: tools, a ``[web]`` config section, and a
``llmos_pre_tool_use`` guard that denies web calls aimed at places they must not go.
"""

from __future__ import annotations

from typing import Any

import llmos

from llmos_web import guard, tools
from llmos_web.config import WebConfig

# Claude Code's own fetch tool takes a URL too; the same policy applies to it.
FOREIGN_URL_TOOLS = frozenset({"WebFetch"})
OWN_FUNCS = frozenset({tools.web_fetch, tools.web_links})


@llmos.hookimpl
def llmos_register_tools(register: Any) -> None:
    for tool in tools.tools():
        register(tool)


@llmos.hookimpl
def llmos_register_config(register: Any) -> None:
    register("web", WebConfig)


def _guards(call: llmos.ToolCall, context: llmos.CallContext) -> bool:
    """This pack's tools (whatever name they ended up with) and Claude Code's WebFetch."""
    if call.tool in FOREIGN_URL_TOOLS:
        return True
    tool = context.kernel.tools.get(call.tool)
    return tool is not None and tool.func in OWN_FUNCS


@llmos.hookimpl
async def llmos_pre_tool_use(
    call: llmos.ToolCall, context: llmos.CallContext
) -> llmos.Decision | None:
    """Deny web calls to other schemes, denied hosts and non-public addresses.

    Abstains on everything else (the security backend decides); a URL that is merely
    malformed or does not resolve is left to the tool, which reports it clearly. The
    tool re-checks every hop itself, so a DNS answer that changes between this check
    and the fetch does not get through.
    """
    if not _guards(call, context):
        return None
    raw = call.input.get("url") if isinstance(call.input, dict) else None
    if not isinstance(raw, str):
        return None
    cfg: WebConfig = context.kernel.config.section("web")
    try:
        await guard.vet(guard.parse_url(raw), cfg)
    except guard.Blocked as exc:
        return llmos.Decision.deny(str(exc), exc.rule)
    except guard.WebError:
        return None
    return None
