"""Any bytes in a goal or a tool input: a non-UTF-8 byte or a lone surrogate is rejected
with the position and the fix; tool inputs from any source are bounded in size, nesting
and encoding at the gateway (a clear tool error, never a RecursionError)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.badinput.conftest import llmos_command, trace_markdown, write

UTF8_FIX = "pass text as UTF-8"


def _bytes_cli(workspace, *args: bytes, env=None):
    """The real command with raw bytes in argv (only a real process can have them)."""
    command = [os.fsencode(part) for part in llmos_command()]
    return subprocess.run([*command, b"--workspace", os.fsencode(workspace), *args],
                          capture_output=True, timeout=120, env=env)


@pytest.mark.parametrize("args, name, position", [
    ((b"route", b"fix \xff now"), b"GOAL", 5),
    ((b"run", b"fix \xff now"), b"GOAL", 5),
    ((b"run", b"--json", b"\xed\xa0\x80 surrogate"), b"GOAL", 1),
    ((b"tools", b"call", b"Write", b"--input", b'{"file_path": "a\xff", "content": "x"}'),
     b"--input", 17),
    ((b"memory", b"facts", b"add", b"caf\xe9"), b"TEXT", 4),
])
def test_non_utf8_bytes_in_argv_are_a_usage_error(llmos_workspace, llmos_env, args, name,
                                                   position):
    result = _bytes_cli(llmos_workspace, *args)
    assert result.returncode == 2, result.stderr
    assert b"Traceback" not in result.stderr and b"UnicodeEncodeError" not in result.stderr
    assert name + b" has the byte 0x" in result.stderr
    assert f"(not UTF-8) at character {position};".encode() in result.stderr
    assert UTF8_FIX.encode() in result.stderr
    if b"--json" in args:
        assert json.loads(result.stdout)["error"]["exit_code"] == 2


# Python's own choice of error handler for a pipe depends on the locale: whatever it is
# (strict included), the file name is printed as its own bytes.
@pytest.mark.parametrize("io_encoding", [None, "utf-8:strict"])
def test_a_file_name_that_is_not_utf8_is_carried(llmos_workspace, llmos_env, tmp_path,
                                                 io_encoding):
    folder = tmp_path / "in"
    write(folder / os.fsdecode(b"caf\xe9.md"), trace_markdown("cafe"))
    env = dict(os.environ)
    if io_encoding:
        env["PYTHONIOENCODING"] = io_encoding
    result = _bytes_cli(llmos_workspace, b"traces", b"import", os.fsencode(folder), env=env)
    assert result.returncode == 0, result.stderr
    assert b"imported 1 trace(s)" in result.stdout and b"Traceback" not in result.stderr
    assert b"caf\xe9.md" in result.stdout


@pytest.mark.parametrize("args, expected", [
    (("route", "fix \ud800 now"), "GOAL has U+D800 (a lone surrogate, not valid Unicode) "
                                  "at character 5"),
    (("tools", "call", "Write", "--input", '{"file_path": "\\udcff", "content": "x"}'),
     "--input.file_path has the byte 0xff (not UTF-8) at character 1"),
    (("tools", "call", "Write", "--input", '{"file_path": "a", "content": "\\ud800"}'),
     "--input.content has U+D800"),
    (("tools", "call", "Read", "--input", '{"file_path": ' + "[" * 20_000 + "]" * 20_000
      + "}"), "--input nests too deeply (more than 64 levels"),
    (("tools", "call", "Read", "--input", '{"file_path": "a", "x": ' + "[" * 70 + "]" * 70
      + "}"), "nests deeper than 64 levels"),
    (("tools", "call", "Write", "--input", json.dumps({"file_path": "a",
                                                         "content": "x" * (9 << 20)})),
     "--input is larger than 8 MiB"),
    (("tools", "call", "Read", "--input", '{"file_path": "a", "n": NaN}'),
     "--input.n is nan, not a finite number"),
])
def test_bad_text_and_unbounded_inputs_in_process(cli, args, expected):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.output, result.output


def _deep(levels: int):
    value: object = "x"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("source", ["cli", "model", "replay"])
async def test_the_gateway_bounds_tool_inputs_from_every_source(llmos_kernel, source):
    from llmos.calls import CallContext, ToolCall
    from llmos.tools import ToolInputError

    context = CallContext(llmos_kernel)
    for data, expected in (
        ({"file_path": "a", "x": _deep(100_000)}, "nests deeper than 64 levels"),
        ({"file_path": "a\udc80"}, "the input of tool Read.file_path has the byte 0x80"),
        ({"file_path": "a", "n": float("inf")}, "not a finite number"),
        ({"file_path": "a", "content": "x" * (9 << 20)}, "larger than 8 MiB"),
    ):
        with pytest.raises(ToolInputError) as caught:
            await llmos_kernel.gateway.call(ToolCall("Read", data, source=source), context)
        assert expected in str(caught.value)


async def test_claude_code_tool_calls_out_of_bounds_are_denied(llmos_kernel):
    from llmos.calls import CallContext, ToolCall

    context = CallContext(llmos_kernel)
    call = ToolCall("Bash", {"command": "ls", "x": _deep(10_000)}, source="model")
    decision = await llmos_kernel.gateway.resolve(call, context)
    assert decision.verdict == "deny" and decision.rule == "input.bounds"
    assert "nests deeper than 64 levels" in decision.reason
    ok = await llmos_kernel.gateway.decide(ToolCall("Bash", {"command": "ls"}), context)
    assert ok.rule != "input.bounds"
