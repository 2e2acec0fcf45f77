"""The pack's Markdown agents, and the system prompt each gives the requests it serves.

Until agents get a runtime of their own, an agent's body is added to the model's context
(``llmos_user_prompt_submit``) for goals that carry its marker, e.g.
``[quantum-tutor] What is entanglement?``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

AGENTS_DIR = Path(__file__).parent / "agents"
TUTOR, ARCHITECT = "quantum-tutor", "quantum-architect"
_MARKER = re.compile(r"^\[(quantum-tutor|quantum-architect)\]\s")


def goal_for(agent: str, prompt: str) -> str:
    """The goal the router runs for ``prompt`` served by ``agent``."""
    return f"[{agent}] {prompt.strip()}"


def agent_of(goal: str) -> str | None:
    found = _MARKER.match(goal)
    return found.group(1) if found else None


@functools.cache
def prompt_of(agent: str) -> str:
    """An agent file's body (the text after its front matter)."""
    text = (AGENTS_DIR / f"{agent}.md").read_text(encoding="utf-8")
    if text.startswith("---"):
        text = text[3:].split("\n---", 1)[1].lstrip("-")
    return text.strip()
