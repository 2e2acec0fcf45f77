"""Real distributions with ``llmos`` entry points, pip-installed into this environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LLMOS = str(Path(sys.executable).parent / "llmos")

HELLO_PYPROJECT = """
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "llmos-test-hello"
version = "1.2.3"
dependencies = ["llmos"]

[project.entry-points.llmos]
hello = "llmos_test_hello"
"""

HELLO_MODULE = '''
from pydantic import BaseModel
import llmos


class HelloInput(BaseModel):
    name: str


async def hello_world(args: HelloInput, context: llmos.CallContext) -> str:
    return f"Hello, {args.name}!"


@llmos.hookimpl
def llmos_register_tools(register):
    register(llmos.Tool("hello_world", "Greet someone by name", HelloInput, hello_world,
                        llmos.ToolMeta(side_effects="read-only")))


@llmos.hookimpl
def llmos_register_commands(cli):
    import click

    @cli.command()
    @click.argument("name")
    def hello(name):
        """Say hello from a plugin command."""
        click.echo(f"hello from a plugin, {name}")
'''

BROKEN_PYPROJECT = HELLO_PYPROJECT.replace("llmos-test-hello", "llmos-test-broken").replace(
    'hello = "llmos_test_hello"', 'broken = "llmos_test_broken"'
)
BROKEN_MODULE = "raise ImportError('llmos_test_broken needs a library that is not installed')\n"


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        capture_output=True,
    )


def _make_dist(root: Path, pyproject: str, module: str, source: str) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    return root


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory):
    base = tmp_path_factory.mktemp("dists")
    hello = _make_dist(base / "hello", HELLO_PYPROJECT, "llmos_test_hello", HELLO_MODULE)
    broken = _make_dist(base / "broken", BROKEN_PYPROJECT, "llmos_test_broken", BROKEN_MODULE)
    _pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(hello), str(broken))
    yield
    _pip("uninstall", "-y", "llmos-test-hello", "llmos-test-broken")


def llmos(workspace: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LLMOS_")}
    environ.update(env)
    return subprocess.run(
        [LLMOS, "--workspace", str(workspace), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def test_an_installed_plugins_tool_shows_and_runs(installed_plugins, llmos_workspace):
    listed = llmos(llmos_workspace, "tools", "--json")
    assert listed.returncode == 0, listed.stderr
    tools = {t["name"]: t for t in json.loads(listed.stdout)}
    assert tools["hello_world"]["plugin"] == "hello"
    assert tools["hello_world"]["input_schema"]["required"] == ["name"]

    called = llmos(
        llmos_workspace, "tools", "call", "hello_world", "--input", '{"name": "Ada"}', "--json"
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["output"] == "Hello, Ada!"


def test_a_broken_plugin_is_listed_with_its_error_and_the_rest_works(
    installed_plugins, llmos_workspace
):
    result = llmos(llmos_workspace, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["broken"]["error"] == (
        "ImportError: llmos_test_broken needs a library that is not installed"
    )
    assert plugins["broken"]["distribution"] == "llmos-test-broken"
    assert plugins["broken"]["state"] == "failed"
    assert plugins["hello"] == {
        "name": "hello",
        "state": "loaded",
        "kind": "entry-point",
        "distribution": "llmos-test-hello",
        "version": "1.2.3",
        "path": None,
        "hooks": ["llmos_register_commands", "llmos_register_tools"],
        "error": None,
        "disabled_by": None,
        "warnings": [],
        "builtin": False,
    }
    assert llmos(llmos_workspace, "tools", "--json").returncode == 0


def test_load_and_disable_lists_select_plugins(installed_plugins, llmos_workspace):
    def names(**env):
        out = llmos(llmos_workspace, "plugins", "--json", **env)
        assert out.returncode == 0, out.stderr
        return {p["name"] for p in json.loads(out.stdout)
                if not p["builtin"] and p["state"] != "disabled"}

    assert {"hello", "broken"} <= names()
    assert names(LLMOS_LOAD_PLUGINS="") == set()
    assert names(LLMOS_LOAD_PLUGINS="hello") == {"hello"}
    assert "broken" not in names(LLMOS_DISABLE_PLUGINS="broken")
    builtins = json.loads(
        llmos(llmos_workspace, "plugins", "--json",
              LLMOS_DISABLE_PLUGINS="llmos.builtins.policies").stdout
    )
    assert {p["name"]: p["disabled_by"] for p in builtins}["llmos.builtins.policies"] == (
        "LLMOS_DISABLE_PLUGINS")


def test_a_plugin_adds_a_cli_command(installed_plugins, llmos_workspace):
    result = llmos(llmos_workspace, "hello", "Ada")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from a plugin, Ada\n"
    assert "hello" in llmos(llmos_workspace, "--help").stdout
