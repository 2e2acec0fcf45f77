"""Memory injection: the facts and past successful runs most relevant to a goal, added to
what the model sees (``user_prompt_submit``), never more than ``memory.inject_max_chars``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import llmos

if TYPE_CHECKING:
    from llmos.calls import CallContext
    from llmos.memory.base import MemoryBackend
    from llmos.memory.models import Step, Trace

log = logging.getLogger("llmos.memory")

MAX_FACTS = 5
MAX_TRACES = 3
MAX_STEPS_SHOWN = 6
MIN_COVERAGE = 0.5
_MAIN_ARGS = ("command", "file_path", "notebook_path", "path", "pattern", "url", "query")


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _step_summary(step: Step) -> str:
    arg = next((step.input[k] for k in _MAIN_ARGS if isinstance(step.input.get(k), str)), "")
    return f"{step.tool} {_one_line(arg, 60)}".strip() if arg else step.tool


def _trace_line(trace: Trace) -> str:
    shown = [_step_summary(s) for s in trace.steps[:MAX_STEPS_SHOWN]]
    if len(trace.steps) > MAX_STEPS_SHOWN:
        shown.append(f"… {len(trace.steps) - MAX_STEPS_SHOWN} more")
    files = sorted({f.path for s in trace.steps for f in s.outcome.files})
    parts = [f'"{_one_line(trace.goal_text, 200)}"',
             f"{len(trace.steps)} steps: {' → '.join(shown) or 'none'}"]
    if files:
        parts.append(f"files: {', '.join(files[:5])}")
    parts.append(f"succeeded {trace.success_count} of {trace.usage_count} uses")
    return "- " + "; ".join(parts)


def coverage(goal: str, trace: Trace) -> float:
    """The share of the goal's search terms that the trace's text contains (as prefixes)."""
    from llmos.memory.text import query_terms, trace_search_text

    terms = query_terms(goal)
    if not terms:
        return 0.0
    tokens = trace_search_text(trace).split()
    return sum(any(t.startswith(term) for t in tokens) for term in terms) / len(terms)


def relevant(memory: MemoryBackend, goal: str) -> tuple[list, list[Trace]]:
    """The facts and non-demoted traces most relevant to ``goal``: traces of the exact
    same goal (signature) first, then full-text matches that share at least
    ``MIN_COVERAGE`` of the goal's terms."""
    from llmos.goals import goal_signature

    traces = [t for t in memory.find_traces(signature=goal_signature(goal)) if not t.demoted]
    seen = {t.id for t in traces}
    for trace in memory.search_traces(goal, limit=MAX_TRACES * 2):
        if not trace.demoted and trace.id not in seen and coverage(goal, trace) >= MIN_COVERAGE:
            traces.append(trace)
            seen.add(trace.id)
    return memory.search_facts(goal, limit=MAX_FACTS), traces[:MAX_TRACES]


def _fit(sections: list[tuple[str, list[str]]], max_chars: int) -> str | None:
    """Whole lines while they fit; then what fits of the next item; never a bare header."""
    lines: list[str] = []
    for header, items in sections:
        if items:
            lines += (["", header] if lines else [header]) + items
    out: list[str] = []
    used = 0
    for line in lines:
        sep = 1 if out else 0
        if used + sep + len(line) <= max_chars:
            out.append(line)
            used += sep + len(line)
            continue
        room = max_chars - used - sep
        if line.startswith("- ") and room > 12:
            out.append(line[: room - 1] + "…")
        break
    while out and not out[-1].startswith("- "):
        out.pop()  # a header (or blank line) with no item under it
    return "\n".join(out) or None


def memory_context(memory: MemoryBackend, goal: str, max_chars: int) -> str | None:
    """The text to add to a goal, at most ``max_chars`` long, or None when nothing fits."""
    if max_chars <= 0 or not goal.strip():
        return None
    facts, traces = relevant(memory, goal)
    fact_lines = [
        "- " + _one_line(f.text, 400) + (f" [{', '.join(f.tags)}]" if f.tags else "")
        for f in facts
    ]
    trace_lines = [_trace_line(t) for t in traces]
    return _fit(
        [
            ("Relevant facts from memory:", fact_lines),
            ("Past successful runs of similar goals:", trace_lines),
        ],
        max_chars,
    )


@llmos.hookimpl
def llmos_user_prompt_submit(goal: str, context: CallContext) -> str | None:
    kernel = context.kernel
    try:
        return memory_context(kernel.memory, goal, kernel.config.memory.inject_max_chars)
    except Exception as exc:  # memory must never stop a goal
        from llmos.memory.redaction import redact_text

        log.warning("memory injection failed: %s", redact_text(str(exc)))
        return None
