"""Local plugin files (issue 19 item 9): the user's plugin directory, ``--plugin PATH`` and
``LLMOS_PLUGINS`` load through the same hooks as entry points, are listed with their path,
are isolated when broken, and are refused inside the workspace."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from tests.plugins.conftest import tool_plugin, write_plugin

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def plugins_by_name(llmos_cli) -> dict[str, dict]:
    result = llmos_cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    return {p["name"]: p for p in json.loads(result.stdout)}


def tool_names(llmos_cli) -> set[str]:
    result = llmos_cli("tools", "--json")
    assert result.exit_code == 0, result.output
    return {t["name"] for t in json.loads(result.stdout)}


def call(llmos_cli, *args: str) -> tuple[int, str]:
    result = llmos_cli(*args)
    return result.exit_code, result.output


def test_the_guides_example_works_as_written(llmos_cli, plugin_dir):
    text = DOCS.read_text()
    section = text.split("## The quickest way to try a tool", 1)[1].split("\n## ", 1)[0]
    source = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len([line for line in source.splitlines() if line.strip()]) <= 16
    path_in_doc = re.search(r"`~/\.config/llmos/plugins/(\w+)\.py`", section).group(1)
    (plugin_dir / f"{path_in_doc}.py").write_text(source)
    line = next(li for li in section.splitlines() if li.startswith("llmos tools call"))
    command, expected = line.split("#", 1)
    args = shlex.split(command)[1:]
    result = llmos_cli(*args, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == expected.strip()
    listed = plugins_by_name(llmos_cli)[path_in_doc]
    assert (listed["state"], listed["kind"]) == ("loaded", "local")
    assert listed["path"] == str(plugin_dir / f"{path_in_doc}.py")


def test_plugin_dir_files_are_listed_with_their_path_and_their_tools_run(llmos_cli,
                                                                          plugin_dir):
    path = write_plugin(plugin_dir, "greeter", tool_plugin("greet"))
    write_plugin(plugin_dir, "_helper", "raise RuntimeError('never imported')\n")
    (plugin_dir / "notes.txt").write_text("not a plugin")
    listed = plugins_by_name(llmos_cli)
    assert listed["greeter"]["path"] == str(path)
    assert listed["greeter"]["hooks"] == ["llmos_register_tools"]
    assert "_helper" not in listed and "notes" not in listed
    result = llmos_cli("tools", "call", "greet", "--input", "{}", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == "greet"
    table = llmos_cli("plugins")
    assert "greeter (local)" in table.stdout and str(path) in table.stdout


def test_plugin_option_and_env_var_load_files(llmos_cli, plugin_dir, tmp_path, monkeypatch):
    one = write_plugin(tmp_path, "one", tool_plugin("tool_one"))
    two = write_plugin(tmp_path, "two", tool_plugin("tool_two"))
    three = write_plugin(tmp_path, "three", tool_plugin("tool_three"))
    assert not {"tool_one", "tool_two"} & tool_names(llmos_cli)
    result = llmos_cli("--plugin", str(one), "--plugin", str(two), "tools", "--json")
    assert result.exit_code == 0, result.output
    assert {"tool_one", "tool_two"} <= {t["name"] for t in json.loads(result.stdout)}
    assert "LLMOS_PLUGINS" not in os.environ  # --plugin lasts one command
    monkeypatch.setenv("LLMOS_PLUGINS", f"{two}{os.pathsep}{three}")
    assert {"tool_two", "tool_three"} <= tool_names(llmos_cli)
    result = llmos_cli("--plugin", str(one), "tools", "--json")
    assert {"tool_one", "tool_two", "tool_three"} <= {t["name"] for t in
                                                     json.loads(result.stdout)}
    assert os.environ["LLMOS_PLUGINS"] == f"{two}{os.pathsep}{three}"


def test_a_missing_plugin_file_is_a_failed_plugin_not_a_failed_command(llmos_cli, tmp_path):
    missing = tmp_path / "nowhere.py"
    result = llmos_cli("--plugin", str(missing), "plugins", "--json")
    assert result.exit_code == 0, result.output
    info = {p["name"]: p for p in json.loads(result.stdout)}["nowhere"]
    assert info["state"] == "failed"
    assert info["error"] == f"no such plugin file {missing} (named by --plugin or LLMOS_PLUGINS)"
    # a file named for this command that does not load is said on every command
    broken = tmp_path / "broken.py"
    broken.write_text("import llmos_no_such_library\n")
    result = llmos_cli("--plugin", str(broken), "tools", "--json")
    assert result.exit_code == 0, result.output
    assert (f"warning: plugin file {broken}: ModuleNotFoundError: No module named "
            "'llmos_no_such_library'") in result.stderr
    json.loads(result.stdout)  # stdout stays JSON


def test_broken_local_plugins_are_isolated(llmos_cli, plugin_dir):
    write_plugin(plugin_dir, "good", tool_plugin("good_tool"))
    write_plugin(plugin_dir, "syntax", "def broken(:\n")
    write_plugin(plugin_dir, "missing_lib", "import llmos_no_such_library\n")
    write_plugin(plugin_dir, "hook_raises", tool_plugin("half_tool", extra="""
        @llmos.hookimpl
        def llmos_register_config(register):
            raise RuntimeError("cannot read my settings")


        @llmos.hookimpl
        def llmos_pre_tool_use(call, context):
            return llmos.Decision.deny("must never run once isolated", "hook_raises.deny")
        """))
    write_plugin(plugin_dir, "exits", "raise SystemExit(3)\n")
    listed = plugins_by_name(llmos_cli)
    states = {name: listed[name]["state"] for name in
              ("good", "syntax", "missing_lib", "hook_raises", "exits")}
    assert states == {"good": "loaded", "syntax": "failed", "missing_lib": "failed",
                      "hook_raises": "failed", "exits": "failed"}
    assert listed["syntax"]["error"].startswith("SyntaxError: ")
    assert listed["missing_lib"]["error"] == (
        "ModuleNotFoundError: No module named 'llmos_no_such_library'")
    assert listed["hook_raises"]["error"] == (
        "llmos_register_config: RuntimeError: cannot read my settings")
    # isolated: the tool it registered before its other hook raised is gone, and so are its
    # other hooks (its deny policy does not run)
    names = tool_names(llmos_cli)
    assert "good_tool" in names and "half_tool" not in names
    result = llmos_cli("tools", "call", "good_tool", "--input", "{}", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == "good_tool"
    table = llmos_cli("plugins")
    assert "failed: SyntaxError" in table.stdout
    assert "llmos plugins -v shows the traceback" in table.stdout
    verbose = llmos_cli("plugins", "-v")
    assert "Traceback (most recent call last)" in verbose.stdout
    assert "RuntimeError: cannot read my settings" in verbose.stdout


def test_a_plugin_file_inside_the_workspace_is_refused_and_never_imported(
        llmos_cli, llmos_workspace, plugin_dir, tmp_path):
    marker = tmp_path / "imported"
    planted = write_plugin(llmos_workspace, "planted",
                           f"open({str(marker)!r}, 'w').close()\n" + tool_plugin("planted_tool"))
    # named directly, and through a symlink in the plugin directory
    (plugin_dir / "linked.py").symlink_to(planted)
    result = llmos_cli("--plugin", str(planted), "plugins", "--json")
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    workspace = llmos_workspace.resolve()
    for name in ("planted", "linked"):
        assert listed[name]["state"] == "failed"
        assert listed[name]["error"] == (
            f"refused: {planted.resolve()} is inside the workspace {workspace}, which the "
            f"agent can write; move it to {plugin_dir} or another directory outside the "
            "workspace")
    assert "planted_tool" not in tool_names(llmos_cli)
    assert not marker.exists()


def test_a_tool_name_clash_refuses_only_that_tool(llmos_cli, plugin_dir):
    write_plugin(plugin_dir, "a_first", tool_plugin("shared", "first_only"))
    write_plugin(plugin_dir, "b_second", tool_plugin("shared", "second_only", "Read"))
    result = llmos_cli("tools", "--json")
    tools = {t["name"]: t for t in json.loads(result.stdout)}
    assert tools["shared"]["plugin"] == "a_first"  # first loaded (alphabetical) keeps it
    assert tools["second_only"]["plugin"] == "b_second"  # its other tools stay
    assert tools["Read"]["plugin"] == "llmos.builtins.claude_tools"  # built-ins always win
    second = plugins_by_name(llmos_cli)["b_second"]
    assert second["state"] == "loaded"
    assert any("'shared' is registered by both plugin 'a_first' and plugin 'b_second'" in w
               for w in second["warnings"])
    assert any("'Read' is registered by both plugin 'llmos.builtins.claude_tools' and "
               "plugin 'b_second'" in w for w in second["warnings"])
    assert "warning: llmos_register_tools: tool name 'shared'" in llmos_cli("plugins").stdout
    code, output = call(llmos_cli, "tools", "call", "shared", "--input", "{}", "--json")
    assert code == 0 and json.loads(output)["output"] == "shared"


def test_local_plugins_obey_load_and_disable(llmos_cli, plugin_dir, monkeypatch):
    write_plugin(plugin_dir, "greeter", tool_plugin("greet"))
    monkeypatch.setenv("LLMOS_DISABLE_PLUGINS", "greeter")
    info = plugins_by_name(llmos_cli)["greeter"]
    assert (info["state"], info["disabled_by"], info["kind"]) == (
        "disabled", "LLMOS_DISABLE_PLUGINS", "local")
    assert "greet" not in tool_names(llmos_cli)
    assert "disabled by LLMOS_DISABLE_PLUGINS" in llmos_cli("plugins").stdout


def test_a_local_plugin_adds_a_command_and_a_broken_one_spares_the_rest(llmos_cli,
                                                                        plugin_dir):
    write_plugin(plugin_dir, "a_broken_commands", """
        import llmos


        @llmos.hookimpl
        def llmos_register_commands(cli):
            raise RuntimeError("no commands today")
        """)
    write_plugin(plugin_dir, "b_hello", """
        import click
        import llmos


        @llmos.hookimpl
        def llmos_register_commands(cli):
            @cli.command()
            def hello_local():
                click.echo("hello from a local plugin")
        """)
    result = llmos_cli("hello-local")
    assert result.exit_code == 0, result.output
    assert "hello from a local plugin" in result.stdout
    assert ("warning: plugin 'a_broken_commands' failed to add its commands: RuntimeError: "
            "no commands today") in result.stderr


def test_an_empty_plugin_dir_adds_nothing(llmos_cli, plugin_dir):
    assert all(p["kind"] != "local" for p in plugins_by_name(llmos_cli).values())


def test_a_plugin_isolated_for_another_hook_adds_no_command(llmos_cli, plugin_dir):
    write_plugin(plugin_dir, "half", """
        import click
        import llmos


        @llmos.hookimpl
        def llmos_register_commands(cli):
            @cli.command()
            def half_command():
                click.echo("must not run")


        @llmos.hookimpl
        def llmos_register_config(register):
            raise RuntimeError("bad settings model")
        """)
    result = llmos_cli("half-command")
    assert result.exit_code == 2
    assert "must not run" not in result.output
    assert ("warning: plugin 'half' failed (llmos_register_config: RuntimeError: bad "
            "settings model); its commands are not added") in result.stderr


def test_an_empty_plugin_dir_costs_no_import(plugin_dir, llmos_workspace, tmp_path):
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from llmos.plugins import build_plugin_manager\n"
        "build_plugin_manager(builtins=(), load_entry_points=False, load_local=False)\n"
        "before = set(sys.modules)\n"
        "build_plugin_manager(builtins=(), load_entry_points=False, load_local=True,\n"
        f"                     workspace={str(llmos_workspace)!r})\n"
        "print(sorted(set(sys.modules) - before))\n"
    )

    def imported() -> str:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "LLMOS_PLUGIN_DIR": str(plugin_dir)})
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert imported() == "[]"
    write_plugin(plugin_dir, "greeter", "GREETING = 'hi'\n")
    assert "llmos_local_plugins.greeter" in imported()


def test_a_misspelled_hook_is_a_warning(llmos_cli, plugin_dir):
    write_plugin(plugin_dir, "typo", """
        import llmos


        @llmos.hookimpl
        def llmos_register_tool(register):
            raise AssertionError("never called")
        """)
    info = plugins_by_name(llmos_cli)["typo"]
    assert info["state"] == "loaded"
    assert info["warnings"] == ["llmos_register_tool is not an llmos hook, so it is never "
                                "called; did you mean llmos_register_tools?"]
