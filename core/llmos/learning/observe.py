"""What the model *saw* from a tool call, normalized so that a recorded call (Claude Code's
own tool response) and its replay (llmos's local tool) can be compared.

The model's later actions were chosen after reading these observations; when a replay
observes something else, the literal values the trace goes on to write may be stale.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llmos.tools import ToolRegistry


def observed_text(tool: str, output: Any, tools: ToolRegistry) -> str | None:
    """The normalized observation, or None when there is nothing comparable."""
    if tool == "Bash" and isinstance(output, dict):
        return str(output.get("stdout", "")).strip()
    if tool == "Read" and isinstance(output, dict):
        file = output.get("file")
        if isinstance(file, dict) and "content" in file:
            return str(file["content"]).rstrip("\n")
        return None
    registered = tools.get(tool)
    if registered is not None and tool not in ("Write", "Edit", "Glob", "Grep"):
        if isinstance(output, str):
            return output
        return json.dumps(output, sort_keys=True, default=str, ensure_ascii=False)
    return None


def observation_digest(tool: str, output: Any, tools: ToolRegistry) -> str:
    """sha256 of the normalized observation ('' when there is none)."""
    text = observed_text(tool, output, tools)
    return "" if text is None else hashlib.sha256(text.encode()).hexdigest()
