"""The Markdown trace format: exact round trips, readable output, precise error reports."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmos.errors import OperationFailed
from llmos.memory.markdown_format import (
    TraceFormatError,
    parse_fact,
    parse_trace,
    render_fact,
    render_trace,
)
from llmos.memory.models import Fact, Step, StepOutcome
from llmos.testing.memory_conformance import make_trace

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(goal=text, inputs=st.lists(st.dictionaries(text, json_values, max_size=5), max_size=3),
       excerpt=text, tool=st.from_regex(r"[A-Za-z_][\w.\-]{0,20}", fullmatch=True))
def test_any_trace_round_trips(goal: str, inputs: list[dict], excerpt: str, tool: str) -> None:
    steps = [Step(index=i, tool=tool, input=data, outcome=StepOutcome(excerpt=excerpt))
             for i, data in enumerate(inputs)]
    trace = make_trace(goal, steps=steps)
    assert parse_trace(render_trace(trace)) == trace


@settings(max_examples=50, deadline=None)
@given(body=text.filter(lambda s: s.strip()), tags=st.lists(text, max_size=3))
def test_any_fact_round_trips(body: str, tags: list[str]) -> None:
    fact = Fact(text=body.strip(), tags=tags)
    assert parse_fact(render_fact(fact)) == fact


def test_the_file_reads_like_the_documented_format() -> None:
    rendered = render_trace(make_trace())
    front = yaml.safe_load(rendered.split("---\n")[1])
    assert list(front)[:11] == [
        "id", "goal_signature", "goal_text", "success_rating", "usage_count", "last_used",
        "created_at", "estimated_cost_usd", "estimated_time_secs", "mode", "tools_used"]
    assert front["format"] == "llmos-trace/1"
    assert "### Step 1: Write" in rendered and "### Step 2: Bash" in rendered
    assert "content: |\n  print([2, 3, 5, 7])\n" in rendered  # multi-line text stays readable
    assert "\nInput:\n\n```yaml\n" in rendered and "\nOutcome:\n\n```yaml\n" in rendered


def test_a_hand_written_trace_gets_its_derived_fields() -> None:
    trace = parse_trace(
        "---\ngoal_text: Create notes.txt saying 'hi'\n---\n\nSome notes for humans.\n\n"
        "### Step 1: Write\n\nInput:\n\n```yaml\nfile_path: notes.txt\ncontent: hi\n```\n\n"
        "```bash\n### Step 9: not a step inside a code block\n```\n",
        default_id="hand-1",
    )
    assert trace.id == "hand-1"
    assert trace.normalized_goal == "create <file.txt> saying <str>"
    assert trace.tools_used == ["Write"] and trace.steps[0].outcome == StepOutcome()
    assert trace.steps[0].input == {"file_path": "notes.txt", "content": "hi"}


GOOD = render_trace(make_trace())


STEP_2_LINE = GOOD.splitlines().index("### Step 2: Bash") + 1


def broken(old: str, new: str, count: int = 1) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, count)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("", 1, "empty"),
        ("# just a heading\n", 1, "expected '---'"),
        ("---\ngoal_text: x\n", 1, "never closed"),
        ("---\ngoal_text: [unclosed\n---\n", 3, "not valid YAML"),
        ("---\n- a list\n---\n", 2, "mapping"),
        (broken("usage_count: 1", "usage_count: many"), 6, "usage_count"),
        (broken("mode: learner", "mode: learner\ncolour: blue"), 12, "unknown field colour"),
        (broken("format: llmos-trace/1", "format: llmos-trace/9"), 28, "not supported"),
        (broken("### Step 2: Bash", "### Step 3: Bash"), STEP_2_LINE, "out of order"),
        (broken("### Step 2: Bash", "### Step 2:"), STEP_2_LINE, "names no tool"),
        (broken("command: python primes.py\n```", "command: [python\n```"), 73, "invalid YAML"),
        (broken("Input:\n\n```yaml\ncommand", "Notes:\n\n```yaml\ncommand"), STEP_2_LINE,
         "no 'Input:'"),
        (GOOD.rsplit("```", 1)[0], 77, "never closed"),
        (broken("exit_code: 0", "exit_code: zero"), 83, "step 2: field outcome.exit_code"),
        (broken("- duration_s: 0.0", "- duration_s: slow"), 38, "step 1: field duration_s"),
        (broken("size: 20", "size: big"), 56, "step 1: field outcome.files"),
    ],
)
def test_malformed_traces_name_the_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(TraceFormatError) as info:
        parse_trace(text, "t.md")
    err = info.value
    assert (err.file, err.line) == ("t.md", line), str(err)
    assert problem in err.problem
    assert str(err).startswith(f"t.md:{line}: ")
    assert isinstance(err, OperationFailed)  # the CLI reports it with exit code 1


def test_a_tag_that_yaml_ends_with_a_document_marker_round_trips() -> None:
    # found by hypothesis: a block scalar keeping its newline makes YAML write '...'
    fact = Fact(text="0", tags=["\n"])
    assert parse_fact(render_fact(fact)) == fact
