"""``--json`` prints one JSON object on every exit path, errors included, and a bug in
llmos is one line with a documented exit code (issue 19, item 6).

The error object is ``{"error": {"type", "message", "exit_code"}}`` on stdout; the
message is on stderr too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from llmos.cli import EXIT_INTERNAL, cli

LLMOS = str(Path(sys.executable).parent / "llmos")


def error_of(result, code: int) -> dict:
    assert result.exit_code == code, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"error"}
    assert set(data["error"]) == {"type", "message", "exit_code"}
    assert data["error"]["exit_code"] == code
    assert data["error"]["message"] in result.stderr
    return data["error"]


def test_an_empty_goal_with_json_is_a_json_error(llmos_cli):
    error = error_of(llmos_cli("run", "--json", "  "), 2)
    assert "the goal is empty" in error["message"]


def test_low_battery_with_json_is_a_json_error(llmos_cli, llmos_model_server):
    llmos_model_server.script.text("never sent")
    error = error_of(llmos_cli("run", "--json", "Do something"), 3)
    assert error["type"] == "low_battery" and "llmos budget set" in error["message"]
    assert llmos_model_server.model_request_count == 0


def test_a_usage_error_with_json_is_a_json_error(llmos_cli):
    error = error_of(llmos_cli("run", "--json", "--mode"), 2)
    assert error["type"] == "usage" and "--mode" in error["message"]


def test_a_config_error_with_json_is_a_json_error(llmos_cli):
    error = error_of(llmos_cli("--set", "budget.run_cap_usd=lots", "run", "--json", "x"), 2)
    assert error["type"] == "config" and "run_cap_usd" in error["message"]


def test_an_unknown_mode_with_json_is_a_json_error(llmos_cli):
    error = error_of(llmos_cli("run", "--json", "--mode", "NOPE", "x"), 2)
    assert "NOPE" in error["message"]


def test_route_and_tools_errors_are_json_too(llmos_cli):
    assert "empty" in error_of(llmos_cli("route", "--json", ""), 2)["message"]
    assert error_of(llmos_cli("tools", "call", "Nope", "--json"), 2)["type"] == "unknown_tool"
    assert "not valid JSON" in error_of(
        llmos_cli("tools", "call", "Read", "--input", "{", "--json"), 2)["message"]


def test_without_json_an_error_is_only_a_message(llmos_cli):
    result = llmos_cli("run", "  ")
    assert result.exit_code == 2
    assert result.stdout == "" and "the goal is empty" in result.stderr


@pytest.fixture
def broken_command():
    """A command with a bug in it, added to the real command line for the test."""

    @click.command("boom-for-test")
    @click.option("--json", "as_json", is_flag=True)
    def boom(as_json):
        raise ZeroDivisionError("a bug")

    cli.add_command(boom)
    yield "boom-for-test"
    cli.commands.pop("boom-for-test")


def test_a_bug_is_one_line_with_exit_70_and_no_traceback(llmos_cli, broken_command,
                                                          monkeypatch):
    monkeypatch.delenv("LLMOS_DEBUG", raising=False)
    result = llmos_cli(broken_command)
    assert result.exit_code == EXIT_INTERNAL == 70
    assert result.stderr.strip() == (
        "error: internal error: ZeroDivisionError: a bug (run with LLMOS_DEBUG=1 for the traceback "
        "and please report it)")
    assert "Traceback" not in result.output
    assert error_of(llmos_cli(broken_command, "--json"), 70)["type"] == "internal"


def test_llmos_debug_shows_the_traceback(llmos_cli, broken_command, monkeypatch):
    monkeypatch.setenv("LLMOS_DEBUG", "1")
    result = llmos_cli(broken_command)
    assert result.exit_code == 70
    assert "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr


def test_ctrl_c_during_tools_call_stops_it_with_a_json_error(llmos_workspace):
    """A real ``llmos tools call`` running a long command in the sandbox, stopped by
    SIGINT and by SIGTERM: exit 130/143, one JSON object, no traceback."""
    env = {**os.environ, "LLMOS_KERNEL__INTERACTIVE": "never"}
    for signum, code, name in ((signal.SIGINT, 130, "Ctrl-C"),
                               (signal.SIGTERM, 143, "SIGTERM")):
        marker = llmos_workspace / f"started-{code}"  # the workspace path is unique
        proc = subprocess.Popen(
            [LLMOS, "-w", str(llmos_workspace), "tools", "call", "Bash", "--input",
             json.dumps({"command": f"touch started-{code} && sleep 60"}), "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), proc.stderr.read1().decode() if proc.poll() else "not started"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err
        error = json.loads(out)["error"]
        assert error == {"type": "interrupted", "exit_code": code,
                         "message": f"interrupted by {name}: the call to Bash was stopped"}
        assert b"Traceback" not in err
        # the sandboxed command died with llmos
        deadline = time.monotonic() + 10
        while running(str(llmos_workspace)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running(str(llmos_workspace)) == []


def running(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text.encode() in cmdline and state not in (b"Z", b"X"):
            found.append(int(name))
    return found
