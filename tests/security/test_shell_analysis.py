"""How the shell policy reasons: pre-parse refusals, folding, cd tracking, globs, reasons."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from llmos.security.shell import MAX_BYTES, analyze_command, explain_command, precheck


def verdict(command: str, workspace: Path, *, sandboxed: bool = False):  # type: ignore[no-untyped-def]
    return analyze_command(command, sandboxed=sandboxed, workspace=workspace)


@pytest.mark.parametrize(("command", "rule"), [
    ("", "shell.empty"),
    ("ls\x00", "shell.nul"),
    ("ls \\\n-la", "shell.line_continuation"),
    ("ls\u200b", "shell.control_char"),
    ("ls\u00a0-la", "shell.unicode_space"),
    ("a" * (MAX_BYTES + 1), "shell.too_long"),
])
def test_refusals_before_parsing(command: str, rule: str) -> None:
    refused = precheck(command)
    assert refused is not None and refused.rule == rule and refused.decision == "deny"


def test_non_string_input_is_refused(workspace: Path) -> None:
    assert verdict(["ls"], workspace).decision == "deny"  # type: ignore[arg-type]


def test_unparsable_commands_are_denied(workspace: Path) -> None:
    for command in ("ls &&", "echo 'open", "if true; then", "ls )"):
        result = verdict(command, workspace)
        assert (result.decision, result.rule) == ("deny", "shell.parse_error"), command


def test_reason_names_the_rule_and_what_is_wrong(workspace: Path) -> None:
    result = verdict("echo $(date)", workspace)
    assert result.rule == "shell.command_substitution"
    assert result.reason.startswith("rule shell.command_substitution: command substitution "
                                    "$(date) is not allowed")


def test_explain_lists_every_finding(workspace: Path) -> None:
    rules = {f.rule for f in explain_command("FOO=1 cat /etc/hosts | sh", workspace=workspace,
                                             sandboxed=False)}
    assert {"shell.assignment", "shell.read_outside", "shell.pipe_to_shell"} <= rules


def test_literal_hidden_in_substitution_or_variable_is_folded(workspace: Path) -> None:
    folded = explain_command("rm -rf $(echo build)", workspace=workspace, sandboxed=False)
    assert {f.rule for f in folded} >= {"shell.command_substitution", "shell.destructive"}
    assert verdict("rm -rf $(echo /)", workspace).rule == "shell.destroy_outside"
    assert verdict("X=/; rm -rf $X", workspace).rule == "shell.destroy_outside"
    assert verdict("X=build; rm -rf $X", workspace).decision == "ask"


def test_unknown_value_is_judged_by_its_position(workspace: Path) -> None:
    assert verdict("cat $FILE", workspace).decision == "ask"
    assert verdict("rm $FILE", workspace).rule == "shell.dynamic_value"
    assert verdict("echo x > $OUT", workspace).rule == "shell.dynamic_value"
    assert verdict("$CMD", workspace).rule == "shell.dynamic_verb"


def test_cd_moves_where_relative_paths_are_checked(workspace: Path) -> None:
    assert verdict("cd src && cat app.py", workspace).decision == "allow"
    assert verdict("cd src && cat ../../x", workspace).decision == "ask"
    assert verdict("cd / && cat etc/hostname", workspace).decision == "ask"
    assert verdict("cd / && rm -rf home", workspace).rule == "shell.destroy_outside"
    assert verdict("cd escape && echo x > y", workspace).rule == "shell.write_outside"


def test_globs_are_expanded_and_checked(workspace: Path,
                                        injection_workspace: Path) -> None:
    assert verdict("cat *.md", workspace).decision == "allow"
    # a match whose name is a flag: wildcard injection
    injected = verdict("cat *", injection_workspace)
    assert injected.rule == "shell.glob" and "wildcard injection" in injected.reason
    # a match that is a symlink out of the workspace
    assert verdict("ls -d esc*", workspace).rule == "shell.read_outside"
    # programs with executing flags never get globs
    assert verdict("tar cf a.tar *.md", workspace).decision == "ask"
    assert verdict("rm -f .*", workspace).rule == "shell.destroy_outside"


def test_symlinks_and_hard_links_are_followed_for_writes(workspace: Path) -> None:
    assert verdict("echo x > escape/x", workspace).rule == "shell.write_outside"
    assert verdict("echo x > inner/new.py", workspace).decision == "allow"
    hard = verdict("echo x >> hl.txt", workspace)
    assert hard.rule == "shell.write_outside" and "hard link" in hard.reason


def test_nested_shell_is_reparsed_and_depth_limited(workspace: Path) -> None:
    assert verdict("bash -c 'ls -la'", workspace).rule == "shell.nested_shell"
    assert verdict("bash -c 'cat ~/.ssh/id_rsa'", workspace).rule == "shell.secret_access"
    deep = "ls"
    for _ in range(5):
        deep = "bash -c " + shlex.quote(deep)
    result = verdict(deep, workspace)
    assert (result.decision, result.rule) == ("deny", "shell.too_complex")


def test_wrapped_commands_are_analyzed(workspace: Path) -> None:
    assert verdict("timeout 10 cat README.md", workspace).decision == "ask"
    assert verdict("timeout 10 cat ~/.ssh/id_rsa", workspace).decision == "deny"
    assert verdict("find . -name x -exec cat {} \\;", workspace).rule == "shell.find_exec"
    assert verdict("find / -exec rm {} \\;", workspace).decision == "deny"


def test_sed_and_awk_scripts_are_inspected(workspace: Path) -> None:
    assert verdict("sed -n '/start/,/end/p' README.md", workspace).decision == "allow"
    assert verdict("sed -e 's/a/b/' -e '$d' README.md", workspace).decision == "allow"
    assert verdict("sed '1e id' README.md", workspace).rule == "shell.interpreter_inline"
    assert verdict("sed 's|a|b|w out' README.md", workspace).rule == "shell.interpreter_inline"
    assert verdict("awk 'NR > 1 {print $2}' README.md", workspace).decision == "allow"
    assert verdict("awk '{print > \"x\"}' README.md", workspace).decision == "ask"


def test_git_read_only_versus_mutating(workspace: Path) -> None:
    assert verdict("git log --oneline", workspace).decision == "allow"
    assert verdict("git branch -D main", workspace).rule == "shell.git_mutating"
    assert verdict("git stash", workspace).rule == "shell.git_mutating"
    assert verdict("git diff --output=/tmp/x", workspace).rule == "shell.write_outside"
    assert verdict("git -c user.name=x log", workspace).decision == "ask"


def test_protected_files_in_the_workspace(workspace: Path) -> None:
    assert verdict("cat .git/config", workspace).decision == "allow"
    assert verdict("echo x >> .git/config", workspace).rule == "shell.protected_path"
    assert verdict("echo x >> CLAUDE.md", workspace).rule == "shell.protected_ask"
    assert verdict("cat .env", workspace).rule == "shell.secret_file"


def test_missing_workspace_fails_closed(tmp_path: Path) -> None:
    gone = tmp_path / "nope"
    assert analyze_command("echo x > a.txt", sandboxed=False, workspace=gone).decision == "deny"


def test_pathological_nesting_is_refused_quickly(workspace: Path) -> None:
    nested = "echo " + "$(echo " * 400 + "x" + ")" * 400
    assert verdict(nested, workspace).decision == "deny"
    many = "timeout " + "a " * 2000
    assert verdict(many, workspace).decision == "deny"
