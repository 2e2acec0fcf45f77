"""Matching a goal to the traces of goals already solved — precise before clever.

A trace can be *replayed* (FOLLOWER) only when the new goal has the trace's exact
signature (the same words, only slot values may differ), the same kinds of slots, and
every slot whose value changed is one the trace's steps actually used — otherwise the
replay could not honour the new value. Everything else is at most *guidance* (MIXED),
and goals whose action, object or negation differ are kept below the MIXED threshold so
they go to LEARNER.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmos.goals import Goal, Slot, analyze_goal

if TYPE_CHECKING:
    from llmos.memory.base import MemoryBackend
    from llmos.memory.models import Trace

# Verbs grouped by the action they name; two goals whose action groups differ are
# different tasks however similar the rest of the words is.
ACTION_GROUPS: dict[str, frozenset[str]] = {
    "create": frozenset("create make generate new build scaffold init initialize".split()),
    "write": frozenset("write save store put overwrite replace update set".split()),
    "delete": frozenset("delete remove erase rm drop destroy purge clear wipe unlink".split()),
    "add": frozenset("add append insert include attach".split()),
    "read": frozenset("read show print display cat view list ls get fetch count find".split()),
    "start": frozenset("start run launch execute begin spawn boot open".split()),
    "stop": frozenset("stop kill halt terminate end shutdown close abort cancel".split()),
    "enable": frozenset("enable activate turn-on allow".split()),
    "disable": frozenset("disable deactivate turn-off deny block forbid".split()),
    "increase": frozenset("increase raise grow increment bump expand".split()),
    "decrease": frozenset("decrease lower shrink decrement reduce".split()),
    "copy": frozenset("copy duplicate clone".split()),
    "move": frozenset("move rename mv".split()),
    "encode": frozenset("encode encrypt compress zip pack serialize".split()),
    "decode": frozenset("decode decrypt decompress unzip unpack extract deserialize".split()),
    "install": frozenset("install setup".split()),
    "uninstall": frozenset("uninstall".split()),
    "upload": frozenset("upload push send publish".split()),
    "download": frozenset("download pull receive".split()),
    "sort": frozenset("sort order rank".split()),
    "test": frozenset("test check verify validate".split()),
    "summarize": frozenset("summarize summarise describe explain".split()),
}
_VERB_GROUP = {verb: group for group, verbs in ACTION_GROUPS.items() for verb in verbs}
NEGATIONS = frozenset(
    "not no never without don't dont doesn't doesnt isn't isnt aren't arent won't wont "
    "cannot can't cant shouldn't mustn't except excluding neither nor none".split()
)
STOPWORDS = frozenset(
    "a an the to of in on at for from with and or by as into onto that this these those "
    "it its is are be please then so all each every some my our your".split()
)
_WORD = re.compile(r"<\w+>|[a-z0-9][a-z0-9'\-]*")

# Confidence bands (the dispatcher's defaults: FOLLOWER >= 0.92, MIXED >= 0.75).
NEAR_MISS_CAP = 0.6  # an action, object or negation difference: below MIXED
SIMILAR_CAP = 0.9  # never FOLLOWER without the exact signature


def words(normalized: str) -> list[str]:
    return _WORD.findall(normalized)


def actions(tokens: list[str]) -> set[str]:
    return {_VERB_GROUP[t] for t in tokens if t in _VERB_GROUP}


def negated(tokens: list[str]) -> bool:
    return any(t in NEGATIONS for t in tokens)


def content_words(tokens: list[str]) -> set[str]:
    return {t for t in tokens if t not in STOPWORDS and t not in _VERB_GROUP
            and t not in NEGATIONS}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


@dataclass
class Candidate:
    """One trace judged against the goal."""

    trace: Trace
    confidence: float
    reason: str
    replayable: bool = False
    bindings: dict[str, str] = field(default_factory=dict)  # old slot value -> new value

    def as_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace.id,
            "goal": self.trace.goal_text,
            "confidence": round(self.confidence, 4),
            "reason": self.reason,
            "replayable": self.replayable,
            "bindings": self.bindings,
            "success_rating": self.trace.success_rating,
            "usage_count": self.trace.usage_count,
        }


def _strings(value: Any) -> list[str]:
    """Every string inside a step input (searched as they are, not as JSON)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _step_strings(trace: Trace) -> list[str]:
    return [s for step in trace.steps for s in _strings(step.input)]


_SEQUENCE_BEFORE = re.compile(r"\d[ \t]*[,;|\n][ \t]*$")
_SEQUENCE_AFTER = re.compile(r"^[ \t]*[,;|\n][ \t]*\d")


def in_sequence(value: str, texts: list[str]) -> bool:
    """Whether a number stands in a list of numbers (``1,2,3,4,5``, one per line): the
    trace may have derived the other numbers from it, so substituting it alone is wrong."""
    pattern = value_pattern(value)
    for text in texts:
        for m in pattern.finditer(text):
            if _SEQUENCE_BEFORE.search(text[: m.start()]) or _SEQUENCE_AFTER.search(
                text[m.end() :]
            ):
                return True
    return False


def slot_bindings(
    old: tuple[Slot, ...] | list[Slot], new: tuple[Slot, ...]
) -> dict[str, str] | None:
    """Old value -> new value, slot by slot in order; None when the slots do not line up."""
    if len(old) != len(new) or any(a.kind != b.kind for a, b in zip(old, new, strict=True)):
        return None
    bindings: dict[str, str] = {}
    for a, b in zip(old, new, strict=True):
        if a.value == b.value:
            continue
        if bindings.get(a.value, b.value) != b.value:
            return None  # one old value would need two new ones
        bindings[a.value] = b.value
    return bindings


def value_pattern(value: str) -> re.Pattern[str]:
    """Where a slot value stands as a whole token (``10`` is not inside ``100``)."""
    return re.compile(rf"(?<![\w.\-]){re.escape(value)}(?![\w\-]|\.\w)")


def judge(goal: Goal, trace: Trace) -> Candidate:
    """How well ``trace`` fits ``goal``, and whether it may be replayed for it."""
    if trace.demoted:
        return Candidate(trace, 0.0, "demoted: its replays diverged")
    mine, theirs = words(goal.normalized), words(trace.normalized_goal)
    if actions(mine) != actions(theirs):
        return Candidate(
            trace, min(NEAR_MISS_CAP, 0.5 * jaccard(set(mine), set(theirs))),
            f"different action ({', '.join(sorted(actions(theirs))) or 'none'} → "
            f"{', '.join(sorted(actions(mine))) or 'none'})",
        )
    if negated(mine) != negated(theirs):
        return Candidate(trace, min(NEAR_MISS_CAP, 0.5 * jaccard(set(mine), set(theirs))),
                         "negation differs")
    similarity = jaccard(content_words(mine), content_words(theirs))
    if goal.signature != trace.goal_signature:
        if content_words(mine) != content_words(theirs):
            confidence = min(NEAR_MISS_CAP, similarity * NEAR_MISS_CAP)
            return Candidate(trace, confidence, f"similar goal, other object ({similarity:.2f})")
        return Candidate(trace, min(SIMILAR_CAP, 0.8 + 0.1 * similarity),
                         "same words in another order or form")
    rating = trace.success_rating
    confidence = 0.92 + 0.08 * rating if rating >= 0.75 else 0.75 + 0.15 * rating
    bindings = slot_bindings(trace.slots, goal.slots)
    if bindings is None:
        return Candidate(trace, min(confidence, SIMILAR_CAP), "same words, slots do not line up")
    texts = _step_strings(trace)
    unused = [old for old in bindings
              if not any(value_pattern(old).search(text) for text in texts)]
    if unused:
        return Candidate(
            trace, min(confidence, SIMILAR_CAP),
            f"slot value {unused[0]!r} changed but the trace never used it: guidance only",
            bindings=bindings,
        )
    kinds = {slot.value: slot.kind for slot in trace.slots}
    derived = [old for old in bindings if kinds.get(old) == "num" and in_sequence(old, texts)]
    if derived:
        return Candidate(
            trace, min(confidence, SIMILAR_CAP),
            f"slot value {derived[0]!r} stands in a sequence the trace may have derived from "
            "it: guidance only",
            bindings=bindings,
        )
    reason = "exact goal" if not bindings else (
        "same goal with other values: " + ", ".join(f"{a} → {b}" for a, b in bindings.items())
    )
    return Candidate(trace, confidence, reason, replayable=True, bindings=bindings)


def candidates(memory: MemoryBackend, goal: Goal, limit: int = 5) -> list[Candidate]:
    """The best traces for ``goal``: exact-signature ones first, then lexical neighbours."""
    seen: dict[str, Trace] = {}
    for trace in memory.find_traces(signature=goal.signature):
        seen.setdefault(trace.id, trace)
    judged = [judge(goal, trace) for trace in seen.values()]
    if not any(c.replayable for c in judged):  # a replayable exact match needs no search
        terms = [w for w in content_words(words(goal.normalized)) if not w.startswith("<")]
        try:
            for trace in memory.search_traces(" ".join(terms) or goal.text, limit=limit * 2):
                if trace.id not in seen:
                    seen[trace.id] = trace
                    judged.append(judge(goal, trace))
        except Exception:  # full-text search is a bonus; exact matching must still work
            pass
    judged.sort(key=lambda c: (c.replayable, c.confidence, c.trace.success_count), reverse=True)
    return judged[:limit]


def best_match(memory: MemoryBackend, goal_text: str) -> tuple[Goal, list[Candidate]]:
    goal = analyze_goal(goal_text)
    return goal, candidates(memory, goal)
