"""Matching a goal to the traces of goals already solved — precise before clever.

A trace can be *replayed* (FOLLOWER) only when the new goal has the trace's exact
signature (the same words, only slot values may differ, a file's kind included) and
either the same values (exact) or evidence of where the new values go: other solved
instances of the signature aligned with it, or a single example where substituting is
provably safe (see llmos.learning.generalize). Everything else is at most *guidance*
(MIXED), and goals whose action, object or negation differ are kept below the MIXED
threshold so they go to LEARNER.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from llmos.goals import Goal, Slot, analyze_goal

if TYPE_CHECKING:
    from llmos.learning.generalize import Plan
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
FAMILY_LIMIT = 12  # traces of one signature judged together
EVIDENCE_LIMIT = 6  # other instances aligned with a trace


def words(normalized: str) -> list[str]:
    return _WORD.findall(normalized)


def actions(tokens: list[str]) -> set[str]:
    return {_VERB_GROUP[t] for t in tokens if t in _VERB_GROUP}


def negated(tokens: list[str]) -> bool:
    return any(t in NEGATIONS for t in tokens)


def content_words(tokens: list[str]) -> set[str]:
    return {t for t in tokens if t not in STOPWORDS and t not in _VERB_GROUP
            and t not in NEGATIONS}


class Wording(NamedTuple):
    """What ``_unlike`` compares of a normalized goal."""

    words: frozenset[str]
    actions: frozenset[str]
    negated: bool
    content: frozenset[str]


@functools.lru_cache(maxsize=4096)
def wording(normalized: str) -> Wording:
    """The words, action groups, negation and content words of a normalized goal text,
    worked out once per text (a route compares the goal with every candidate; a process
    routing many goals meets the same stored goals again), not once per comparison."""
    tokens = words(normalized)
    return Wording(frozenset(tokens), frozenset(actions(tokens)), negated(tokens),
                   frozenset(content_words(tokens)))


QUESTION_WORDS = frozenset(
    "what how which who whom whose when where why is are was were does do did can could "
    "should will would has have".split()
)
_RESULT_WORDS = frozenset("into to save store write create put append".split())


def is_question(goal: Goal) -> bool:
    """Whether the goal asks to be told something rather than to change something: a
    question, or only reading verbs (count, show, list, ...) with nothing to write to."""
    tokens = words(goal.normalized)
    if goal.text.rstrip().endswith("?") or (tokens and tokens[0] in QUESTION_WORDS):
        return True
    return actions(tokens) == {"read"} and not _RESULT_WORDS & set(tokens)


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


@dataclass
class Candidate:
    """One trace judged against the goal; ``plan`` is what a replay would run."""

    trace: Trace
    confidence: float
    reason: str
    replayable: bool = False
    bindings: dict[str, str] = field(default_factory=dict)  # old slot value -> new value
    plan: Plan | None = None

    @property
    def evidence(self) -> str | None:
        return self.plan.evidence if self.plan else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace.id,
            "goal": self.trace.goal_text,
            "confidence": round(self.confidence, 4),
            "reason": self.reason,
            "replayable": self.replayable,
            "evidence": self.evidence,
            "evidence_traces": self.plan.instances if self.plan else [],
            "bindings": self.bindings,
            "success_rating": self.trace.success_rating,
            "usage_count": self.trace.usage_count,
            "demoted_reason": self.trace.demoted_reason,
        }


def slot_bindings(
    old: tuple[Slot, ...] | list[Slot], new: tuple[Slot, ...]
) -> dict[str, str] | None:
    """Old value -> new value, slot by slot in order (for display); None when the slots
    do not line up."""
    if len(old) != len(new) or any(a.kind != b.kind for a, b in zip(old, new, strict=True)):
        return None
    return {a.value: b.value for a, b in zip(old, new, strict=True) if a.value != b.value}


def _confidence(trace: Trace) -> float:
    rating = trace.success_rating
    return 0.92 + 0.08 * rating if rating >= 0.75 else 0.75 + 0.15 * rating


def _unlike(goal: Goal, trace: Trace) -> Candidate | None:
    """A candidate capped below replay when the goal asks for something else."""
    if trace.demoted:
        return Candidate(trace, 0.0, f"demoted: {trace.demoted_reason or 'its replays failed'}")
    mine, theirs = wording(goal.normalized), wording(trace.normalized_goal)
    if mine.actions != theirs.actions:
        return Candidate(
            trace, min(NEAR_MISS_CAP, 0.5 * jaccard(mine.words, theirs.words)),
            f"different action ({', '.join(sorted(theirs.actions)) or 'none'} → "
            f"{', '.join(sorted(mine.actions)) or 'none'})",
        )
    if mine.negated != theirs.negated:
        return Candidate(trace, min(NEAR_MISS_CAP, 0.5 * jaccard(mine.words, theirs.words)),
                         "negation differs")
    if goal.signature != trace.goal_signature:
        similarity = jaccard(mine.content, theirs.content)
        if mine.content != theirs.content:
            confidence = min(NEAR_MISS_CAP, similarity * NEAR_MISS_CAP)
            return Candidate(trace, confidence, f"similar goal, other object ({similarity:.2f})")
        return Candidate(trace, min(SIMILAR_CAP, 0.8 + 0.1 * similarity),
                         "same words in another order or form (or another file kind)")
    return None


def judge(goal: Goal, trace: Trace, family: list[Trace] | None = None) -> Candidate:
    """How well ``trace`` fits ``goal``, and whether it may be replayed for it.

    ``family`` holds the other traces of the goal's signature: the evidence that lets a
    trace replay for values it was not learned with (see llmos.learning.generalize)."""
    from llmos.learning.generalize import (
        Declined,
        evidence_plan,
        exact_plan,
        single_example_plan,
        structure,
    )
    from llmos.memory.redaction import contains_redaction

    unlike = _unlike(goal, trace)
    if unlike is not None:
        return unlike
    confidence = _confidence(trace)
    guidance = min(confidence, SIMILAR_CAP)
    bindings = slot_bindings(trace.slots, goal.slots)
    if bindings is None:
        return Candidate(trace, guidance, "same words, slots do not line up")
    if any(contains_redaction(s.input) for s in trace.steps):
        return Candidate(trace, guidance, "a step held a secret that was redacted: it cannot "
                         "be replayed as recorded; guidance only", bindings=bindings)
    if not bindings:
        return Candidate(trace, confidence, "exact goal", True, bindings, exact_plan(trace))
    shape = structure(trace)
    others = [t for t in family or () if t.id != trace.id and not t.demoted
              and slot_bindings(t.slots, trace.slots) is not None
              and structure(t) == shape][:EVIDENCE_LIMIT]
    reasons = []
    for build in (lambda: evidence_plan(trace, others, goal.slots),
                  lambda: single_example_plan(trace, goal.slots)):
        try:
            plan = build()
        except Declined as exc:
            reasons.append(str(exc))
            continue
        shown = ", ".join(f"{a} → {b}" for a, b in bindings.items())
        return Candidate(trace, confidence, f"same goal with other values ({shown}); "
                         f"{plan.evidence}: {plan.explanation}", True, bindings, plan)
    return Candidate(trace, guidance, "same goal with other values, but the evidence does not "
                     f"show where they go ({'; '.join(dict.fromkeys(reasons))}): guidance only",
                     bindings=bindings)


_EVIDENCE_ORDER = {"exact": 2, "evidence": 1, "single example": 0}


def _rank(c: Candidate) -> tuple[Any, ...]:
    return (c.replayable, _EVIDENCE_ORDER.get(c.evidence or "", -1), c.confidence,
            c.trace.success_count, c.trace.created_at)


def _best_possible(goal: Goal, trace: Trace) -> tuple[Any, ...] | None:
    """An upper bound of ``_rank(judge(goal, trace, ...))`` known without aligning
    anything, for a trace whose judgement would try evidence (same words, other slot
    values); None for the others, whose judgement is cheap."""
    if _unlike(goal, trace) is not None:
        return None
    bindings = slot_bindings(trace.slots, goal.slots)
    if not bindings:  # slots that do not line up, or the exact goal: cheap either way
        return None
    # at best replayable on evidence (never "exact": the values differ) at full confidence
    return (True, _EVIDENCE_ORDER["evidence"], _confidence(trace), trace.success_count,
            trace.created_at)


def judge_family(goal: Goal, family: list[Trace], limit: int) -> list[Candidate]:
    """The judgements of ``family`` that can be among the best ``limit``, in family
    order: the same list ``[judge(goal, t, family) for t in family]`` gives once sorted
    by ``_rank`` and cut at ``limit`` (and the same answer to "is any replayable?").

    Traces whose judgement aligns them with the others (the costly part: each with up
    to ``EVIDENCE_LIMIT`` instances, every string of every step) are judged best bound
    first, and the rest are left unjudged once ``limit`` judged ones rank strictly above
    the best any of them could reach; a trace left out could only rank below all of
    those, and since a bound is replayable, none is left out unless ``limit`` judged
    ones rank above a replayable bound, i.e. are replayable themselves."""
    if limit < 1:
        return [judge(goal, trace, family) for trace in family]
    done: dict[int, Candidate] = {}
    costly: list[tuple[tuple[Any, ...], int]] = []
    for i, trace in enumerate(family):
        bound = _best_possible(goal, trace)
        if bound is None:
            done[i] = judge(goal, trace, family)
        else:
            costly.append((bound, i))
    costly.sort(key=lambda item: item[0], reverse=True)  # stable: ties in family order
    for bound, i in costly:
        ranks = sorted((_rank(c) for c in done.values()), reverse=True)
        if len(ranks) >= limit and ranks[limit - 1] > bound:
            break  # this trace and all after it rank below the best `limit` judged
        done[i] = judge(goal, family[i], family)
    return [done[i] for i in sorted(done)]


def candidates(memory: MemoryBackend, goal: Goal, limit: int = 5) -> list[Candidate]:
    """The best traces for ``goal``: exact-signature ones first (judged with each other as
    evidence), then lexical neighbours as guidance."""
    from llmos.learning.generalize import memoized

    family = memory.find_traces(signature=goal.signature)[:FAMILY_LIMIT]
    with memoized():  # each trace's structure and numbers once, not once per pair
        judged = judge_family(goal, family, limit)
    seen = {t.id for t in family}
    if not any(c.replayable for c in judged):  # a replayable match needs no search
        terms = [w for w in content_words(words(goal.normalized)) if not w.startswith("<")]
        try:
            for trace in memory.search_traces(" ".join(terms) or goal.text, limit=limit * 2):
                if trace.id not in seen:
                    seen.add(trace.id)
                    judged.append(judge(goal, trace))
        except Exception:  # full-text search is a bonus; exact matching must still work
            pass
    judged.sort(key=_rank, reverse=True)
    return judged[:limit]


def best_match(memory: MemoryBackend, goal_text: str) -> tuple[Goal, list[Candidate]]:
    goal = analyze_goal(goal_text)
    return goal, candidates(memory, goal)
