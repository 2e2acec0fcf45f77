"""The pack's plugin module, loaded by llmos through the ``llmos`` entry point.

Public hooks only: tools, the ``[robo]`` section, a ``llmos_pre_tool_use`` safety hook,
the ``llmos robo`` commands, two markdown agents, and robot context for robot goals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import llmos

from llmos_robo import tools
from llmos_robo.config import RoboConfig
from llmos_robo.policy import decide

AGENTS_DIR = Path(__file__).parent / "agents"


@llmos.hookimpl
def llmos_register_tools(register: Any) -> None:
    for tool in tools.tools():
        register(tool)


@llmos.hookimpl
def llmos_register_config(register: Any) -> None:
    register("robo", RoboConfig)


@llmos.hookimpl
def llmos_register_agents(register: Any) -> None:
    register(AGENTS_DIR)


@llmos.hookimpl
def llmos_register_commands(cli: Any) -> None:
    from llmos_robo.cli import robo

    cli.add_command(robo)


@llmos.hookimpl
async def llmos_pre_tool_use(
    call: llmos.ToolCall, context: llmos.CallContext
) -> llmos.Decision | None:
    """Deny unsafe robot calls with a reason and a suggestion (see llmos_robo.policy)."""
    return await decide(call, context)


@llmos.hookimpl
def llmos_user_prompt_submit(goal: str, context: llmos.CallContext) -> str | None:
    """Robot goals get the operator's and the safety officer's instructions (until the
    kernel gives markdown agents a runtime of their own)."""
    from llmos_robo.agents_text import robot_context

    return robot_context(goal, context)


@llmos.hookimpl
def llmos_shutdown(kernel: Any) -> None:
    from llmos_robo.runtime import _ROBOTS

    robot = _ROBOTS.pop(kernel, None)
    if robot is not None:
        robot.close()
