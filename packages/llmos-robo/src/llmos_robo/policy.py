"""The safety hook: which robot calls may run, decided before they run.

Order: not in ``robo.allowed_tools`` → deny; ``robot_emergency_stop`` → always let
through; ``robot_reset`` from anyone but a human at the CLI or HTTP API → deny; e-stop
engaged → deny every motion; another process driving the robot → deny; a motion whose
planned straight path leaves the workspace box, enters a forbidden zone or is longer
than ``robo.max_step_m`` → deny, with the reason and a suggestion. The driver checks
the same envelope again on every action.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math

import llmos
from llmos.tools import ToolInputError

from llmos_robo.tools import CANONICAL

MOTIONS = frozenset({"robot_move_to", "robot_move_relative", "robot_home", "robot_gripper"})
HUMAN_SOURCES = frozenset({"cli"})


def _deny(reason: str, rule: str, suggestion: str = "") -> llmos.Decision:
    text = f"{reason}; suggestion: {suggestion}" if suggestion else reason
    return llmos.Decision.deny(text, rule)


async def decide(call: llmos.ToolCall, context: llmos.CallContext) -> llmos.Decision | None:
    tool = context.kernel.tools.get(call.tool)
    name = CANONICAL.get(tool.func) if tool is not None else None
    if name is None:
        return None
    from llmos_robo.runtime import estop_for

    cfg = context.kernel.config.section("robo")
    if name not in cfg.allowed_tools:
        return _deny(f"{name} is not in robo.allowed_tools", "robo.tool-not-allowed",
                     f"add {name!r} to robo.allowed_tools in llmos.toml if it should be used")
    if name == "robot_emergency_stop":
        return None
    if name == "robot_reset":
        if call.source not in HUMAN_SOURCES:
            return _deny(f"only a human may release the emergency stop (this call came from "
                         f"the {call.source})", "robo.human-only",
                         "ask the operator to run `llmos robo reset`")
        return None
    if name not in MOTIONS:
        return None
    estop = estop_for(context.kernel).state()
    if estop["engaged"]:
        since = f" since {estop['since']}" if estop.get("since") else ""
        return _deny(f"the emergency stop is engaged{since} ({estop.get('reason') or 'no reason'}"
                     f", by {estop.get('by', '?')}); no motion is allowed",
                     "robo.estop", "a human must release it with `llmos robo reset`")
    if name == "robot_gripper":
        return None
    try:
        args = tool.validate(call.input)
    except ToolInputError:
        return None  # the gate reports the bad input; nothing runs
    return await asyncio.to_thread(_check_motion, name, args, context)


def _check_motion(name: str, args, context: llmos.CallContext) -> llmos.Decision | None:
    from llmos_robo.runtime import RobotBusy, robot_for
    from llmos_robo.safety import Envelope, check_path

    robot = robot_for(context.kernel)
    try:
        start, _yaw = robot.driver().ee_pose()
    except RobotBusy as exc:
        return _deny(str(exc), "robo.busy")
    env = Envelope.from_config(robot.cfg)
    if name == "robot_move_to":
        target = (args.x, args.y, args.z)
    elif name == "robot_move_relative":
        target = (start[0] + args.dx, start[1] + args.dy, start[2] + args.dz)
    else:  # home goes in legs of at most max_step along the checked line
        target = tuple(robot.cfg.home)
        env = dataclasses.replace(env, max_step_m=math.inf)
    problem = check_path(start, target, env)
    if problem is None:
        return None
    return _deny(problem.reason, problem.rule, problem.suggestion)
