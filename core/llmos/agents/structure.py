"""Does a goal ask for several distinct deliverables? A structural reading, not a count.

The goal is cut into clauses at conjunctions (``and``, ``then``, ``also``, commas,
semicolons). A clause that does not start with a verb continues the one before it (a
list of objects: "read a.txt and b.txt"); a verb with no object joins the next clause (a
compound action: "search and replace foo in a.txt"). Each clause has an action (the verb
groups of ``llmos.learning.matching``, plus the verbs of knowledge work) and an object
(its content words and slot values). A clause is a *deliverable* when its action produces
something (not a check such as "run it", "show the result") and its object is its own:
not a pronoun pointing back, not an artifact an earlier clause already delivers. Two or
more deliverables make a goal worth orchestrating.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llmos.goals import analyze_goal
from llmos.learning.matching import ACTION_GROUPS, actions, content_words, words

# Verbs of knowledge work that matching's action groups do not name.
WORK_VERBS: dict[str, str] = {
    verb: "research" for verb in "research investigate study explore survey".split()
} | {
    verb: "analyze" for verb in "analyze analyse evaluate assess measure benchmark profile "
    "compute calculate estimate".split()
} | {
    verb: "compose" for verb in "draft compose document translate outline plan design "
    "plot chart visualize visualise illustrate".split()
} | {
    verb: "change" for verb in "fix refactor implement improve optimize optimise review "
    "rewrite convert format migrate".split()
} | {
    verb: "collect" for verb in "collect gather scrape search crawl query".split()
} | {verb: "compare" for verb in "compare contrast".split()}

# Actions that look at or exercise a deliverable rather than produce one.
CHECK_ACTIONS = frozenset({"read", "start", "test", "stop"})
# Words that point back at an earlier clause's deliverable.
BACK_REFERENCES = frozenset(
    "it them this that these those result results output outputs answer everything "
    "one ones".split()
)
_SPLIT = re.compile(r"\s*(?:[,;]\s*(?:and\s+|then\s+|also\s+)*|\s+(?:and|then|also)\s+"
                    r"(?:then\s+|also\s+)*|\s+after\s+that\s+)", re.IGNORECASE)
_LEAD = frozenset({"then", "also", "finally", "next", "please", "and", "afterwards"})


@dataclass
class Clause:
    text: str
    verbs: list[str]
    actions: set[str]
    objects: set[str]
    artifacts: set[str]  # slot values: files, paths, URLs, names
    deliverable: bool = False
    note: str = ""


@dataclass
class Structure:
    clauses: list[Clause] = field(default_factory=list)

    @property
    def deliverables(self) -> list[Clause]:
        return [c for c in self.clauses if c.deliverable]

    @property
    def complex(self) -> bool:
        return len(self.deliverables) >= 2

    def explain(self) -> str:
        found = self.deliverables
        if self.complex:
            shown = "; ".join(
                f"{c.verbs[0]} → {', '.join([*sorted(c.artifacts), *sorted(c.objects)])[:60]}"
                for c in found)
            return f"{len(found)} distinct deliverables ({shown})"
        notes = [f"{c.text!r}: {c.note}" for c in self.clauses if c.note]
        head = "one deliverable" if found else "no deliverable action"
        return head + (f" ({'; '.join(notes)})" if notes else "")


def _verbs(tokens: list[str]) -> list[str]:
    known = {verb for verbs in ACTION_GROUPS.values() for verb in verbs}
    return [t for t in tokens if t in known or t in WORK_VERBS]


def _clause(text: str) -> Clause:
    goal = analyze_goal(text)
    tokens = words(re.sub(r"<[^>]+>", " ", goal.normalized))  # slots are artifacts
    while tokens and tokens[0] in _LEAD:
        tokens = tokens[1:]
    verbs = _verbs(tokens[:1])
    groups = actions(tokens[:1]) | {WORK_VERBS[v] for v in verbs if v in WORK_VERBS}
    rest = tokens[1:] if verbs else tokens
    objects = {t for t in content_words(rest) if t not in WORK_VERBS}
    artifacts = {s.value.lower() for s in goal.slots}
    return Clause(text.strip(), verbs, groups, objects, artifacts)


def _segments(text: str) -> list[str]:
    return [s for s in _SPLIT.split(text.strip().rstrip(".!")) if s and s.strip()]


def analyze_structure(text: str) -> Structure:
    clauses: list[Clause] = []
    pending_verbs: list[Clause] = []  # verbs with no object yet ("search and replace ...")
    for segment in _segments(text):
        clause = _clause(segment)
        if not clause.verbs:
            if clauses:  # a list of objects continues the clause before it
                last = clauses[-1]
                last.text += f" and {clause.text}"
                last.objects |= clause.objects
                last.artifacts |= clause.artifacts
            else:
                clauses.append(clause)
            continue
        if not clause.objects and not clause.artifacts and not (
                set(words(analyze_goal(segment).normalized)) & BACK_REFERENCES):
            pending_verbs.append(clause)
            continue
        for verb_only in pending_verbs:  # compound action: one clause
            clause.text = f"{verb_only.text} and {clause.text}"
            clause.verbs = verb_only.verbs + clause.verbs
            clause.actions |= verb_only.actions
        pending_verbs = []
        clauses.append(clause)
    clauses.extend(pending_verbs)
    delivered_objects: set[str] = set()
    delivered_artifacts: set[str] = set()
    for clause in clauses:
        if not clause.verbs:
            clause.note = "no action"
        elif clause.actions and clause.actions <= CHECK_ACTIONS:
            clause.note = f"{clause.verbs[0]!r} checks or shows, it delivers nothing new"
        elif not clause.objects and not clause.artifacts:
            clause.note = "its object points back at an earlier one"
        elif clause.artifacts and clause.artifacts <= delivered_artifacts:
            clause.note = "the same artifact as an earlier clause"
        elif not clause.artifacts and clause.objects <= delivered_objects:
            clause.note = "the same object as an earlier clause"
        else:
            clause.deliverable = True
            delivered_objects |= clause.objects
            delivered_artifacts |= clause.artifacts
    return Structure(clauses)
