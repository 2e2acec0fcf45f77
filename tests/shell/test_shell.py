"""``llmos shell`` through a real pseudo-terminal.

A real ``llmos --workspace W shell`` process (prompt-toolkit on a pty, driven by pexpect)
runs goals through the real Claude Code CLI against the scripted model server.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect
import pytest

from llmos.kernel import Kernel
from llmos.testing.model_server import Usage

pytestmark = pytest.mark.cli

LLMOS = str(Path(sys.executable).parent / "llmos")
# prompt-toolkit turns bracketed paste on when the prompt waits for a line, off when a line
# is accepted: what the shell printed in between is the line's output
READY, ACCEPTED = "\x1b[?2004h", "\x1b[?2004l"
STYLE = r"(?:\x1b\[[0-9;]*m)*"  # the terminal styles rich may put around a word
UP = "\x1b[A"
GOAL = "Create hello.txt saying hi"


@pytest.fixture
def shell_env(llmos_model_server, llmos_env: Path) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(llmos_env / "state"),
            "LLMOS_KERNEL__INTERACTIVE": "never", "LLMOS_BUDGET__RUN_CAP_USD": "0.5",
            "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}


def spawn(workspace: Path, env: dict[str, str], args: tuple[str, ...] = ("shell",)
          ) -> pexpect.spawn:
    child = pexpect.spawn(LLMOS, ["--workspace", str(workspace), *args], env=env,
                          encoding="utf-8", timeout=90, dimensions=(40, 200))
    child.expect_exact(READY)
    return child


def type_line(child: pexpect.spawn, line: str) -> None:
    child.send(line + "\r")
    child.expect_exact(ACCEPTED)


def ask(child: pexpect.spawn, line: str) -> str:
    """Type ``line`` and return what the shell printed before its next prompt."""
    type_line(child, line)
    child.expect_exact(READY)
    return child.before


def leave(child: pexpect.spawn) -> None:
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def test_a_goal_is_learned_then_replayed_for_free(llmos_model_server, llmos_workspace, shell_env):
    hello = llmos_workspace / "hello.txt"
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(hello), "content": "hi\n"}, usage=Usage(1000, 50),
    ).text("hello.txt written", usage=Usage(1100, 20))
    child = spawn(llmos_workspace, shell_env)
    type_line(child, "/budget set 5")
    child.expect_exact("budget set to $5.0000")
    child.expect_exact(READY)

    type_line(child, GOAL)
    child.expect(r"LEARNER · \$(\d+\.\d{4}) · saved \$0\.0000")
    assert float(child.match.group(1)) > 0
    child.expect(r"balance \$(\d+\.\d{4})")
    after_learning = float(child.match.group(1))
    assert after_learning < 5
    child.expect_exact(READY)
    assert hello.read_text() == "hi\n"
    requests = llmos_model_server.model_request_count

    hello.unlink()
    type_line(child, GOAL)
    child.expect(r"FOLLOWER · \$0\.0000 · saved \$(\d+\.\d{4})")
    assert float(child.match.group(1)) > 0
    child.expect(r"balance \$(\d+\.\d{4})")
    assert float(child.match.group(1)) == after_learning
    child.expect_exact(READY)
    assert hello.read_text() == "hi\n"
    assert llmos_model_server.model_request_count == requests

    type_line(child, "/budget")
    child.expect(rf"balance \${after_learning:.4f}\s+reserved \$0\.0000")
    child.expect_exact(READY)
    stats = ask(child, "/stats")
    assert "runs 2" in stats and "replay hits 1" in stats, stats
    runs = ask(child, "/runs")
    assert "LEARNER" in runs and "FOLLOWER" in runs, runs
    assert GOAL in ask(child, "/traces")
    type_line(child, f"/route {GOAL}")
    child.expect(rf"FOLLOWER{STYLE} — ")
    child.expect_exact(READY)

    # the up arrow recalls the last line; Enter runs it again
    child.send(UP)
    child.expect_exact(f"/route {GOAL}")
    child.send("\r")
    child.expect_exact(ACCEPTED)
    child.expect(rf"FOLLOWER{STYLE} — ")
    child.expect_exact(READY)
    leave(child)

    runs = Kernel(llmos_workspace, load_entry_points=False).memory.list_runs()
    assert sorted(r.mode for r in runs) == ["FOLLOWER", "LEARNER"]


def test_history_is_kept_across_sessions_outside_the_workspace(llmos_workspace, shell_env,
                                                                llmos_env):
    child = spawn(llmos_workspace, shell_env)
    type_line(child, "/budget")
    child.expect_exact(READY)
    leave(child)
    history = llmos_env / "state" / "llmos" / "shell_history"
    assert "/budget" in history.read_text()
    assert not [p for p in llmos_workspace.rglob("*history*")]

    child = spawn(llmos_workspace, shell_env)
    child.send(UP)
    child.expect_exact("/budget")
    child.send("\r")
    child.expect_exact(ACCEPTED)
    child.expect(r"balance \$0\.0000\s+reserved")
    child.expect_exact(READY)
    leave(child)


def test_bad_input_gets_a_message_not_a_traceback(llmos_workspace, shell_env):
    child = spawn(llmos_workspace, shell_env)
    for line, message in [("", "type a goal to run it, or /help for commands"),
                          ("/frobnicate", "unknown command /frobnicate; /help lists the commands"),
                          ("/route", "usage: /route GOAL"),
                          ("/budget set lots", "'lots' is not a number of dollars"),
                          ('/traces show "unclosed', "cannot read the arguments"),
                          ("/help", "/budget [set N]")]:
        type_line(child, line)
        child.expect_exact(message)
        child.expect_exact(READY)
        assert "Traceback" not in child.before
    # a goal the kernel refuses to start (no balance): a message, and the shell goes on
    type_line(child, "do something")
    child.expect(rf"error:{STYLE} [^\r]*llmos budget set USD")
    child.expect_exact(READY)
    assert "Traceback" not in child.before
    type_line(child, "/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_stops_the_goal_and_the_shell_goes_on(llmos_model_server, llmos_workspace,
                                                     shell_env):
    llmos_model_server.script.hang()
    child = spawn(llmos_workspace, shell_env)
    type_line(child, "/budget set 5")
    child.expect_exact(READY)
    type_line(child, "Wait for the model")
    wait_for_requests(llmos_model_server, 1)
    child.sendcontrol("c")
    child.expect(rf"interrupted by Ctrl-C{STYLE} · \$(\d+\.\d{{4}}) · "
                 r"run (\w+) recorded as interrupted")
    run_id = child.match.group(2)
    assert "Fatal error" not in child.before  # the SDK's note that the CLI it read from stopped
    child.expect(r"balance \$")
    child.expect_exact(READY)
    runs = Kernel(llmos_workspace, load_entry_points=False).memory.list_runs()
    assert [(r.id, r.status, r.error) for r in runs] == [
        (run_id, "interrupted", "interrupted by Ctrl-C")]
    # the shell still works; Ctrl-C at the prompt once warns, Ctrl-D leaves
    type_line(child, "/budget")
    child.expect(r"balance \$\d+\.\d{4}\s+reserved \$0\.0000")
    child.expect_exact(READY)
    child.sendcontrol("c")
    child.expect_exact("(Ctrl-C again or Ctrl-D to leave)")
    child.expect_exact(READY)
    leave(child)


def test_ctrl_c_twice_at_the_prompt_leaves(llmos_workspace, shell_env):
    child = spawn(llmos_workspace, shell_env)
    child.sendcontrol("c")
    child.expect_exact("(Ctrl-C again or Ctrl-D to leave)")
    child.expect_exact(READY)
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_llmos_alone_opens_the_shell_on_a_terminal(llmos_workspace, shell_env):
    child = spawn(llmos_workspace, shell_env, args=())
    type_line(child, "/budget")
    child.expect(r"balance \$0\.0000")
    child.expect_exact(READY)
    leave(child)


def wait_for_requests(server, count: int) -> None:
    import time

    for _ in range(1200):
        if server.model_request_count >= count:
            return
        time.sleep(0.05)
    pytest.fail("the model was never asked")


def test_llmos_alone_without_a_terminal_prints_the_help(llmos_workspace, shell_env):
    import subprocess

    done = subprocess.run([LLMOS, "--workspace", str(llmos_workspace)], env=shell_env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 2
    assert re.search(r"^Commands:", done.stderr, re.M) and "shell " in done.stderr


def test_lines_from_a_pipe_are_read_without_line_editing(llmos_workspace, shell_env):
    import subprocess

    done = subprocess.run([LLMOS, "--workspace", str(llmos_workspace), "shell"], env=shell_env,
                          input=b"/budget set 3\n/budget\n/bud\xffget\n/nope\n",
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()
    assert "line 3 skipped: not UTF-8 (invalid start byte at byte 4)" in done.stdout
    assert "budget set to $3.0000" in done.stdout
    assert re.search(r"^balance \$3\.0000\s+reserved \$0\.0000", done.stdout, re.M)
    assert "unknown command /nope" in done.stdout
    assert "\x1b[" not in done.stdout and "Traceback" not in done.stderr
