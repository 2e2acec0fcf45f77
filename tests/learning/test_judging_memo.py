"""Judging a family of traces computes what depends on one trace only once
(``generalize.memoized``), and the numbers check looks derivations up by value: both must
change nothing. Every judgement inside the memo equals the one made without it (the
same confidence, reason, replayability and plan), for families of up to ``FAMILY_LIMIT``
traces whose steps write numbers, names and derived values; the indexed numbers check
declines exactly when, and with the message, the plain comparison does."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmos.goals import analyze_goal
from llmos.learning import generalize
from llmos.learning.generalize import Declined, memoized
from llmos.learning.matching import FAMILY_LIMIT, judge
from llmos.memory.models import Step, StepOutcome
from llmos.testing.memory_conformance import make_trace

TEMPLATES = [
    ("Create {f}.py printing the first {n} squares and run it",
     lambda v: [Step(index=0, tool="Write", input={
         "file_path": f"{v['f']}.py",
         "content": f"N = {v['n']}\nprint([i * i for i in range(N)])\n"}),
                Step(index=1, tool="Bash", input={"command": f"python3 {v['f']}.py"},
                     outcome=StepOutcome(exit_code=0, excerpt="0 1 4"))]),
    ("Summarize {f}.txt into {g}.md in {n} bullet points",
     lambda v: [Step(index=0, tool="Write", input={
         "file_path": f"{v['g']}.md",
         "content": "\n".join(f"- point {k}" for k in range(int(v["n"])))})]),
    ("Write the sum of {n} and {m} to {f}.txt",  # a derived value: declined
     lambda v: [Step(index=0, tool="Write", input={
         "file_path": f"{v['f']}.txt", "content": f"{int(v['n']) + int(v['m'])}\n"})]),
    ("Copy {f}.txt to {g}.txt",
     lambda v: [Step(index=0, tool="Bash", input={"command": f"cp {v['f']}.txt {v['g']}.txt"},
                     outcome=StepOutcome(exit_code=0))]),
]
NAMES = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "zeta"]


def values(rng: random.Random) -> dict[str, str]:
    f, g = rng.sample(NAMES, 2)
    return {"f": f, "g": g, "n": str(rng.randint(2, 60)), "m": str(rng.randint(2, 60))}


def family(template: int, size: int, seed: int):
    rng = random.Random(seed)
    text, steps = TEMPLATES[template]
    out = []
    while len(out) < size:
        v = values(rng)
        out.append(make_trace(text.format(**v), steps=steps(v)))
    return out, analyze_goal(text.format(**values(rng)))


def summary(candidate) -> tuple:
    plan = candidate.plan
    return (candidate.trace.id, candidate.confidence, candidate.reason, candidate.replayable,
            candidate.bindings, None if plan is None else (
                plan.evidence, plan.explanation, plan.instances,
                [(s.tool, s.input, s.expected_observation) for s in plan.steps]))


@pytest.mark.parametrize("template", range(len(TEMPLATES)))
@pytest.mark.parametrize("size", [2, 5, FAMILY_LIMIT])
def test_memoized_judging_judges_alike(template: int, size: int) -> None:
    for seed in range(3):
        traces, goal = family(template, size, seed)
        plain = [summary(judge(goal, t, traces)) for t in traces]
        with memoized():
            remembered = [summary(judge(goal, t, traces)) for t in traces]
            again = [summary(judge(goal, t, traces)) for t in traces]  # from the memo
        assert remembered == plain and again == plain


def test_the_families_are_replayed_and_declined() -> None:
    """The comparison above covers both outcomes: evidence plans made and declined."""
    reasons = set()
    for template in range(len(TEMPLATES)):
        traces, goal = family(template, FAMILY_LIMIT, 0)
        for t in traces:
            c = judge(goal, t, traces)
            reasons.add((c.replayable, c.evidence))
    assert (True, "evidence") in reasons and (False, None) in reasons


def test_the_memo_is_per_block_and_per_object() -> None:
    traces = [*family(0, 3, 1)[0], *family(1, 3, 1)[0]]
    plain = [(generalize.structure(t), generalize._step_numbers(t)) for t in traces]
    assert len({repr(p) for p in plain}) > 2  # different traces, different answers
    with memoized():
        for _ in range(2):
            assert [(generalize.structure(t), generalize._step_numbers(t))
                    for t in traces] == plain
        copy = traces[0].model_copy(update={"steps": traces[3].steps})  # another object
        assert generalize.structure(copy) == plain[3][0]
        assert generalize._MEMO.get() is not None
    assert generalize._MEMO.get() is None  # nothing survives the block


def plain_check(base, others, goal_slots) -> str | None:
    """``_check_numbers`` as it was: every number against every derivation."""
    instances = [base, *others]
    vals = [generalize._numbers(t.slots) for t in instances]
    if len(vals[0]) >= 2:
        seen = {generalize._pattern(v) for v in vals}
        if generalize._pattern(generalize._numbers(goal_slots)) not in seen:
            return "pattern"
    if not vals[0]:
        return None
    common = set.intersection(*(generalize._numbers_written(t) for t in instances))
    derived = [generalize._derivations(v) for v in vals]
    for number in common:
        for name, result in derived[0].items():
            if abs(result - number) < 1e-9 and all(
                    abs(d.get(name, float("nan")) - number) < 1e-9 for d in derived[1:]):
                return f"{number:g}, written by every solved instance, equals {name}"
    return None


def indexed_check(base, others, goal_slots) -> str | None:
    try:
        generalize._check_numbers(base, others, goal_slots)
    except Declined as exc:
        message = str(exc)
        return "pattern" if "compare otherwise" in message else message.split(" in each")[0]
    return None


number_text = st.one_of(st.integers(0, 200).map(str),
                        st.sampled_from(["0.5", "1.25", "2.0", "1e3", "9" * 400, "7.000000001"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=4),
       st.lists(number_text, max_size=12), st.booleans())
def test_indexed_numbers_check_declines_exactly_as_the_plain_one(pairs, extra, add_sum):
    goal_text = "Write the numbers {a} and {b} to out.txt"
    traces = []
    for a, b in pairs:
        written = [*extra, str(a + b) if add_sum else str(a), str(a * 2 + 1)]
        traces.append(make_trace(goal_text.format(a=a, b=b), steps=[Step(
            index=0, tool="Write", input={"file_path": "out.txt",
                                          "content": " ".join(written)})]))
    goal = analyze_goal(goal_text.format(a=7, b=9))
    base, others = traces[0], traces[1:]
    assert indexed_check(base, others, goal.slots) == plain_check(base, others, goal.slots)
    with memoized():
        assert indexed_check(base, others, goal.slots) == plain_check(base, others, goal.slots)


@pytest.mark.parametrize("template", range(len(TEMPLATES)))
def test_a_family_judged_lazily_gives_the_best_candidates_of_judging_all(template: int
                                                                         ) -> None:
    """``judge_family`` leaves traces unjudged only when they cannot be among the best:
    the best ``limit`` (and whether any is replayable) are those of judging every trace,
    in the same order, for every limit; some traces are left unjudged."""
    from llmos.learning.matching import _rank, judge_family

    skipped = 0
    for seed in range(4):
        traces, goal = family(template, FAMILY_LIMIT, seed)
        rng = random.Random(seed)
        for n, trace in enumerate(traces):  # ratings, uses and demotions differ
            update = {"success_count": rng.randint(0, 3), "usage_count": 3}
            update["success_rating"] = update["success_count"] / 3
            update["demoted"] = n % 7 == 6
            traces[n] = trace.model_copy(update=update)
        full = [judge(goal, t, traces) for t in traces]
        best_all = sorted(full, key=_rank, reverse=True)
        for limit in (1, 2, 5, FAMILY_LIMIT):
            lazy = judge_family(goal, traces, limit)
            skipped += len(traces) - len(lazy)
            assert [summary(c) for c in sorted(lazy, key=_rank, reverse=True)[:limit]] == [
                summary(c) for c in best_all[:limit]], limit
            assert any(c.replayable for c in lazy) == any(c.replayable for c in full)
    if template in (0, 3):  # families that replay: the lazy judging does save work
        assert skipped > 0
