"""The pack's plugin module, loaded by llmos through the ``llmos`` entry point.

Public hooks only: tools, a ``[quantum]`` config section, the quantum safety hook
(``llmos_pre_tool_use``), the pack's Markdown agents (their prompts reach the model through
``llmos_user_prompt_submit``), and the ``llmos quantum`` commands. Nothing here imports
qiskit: that happens when a quantum tool runs.
"""

from __future__ import annotations

from typing import Any

import llmos

from llmos_quantum import agents, tools
from llmos_quantum.config import QuantumConfig

OWN_FUNCS = {tool.func: tool.name for tool in tools.tools()}


@llmos.hookimpl
def llmos_register_tools(register: Any) -> None:
    for tool in tools.tools():
        register(tool)


@llmos.hookimpl
def llmos_register_config(register: Any) -> None:
    register("quantum", QuantumConfig)


@llmos.hookimpl
def llmos_register_agents(register: Any) -> None:
    for path in sorted(agents.AGENTS_DIR.glob("*.md")):
        register(path)


@llmos.hookimpl
def llmos_register_commands(cli: Any) -> None:
    from llmos_quantum.cli import quantum

    cli.add_command(quantum)


@llmos.hookimpl
def llmos_user_prompt_submit(goal: str, context: llmos.CallContext) -> str | None:
    agent = agents.agent_of(goal)
    if agent is None:
        return None
    return f"You are acting as the {agent} agent.\n\n{agents.prompt_of(agent)}"


@llmos.hookimpl
def llmos_pre_tool_use(call: llmos.ToolCall, context: llmos.CallContext) -> llmos.Decision | None:
    """Deny quantum tool calls beyond the ``[quantum]`` limits; abstain on other tools."""
    tool = context.kernel.tools.get(call.tool)
    own = OWN_FUNCS.get(tool.func) if tool is not None else None
    if own is None or not isinstance(call.input, dict):
        return None
    from llmos_quantum.safety import review

    return review(own, call.input, context.kernel.config.section("quantum"))
