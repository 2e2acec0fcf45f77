"""The robot driver interface, and loading a driver by name (stevedore ``llmos_robo.drivers``).

Modelled on the open robot-learning stacks (LeRobot's ``Robot``: ``connect``/``disconnect``,
observation and action features, ``send_action`` returning the action actually sent):

- ``connect(limits, scene, snapshot)`` / ``disconnect()``
- ``observation_schema`` / ``action_schema``: JSON schemas of what it reads and accepts
- ``get_observation()``: joints, gripper pose, gripper state, objects it knows of
- ``send_action(action)``: clips the action to the limits (workspace, step, joint limits,
  speed), *refuses* one whose path enters a forbidden zone or that arrives while the
  e-stop is engaged (``SafetyViolation``), executes it until the motion settles and
  returns the ``AppliedAction``: what was really commanded and where the arm really is
- ``stop()``: halt now and hold position (safe to call from another thread)
- ``limits``: the mandatory joint, velocity and workspace limits it enforces

A real arm's driver is a separate pip package declaring an entry point in the
``llmos_robo.drivers`` group; ``robo.driver = "<name>"`` selects it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from llmos_robo.safety import Envelope

NAMESPACE = "llmos_robo.drivers"


@dataclass(frozen=True)
class JointLimit:
    name: str
    lower: float
    upper: float
    max_velocity: float


@dataclass(frozen=True)
class Limits:
    """Mandatory limits: joints (position and velocity) come from the robot, the rest
    (workspace box, forbidden zones, step and speed) from ``[robo]``."""

    envelope: Envelope
    joints: tuple[JointLimit, ...] = ()


@dataclass(frozen=True)
class Action:
    """One command: move the gripper to ``position`` (with ``yaw``), or set the gripper."""

    position: tuple[float, float, float] | None = None
    yaw: float | None = None
    gripper: Literal["open", "close"] | None = None


@dataclass
class AppliedAction:
    """What the driver really did with an ``Action``."""

    requested: Action
    commanded: Action
    clipped: list[str] = field(default_factory=list)  # why the command differs
    reached: tuple[float, float, float] | None = None
    yaw: float | None = None
    error_m: float | None = None  # distance between commanded and reached position
    settled: bool = True
    stopped: bool = False  # interrupted by stop()
    sim_steps: int = 0
    gripper: str = ""
    holding: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Observer = Callable[[], None]


@runtime_checkable
class RobotDriver(Protocol):
    name: str
    limits: Limits

    def connect(self, limits: Limits, scene: list[Any], snapshot: dict[str, Any] | None,
                estop: Callable[[], bool]) -> None: ...

    def disconnect(self) -> None: ...

    @property
    def observation_schema(self) -> dict[str, Any]: ...

    @property
    def action_schema(self) -> dict[str, Any]: ...

    def get_observation(self) -> dict[str, Any]: ...

    def ee_pose(self) -> tuple[tuple[float, float, float], float]: ...

    def place_home(self, position: Any, yaw: float) -> None: ...

    def send_action(self, action: Action) -> AppliedAction: ...

    def stop(self) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...

    def render(self, view: str, width: int, height: int) -> bytes: ...

    def set_observer(self, observer: Observer | None) -> None: ...


class DriverNotFound(LookupError):
    pass


def available_drivers() -> list[str]:
    from importlib.metadata import entry_points

    return sorted(ep.name for ep in entry_points(group=NAMESPACE))


def load_driver(name: str) -> RobotDriver:
    """A new, unconnected driver by name (imports its module only now)."""
    from stevedore import driver

    try:
        manager = driver.DriverManager(NAMESPACE, name, invoke_on_load=True,
                                       on_load_failure_callback=_raise)
    except Exception as exc:
        known = ", ".join(available_drivers()) or "none"
        raise DriverNotFound(
            f"robot driver {name!r} could not be loaded ({type(exc).__name__}: {exc}); "
            f"installed drivers: {known}; set robo.driver to one of them"
        ) from None
    return manager.driver


def _raise(manager: Any, entrypoint: Any, exc: BaseException) -> None:
    raise exc
