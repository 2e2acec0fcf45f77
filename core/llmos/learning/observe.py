"""What the model *saw* from a tool call, normalized so that a recorded call (Claude Code's
own tool response) and its replay (llmos's local tool) can be compared.

The model's later actions were chosen after reading these observations; when a replay
observes something else, the literal values the trace goes on to write may be stale.

Normalization: Bash output is compared as Claude Code shows it (stdout and stderr may
come merged or apart, so each non-empty stream is one block, in sorted order); a Read is
the file's text; Glob is the set of files found; Grep the matching lines or files; a
plugin tool's output is its JSON. The
goal's slot values are abstracted (``a.log`` becomes ``⟨1⟩``), so that the observation of
``wc -l a.log`` for one goal and ``wc -l b.log`` for another compare their counts, not
their names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmos.tools import ToolRegistry

if TYPE_CHECKING:
    from llmos.goals import Slot

_NOT_OBSERVED = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})


def _bash_text(output: dict[str, Any], *, swapped: bool = False) -> str:
    blocks = [str(output.get(k) or "").strip() for k in ("stdout", "stderr")]
    return "\n".join(b for b in (blocks[::-1] if swapped else blocks) if b)


def _glob_paths(output: Any) -> list[str] | None:
    names = output.get("filenames") if isinstance(output, dict) else output
    if not isinstance(names, list):
        return None
    return sorted(os.path.basename(str(n)) for n in names)  # Claude Code's are absolute


_LEADING_DIRS = re.compile(r"^(?:[^:\n]*/)?")


def _grep_lines(output: Any) -> list[str] | None:
    """Grep results as sorted lines with directories cut from the file names (Claude Code
    reports absolute paths, the replay workspace-relative ones)."""
    if isinstance(output, dict):
        if isinstance(output.get("filenames"), list) and not output.get("content"):
            lines = [str(n) for n in output["filenames"]]
        elif isinstance(output.get("content"), str):
            lines = output["content"].splitlines()
        else:
            lines = [f"{k}:{v}" for k, v in output.items()
                     if isinstance(v, int) and not isinstance(v, bool)]
    elif isinstance(output, list):
        lines = [str(n) for n in output]
    else:
        return None
    return sorted(_LEADING_DIRS.sub("", line) for line in lines if line.strip())


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
    if tool == "Grep":
        lines = _grep_lines(output)
        return None if lines is None else "\n".join(lines)
    registered = tools.get(tool)
    if registered is not None and tool not in _NOT_OBSERVED:
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


def _digest(text: str, slots: Sequence[Slot]) -> str:
    return hashlib.sha256(abstract(text, slots).encode("utf-8", "surrogatepass")).hexdigest()


def observation_digest(tool: str, output: Any, tools: ToolRegistry,
                       slots: Sequence[Slot] = ()) -> str:
    """sha256 of the normalized observation with ``slots`` abstracted ('' when none)."""
    text = observed_text(tool, output, tools)
    return "" if text is None else _digest(text, slots)


def observation_digests(tool: str, output: Any, tools: ToolRegistry,
                        slots: Sequence[Slot] = ()) -> set[str]:
    """Every digest this observation may have been recorded with: Claude Code's Bash
    merges stderr into stdout, in an order a replay cannot know, so both orders count."""
    first = observation_digest(tool, output, tools, slots)
    if not first:
        return set()
    if tool == "Bash" and isinstance(output, dict) and all(
            str(output.get(k) or "").strip() for k in ("stdout", "stderr")):
        return {first, _digest(_bash_text(output, swapped=True), slots)}
    return {first}
