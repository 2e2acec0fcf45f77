"""The ``pybullet`` driver: a Franka Panda on a table, simulated headless (DIRECT mode).

Moves follow the straight line the safety check approved, at most ``max_speed_m_s``, as
joint position targets from ``calculateInverseKinematics`` (clipped to the joint limits,
with each joint's velocity limit), then the simulation steps until the motion settles
and the driver reports where the gripper really is. Grasping closes the fingers and, when
a cube sits between them, holds it with a fixed constraint (a reliable, deterministic
stand-in for friction grasping). Same world + same commands = the same numbers.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from llmos_robo.driver import Action, AppliedAction, JointLimit, Limits, Observer
from llmos_robo.geometry import distance, lerp, point_in_box, zone_contains
from llmos_robo.safety import TRACKING_MARGIN_M, SafetyViolation, check_path, clamp_to_box

SIM_HZ = 240
ARM_JOINTS = tuple(range(7))
FINGERS = (9, 10)
GRASP_LINK = 11
NEUTRAL = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
ARM_FORCE = 240.0
SETTLE_STEPS = 2 * SIM_HZ
SETTLED_VELOCITY = 0.01  # rad/s
STOPPED_VELOCITY = 0.02
TABLE_COLOR = (0.82, 0.76, 0.62, 1.0)

# camera eye, target and up vector per view
VIEWS: dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {
    "front": ((1.45, 0.0, 0.75), (0.35, 0.0, 0.2), (0.0, 0.0, 1.0)),
    "side": ((0.45, -1.3, 0.6), (0.45, 0.0, 0.2), (0.0, 0.0, 1.0)),
    "top": ((0.45, 0.0, 1.6), (0.45, 0.0, 0.0), (1.0, 0.0, 0.0)),
}


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """pybullet prints its build banner with C printf on fd 1; keep JSON output clean."""
    try:
        saved = os.dup(1)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _r(value: float, digits: int = 3) -> float:
    out = round(float(value), digits)
    return 0.0 if out == 0 else out  # no "-0.0"


class PyBulletDriver:
    name = "pybullet"

    def __init__(self) -> None:
        self.limits: Limits | None = None  # type: ignore[assignment]
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._observer: Observer | None = None
        self._estop: Callable[[], bool] = lambda: False
        self.p: Any = None
        self.sim_steps = 0
        self._stop_step: int | None = None
        self.last_halt: dict[str, int] | None = None  # sim steps: stop asked, arm still

    # -- connection ------------------------------------------------------------------

    def connect(self, limits: Limits, scene: list[Any], snapshot: dict[str, Any] | None,
                estop: Callable[[], bool]) -> None:
        with _quiet_stdout():
            import pybullet
            import pybullet_data
            from pybullet_utils.bullet_client import BulletClient

            self.p = BulletClient(connection_mode=pybullet.DIRECT)
            # a kinematic copy of the arm for planning: never stepped, never drawn
            self.kin = BulletClient(connection_mode=pybullet.DIRECT)
        self.kin.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.kin_robot = self.kin.loadURDF("franka_panda/panda.urdf", useFixedBase=True)
        p = self.p
        self._pb = pybullet
        self._estop = estop
        p.setAdditionalSearchPath(pybullet_data.getDataPath())
        p.setGravity(0, 0, -9.81)
        p.setTimeStep(1.0 / SIM_HZ)
        self.plane = p.loadURDF("plane.urdf")
        p.changeVisualShape(self.plane, -1, rgbaColor=TABLE_COLOR)
        self.robot = p.loadURDF("franka_panda/panda.urdf", useFixedBase=True,
                                flags=p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT)
        joints = []
        for j in ARM_JOINTS:
            info = p.getJointInfo(self.robot, j)
            joints.append(JointLimit(info[1].decode(), info[8], info[9], info[11]))
        self.limits = Limits(limits.envelope, tuple(joints))
        self.objects: dict[str, int] = {}
        self.kinds: dict[str, str] = {}
        for obj in scene:
            self.objects[obj.name] = self._spawn(obj)
            self.kinds[obj.name] = obj.kind
        self.holding: str | None = None
        self._grip: int | None = None
        self.gripper = "open"
        self._set_joints(NEUTRAL, 0.04)
        if snapshot:
            self._restore(snapshot)

    def _spawn(self, obj: Any) -> int:
        p = self.p
        x, y = obj.position
        rgba = (*obj.color, 1.0)
        if obj.kind == "cube":
            half = [obj.size / 2] * 3
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half)
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba)
            body = p.createMultiBody(0.05, col, vis, basePosition=(x, y, obj.size / 2))
            p.changeDynamics(body, -1, lateralFriction=1.0)
            return body
        half = [obj.size / 2, obj.size / 2, 0.005]
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba)
        return p.createMultiBody(0, col, vis, basePosition=(x, y, 0.005))

    def disconnect(self) -> None:
        with self._lock:
            if self.p is not None:
                with contextlib.suppress(Exception):
                    self.p.disconnect()
                    self.kin.disconnect()
                self.p = None

    def set_observer(self, observer: Observer | None) -> None:
        self._observer = observer

    # -- schemas and observation -----------------------------------------------------

    @property
    def observation_schema(self) -> dict[str, Any]:
        vec3 = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
        return {
            "type": "object",
            "properties": {
                "joints": {"type": "object", "additionalProperties": {"type": "number"},
                           "description": "arm joint angles, rad"},
                "gripper": {"type": "object", "properties": {
                    "position": vec3, "yaw_deg": {"type": "number"},
                    "state": {"enum": ["open", "closed"]}, "opening_m": {"type": "number"},
                    "holding": {"type": ["string", "null"]}}},
                "objects": {"type": "object", "additionalProperties": {"type": "object"}},
            },
        }

    @property
    def action_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "position": {"type": "array", "items": {"type": "number"}, "minItems": 3,
                             "maxItems": 3, "description": "gripper target, m"},
                "yaw": {"type": "number", "description": "gripper yaw, rad"},
                "gripper": {"enum": ["open", "close"]},
            },
        }

    def ee_pose(self) -> tuple[tuple[float, float, float], float]:
        with self._lock:
            state = self.p.getLinkState(self.robot, GRASP_LINK, computeForwardKinematics=True)
            pos = tuple(float(v) for v in state[4])
            yaw = self._yaw_of(state[5])
        return pos, yaw  # type: ignore[return-value]

    def _yaw_of(self, quat: Any) -> float:
        m = self.p.getMatrixFromQuaternion(quat)
        # the gripper's x axis projected on the table gives its yaw
        return math.atan2(m[3], m[0])

    def get_observation(self) -> dict[str, Any]:
        with self._lock:
            p = self.p
            joints = {lim.name: _r(p.getJointState(self.robot, j)[0])
                      for j, lim in zip(ARM_JOINTS, self.limits.joints, strict=True)}
            pos, yaw = self.ee_pose()
            opening = sum(p.getJointState(self.robot, f)[0] for f in FINGERS)
            return {
                "joints": joints,
                "gripper": {"position": [_r(v) for v in pos], "yaw_deg": _r(math.degrees(yaw), 1),
                            "state": "open" if self.gripper == "open" else "closed",
                            "opening_m": _r(opening), "holding": self.holding},
                "objects": self.object_poses(),
            }

    def object_poses(self) -> dict[str, Any]:
        with self._lock:
            out = {}
            for name, body in self.objects.items():
                pos, orn = self.p.getBasePositionAndOrientation(body)
                yaw = self.p.getEulerFromQuaternion(orn)[2]
                out[name] = {"kind": self.kinds[name], "position": [_r(v) for v in pos],
                             "yaw_deg": _r(math.degrees(yaw), 0)}
            return out

    # -- actions ---------------------------------------------------------------------

    def send_action(self, action: Action) -> AppliedAction:
        """Clip, check, execute until settled; refuses with ``SafetyViolation``."""
        if self._estop():
            raise SafetyViolation("robo.estop", "the emergency stop is engaged",
                                  "a human must release it with `llmos robo reset`")
        self._stop.clear()
        self._stop_step = None
        if action.gripper is not None:
            return self._gripper(action)
        if action.position is None:
            raise ValueError("an action needs a position or a gripper command")
        return self._move(action)

    def _move(self, action: Action) -> AppliedAction:
        env = self.limits.envelope
        start, yaw_now = self.ee_pose()
        target = tuple(float(v) for v in action.position)  # type: ignore[union-attr]
        yaw = yaw_now if action.yaw is None else math.remainder(action.yaw, 2 * math.pi)
        clipped: list[str] = []
        inside = clamp_to_box(target, env.workspace_min, env.workspace_max)
        if distance(inside, target) > 1e-9:
            clipped.append(f"workspace: target clipped from {[_r(v) for v in target]} "
                           f"to {[_r(v) for v in inside]}")
            target = inside
        length = distance(start, target)
        if length > env.max_step_m:
            shorter = lerp(start, target, env.max_step_m / length)
            clipped.append(f"max-step: a {length:.3f} m move shortened to {env.max_step_m:.3f} m")
            target, length = shorter, env.max_step_m
        problem = check_path(start, target, env)
        if problem is not None:
            raise problem
        self._check_reachable(start, target, yaw_now, yaw)
        applied = AppliedAction(action, Action(tuple(_r(v, 4) for v in target), _r(yaw, 4)),
                                clipped)
        # smoothstep peaks at 1.5x the mean speed: that peak is what max_speed_m_s limits
        steps = max(1, math.ceil(1.5 * length / env.max_speed_m_s * SIM_HZ))
        # rotate no faster than 90 degrees per second
        steps = max(steps, math.ceil(abs(math.remainder(yaw - yaw_now, 2 * math.pi))
                                     / (math.pi / 2) * SIM_HZ))
        for k in range(1, steps + 1):
            s = k / steps
            s = s * s * (3 - 2 * s)  # smooth start and stop
            point = lerp(start, target, s)
            self._command(point, yaw_now + math.remainder(yaw - yaw_now, 2 * math.pi) * s,
                          applied)
            if self._step_guarded(applied):
                break
        else:
            self._settle(target, yaw, applied)
        pos, real_yaw = self.ee_pose()
        applied.reached = tuple(_r(v) for v in pos)  # type: ignore[assignment]
        applied.yaw = _r(real_yaw, 4)
        applied.error_m = _r(distance(pos, target), 4)
        applied.gripper, applied.holding = self.gripper, self.holding
        self._notify()
        return applied

    def _ik(self, point: Any, yaw: float, p: Any = None, robot: int | None = None
            ) -> np.ndarray:
        p = p or self.p
        robot = self.robot if robot is None else robot
        orn = p.getQuaternionFromEuler((math.pi, 0.0, yaw))
        lows = [lim.lower for lim in self.limits.joints]
        highs = [lim.upper for lim in self.limits.joints]
        ranges = [h - lo for lo, h in zip(lows, highs, strict=True)]
        sol = p.calculateInverseKinematics(
            robot, GRASP_LINK, point, orn, lowerLimits=[*lows, 0, 0],
            upperLimits=[*highs, 0.04, 0.04], jointRanges=[*ranges, 0.04, 0.04],
            restPoses=[*NEUTRAL, 0.02, 0.02], maxNumIterations=100, residualThreshold=1e-5)
        return np.clip(np.asarray(sol[:7]), lows, highs)

    def _check_reachable(self, start: Any, target: Any, yaw0: float, yaw1: float) -> None:
        """Follow the straight line on the kinematic copy first: every waypoint (4 cm
        apart) must be reachable within 1 cm, or the move is refused before it starts."""
        kin, body = self.kin, self.kin_robot
        with self._lock:
            for j in ARM_JOINTS:
                kin.resetJointState(body, j, self.p.getJointState(self.robot, j)[0])
        n = max(2, math.ceil(distance(start, target) / 0.04))
        dyaw = math.remainder(yaw1 - yaw0, 2 * math.pi)
        for k in range(1, n + 1):
            point = lerp(start, target, k / n)
            for _ in range(2):
                q = self._ik(point, yaw0 + dyaw * k / n, kin, body)
                for j in ARM_JOINTS:
                    kin.resetJointState(body, j, float(q[j]))
                got = kin.getLinkState(body, GRASP_LINK, computeForwardKinematics=True)[4]
                if distance(got, point) < 0.002:
                    break
            if distance(got, point) > 0.01:
                raise SafetyViolation(
                    "robo.unreachable",
                    f"the arm cannot follow the straight path to {[_r(v) for v in target]}: "
                    f"at {[_r(v) for v in point]} ({k * 100 // n}% of the way) the closest it "
                    f"gets is {distance(got, point) * 1000:.0f} mm away",
                    "choose a target closer to the robot's base (x, y nearer 0.45, 0)")

    def _command(self, point: Any, yaw: float, applied: AppliedAction) -> None:
        with self._lock:
            targets = self._ik(point, yaw)
            for j, lim in zip(ARM_JOINTS, self.limits.joints, strict=True):
                self.p.setJointMotorControl2(
                    self.robot, j, self.p.POSITION_CONTROL, targetPosition=float(targets[j]),
                    force=ARM_FORCE, maxVelocity=lim.max_velocity)

    def _step(self) -> None:
        with self._lock:
            self.p.stepSimulation()
            self.sim_steps += 1

    def _step_guarded(self, applied: AppliedAction) -> bool:
        """One step; True when the motion must end now (stop, e-stop, or the real
        gripper strayed into a zone or out of the box although the plan did not)."""
        self._step()
        applied.sim_steps += 1
        if applied.sim_steps % 12 == 0:
            self._notify()
        reason = ""
        if self._stop.is_set():
            reason = "stopped"
        elif applied.sim_steps % 8 == 0 and self._estop():
            reason = "emergency stop engaged during the move"
        else:
            env = self.limits.envelope
            pos, _ = self.ee_pose()
            if not point_in_box(pos, env.workspace_min, env.workspace_max,
                                margin=TRACKING_MARGIN_M):
                reason = f"the gripper left the workspace at {[_r(v) for v in pos]}"
            for zone in env.zones:
                if zone_contains(zone, pos):
                    reason = f"the gripper entered zone {zone.name!r} at {[_r(v) for v in pos]}"
        if not reason:
            return False
        applied.stopped, applied.settled = True, False
        applied.clipped.append(f"halted: {reason}")
        seen = self.sim_steps
        asked = self._stop_step if self._stop_step is not None else seen
        self.hold()
        self.last_halt = {"asked": asked, "seen": seen, "still": self.sim_steps}
        return True

    def _settle(self, target: Any, yaw: float, applied: AppliedAction) -> None:
        self._command(target, yaw, applied)
        for _ in range(SETTLE_STEPS):
            if self._step_guarded(applied):
                return
            if self._max_velocity() < SETTLED_VELOCITY:
                return
        applied.settled = False

    def _max_velocity(self) -> float:
        with self._lock:
            return max(abs(self.p.getJointState(self.robot, j)[1]) for j in ARM_JOINTS)

    def hold(self) -> int:
        """Command every joint to stay where it is and step until the arm is still;
        returns the simulation steps it took."""
        steps = 0
        with self._lock:
            for j in ARM_JOINTS:
                here = self.p.getJointState(self.robot, j)[0]
                self.p.setJointMotorControl2(self.robot, j, self.p.POSITION_CONTROL,
                                             targetPosition=here, force=ARM_FORCE)
        while self._max_velocity() > STOPPED_VELOCITY and steps < SETTLE_STEPS:
            self._step()
            steps += 1
        return steps

    def stop(self) -> None:
        """Halt the motion in progress (thread-safe: the motion loop sees it next step)."""
        self._stop_step = self.sim_steps
        self._stop.set()

    def _gripper(self, action: Action) -> AppliedAction:
        applied = AppliedAction(action, action)
        closing = action.gripper == "close"
        with self._lock:
            if not closing and self._grip is not None:
                self.p.removeConstraint(self._grip)
                self._grip, self.holding = None, None
            for f in FINGERS:
                self.p.setJointMotorControl2(self.robot, f, self.p.POSITION_CONTROL,
                                             targetPosition=0.0 if closing else 0.04, force=20)
        for _ in range(SIM_HZ // 2):
            if self._step_guarded(applied):
                break
        with self._lock:
            self.gripper = "closed" if closing else "open"
            if closing and self._grip is None:
                self._grasp()
        for _ in range(SIM_HZ // 2):  # let a released object come to rest
            if self._step_guarded(applied):
                break
        pos, yaw = self.ee_pose()
        applied.reached, applied.yaw = tuple(_r(v) for v in pos), _r(yaw, 4)  # type: ignore
        applied.gripper, applied.holding = self.gripper, self.holding
        self._notify()
        return applied

    def _grasp(self) -> None:
        p = self.p
        tip = p.getLinkState(self.robot, GRASP_LINK, computeForwardKinematics=True)
        for name, body in self.objects.items():
            if self.kinds[name] != "cube":
                continue
            pos, orn = p.getBasePositionAndOrientation(body)
            if math.dist(pos[:2], tip[4][:2]) < 0.025 and abs(pos[2] - tip[4][2]) < 0.03:
                inv_pos, inv_orn = p.invertTransform(tip[4], tip[5])
                rel_pos, rel_orn = p.multiplyTransforms(inv_pos, inv_orn, pos, orn)
                self._grip = p.createConstraint(
                    self.robot, GRASP_LINK, body, -1, p.JOINT_FIXED, (0, 0, 0),
                    rel_pos, (0, 0, 0), rel_orn)
                p.changeConstraint(self._grip, maxForce=200)
                self.holding = name
                return

    # -- state, camera ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            p = self.p
            joints = [p.getJointState(self.robot, j)[0] for j in (*ARM_JOINTS, *FINGERS)]
            objects = {name: [list(v) for v in p.getBasePositionAndOrientation(body)]
                       for name, body in self.objects.items()}
            return {"robot": "panda", "joints": joints, "objects": objects,
                    "gripper": self.gripper, "holding": self.holding}

    def _set_joints(self, arm: Any, finger: float) -> None:
        p = self.p
        for j, q in zip(ARM_JOINTS, arm, strict=True):
            p.resetJointState(self.robot, j, q)
            p.setJointMotorControl2(self.robot, j, p.POSITION_CONTROL, targetPosition=q,
                                    force=ARM_FORCE)
        for f in FINGERS:
            p.resetJointState(self.robot, f, finger)
            p.setJointMotorControl2(self.robot, f, p.POSITION_CONTROL, targetPosition=finger,
                                    force=20)

    def _restore(self, snap: dict[str, Any]) -> None:
        joints = snap["joints"]
        self._set_joints(joints[:7], joints[7])
        for name, (pos, orn) in snap.get("objects", {}).items():
            if name in self.objects:
                self.p.resetBasePositionAndOrientation(self.objects[name], pos, orn)
        self.gripper = snap.get("gripper", "open")
        if snap.get("holding") in self.objects:
            self._grasp()

    def place_home(self, position: Any, yaw: float) -> None:
        """Put the arm at ``position`` directly (only at a fresh start, never a move)."""
        with self._lock:
            self._set_joints(NEUTRAL, 0.04)
            for _ in range(50):
                q = self._ik(position, yaw)
                for j in ARM_JOINTS:
                    self.p.resetJointState(self.robot, j, float(q[j]))
                pos, _ = self.ee_pose()
                if distance(pos, position) < 1e-4:
                    break
            self._set_joints([float(v) for v in q], 0.04)

    def place_object(self, name: str, x: float, y: float) -> None:
        """Move a scene object by hand (a person re-arranging the table)."""
        with self._lock:
            body = self.objects[name]
            z = self.p.getBasePositionAndOrientation(body)[0][2]
            self.p.resetBasePositionAndOrientation(body, (x, y, z), (0, 0, 0, 1))
        for _ in range(SIM_HZ // 4):
            self._step()

    def render(self, view: str, width: int, height: int) -> bytes:
        """A PNG of the scene from ``view`` (tiny renderer: CPU only, deterministic)."""
        import io

        from PIL import Image

        eye, target, up = VIEWS[view]
        with self._lock:
            p = self.p
            vm = p.computeViewMatrix(eye, target, up)
            pm = p.computeProjectionMatrixFOV(50, width / height, 0.05, 5.0)
            _, _, rgba, _, _ = p.getCameraImage(width, height, vm, pm,
                                                renderer=p.ER_TINY_RENDERER)
        pixels = np.reshape(np.asarray(rgba, dtype=np.uint8), (height, width, 4))[:, :, :3]
        buf = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buf, format="PNG", optimize=False)
        return buf.getvalue()

    def _notify(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer()
