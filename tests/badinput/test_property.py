"""Property: whatever text, bytes or nesting reaches ``run``, ``route``, ``tools call`` or
``traces import``, the user gets a documented exit code and no traceback."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.badinput.conftest import DOCUMENTED_EXIT_CODES, llmos_command, trace_markdown

# any code point, surrogates and control characters included, with Rich's brackets
# and markup-looking words made likely
TRICKY = st.sampled_from(["[", "]", "[/]", "[bold]", "[dice]", ":smile:", "\\", "\x00",
                          "\x1b[31m", "\n", "\r", "\udcff", "\ud800", "é", "{", "}", '"'])
TEXT = st.lists(st.one_of(st.characters(exclude_categories=()), TRICKY), max_size=40).map(
    "".join)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(TEXT, children, max_size=4)),
    max_leaves=30,
)
DEEP = st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n)

FAST = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                         HealthCheck.too_slow])


def _check(result) -> None:
    text = result.output
    assert "Traceback" not in text, text
    assert result.exit_code in DOCUMENTED_EXIT_CODES, (result.exit_code, text,
                                                       repr(result.exception))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))


@pytest.fixture
def no_credentials(monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL",
                 "CLAUDE_CODE_OAUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@FAST
@given(goal=TEXT)
def test_route_any_goal(llmos_cli, goal):
    result = llmos_cli("route", goal)
    _check(result)
    if "\ud800" in goal or "\udcff" in goal:
        assert result.exit_code == 2 and "pass text as UTF-8" in result.output


@FAST
@given(goal=TEXT, as_json=st.booleans())
def test_run_any_goal_without_credentials(llmos_cli, no_credentials, goal, as_json):
    assert llmos_cli("budget", "set", "5").exit_code == 0
    result = llmos_cli("run", *(["--json"] if as_json else []), goal)
    _check(result)
    assert result.exit_code != 0  # no credentials: nothing can succeed
    if as_json:
        json.loads(result.stdout)


@FAST
@given(tool=st.sampled_from(["Read", "Glob", "Write", "nope"]),
       data=st.one_of(JSON, st.dictionaries(st.sampled_from(["file_path", "pattern",
                                                               "content", "path"]), JSON)),
       raw=st.one_of(st.none(), TEXT, DEEP))
def test_tools_call_any_input(llmos_cli, tool, data, raw):
    text = raw if raw is not None else json.dumps(data)
    _check(llmos_cli("tools", "call", tool, "--input", text))


@FAST
@given(front=st.dictionaries(st.sampled_from(["id", "goal_text", "success_rating",
                                              "usage_count", "mode", "format", "slots"]),
                             JSON, max_size=4),
       body=st.one_of(TEXT, DEEP), raw=st.one_of(st.none(), st.binary(max_size=300)))
def test_traces_import_any_file(llmos_cli, tmp_path_factory, front, body, raw):
    folder = tmp_path_factory.mktemp("import")
    good = trace_markdown("good")
    if raw is not None:
        data = raw
    else:
        header = "".join(f"{key}: {json.dumps(value)}\n" for key, value in front.items())
        data = good.replace("---\nid: good\n", "---\n" + header, 1).replace(
            "content: print(1)", "content: " + json.dumps(body)).encode("utf-8", "replace")
    (folder / "random.md").write_bytes(data)
    (folder / "good.md").write_text(good)
    result = llmos_cli("traces", "import", "--replace", str(folder))
    _check(result)
    assert result.exit_code in (0, 1)
    assert "good.md as trace good" in result.output  # the good file is always kept


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(goal=st.binary(min_size=1, max_size=30).filter(lambda b: b"\x00" not in b),
       command=st.sampled_from(["route", "run", "tools"]))
def test_real_processes_with_any_argv_bytes(llmos_workspace, no_credentials, goal, command):
    args = {"route": [b"route", goal], "run": [b"run", goal],
            "tools": [b"tools", b"call", b"Read", b"--input", b'{"file_path": "' + goal
                      + b'"}']}[command]
    base = [os.fsencode(part) for part in llmos_command()]
    result = subprocess.run([*base, b"--workspace", os.fsencode(llmos_workspace), *args],
                            capture_output=True, timeout=120)
    assert b"Traceback" not in result.stderr, result.stderr
    assert result.returncode in DOCUMENTED_EXIT_CODES, (result.returncode, result.stderr)
    try:
        goal.decode("utf-8")
    except UnicodeDecodeError:
        assert result.returncode == 2 and b"pass text as UTF-8" in result.stderr
