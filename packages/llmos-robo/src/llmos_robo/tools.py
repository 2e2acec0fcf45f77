"""The robot tools. Observations are rounded (millimetres, milliradians, tenths of a
degree) and carry no clocks, so the same world gives byte-identical JSON: that is what
lets a replay notice that the world changed."""

from __future__ import annotations

import asyncio
import hashlib
import math
from typing import Any, Literal

import llmos
from llmos.tools import ToolError
from pydantic import BaseModel, ConfigDict, Field

from llmos_robo.runtime import robot_for


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MoveToInput(_Input):
    x: float = Field(ge=-5, le=5, description="Target x of the gripper, metres (forward).")
    y: float = Field(ge=-5, le=5, description="Target y, metres (left).")
    z: float = Field(ge=-5, le=5, description="Target z, metres (up from the table).")
    yaw: float | None = Field(None, ge=-180, le=180,
                              description="Gripper yaw in degrees (default: keep it).")


class MoveRelativeInput(_Input):
    dx: float = Field(0.0, ge=-5, le=5, description="Metres to move along x.")
    dy: float = Field(0.0, ge=-5, le=5, description="Metres to move along y.")
    dz: float = Field(0.0, ge=-5, le=5, description="Metres to move along z.")
    dyaw: float = Field(0.0, ge=-360, le=360, description="Degrees to turn the gripper.")


class GripperInput(_Input):
    action: Literal["open", "close"] = Field(description="open or close the gripper.")


class NoInput(_Input):
    pass


class CameraInput(_Input):
    view: Literal["front", "side", "top"] = Field("front", description="Camera position.")


class EStopInput(_Input):
    reason: str = Field("", max_length=500, description="Why the robot is being stopped.")


class ResetInput(_Input):
    world: bool = Field(False, description="Also put the scene back as configured and the "
                        "arm at home (a fresh simulation).")


def _pose(position: Any) -> list[float]:
    return [round(float(v), 3) + 0.0 for v in position]


async def _run(context: llmos.CallContext, fn, *args, motion: bool = False):
    from llmos_robo.runtime import RobotBusy

    robot = robot_for(context.kernel)
    try:
        if motion:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(robot.motion_worker, fn, robot, *args)
        return await asyncio.to_thread(fn, robot, *args)
    except RobotBusy as exc:
        raise ToolError(str(exc)) from None


def _move_result(command: str, applied, tolerance: float) -> dict[str, Any]:
    target = applied.commanded.position
    out = {
        "command": command,
        "target": _pose(target),
        "reached": _pose(applied.reached),
        "yaw_deg": round(math.degrees(applied.yaw or 0.0), 1) + 0.0,
        "error_mm": round((applied.error_m or 0.0) * 1000),
        "within_tolerance": (applied.error_m or 0.0) <= tolerance,
        "clipped": applied.clipped,
        "gripper": applied.gripper,
        "holding": applied.holding,
    }
    if applied.stopped:
        raise ToolError(f"{command} was halted ({'; '.join(applied.clipped)}); the gripper "
                        f"stopped at {out['reached']}")
    return out


def _act(robot, action, command: dict[str, Any]):
    from llmos_robo.safety import SafetyViolation

    try:
        return robot.act(action, command)
    except SafetyViolation as exc:
        raise ToolError(f"refused by the robot driver ({exc.rule}): {exc}") from None


def _move_to(robot, args: MoveToInput) -> dict[str, Any]:
    from llmos_robo.driver import Action

    yaw = None if args.yaw is None else math.radians(args.yaw)
    applied = _act(robot, Action((args.x, args.y, args.z), yaw),
                   {"tool": "robot_move_to", "input": args.model_dump()})
    return _move_result("move_to", applied, robot.cfg.position_tolerance_m)


def _move_relative(robot, args: MoveRelativeInput) -> dict[str, Any]:
    from llmos_robo.driver import Action

    (x, y, z), yaw = robot.driver().ee_pose()
    target = (x + args.dx, y + args.dy, z + args.dz)
    applied = _act(robot, Action(target, yaw + math.radians(args.dyaw)),
                   {"tool": "robot_move_relative", "input": args.model_dump()})
    return _move_result("move_relative", applied, robot.cfg.position_tolerance_m)


def _home(robot, _args: Any) -> dict[str, Any]:
    """Straight to home in legs of at most max_step (the whole line was checked)."""
    from llmos_robo.driver import Action
    from llmos_robo.geometry import distance, lerp

    cfg = robot.cfg
    start, _ = robot.driver().ee_pose()
    legs = max(1, math.ceil(distance(start, cfg.home) / cfg.max_step_m - 1e-9))
    applied = None
    for leg in range(1, legs + 1):
        applied = _act(robot, Action(lerp(start, cfg.home, leg / legs),
                                     math.radians(cfg.home_yaw_deg)),
                       {"tool": "robot_home", "input": {}})
        if applied.stopped:
            break
    out = _move_result("home", applied, cfg.position_tolerance_m)
    out["legs"] = legs
    return out


def _gripper(robot, args: GripperInput) -> dict[str, Any]:
    from llmos_robo.driver import Action

    applied = _act(robot, Action(gripper=args.action),
                   {"tool": "robot_gripper", "input": args.model_dump()})
    if applied.stopped:
        raise ToolError(f"the gripper command was halted ({'; '.join(applied.clipped)})")
    return {"command": f"gripper {args.action}", "gripper": applied.gripper,
            "holding": applied.holding, "position": _pose(applied.reached)}


def _status(robot, _args: Any) -> dict[str, Any]:
    obs = robot.driver().get_observation()
    return {"driver": robot.cfg.driver, "robot": robot.cfg.robot, "joints_rad": obs["joints"],
            "gripper": obs["gripper"], "estop": robot.estop.state(),
            "last_command": robot.last_command}


def _find_objects(robot, _args: Any) -> dict[str, Any]:
    obs = robot.driver().get_observation()
    gripper = {k: obs["gripper"][k] for k in ("position", "yaw_deg", "state", "holding")}
    return {"objects": obs["objects"], "gripper": gripper}


def _camera(robot, args: CameraInput) -> dict[str, Any]:
    width, height = robot.cfg.camera_size
    png = robot.driver().render(args.view, width, height)
    digest = hashlib.sha256(png).hexdigest()
    folder = robot.dir / "camera"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.png"
    if not path.exists():
        path.write_bytes(png)
    return {"view": args.view, "width": width, "height": height, "format": "png",
            "sha256": digest, "bytes": len(png), "path": str(path),
            # the learner sees the picture itself (llmos.cortex.bridge.image_blocks)
            "images": [{"path": str(path), "mime_type": "image/png"}]}


def _emergency(robot, args: EStopInput) -> dict[str, Any]:
    return {"estop": robot.emergency_stop("robot_emergency_stop", args.reason)}


def _reset(robot, args: ResetInput) -> dict[str, Any]:
    state = robot.estop.release("robot_reset")
    if args.world:
        robot.reset_world()
    return {"estop": state, "world_reset": args.world}


def _tool(func, motion: bool = False):
    async def run(args: BaseModel, context: llmos.CallContext) -> dict[str, Any]:
        return await _run(context, func, args, motion=motion)

    run.__name__ = run.__qualname__ = func.__name__.lstrip("_")
    return run


move_to = _tool(_move_to, motion=True)
move_relative = _tool(_move_relative, motion=True)
home = _tool(_home, motion=True)
gripper = _tool(_gripper, motion=True)
status = _tool(_status)
find_objects = _tool(_find_objects)
camera = _tool(_camera)


async def emergency_stop(args: EStopInput, context: llmos.CallContext) -> dict[str, Any]:
    """Runs on the event loop itself, not in the worker pool: queued moves waiting for the
    arm can never delay the e-stop."""
    return _emergency(robot_for(context.kernel), args)


reset = _tool(_reset, motion=True)

MOTION_ERRORS = (
    "robo.workspace: the planned path leaves the workspace box",
    "robo.forbidden-zone: the planned path enters a forbidden zone",
    "robo.max-step: the move is longer than robo.max_step_m",
    "robo.estop: the emergency stop is engaged",
    "halted: stopped by the e-stop or by the driver's own checks during the move",
)

# canonical name → (function, input model, side effects, description, error modes, offered)
SPECS: dict[str, tuple[Any, type[BaseModel], str, str, tuple[str, ...], bool]] = {
    "robot_move_to": (move_to, MoveToInput, "mutating",
                      "Move the gripper in a straight line to x, y, z (metres, robot base "
                      "frame: x forward, y left, z up from the table), optionally turning it "
                      "to a yaw in degrees. Refused when the path is unsafe.", MOTION_ERRORS,
                      True),
    "robot_move_relative": (move_relative, MoveRelativeInput, "mutating",
                            "Move the gripper by dx, dy, dz metres (and turn it by dyaw "
                            "degrees) in a straight line. Refused when the path is unsafe.",
                            MOTION_ERRORS, True),
    "robot_gripper": (gripper, GripperInput, "mutating",
                      "Open or close the gripper; closing around a cube grasps it.",
                      ("robo.estop: the emergency stop is engaged",), True),
    "robot_status": (status, NoInput, "read-only",
                     "Joint angles, gripper pose and state, e-stop state and the last command.",
                     (), True),
    "robot_find_objects": (find_objects, NoInput, "read-only",
                           "Where every object on the table is (millimetre precision) and "
                           "where the gripper is. Call it before planning a motion.", (), True),
    "robot_camera": (camera, CameraInput, "read-only",
                     "Render a PNG of the scene from the front, side or top camera; returns "
                     "its stored path and sha256.", (), True),
    "robot_home": (home, NoInput, "mutating",
                   "Move the gripper back to its configured home pose (safe by construction).",
                   MOTION_ERRORS, True),
    "robot_emergency_stop": (emergency_stop, EStopInput, "halting",
                             "Emergency stop: halt any motion now and refuse every motion "
                             "until a human releases it. Always allowed.", (), True),
    "robot_reset": (reset, ResetInput, "mutating",
                    "Release the emergency stop (human only: refused for the model and for "
                    "replays).", ("robo.human-only: only a human may release the e-stop",),
                    False),
}
CANONICAL = {spec[0]: name for name, spec in SPECS.items()}


def tools() -> list[llmos.Tool]:
    return [
        llmos.Tool(name, description, model, func,
                   llmos.ToolMeta(side_effects=effects, latency_hint_s=1.0,  # type: ignore
                                  error_modes=errors, offer_to_model=offered))
        for name, (func, model, effects, description, errors, offered) in SPECS.items()
    ]
