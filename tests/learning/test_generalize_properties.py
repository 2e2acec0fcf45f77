"""Properties of evidence-based generalization: whenever the steps really are literals and
slot values, two instances are enough and the rendering for new values is exactly right;
whenever the engine accepts, it reproduces every instance it learned from."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmos.goals import analyze_goal
from llmos.learning.generalize import Ambiguous, Declined, explain, render

GOAL = "Write {a} apples and {b} pears to {f}"
literal_text = st.text(alphabet="xyz=:,\n()[]'\"_0123456789", min_size=1, max_size=12)
piece = st.one_of(literal_text, st.sampled_from(["{a}", "{b}", "{f}"]))
values = st.fixed_dictionaries({
    "a": st.integers(1, 999).map(str), "b": st.integers(1, 999).map(str),
    "f": st.sampled_from(["out.txt", "data.txt", "log.txt", "res.txt"]),
})


def fill(pieces: list[str], v: dict[str, str]) -> str:
    # words apart: a value glued to other letters is not the value (``1`` in ``01``)
    return " ".join(v[p[1]] if p in ("{a}", "{b}", "{f}") else p for p in pieces)


@settings(max_examples=300, deadline=None)
@given(st.lists(piece, max_size=8), values, values, values)
def test_accepted_renderings_are_right_and_reproduce_their_instances(pieces, va, vb, vn):
    slots = [analyze_goal(GOAL.format(**v)).slots for v in (va, vb, vn)]
    if any(len(s) != 3 for s in slots):
        return
    if any(vn[k] != va[k] and vb[k] == va[k] for k in va):
        return  # no instance shows where that value goes: evidence_plan declines first
    a_text, b_text = fill(pieces, va), fill(pieces, vb)
    try:
        templates = explain(a_text, slots[0], b_text, slots[1])
    except Ambiguous:
        return
    assert templates, "literals and slot values are always explainable"
    for template in templates:
        assert render(template, slots[0], "text", slots[0]) == a_text
        assert render(template, slots[1], "text", slots[0]) == b_text
    outputs = set()
    for template in templates:
        try:
            outputs.add(render(template, slots[2], "text", slots[0]))
        except Declined:
            outputs.add(None)
    if len(outputs) == 1 and None not in outputs:
        # the engine would replay: it must write what the task really needs
        truth = fill(pieces, vn)
        assert outputs == {truth}


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(TEXT, st.sampled_from(["printf '%s' '", 'printf "%s" "', "printf '%s' "]))
def test_a_value_escaped_for_the_shell_reaches_the_program_intact(value, prefix):
    import subprocess

    from llmos.learning.generalize import escape

    closing = prefix[-1] if prefix.endswith(("'", '"')) else ""
    if value.startswith("-"):  # it would start a word: read as an option, so declined
        with pytest.raises(Declined):
            escape(value, "old", "shell", prefix)
        return
    command = prefix + escape(value, "old", "shell", prefix) + closing
    done = subprocess.run(["bash", "-c", command], capture_output=True)
    assert done.stdout.decode("utf-8", "surrogateescape") == value


@settings(max_examples=200, deadline=None)
@given(TEXT, st.sampled_from(["python", "json"]))
def test_a_value_escaped_for_a_string_literal_round_trips(value, context):
    import ast
    import json

    from llmos.learning.generalize import escape

    prefix = 'x = "' if context == "python" else '{"k": "'
    text = prefix + escape(value, "old", context, prefix) + ('"' if context == "python"
                                                             else '"}')
    got = ast.literal_eval(text[4:]) if context == "python" else json.loads(text)["k"]
    assert got == value
