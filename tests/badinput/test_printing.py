"""Text from a user, a model, a tool or a file is printed literally, in every command:
``[/]`` does not crash Rich, ``[dice]`` does not vanish; tables are not cut at 80
columns when piped."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.badinput.conftest import llmos_command, trace_markdown, write

TRICKY = "fix [dice] in [/] and [bold]x[/bold] :smile:"


def test_tools_call_error_with_closing_tag_in_the_path(cli):
    result = cli("tools", "call", "Write", "--input",
                 '{"file_path":"../[/]","content":"x"}')
    assert result.exit_code == 4
    assert "escapes the workspace: ../[/]" in result.output


def test_tools_call_output_with_brackets_is_literal(cli, llmos_workspace):
    result = cli("tools", "call", "Write", "--input",
                 '{"file_path":"[dice]/a.txt","content":"[/] [red]x"}')
    assert result.exit_code == 0, result.output
    assert "[dice]/a.txt" in result.output
    shown = cli("tools", "call", "Read", "--input", '{"file_path":"[dice]/a.txt"}')
    assert "[/] [red]x" in shown.output


def _run_with(workspace, goal, error, output):
    from llmos.kernel import Kernel
    from llmos.memory.models import Step

    kernel = Kernel(workspace)
    run_id = kernel.memory.start_run(goal)
    kernel.memory.record_step(run_id, Step(tool="Write", input={"file_path": "[/]x"}))
    kernel.memory.finish_run(run_id, success=False, error=error, output=output)
    kernel.memory.close()
    return run_id


def test_runs_show_and_list_print_goal_error_and_output_literally(cli, llmos_workspace):
    run_id = _run_with(llmos_workspace, TRICKY, "refused: [/] [dice]", "out [/] :smile:")
    shown = cli("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    for text in (TRICKY, "error: refused: [/] [dice]", "out [/] :smile:",
                 "file_path=[/]x"):
        assert text in shown.output, (text, shown.output)
    listed = cli("runs", "list")
    assert listed.exit_code == 0 and TRICKY in listed.output


def test_traces_show_and_list_print_goal_and_steps_literally(cli, tmp_path):
    write(tmp_path / "t.md", trace_markdown(
        "tricky", goal=f'"{TRICKY}"',
        input_block='```yaml\nfile_path: "[/]"\ncontent: "[dice]"\n```'))
    assert cli("traces", "import", str(tmp_path / "t.md")).exit_code == 0
    shown = cli("traces", "show", "tricky")
    assert shown.exit_code == 0, shown.output
    for text in (TRICKY, "file_path: [/]", "content: [dice]"):
        assert text in shown.output, (text, shown.output)
    cli("traces", "demote", "tricky", "--reason", "[/] broke [dice]")
    listed = cli("traces", "list")
    assert TRICKY in listed.output and "(demoted)" in listed.output
    assert "DEMOTED: [/] broke [dice]" in cli("traces", "show", "tricky").output


def test_route_and_policy_print_reasons_literally(cli):
    routed = cli("route", TRICKY)
    assert "Traceback" not in routed.output and "MarkupError" not in routed.output
    checked = cli("policy", "check", "--tool", "Write", "--input",
                  '{"file_path":"../[dice]/[/]"}')
    assert checked.exit_code == 4
    assert "../[dice]/[/]" in checked.output


def test_facts_table_prints_text_literally(cli):
    assert cli("memory", "facts", "add", TRICKY, "--tag", "[/]").exit_code == 0
    listed = cli("memory", "facts", "list")
    assert listed.exit_code == 0
    assert "[dice]" in listed.output and ":smile:" in listed.output


def test_tables_are_not_wrapped_at_80_columns_when_piped(llmos_workspace, llmos_env):
    goal = "write a long file name " + "x" * 30 + ".py and print the first ten primes"
    run_id = _run_with(llmos_workspace, goal[:49], None, None)
    env = {k: v for k, v in __import__("os").environ.items() if k != "COLUMNS"}
    out = subprocess.run([*llmos_command(), "--workspace", str(llmos_workspace), "runs",
                          "list"], capture_output=True, text=True, env=env, check=True).stdout
    rows = [line for line in out.splitlines() if run_id in line]
    assert len(rows) == 1 and goal[:49] in rows[0], out
    assert max(len(line) for line in out.splitlines()) > 80


def test_no_markup_is_interpreted_anywhere_in_the_sources():
    """The class of bug, not an instance: no print path under core/ or packages/ turns
    markup on, and the shared console has it off."""
    from llmos.cli._common import console

    assert console()._markup is False and console()._emoji is False
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in [*root.glob("core/**/*.py"), *root.glob("packages/**/*.py")]:
        if "tests" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if "markup=True" in line or re.search(r"\[/?(red|green|yellow|bold|dim)\]", line):
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
            if re.search(r"\bConsole\(", line) and "markup=False" not in line:
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert offenders == []
