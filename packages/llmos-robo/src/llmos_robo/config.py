"""The ``[robo]`` config section: the robot, its safety envelope and the simulated scene.

Validated once when the kernel starts: a home pose outside the workspace or inside a
forbidden zone, an object inside a zone, an inverted box, or an unknown tool name is a
config error that names the key and the fix.
"""

from __future__ import annotations

from typing import Annotated, Literal

from llmos.config import Section
from pydantic import BaseModel, ConfigDict, Field, model_validator

Vec3 = tuple[float, float, float]

ROBOT_TOOLS = (
    "robot_move_to", "robot_move_relative", "robot_gripper", "robot_status",
    "robot_find_objects", "robot_camera", "robot_home", "robot_emergency_stop", "robot_reset",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoxZone(_Strict):
    """An axis-aligned box, ``min`` and ``max`` corners in metres (robot base frame)."""

    kind: Literal["box"] = "box"
    name: str = Field(min_length=1)
    min: Vec3
    max: Vec3

    @model_validator(mode="after")
    def _ordered(self) -> BoxZone:
        for axis, lo, hi in zip("xyz", self.min, self.max, strict=True):
            if lo >= hi:
                raise ValueError(f"zone {self.name!r}: min {axis} {lo} must be below max {hi}")
        return self


class SphereZone(_Strict):
    """A sphere, ``center`` in metres and ``radius`` in metres."""

    kind: Literal["sphere"] = "sphere"
    name: str = Field(min_length=1)
    center: Vec3
    radius: float = Field(gt=0)


Zone = Annotated[BoxZone | SphereZone, Field(discriminator="kind")]


class Workspace(_Strict):
    """The box the gripper must stay inside, on every point of every path."""

    min: Vec3 = (0.25, -0.45, 0.015)
    max: Vec3 = (0.75, 0.45, 0.65)

    @model_validator(mode="after")
    def _ordered(self) -> Workspace:
        for axis, lo, hi in zip("xyz", self.min, self.max, strict=True):
            if lo >= hi:
                raise ValueError(f"workspace: min {axis} {lo} must be below max {hi}")
        return self


class SceneObject(_Strict):
    """An object in the simulated scene: a cube that can be grasped, or a flat tray."""

    name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["cube", "tray"]
    position: tuple[float, float] = Field(description="x, y of its centre on the table (m).")
    size: float = Field(0.04, gt=0.005, le=0.4, description="Edge length (cube) or side (tray).")
    color: tuple[float, float, float] = (0.85, 0.1, 0.1)


DEFAULT_ZONES: list[BoxZone | SphereZone] = [
    BoxZone(name="camera_mast", min=(0.3, 0.28, 0.0), max=(0.42, 0.4, 0.6)),
]
DEFAULT_SCENE = [
    SceneObject(name="cube", kind="cube", position=(0.55, 0.12), size=0.04,
                color=(0.85, 0.1, 0.1)),
    SceneObject(name="tray", kind="tray", position=(0.55, -0.2), size=0.16,
                color=(0.1, 0.3, 0.85)),
]


class RoboConfig(Section):
    """The robot, its safety envelope and the simulated scene."""

    driver: str = Field("pybullet", description="Robot driver (stevedore llmos_robo.drivers).")
    robot: Literal["panda"] = Field("panda", description="Arm model the pybullet driver loads.")
    workspace: Workspace = Field(default_factory=Workspace)
    forbidden_zones: list[Zone] = Field(default_factory=lambda: list(DEFAULT_ZONES))
    zone_margin_m: float = Field(
        0.02, ge=0, le=0.2, description="Clearance kept from every forbidden zone."
    )
    max_step_m: float = Field(
        0.3, gt=0, le=2.0, description="Longest straight move one command may make."
    )
    max_speed_m_s: float = Field(
        0.5, gt=0, le=2.0, description="Fastest the gripper may travel."
    )
    home: Vec3 = Field((0.45, 0.0, 0.35), description="Home position of the gripper (m).")
    home_yaw_deg: float = Field(0.0, ge=-180, le=180)
    allowed_tools: list[str] = Field(
        default_factory=lambda: list(ROBOT_TOOLS),
        description="Robot tools that may be called at all; the others are refused.",
    )
    scene: list[SceneObject] = Field(default_factory=lambda: list(DEFAULT_SCENE))
    position_tolerance_m: float = Field(
        0.005, gt=0, le=0.05, description="How close a move must get to count as reached."
    )
    camera_size: tuple[int, int] = Field((320, 240), description="Camera image width, height.")

    @model_validator(mode="after")
    def _consistent(self) -> RoboConfig:
        from llmos_robo.geometry import point_in_box, zone_contains

        unknown = sorted(set(self.allowed_tools) - set(ROBOT_TOOLS))
        if unknown:
            raise ValueError(
                f"allowed_tools: unknown tool(s) {', '.join(unknown)}; "
                f"known: {', '.join(ROBOT_TOOLS)}"
            )
        if not point_in_box(self.home, self.workspace.min, self.workspace.max):
            raise ValueError(
                f"home {list(self.home)} is outside the workspace box "
                f"{list(self.workspace.min)}..{list(self.workspace.max)}; move home inside it"
            )
        for zone in self.forbidden_zones:
            if zone_contains(zone, self.home, self.zone_margin_m):
                raise ValueError(
                    f"home {list(self.home)} is inside forbidden zone {zone.name!r} (with "
                    f"zone_margin_m = {self.zone_margin_m}); choose a home outside every zone"
                )
        names = [o.name for o in self.scene]
        if len(set(names)) != len(names):
            raise ValueError(f"scene: object names must be unique, got {names}")
        width, height = self.camera_size
        if not (32 <= width <= 1024 and 32 <= height <= 1024):
            raise ValueError("camera_size: width and height must be between 32 and 1024")
        return self
