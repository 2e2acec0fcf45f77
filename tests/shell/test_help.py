"""Every command list in ``--help`` (the top level, each group, plugin commands too) gives
each command a whole sentence, wrapped at the terminal's width, never one cut with "..."."""

from __future__ import annotations

import re
import textwrap

import pytest
from click.testing import CliRunner

from llmos.cli import cli

PLUGIN = textwrap.dedent('''
    import click
    import llmos

    @click.group()
    def longwinded():
        """A plugin group whose first sentence is much longer than the room that a command
        list leaves for it on one line of any terminal. The second sentence is not shown."""

    @longwinded.command()
    def deeply():
        """A plugin subcommand whose first sentence is also far longer than a narrow line."""

    @llmos.hookimpl
    def llmos_register_commands(cli):
        cli.add_command(longwinded)
''')


def command_list(help_text: str) -> dict[str, str]:
    """name -> summary, from the ``Commands:`` section of a help text."""
    rows: dict[str, str] = {}
    lines = help_text.splitlines()
    if "Commands:" not in lines:
        return rows
    name = None
    for line in lines[lines.index("Commands:") + 1:]:
        if not line.strip():
            break
        row = re.match(r"^  (\S+)(?:\s{2,}(.*))?$", line)
        if row:
            name = row.group(1)
            rows[name] = row.group(2) or ""
        else:
            assert name is not None and line.startswith("    "), line
            rows[name] = f"{rows[name]} {line.strip()}".strip()
    return rows


def walk(width: int) -> dict[tuple[str, ...], str]:
    """(command path) -> summary for every command listed in any group's help."""
    found: dict[tuple[str, ...], str] = {}
    todo: list[tuple[str, ...]] = [()]
    while todo:
        path = todo.pop()
        result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=width)
        assert result.exit_code == 0, (path, result.output)
        for name, summary in command_list(result.output).items():
            found[(*path, name)] = summary
            todo.append((*path, name))
    return found


@pytest.fixture
def plugin_installed(llmos_env):
    folder = llmos_env / "config" / "llmos" / "plugins"
    folder.mkdir(parents=True)
    (folder / "longwinded.py").write_text(PLUGIN)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_no_command_summary_is_cut_mid_sentence(plugin_installed, width):
    found = walk(width)
    assert ("run",) in found and ("budget", "set") in found and ("shell",) in found
    assert found[("longwinded",)] == (
        "A plugin group whose first sentence is much longer than the room that a command "
        "list leaves for it on one line of any terminal.")
    assert found[("longwinded", "deeply")] == (
        "A plugin subcommand whose first sentence is also far longer than a narrow line.")
    cut = {" ".join(path): text for path, text in found.items() if text.endswith("...")}
    assert not cut
    unfinished = {" ".join(path): text for path, text in found.items()
                  if not text.endswith((".", "!", "?"))}
    assert not unfinished
