"""Generalization earned by evidence: how a goal's slot values flow into a trace's steps.

One solved instance proves one goal. To replay a trace for *other* slot values, llmos
needs to know, for every string in every step, which parts are the slot's value and
which are literals that merely look like it (``i % 15`` in FizzBuzz for 1..15, the ``2``
of ``** 2``). That knowledge comes from evidence:

* **Exact** — the goal's slot values are the trace's own: the steps replay as recorded.
* **Evidence** — two or more solved instances of the same signature, with different
  values, are aligned step by step (anti-unification). Each string is explained as
  literals and *holes* ``(slot, form)`` such that rendering with each instance's values
  gives that instance's text. A part that changed exactly with a slot is a parameter, a
  part that stayed the same is a literal, and a part that changed in any other way
  (derived: ``the larger of 7 and 3`` wrote ``7``) has no explanation, so the trace is
  not replayed for new values. When several explanations fit the evidence, the replay
  happens only if they all render the same text for the new values.
* **Single example** — one instance, where it is provably safe: only names (file names,
  paths, URLs, quoted strings, identifiers; never numbers) change, each occurs in the
  steps only as a whole token, none of their derived forms (a file's stem) occurs on its
  own, and the new values are escaped for where they land.

Substituted values are escaped for their context (a shell word, a JSON string, a Python
or JavaScript string literal, a CSV cell) or the replay is declined.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import functools
import json
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from llmos.goals import Slot, extension_of

if TYPE_CHECKING:
    from llmos.memory.models import Step, Trace

MAX_TEMPLATES = 24  # explanations kept per string; more means "ambiguous"
MAX_ALIGN_CHARS = 200_000  # longer strings are not generalized
MAX_OCCURRENCES = 1_000  # places where slot values stand in one string
NAME_KINDS = frozenset({"file", "path", "url", "str", "ident"})
JSON_EXTS = frozenset({"json", "jsonl", "ndjson", "ipynb", "geojson"})
PYTHON_EXTS = frozenset({"py", "pyi", "pyx"})
CODE_EXTS = frozenset({"js", "mjs", "cjs", "ts", "tsx", "jsx", "java", "c", "h", "cc", "cpp",
                       "hpp", "go", "rs", "rb", "php", "kt", "swift", "scala", "cs", "lua",
                       "dart", "r", "jl", "pl", "qasm"})
SHELL_EXTS = frozenset({"sh", "bash", "zsh", "fish"})
CSV_EXTS = frozenset({"csv", "tsv"})
PATH_KEYS = frozenset({"file_path", "notebook_path", "path", "filename", "dest", "src",
                       "source", "target", "destination"})
CONTENT_KEYS = frozenset({"content", "new_string", "old_string", "new_source"})
_PLAIN = re.compile(r"[\w\-.+@%/:=,~]+")
_SHELL_WORD = re.compile(r"[\w\-.+@%/:,]+")  # nothing the shell expands or splits
_STRUCTURED_SAFE = re.compile(r"[\w\-.+@%/:=~ ]*")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEPARATOR = re.compile(r"[/\\]")


class Declined(ValueError):
    """The new values cannot be placed safely; the message says why."""


# ----------------------------------------------------------------------------- memo
R = TypeVar("R")
_MEMO: contextvars.ContextVar[dict[tuple[Any, ...], tuple[Any, Any]] | None] = \
    contextvars.ContextVar("llmos_generalize_memo", default=None)


@contextlib.contextmanager
def memoized() -> Iterator[None]:
    """While judging the traces of one signature against each other: what is computed of
    a trace alone (its structure, the numbers its steps wrote, where the slot values
    stand in each of its texts) is computed once per trace object or text, not once per
    pair (12 traces judged with up to 6 others each recomputed them ~80 times: 25-55 ms
    a route). Entries keep their trace alive, so an id is never reused within the block;
    nothing survives it."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def _once(kind: str, trace: Trace, compute: Callable[[Trace], R]) -> R:
    memo = _MEMO.get()
    if memo is None:
        return compute(trace)
    hit = memo.get((kind, id(trace)))
    if hit is None or hit[0] is not trace:
        hit = memo[(kind, id(trace))] = (trace, compute(trace))
    return hit[1]


# ----------------------------------------------------------------------------- forms
@dataclass(frozen=True)
class Hole:
    """Where slot ``slot`` stands in a string, in ``form`` (its value, its stem, or its
    JSON-escaped text)."""

    slot: int
    form: str = "value"


@dataclass(frozen=True)
class Either:
    """A part equal to slot ``slot``'s value in every instance seen: a literal or the slot,
    the evidence cannot tell. Renders only while the slot keeps that value."""

    slot: int
    form: str
    text: str


Piece = str | Hole | Either
Template = tuple[Piece, ...]


def stem(value: str) -> str:
    """``reports/q1.tar.gz`` -> ``q1``; the name a program may derive from a file name."""
    name = _SEPARATOR.split(value.rstrip("/\\"))[-1]
    ext = extension_of(value)
    if ext and ext != "/" and name.lower().endswith("." + ext):
        return name[: -len(ext) - 1]
    return name if name != value else ""


def form_text(slot: Slot, form: str) -> str:
    if form == "value":
        return slot.value
    if form == "stem":
        return stem(slot.value) if slot.kind in ("file", "path") else ""
    if form == "json":
        return json.dumps(slot.value, ensure_ascii=False)[1:-1]
    raise ValueError(form)


def forms_of(slot: Slot) -> list[tuple[str, str]]:
    """The forms in which a slot's value can stand in a step, with their texts."""
    out = [("value", slot.value)]
    for form in ("stem", "json"):
        text = form_text(slot, form)
        if text and len(text) >= 2 and all(text != t for _, t in out):
            out.append((form, text))
    return out


@functools.lru_cache(maxsize=4096)  # per value: re's own cache (512) was overrun
def occurrence_pattern(text: str, kind: str, form: str) -> re.Pattern[str]:
    """Where ``text`` stands as a whole token: ``10`` is not inside ``100``, a folder
    ``mail/inbox/`` also starts a longer path, ``2`` is glued to a flag in ``cut -f2``."""
    escaped = re.escape(text)
    if form == "stem":
        return re.compile(rf"(?<![A-Za-z0-9_]){escaped}(?![A-Za-z0-9_])")
    before = r"(?:(?<![\w.\-])|(?<=[\s'\"=(]-[A-Za-z]))" if kind == "num" else r"(?<![\w.\-])"
    after = "" if text.endswith(("/", "\\")) else r"(?![\w\-]|\.\w)"
    return re.compile(before + escaped + after)


def occurrences(text: str, slots: Sequence[Slot], which: set[int] | None = None
                ) -> dict[int, list[tuple[int, Hole]]]:
    """start -> [(end, hole)] for every form of every slot found in ``text``."""
    found: dict[int, list[tuple[int, Hole]]] = {}
    for index, slot in enumerate(slots):
        if which is not None and index not in which:
            continue
        for form, needle in forms_of(slot):
            if not needle:
                continue
            for m in occurrence_pattern(needle, slot.kind, form).finditer(text):
                found.setdefault(m.start(), []).append((m.end(), Hole(index, form)))
    return found


def _occurrences_once(text: str, slots: Sequence[Slot]) -> dict[int, list[tuple[int, Hole]]]:
    """``occurrences(text, slots)``, once per text and slot values inside ``memoized()``
    (a trace's text is aligned with each of the other instances in turn); read only."""
    memo = _MEMO.get()
    if memo is None:
        return occurrences(text, slots)
    key = ("occurrences", text, tuple((s.kind, s.value) for s in slots))
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = (None, occurrences(text, slots))
    return hit[1]


# ----------------------------------------------------------------------------- alignment
def _merge(pieces: Sequence[Piece]) -> Template:
    out: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, str):
            if not piece:
                continue
            if out and isinstance(out[-1], str):
                out[-1] = out[-1] + piece
                continue
        out.append(piece)
    return tuple(out)


class Ambiguous(Exception):
    pass


def explain(a: str, a_slots: Sequence[Slot], b: str, b_slots: Sequence[Slot]) -> list[Template]:
    """Every template that renders ``a`` with ``a_slots``' values and ``b`` with
    ``b_slots``'; [] when none does (``b`` differs from ``a`` in a way no slot explains).
    Raises Ambiguous when there are too many to consider."""
    if len(a) > MAX_ALIGN_CHARS or len(b) > MAX_ALIGN_CHARS:
        raise Ambiguous("too long to align")
    occ = _occurrences_once(a, a_slots)
    starts = sorted(occ)
    if len(starts) > MAX_OCCURRENCES:
        raise Ambiguous(f"the values occur {len(starts)} times: too often to align")
    memo: dict[tuple[int, int], list[tuple[Piece, ...]]] = {}

    def solve(pa: int, pb: int) -> list[tuple[Piece, ...]]:
        key = (pa, pb)
        if key in memo:
            return memo[key]
        k = bisect.bisect_left(starts, pa)
        nxt = starts[k] if k < len(starts) else len(a)
        literal = a[pa:nxt]
        result: list[tuple[Piece, ...]] = []
        if b.startswith(literal, pb):
            pb2 = pb + len(literal)
            if nxt == len(a):
                if pb2 == len(b):
                    result.append((literal,))
            else:
                same_slot_parts: set[tuple[int, int]] = set()
                for end, hole in occ[nxt]:
                    old = a_slots[hole.slot]
                    new = b_slots[hole.slot]
                    rendered = form_text(new, hole.form)
                    if old.value == new.value:
                        # no evidence either way: one branch that remembers the doubt
                        if b.startswith(rendered, pb2) and (end, hole.slot) not in same_slot_parts:
                            same_slot_parts.add((end, hole.slot))
                            piece = Either(hole.slot, hole.form, a[nxt:end])
                            result += [(literal, piece, *rest)
                                       for rest in solve(end, pb2 + len(rendered))]
                        continue
                    if rendered and b.startswith(rendered, pb2):
                        result += [(literal, hole, *rest)
                                   for rest in solve(end, pb2 + len(rendered))]
                    if len(result) > MAX_TEMPLATES:
                        raise Ambiguous("too many explanations")
                if not any(a_slots[h.slot].value == b_slots[h.slot].value for _, h in occ[nxt]):
                    # the part read as a literal: one character, then the next occurrence
                    if pb2 < len(b) and a[nxt] == b[pb2]:
                        result += [(literal + a[nxt], *rest) for rest in solve(nxt + 1, pb2 + 1)]
                elif not result and pb2 < len(b) and a[nxt] == b[pb2]:
                    result += [(literal + a[nxt], *rest) for rest in solve(nxt + 1, pb2 + 1)]
        if len(result) > MAX_TEMPLATES:
            raise Ambiguous("too many explanations")
        memo[key] = result
        return result

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(starts) + 200))
    try:
        found = solve(0, 0)
    except RecursionError:
        raise Ambiguous("too many occurrences to align") from None
    finally:
        sys.setrecursionlimit(limit)
    return list(dict.fromkeys(_merge(t) for t in found))


# ----------------------------------------------------------------------------- contexts
def context_of(tool: str, key: str, step_input: dict[str, Any]) -> str:
    """What a string field is, for escaping: shell, json, python, code, csv, structured,
    path or text."""
    if tool == "Bash" and key == "command":
        return "shell"
    if key in PATH_KEYS:
        return "path"
    if key in CONTENT_KEYS:
        target = next((v for k in ("file_path", "notebook_path", "path")
                       if isinstance(v := step_input.get(k), str)), "")
        ext = extension_of(target) if target else ""
        if ext in JSON_EXTS:
            return "json"
        if ext in PYTHON_EXTS:
            return "python"
        if ext in CODE_EXTS:
            return "code"
        if ext in SHELL_EXTS:
            return "shell"
        if ext in CSV_EXTS:
            return "csv"
        if ext in ("", "txt", "md", "markdown", "rst", "log", "org", "tex"):
            return "text"
        return "structured"
    return "text"


def _quote_state(prefix: str, quotes: str, *, comment: str | None = None) -> str | None:
    """The string delimiter open at the end of ``prefix`` in code (None: outside any
    string; '#': inside a comment). Backslash escapes; triple quotes for Python."""
    state: str | None = None
    i = 0
    while i < len(prefix):
        ch = prefix[i]
        if state is None:
            if comment and ch == comment:
                newline = prefix.find("\n", i)
                if newline == -1:
                    return "#"
                i = newline
            elif ch in quotes:
                state = ch * 3 if comment == "#" and prefix.startswith(ch * 3, i) else ch
                i += len(state) - 1
        elif ch == "\\":
            i += 1
        elif prefix.startswith(state, i):
            i += len(state) - 1
            state = None
        i += 1
    return state


def _shell_state(prefix: str) -> str | None:
    state: str | None = None
    i = 0
    while i < len(prefix):
        ch = prefix[i]
        if state == "'":
            if ch == "'":
                state = None
        elif state == '"':
            if ch == "\\":
                i += 1
            elif ch == '"':
                state = None
        else:
            if ch == "\\":
                i += 1
            elif ch in "'\"":
                state = ch
        i += 1
    return state


def _code_escape(value: str, quote: str) -> str:
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    out = out.replace("\t", "\\t")
    return out.replace(quote[0], "\\" + quote[0])


def escape(value: str, old: str, context: str, prefix: str) -> str:
    """``value`` as it must be written where ``old`` stood after ``prefix``; Declined when
    it cannot be placed there safely."""
    if value == old:
        return value
    if context == "shell":
        if value.startswith("-") and not old.startswith("-") and (
                not prefix.rstrip("'\"") or prefix.rstrip("'\"")[-1].isspace()):
            raise Declined(f"{value!r} would be read as an option by the command")
        state = _shell_state(prefix)
        if state == "'":
            return value.replace("'", "'\\''")
        if state == '"':
            return re.sub(r'([\\"$`])', r"\\\1", value)
        return value if _SHELL_WORD.fullmatch(value) else shlex.quote(value)
    if context == "json":
        if _quote_state(prefix, '"') == '"':
            return json.dumps(value, ensure_ascii=False)[1:-1]
        if _NUMBER.fullmatch(old) and _NUMBER.fullmatch(value):
            return value
        raise Declined(f"{value!r} would land outside a JSON string")
    if context in ("python", "code"):
        quotes = "'\"`" if context == "code" else "'\""
        state = _quote_state(prefix, quotes, comment="#" if context == "python" else None)
        if state == "#":
            return value.replace("\n", " ")
        if state:
            return _code_escape(value, state)
        for pattern, what in ((_NUMBER, "number"), (_IDENTIFIER, "name")):
            if pattern.fullmatch(old):
                if pattern.fullmatch(value):
                    return value
                raise Declined(f"{value!r} is not a {what} like the {old!r} it replaces in code")
        raise Declined(f"{value!r} would land in code outside a string literal")
    if context == "csv":
        if re.search(r"[,\t\"\r\n]", value):
            raise Declined(f"{value!r} would change the CSV's columns")
        return value
    if context == "structured":
        if not _STRUCTURED_SAFE.fullmatch(value):
            raise Declined(f"{value!r} holds characters with a meaning in this file's syntax")
        return value
    if "\x00" in value:
        raise Declined("a value cannot hold a NUL byte")
    return value


def render(template: Template, slots: Sequence[Slot], context: str,
           old_slots: Sequence[Slot]) -> str:
    """The template's text for ``slots``' values, each escaped for its context (the
    ``old_slots`` are the values the template was learned with)."""
    out: list[str] = []
    for piece in template:
        if isinstance(piece, str):
            out.append(piece)
        elif isinstance(piece, Either):
            if form_text(slots[piece.slot], piece.form) != piece.text:
                raise Declined(f"no evidence whether {piece.text!r} is slot "
                               f"{piece.slot + 1} or a literal")
            out.append(piece.text)
        else:
            new = form_text(slots[piece.slot], piece.form)
            if piece.form == "json":
                out.append(new)
            else:
                old = form_text(old_slots[piece.slot], piece.form)
                out.append(escape(new, old, context, "".join(out)))
    return "".join(out)


# ----------------------------------------------------------------------------- plans
@dataclass
class StepPlan:
    index: int
    tool: str
    input: dict[str, Any]
    expected_observation: str | None  # the abstract observation digest, when known


@dataclass
class Plan:
    """A trace made concrete for a goal: the inputs to replay and the evidence behind them."""

    trace: Trace
    evidence: str  # "exact", "single example", "evidence"
    explanation: str
    steps: list[StepPlan] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)  # the trace ids that gave evidence


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for k in sorted(value):
            yield from _leaves(value[k], (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((k, _shape(value[k])) for k in sorted(value))
    if isinstance(value, list):
        return ("list", tuple(_shape(v) for v in value))
    return type(value).__name__ if not isinstance(value, (bool, type(None))) else repr(value)


def replay_steps(trace: Trace) -> list[Step]:
    """The steps a replay runs: not the refused ones (they never ran), not the tools that
    only informed the model."""
    from llmos.learning.replay import SKIPPED_TOOLS

    return [s for s in trace.steps if not s.outcome.refused and s.tool not in SKIPPED_TOOLS]


def structure(trace: Trace) -> tuple[Any, ...]:
    """Two traces align only when they made the same calls with inputs of the same shape."""
    return _once("structure", trace, _structure)


def _structure(trace: Trace) -> tuple[Any, ...]:
    return tuple((s.tool, _shape(s.input), s.outcome.is_error) for s in replay_steps(trace))


def _set(root: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _as_leaf_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return None


def _typed(text: str, like: Any) -> Any:
    if isinstance(like, str):
        return text
    try:
        return type(like)(text)
    except (TypeError, ValueError):
        raise Declined(f"{text!r} is not a {type(like).__name__}") from None


def _key_of(path: tuple[Any, ...]) -> str:
    return next((str(p) for p in reversed(path) if isinstance(p, str)), "")


def exact_plan(trace: Trace) -> Plan:
    steps = [StepPlan(s.index if s.index is not None else i, s.tool, dict(s.input),
                      s.outcome.observation or None)
             for i, s in enumerate(replay_steps(trace))]
    return Plan(trace, "exact", "the same goal with the same values: replayed as recorded",
                steps, [trace.id])


def single_example_plan(trace: Trace, goal_slots: Sequence[Slot]) -> Plan:
    """Substitute changed names as whole tokens (Declined where that is not provably safe)."""
    changed = {i for i, (a, b) in enumerate(zip(trace.slots, goal_slots, strict=True))
               if a.value != b.value}
    for i in changed:
        slot = trace.slots[i]
        if slot.kind not in NAME_KINDS or len(slot.value) < 3:
            raise Declined(f"slot {i + 1} ({slot.value!r}) is a {slot.kind}: its role in the "
                           "steps needs a second solved instance as evidence")
    steps: list[StepPlan] = []
    used: set[int] = set()
    for n, step in enumerate(replay_steps(trace)):
        data = json.loads(json.dumps(step.input))
        for path, leaf in _leaves(step.input):
            text = _as_leaf_text(leaf)
            if text is None:
                continue
            holes = [h for h in _canonical(occurrences(text, trace.slots))
                     if h[2].slot in changed]
            for _start, _end, hole in holes:
                used.add(hole.slot)
            # a part of a changed name used on its own (a file's stem, the words of an
            # identifier, the year in report_2024.txt) means the name was used otherwise
            covered = [(a, b) for a, b, _ in holes]
            for i in changed:
                for part in changed_parts(trace.slots[i].value, goal_slots[i].value):
                    for m in _part_pattern(part).finditer(text):
                        if not any(a <= m.start() and m.end() <= b for a, b in covered):
                            raise Declined(f"{m.group()!r}, derived from "
                                           f"{trace.slots[i].value!r}, is used on its own: "
                                           "needs a second solved instance")
            pieces: list[Piece] = []
            pos = 0
            for start, end, hole in holes:
                pieces += [text[pos:start], hole]
                pos = end
            pieces.append(text[pos:])
            context = context_of(step.tool, _key_of(path), step.input)
            new = render(_merge(pieces), goal_slots, context, trace.slots)
            _set(data, path, _typed(new, leaf))
        steps.append(StepPlan(step.index if step.index is not None else n, step.tool, data,
                              step.outcome.observation or None))
    unused = changed - used
    if unused:
        i = min(unused)
        raise Declined(f"slot value {trace.slots[i].value!r} changed but the trace never "
                       "used it: guidance only")
    return Plan(trace, "single example", "names substituted as whole tokens: "
                + ", ".join(f"{trace.slots[i].value} → {goal_slots[i].value}"
                            for i in sorted(changed)), steps, [trace.id])


_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def changed_parts(old: str, new: str) -> list[str]:
    """The words and numbers of ``old`` (split at punctuation and case changes) that
    ``new`` does not have: what a program may have derived from the value."""
    mine = {p.lower() for p in _PART.findall(new)}
    ext = extension_of(old)
    skip = set(ext.split(".")) if ext and ext != "/" else set()
    return list(dict.fromkeys(p.lower() for p in _PART.findall(old)
                              if len(p) >= 3 and p.lower() not in mine | skip))


@functools.lru_cache(maxsize=1024)
def _part_pattern(part: str) -> re.Pattern[str]:
    return re.compile(rf"(?i)(?<![A-Za-z0-9]){re.escape(part)}(?![a-z0-9])")


def _canonical(occ: dict[int, list[tuple[int, Hole]]]) -> list[tuple[int, int, Hole]]:
    """Non-overlapping value occurrences, longest first at each place."""
    chosen: list[tuple[int, int, Hole]] = []
    last_end = -1
    for start in sorted(occ):
        options = [(end, hole) for end, hole in occ[start] if hole.form != "stem"]
        if not options or start < last_end:
            continue
        end, hole = max(options, key=lambda o: o[0])
        chosen.append((start, end, hole))
        last_end = end
    return chosen


def evidence_plan(base: Trace, others: Sequence[Trace], goal_slots: Sequence[Slot]) -> Plan:
    """Render ``base`` for the goal's values from what ``others`` (same signature and
    structure, other values) show about each part (Declined when they do not settle it)."""
    if not others:
        raise Declined("one solved instance only")
    changed = {i for i, (a, b) in enumerate(zip(base.slots, goal_slots, strict=True))
               if a.value != b.value}
    witnessed = {i for o in others for i, (a, b) in enumerate(zip(base.slots, o.slots,
                                                                    strict=True))
                 if a.value != b.value}
    if changed - witnessed:
        i = min(changed - witnessed)
        raise Declined(f"no solved instance with another value of slot {i + 1} "
                       f"({base.slots[i].value!r})")
    _check_numbers(base, others, goal_slots)
    base_steps = replay_steps(base)
    other_steps = [replay_steps(o) for o in others]
    plans: list[StepPlan] = []
    for n, step in enumerate(base_steps):
        data = json.loads(json.dumps(step.input))
        for path, leaf in _leaves(step.input):
            text = _as_leaf_text(leaf)
            if text is None:
                if any(_leaf_at(o[n].input, path) != leaf for o in other_steps):
                    raise Declined(f"step {n + 1}: a value changed that no slot explains")
                continue
            context = context_of(step.tool, _key_of(path), step.input)
            rendered: str | None = None
            for other, o_steps in zip(others, other_steps, strict=True):
                other_text = _as_leaf_text(_leaf_at(o_steps[n].input, path))
                if other_text is None:
                    raise Declined(f"step {n + 1}: inputs of another shape")
                try:
                    templates = explain(text, base.slots, other_text, other.slots)
                except Ambiguous as exc:
                    raise Declined(f"step {n + 1}: {exc}") from None
                if not templates:
                    raise Declined(f"step {n + 1} ({step.tool}) changed between solved "
                                   "instances in a way no slot explains (a derived value)")
                outputs = set()
                for template in templates:
                    try:
                        outputs.add(render(template, goal_slots, context, base.slots))
                    except Declined:
                        outputs.add(None)
                determined = next(iter(outputs)) if len(outputs) == 1 else None
                if determined is not None:
                    if rendered is not None and rendered != determined:
                        raise Declined(f"step {n + 1}: the solved instances disagree")
                    rendered = determined
            if rendered is None:
                raise Declined(f"step {n + 1} ({step.tool}): the evidence does not settle "
                               "where the new values go")
            if path:
                _set(data, path, _typed(rendered, leaf))
        # an observation is expected only when it was the same (slots abstracted) every time
        observed = {step.outcome.observation, *(o[n].outcome.observation for o in other_steps)}
        expected = step.outcome.observation if len(observed) == 1 else None
        plans.append(StepPlan(step.index if step.index is not None else n, step.tool, data,
                              expected or None))
    return Plan(base, "evidence", f"{len(others) + 1} solved instances show where each value "
                "goes: " + ", ".join(f"{base.slots[i].value} → {goal_slots[i].value}"
                                     for i in sorted(changed)),
                plans, [base.id, *(o.id for o in others)])


_NUMBER_TOKEN = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w]|\.\d)")


def _numbers(slots: Sequence[Slot]) -> dict[int, float]:
    out = {}
    for i, slot in enumerate(slots):
        if slot.kind == "num":
            try:
                out[i] = float(slot.value.replace(",", ""))
            except ValueError:
                continue
    return out


def _pattern(values: dict[int, float]) -> tuple[int, ...]:
    keys = sorted(values)
    return tuple((values[a] > values[b]) - (values[a] < values[b])
                 for n, a in enumerate(keys) for b in keys[n + 1:])


def _derivations(values: dict[int, float]) -> dict[str, float]:
    """Small functions of the goal's numbers a program may have computed and written."""
    out: dict[str, float] = {}
    for i, a in values.items():
        out.update({f"n{i}+1": a + 1, f"n{i}-1": a - 1, f"2*n{i}": 2 * a, f"n{i}^2": a * a})
        for j, b in values.items():
            if i < j:
                out.update({f"n{i}+n{j}": a + b, f"n{i}*n{j}": a * b})
            if i != j:
                out[f"n{i}-n{j}"] = a - b
    return out


def _step_numbers(trace: Trace) -> set[float]:
    return _once("numbers", trace, _numbers_written)


def _numbers_written(trace: Trace) -> set[float]:
    found: set[float] = set()
    for step in replay_steps(trace):
        for _, leaf in _leaves(step.input):
            text = _as_leaf_text(leaf)
            if text is not None:
                found.update(float(m.group()) for m in _NUMBER_TOKEN.finditer(text))
    return found  # shared through the memo: never changed in place


def _check_numbers(base: Trace, others: Sequence[Trace], goal_slots: Sequence[Slot]) -> None:
    """Declined when the goal's numbers relate differently than in every solved instance
    (``the larger of 2 and 3`` after instances where the first was always larger), or a
    number the instances all wrote is a function of their own numbers (a sum that
    happened to be equal): derived values the alignment would take for literals."""
    instances = [base, *others]
    values = [_numbers(t.slots) for t in instances]
    if len(values[0]) >= 2:
        seen = {_pattern(v) for v in values}
        if _pattern(_numbers(goal_slots)) not in seen:
            raise Declined("the goal's numbers compare otherwise than in every solved "
                           "instance: a value derived from them could change")
    if not values[0]:
        return
    common = set.intersection(*(_step_numbers(t) for t in instances))
    if not common:
        return
    derived = [_derivations(v) for v in values]
    # the derivations of the base instance sorted by value, so that each number written
    # looks up the few that may equal it instead of comparing with all of them (a step
    # writing a thousand numbers made this quadratic); the same test, in the same order
    order = list(derived[0].items())
    index = sorted((result, n) for n, (_, result) in enumerate(order) if result == result)
    keys = [result for result, _ in index]
    for number in common:
        slack = 2e-9 + abs(number) * 1e-15  # wider than the test: the test decides
        low = bisect.bisect_left(keys, number - slack)
        high = bisect.bisect_right(keys, number + slack)
        for n in sorted(n for _, n in index[low:high]):
            name, result = order[n]
            if abs(result - number) < 1e-9 and all(
                    abs(d.get(name, float("nan")) - number) < 1e-9 for d in derived[1:]):
                raise Declined(f"{number:g}, written by every solved instance, equals "
                               f"{name} in each of them: it may be derived")


def _leaf_at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value
