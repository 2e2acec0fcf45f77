"""Traces and facts as Markdown with YAML front matter: readable, diffable, portable.

A trace file::

    ---
    id: 3f2a...
    goal_signature: 8c736ecfb7c2a208
    goal_text: Create primes.py printing the first 10 primes
    success_rating: 1.0
    ...
    format: llmos-trace/1
    ---

    # Create primes.py printing the first 10 primes

    ## Execution Steps

    ### Step 1: Write

    - source: model
    - duration_s: 0.004

    Input:

    ```yaml
    file_path: primes.py
    content: |
      print(2)
    ```

    Outcome:

    ```yaml
    is_error: false
    ...
    ```

Everything outside the front matter, the step headings, their ``- key: value`` lines and
the ``Input:`` / ``Outcome:`` blocks is free text for humans and is ignored.
``normalized_goal``, ``goal_signature`` and ``slots`` are always derived from
``goal_text`` (so editing the goal by hand cannot leave a stale signature); hand-written
traces may leave them out, and ``tools_used`` too (computed from the steps).
Problems are reported as ``TraceFormatError`` with the line they were found on.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from pydantic import ValidationError

from llmos.errors import OperationFailed
from llmos.goals import analyze_goal
from llmos.memory.models import Fact, Step, StepOutcome, Trace

TRACE_FORMAT = "llmos-trace/1"
FACT_FORMAT = "llmos-fact/1"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MAX_RECORD_BYTES = 4 * 1024 * 1024
"""The largest trace or fact file read or imported (4 MiB)."""
MAX_RECORD_DEPTH = 64
"""How deeply lists and mappings may nest in a record's YAML or JSON."""


class _NoAliasLoader(yaml.SafeLoader):
    """The safe loader, refusing YAML aliases (``*name``): a record never needs one, and
    a few hundred bytes of nested aliases expand to gigabytes (the "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in a record; write the "
                "value out", event.start_mark)
        return super().compose_node(parent, index)


def _load_yaml(text: str) -> Any:
    """YAML with no aliases. Text without a ``*`` cannot hold one and takes the fast
    (C) loader; other text the pure-Python loader that refuses them."""
    return yaml.load(text, Loader=_NoAliasLoader if "*" in text else _Loader)

_FRONT_ORDER = (
    "id", "goal_signature", "goal_text", "success_rating", "usage_count", "last_used",
    "created_at", "estimated_cost_usd", "estimated_time_secs", "mode", "tools_used",
    "normalized_goal", "slots", "success_count", "failure_count", "demoted", "source_run",
    "divergence_count", "demoted_reason", "answer",
)
_STEP_META = ("source", "duration_s", "call_id")
_HEADING = re.compile(r"^#{2,4}\s+step\s+(\d+)\s*(?::\s*(.*?))?\s*$", re.IGNORECASE)
_META_LINE = re.compile(r"^[-*]\s+([A-Za-z_]+)\s*:\s*(.*?)\s*$")
_LABEL = re.compile(r"^\**\s*(input|outcome)\s*:?\s*\**\s*:?\s*$", re.IGNORECASE)
_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")


class TraceFormatError(OperationFailed, ValueError):
    """A Markdown record that cannot be read: the file, the line and the problem."""

    def __init__(self, file: str, line: int, problem: str) -> None:
        super().__init__(f"{file}:{line}: {problem}")
        self.file = file
        self.line = line
        self.problem = problem


class _Dumper(_BaseDumper):  # type: ignore[misc, valid-type]
    pass


def _represent_str(dumper: yaml.BaseDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump_yaml(data: Any, *, flow_leaves: bool = False) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=None if flow_leaves else False, width=1 << 30)


def _scalar(value: Any) -> str:
    """A one-line YAML scalar: plain when it reads back as itself, else JSON."""
    if isinstance(value, str) and "\n" not in value:
        try:
            if yaml.load(value, Loader=_Loader) == value and not value.startswith(("'", '"')):
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)


def _block(data: Any) -> str:
    """A fenced block that reads back exactly: YAML when it round-trips, else JSON."""
    text = _dump_yaml(data)
    try:
        if yaml.load(text, Loader=_Loader) == data:
            return f"```yaml\n{text}```"
    except yaml.YAMLError:
        pass
    return f"```json\n{json.dumps(data, indent=2, ensure_ascii=False)}\n```"


def render_trace(trace: Trace) -> str:
    data = trace.model_dump(mode="json")
    front = {key: data[key] for key in _FRONT_ORDER}
    front["format"] = TRACE_FORMAT
    title = " ".join(trace.goal_text.split())
    out = [f"---\n{_dump_yaml(front, flow_leaves=True)}---", "", f"# {title}", "",
           "## Execution Steps"]
    for number, step in enumerate(data["steps"], start=1):
        out += ["", f"### Step {number}: {step['tool']}", ""]
        out += [f"- {key}: {_scalar(step[key])}" for key in _STEP_META if step[key] is not None]
        out += ["", "Input:", "", _block(step["input"]), "", "Outcome:", "",
                _block(step["outcome"])]
    return "\n".join(out) + "\n"


def render_fact(fact: Fact) -> str:
    data = fact.model_dump(mode="json")
    front = {key: data[key] for key in ("id", "tags", "source_run", "created_at")}
    front["format"] = FACT_FORMAT
    return f"---\n{_dump_yaml(front, flow_leaves=True)}---\n\n{fact.text}\n"


# -- parsing ----------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    """Lines split on "\n" only (str.splitlines would also split inside values on
    characters such as U+2028); a Windows line end is tolerated."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _split_front(lines: list[str], source: str) -> tuple[dict[str, Any], int, dict[str, int]]:
    """The front matter as a dict, the index of the first body line, and key -> line."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise TraceFormatError(source, 1, "the file is empty")
    if lines[first].strip() != "---":
        raise TraceFormatError(source, first + 1, "expected '---' to open the YAML front matter")
    end = next((i for i in range(first + 1, len(lines)) if lines[i].rstrip() in ("---", "...")),
               None)
    if end is None:
        raise TraceFormatError(source, first + 1, "the front matter is never closed with '---'")
    try:
        front = _load_yaml("".join(f"{line}\n" for line in lines[first + 1 : end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first + 2 + (mark.line if mark is not None else 0)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TraceFormatError(source, line, f"front matter is not valid YAML: {reason}") from None
    if front is None:
        front = {}
    if not isinstance(front, dict):
        raise TraceFormatError(source, first + 2, "front matter must be a mapping of key: value")
    key_lines: dict[str, int] = {}
    for i in range(first + 1, end):
        m = re.match(r"^([A-Za-z_][\w-]*)\s*:", lines[i])
        if m:
            key_lines.setdefault(m.group(1), i + 1)
    body = end + 1
    if lines[end].rstrip() == "..." and body < len(lines) and lines[body].rstrip() == "---":
        body += 1  # YAML ended its document with '...' (after a block kept its newlines)
    return front, body, key_lines


def _check_format(front: dict[str, Any], expected: str, source: str,
                  key_lines: dict[str, int]) -> None:
    fmt = front.pop("format", None)
    if fmt is not None and fmt != expected:
        raise TraceFormatError(source, key_lines.get("format", 1),
                               f"format {fmt!r} is not supported (this llmos reads {expected})")


def _explain(exc: ValidationError) -> tuple[tuple[Any, ...], str]:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "(record)"
    if err["type"] == "extra_forbidden":
        return loc, f"unknown field {where}"
    if err["type"] == "missing":
        return loc, f"missing field {where}"
    return loc, f"field {where}: {err['msg']} (got {err.get('input')!r})"


def _read_block(lines: list[str], start: int, source: str) -> tuple[Any, int]:
    """Parse the fenced block opening at ``lines[start]``; return (data, next index)."""
    fence = _FENCE.match(lines[start])
    assert fence is not None
    marker, lang = fence.group(1), fence.group(2).lower()
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].rstrip().startswith(marker[0] * len(marker))
                and not lines[i].strip(marker[0])), None)
    if end is None:
        raise TraceFormatError(source, start + 1, "code block is never closed")
    body = "".join(line + "\n" for line in lines[start + 1 : end])
    try:
        data = json.loads(body) if lang == "json" else _load_yaml(body)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(source, start + 1 + exc.lineno, f"invalid JSON: {exc.msg}"
                               ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = start + 2 + (mark.line if mark is not None else 0)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TraceFormatError(source, line, f"invalid YAML: {reason}") from None
    return data, end + 1


def _skip_block(lines: list[str], start: int, source: str) -> int:
    fence = _FENCE.match(lines[start])
    assert fence is not None
    marker = fence.group(1)
    for i in range(start + 1, len(lines)):
        if lines[i].rstrip().startswith(marker[0] * len(marker)) and not lines[i].strip(marker[0]):
            return i + 1
    raise TraceFormatError(source, start + 1, "code block is never closed")


_PLAIN = re.compile(r"^[A-Za-z_][\w.\-/]*$")


def _read_scalar(text: str) -> Any:
    """A ``- key: value`` value: JSON or a plain word, else YAML (slow, but rare)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    if _PLAIN.match(text) and text.lower() not in ("yes", "no", "on", "off", "null", "true",
                                                   "false", "y", "n", "~"):
        return text
    return _load_yaml(text)


def _parse_steps(lines: list[str], start: int, source: str
                 ) -> tuple[list[dict], list[dict[str, int]]]:
    """The raw steps, and for each the lines where its parts are ("heading", "input",
    "input.<key>", "outcome", "outcome.<key>", "<meta key>")."""
    steps: list[dict[str, Any]] = []
    step_lines: list[dict[str, int]] = []
    current: dict[str, Any] | None = None
    label: tuple[str, int] | None = None
    i = start
    while i < len(lines):
        line = lines[i]
        heading = _HEADING.match(line)
        if heading:
            number = int(heading.group(1))
            if number != len(steps) + 1:
                raise TraceFormatError(
                    source, i + 1,
                    f"step {number} out of order: steps must be numbered 1, 2, 3, ... "
                    f"(expected step {len(steps) + 1})",
                )
            tool = (heading.group(2) or "").strip()
            if not tool:
                raise TraceFormatError(source, i + 1, f"step {number} names no tool "
                                       f"(write '### Step {number}: ToolName')")
            current = {"tool": tool}
            steps.append(current)
            step_lines.append({"heading": i + 1})
            label = None
            i += 1
            continue
        if _FENCE.match(line):
            if current is not None and label is not None:
                fence_line = i + 1
                data, i = _read_block(lines, i, source)
                kind, label_line = label
                where = step_lines[-1]
                where[kind] = fence_line
                for j in range(fence_line, i - 1):
                    key = re.match(r"^([^\s#'\"-][^:]*):", lines[j])
                    if key:
                        where.setdefault(f"{kind}.{key.group(1)}", j + 1)
                if kind in current:
                    raise TraceFormatError(source, label_line,
                                           f"step {len(steps)} has two {kind} blocks")
                if not isinstance(data, dict):
                    raise TraceFormatError(source, label_line + 1,
                                           f"step {len(steps)}: the {kind} must be a mapping")
                current[kind] = data
                label = None
            else:
                i = _skip_block(lines, i, source)
            continue
        stripped = line.strip()
        if current is not None and stripped:
            labelled = _LABEL.match(stripped)
            meta = _META_LINE.match(stripped)
            if labelled:
                label = (labelled.group(1).lower(), i + 1)
            elif meta and meta.group(1) in _STEP_META and "input" not in current:
                step_lines[-1][meta.group(1)] = i + 1
                try:
                    current[meta.group(1)] = _read_scalar(meta.group(2))
                except yaml.YAMLError:
                    raise TraceFormatError(source, i + 1,
                                           f"cannot read the value of {meta.group(1)}") from None
            else:
                label = None
        i += 1
    for number, (step, where) in enumerate(zip(steps, step_lines, strict=True), start=1):
        if "input" not in step:
            raise TraceFormatError(source, where["heading"],
                                   f"step {number} has no 'Input:' block (a fenced yaml block)")
    return steps, step_lines


def parse_trace(text: str, source: str = "<trace>", *, default_id: str | None = None) -> Trace:
    """A trace from its Markdown; raises TraceFormatError naming the line at fault.
    Bounded: at most ``MAX_RECORD_BYTES``, ``MAX_RECORD_DEPTH`` levels, no YAML aliases,
    valid Unicode and finite numbers."""
    return _bounded(_parse_trace, text, source, default_id)


def _bounded(parse: Any, text: str, source: str, default_id: str | None) -> Any:
    from llmos.bounds import check_value
    from llmos.errors import BadInput

    if len(text) > MAX_RECORD_BYTES:
        raise TraceFormatError(source, 1, f"the file is larger than "
                               f"{MAX_RECORD_BYTES // (1024 * 1024)} MiB")
    try:
        record = parse(text, source, default_id=default_id)
        check_value(record.model_dump(mode="python"), "the record",
                    max_depth=MAX_RECORD_DEPTH, max_bytes=MAX_RECORD_BYTES)
    except RecursionError:
        raise TraceFormatError(source, 1, f"nested more than {MAX_RECORD_DEPTH} levels deep"
                               ) from None
    except BadInput as exc:
        raise TraceFormatError(source, 1, str(exc)) from None
    return record


def _parse_trace(text: str, source: str, *, default_id: str | None = None) -> Trace:
    lines = _lines(text)
    front, body_start, key_lines = _split_front(lines, source)
    _check_format(front, TRACE_FORMAT, source, key_lines)
    raw_steps, step_lines = _parse_steps(lines, body_start, source)
    if "id" not in front and default_id is not None:
        front["id"] = default_id
    goal_text = front.get("goal_text")
    if isinstance(goal_text, str):  # derived from the goal, even if it was edited by hand
        goal = analyze_goal(goal_text)
        front["normalized_goal"] = goal.normalized
        front["goal_signature"] = goal.signature
        front["slots"] = [s.model_dump() for s in goal.slots]
    front.setdefault("tools_used", list(dict.fromkeys(s["tool"] for s in raw_steps)))
    front["steps"] = [{**s, "index": n} for n, s in enumerate(raw_steps)]
    try:
        return Trace.model_validate(front)
    except ValidationError as exc:
        loc, problem = _explain(exc)
        if loc and loc[0] == "steps" and len(loc) > 1 and isinstance(loc[1], int):
            where = step_lines[loc[1]]
            parts = [str(p) for p in loc[2:4]]
            line = (where.get(".".join(parts)) or where.get(parts[0] if parts else "")
                    or where["heading"])
            problem = f"step {loc[1] + 1}: " + problem.replace(f"steps.{loc[1]}.", "")
        else:
            line = key_lines.get(str(loc[0]) if loc else "", 1)
        raise TraceFormatError(source, line, problem) from None


def parse_fact(text: str, source: str = "<fact>", *, default_id: str | None = None) -> Fact:
    """A fact from its Markdown, bounded like ``parse_trace``."""
    return _bounded(_parse_fact, text, source, default_id)


def _parse_fact(text: str, source: str, *, default_id: str | None = None) -> Fact:
    lines = _lines(text)
    front, body_start, key_lines = _split_front(lines, source)
    _check_format(front, FACT_FORMAT, source, key_lines)
    if "id" not in front and default_id is not None:
        front["id"] = default_id
    front["text"] = "\n".join(lines[body_start:]).strip()
    if not front["text"]:
        raise TraceFormatError(source, body_start + 1, "the fact has no text")
    try:
        return Fact.model_validate(front)
    except ValidationError as exc:
        loc, problem = _explain(exc)
        raise TraceFormatError(source, key_lines.get(str(loc[0]) if loc else "", 1),
                               problem) from None


__all__ = [
    "FACT_FORMAT",
    "TRACE_FORMAT",
    "Step",
    "StepOutcome",
    "TraceFormatError",
    "parse_fact",
    "parse_trace",
    "render_fact",
    "render_trace",
]
