"""What the model *saw* from a tool call, normalized so that a recorded call (Claude Code's
own tool response) and its replay (llmos's local tool) can be compared.

The model's later actions were chosen after reading these observations; when a replay
observes something else, the literal values the trace goes on to write may be stale.

Normalization: Bash output is compared as Claude Code shows it (stdout and stderr may
come merged or apart, so each non-empty stream is one block, in sorted order); a Read is
the file's text; Glob is the set of paths found; a plugin tool's output is its JSON. The
goal's slot values are abstracted (``a.log`` becomes ``⟨1⟩``), so that the observation of
``wc -l a.log`` for one goal and ``wc -l b.log`` for another compare their counts, not
their names.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmos.tools import ToolRegistry

if TYPE_CHECKING:
    from llmos.goals import Slot

_NOT_OBSERVED = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})


def _bash_text(output: dict[str, Any]) -> str:
    blocks = [str(output.get(k) or "").strip() for k in ("stdout", "stderr")]
    return "\n".join(sorted(b for b in blocks if b))


def _glob_paths(output: Any) -> list[str] | None:
    names = output.get("filenames") if isinstance(output, dict) else output
    if not isinstance(names, list):
        return None
    return sorted(os.path.basename(str(n)) for n in names)  # Claude Code's are absolute


def observed_text(tool: str, output: Any, tools: ToolRegistry) -> str | None:
    """The normalized observation, or None when there is nothing comparable."""
    if tool == "Bash" and isinstance(output, dict):
        return _bash_text(output)
    if tool == "Read" and isinstance(output, dict):
        file = output.get("file")
        if isinstance(file, dict) and "content" in file:
            return str(file["content"]).rstrip("\n")
        return None
    if tool == "Glob":
        paths = _glob_paths(output)
        return None if paths is None else "\n".join(paths)
    registered = tools.get(tool)
    if registered is not None and tool not in _NOT_OBSERVED and tool != "Grep":
        if isinstance(output, str):
            return output
        return json.dumps(output, sort_keys=True, default=str, ensure_ascii=False)
    return None


def abstract(text: str, slots: Sequence[Slot]) -> str:
    """``text`` with each whole-token occurrence of a slot's value replaced by ⟨n⟩."""
    if not slots or not text:
        return text
    from llmos.learning.generalize import _canonical, occurrences

    out: list[str] = []
    pos = 0
    for start, end, hole in _canonical(occurrences(text, slots)):
        out += [text[pos:start], f"\u27e8{hole.slot + 1}\u27e9"]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def observation_digest(tool: str, output: Any, tools: ToolRegistry,
                       slots: Sequence[Slot] = ()) -> str:
    """sha256 of the normalized observation with ``slots`` abstracted ('' when none)."""
    text = observed_text(tool, output, tools)
    if text is None:
        return ""
    return hashlib.sha256(abstract(text, slots).encode("utf-8", "surrogatepass")).hexdigest()
