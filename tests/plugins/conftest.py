"""Helpers for the plugin tests: a local plugin directory and a real ``llmos`` process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def plugin_dir(tmp_path: Path, llmos_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty local plugin directory (``LLMOS_PLUGIN_DIR``), outside the workspace."""
    directory = tmp_path / "user-plugins"
    directory.mkdir()
    monkeypatch.setenv("LLMOS_PLUGIN_DIR", str(directory))
    return directory


def write_plugin(directory: Path, name: str, source: str) -> Path:
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def tool_plugin(*names: str, extra: str = "") -> str:
    """A plugin module registering read-only tools that answer with their own name."""
    registers = "\n".join(
        f"    register(llmos.Tool({n!r}, 'answers {n}', Empty, answer({n!r}),"
        " llmos.ToolMeta(side_effects='read-only')))"
        for n in names
    )
    return (
        "from pydantic import BaseModel\n"
        "import llmos\n\n\n"
        "class Empty(BaseModel):\n    pass\n\n\n"
        "def answer(text):\n"
        "    async def run(args, context):\n        return text\n    return run\n\n\n"
        "@llmos.hookimpl\n"
        "def llmos_register_tools(register):\n"
        f"{registers}\n{textwrap.dedent(extra)}"
    )


def run_llmos(workspace: Path, *args: str, env: dict[str, str] | None = None,
              python: list[str] | None = None) -> subprocess.CompletedProcess:
    """``llmos --workspace WORKSPACE ARGS`` in a real process (environment as the test set
    it, plus ``env``); ``python`` replaces the interpreter's command line."""
    environ = dict(os.environ)
    environ.update(env or {})
    command = python or [sys.executable, "-c", "from llmos.cli import main; main()"]
    return subprocess.run([*command, "--workspace", str(workspace), *args],
                          capture_output=True, text=True, env=environ, timeout=120)
