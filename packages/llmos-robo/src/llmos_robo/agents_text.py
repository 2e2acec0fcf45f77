"""The two markdown agents as context for robot goals (until agents get a runtime)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

AGENTS_DIR = Path(__file__).parent / "agents"
ROBOT_WORDS = re.compile(
    r"\b(robot|arm|gripper|grasp|pick|place|cube|tray|e-?stop|end[- ]effector)s?\b", re.I
)


@cache
def agent_body(name: str) -> str:
    text = (AGENTS_DIR / f"{name}.md").read_text(encoding="utf-8")
    return text.split("---", 2)[2].strip() if text.startswith("---") else text.strip()


def robot_context(goal: str, context: Any) -> str | None:
    if not ROBOT_WORDS.search(goal):
        return None
    cfg = context.kernel.config.section("robo")
    zones = ", ".join(z.name for z in cfg.forbidden_zones) or "none"
    return (
        "## Robot operator\n" + agent_body("robot-operator")
        + "\n\n## Safety officer (review your plan with these rules before each motion)\n"
        + agent_body("safety-officer")
        + f"\n\nLimits: workspace box {list(cfg.workspace.min)}..{list(cfg.workspace.max)} m; "
        f"forbidden zones: {zones}; largest step {cfg.max_step_m} m; home {list(cfg.home)}."
    )
