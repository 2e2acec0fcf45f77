"""The ``llmos`` pytest plugin (entry point ``pytest11``): fixtures for packs and plugin authors.

- ``llmos_env``: an environment isolated from the user's own config and plugins selection.
- ``llmos_workspace``: a fresh workspace directory.
- ``llmos_kernel``: a started kernel on that workspace (async fixture).
- ``llmos_cli``: run the ``llmos`` command line in-process against that workspace.
- ``llmos_model_server``: a scripted Messages-API server on 127.0.0.1 (see
  ``llmos.testing.model_server``); its ``env()`` is applied to the test's environment so
  the real Claude Code CLI talks to it.
- ``llmos_postgres`` (session) / ``llmos_postgres_db`` (per test): a throwaway PostgreSQL
  server on 127.0.0.1 and a fresh database on it (see ``llmos.testing.postgres``).

Nothing heavy is imported here: this module is loaded by every pytest session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llmos.testing.postgres import llmos_postgres, llmos_postgres_db  # noqa: F401

if TYPE_CHECKING:
    from click.testing import Result

    from llmos.kernel import Kernel


@pytest.fixture
def llmos_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the user's config, data and LLMOS_* variables out of the test."""
    import os

    home = tmp_path_factory.mktemp("llmos-home")
    for name in list(os.environ):
        if name.startswith("LLMOS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    return home


@pytest.fixture
def llmos_workspace(tmp_path: Path, llmos_env: Path) -> Path:
    """A fresh, empty workspace directory (the kernel lays it out on first use)."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    return workspace


@pytest.fixture
def llmos_settings() -> list[str]:
    """``SECTION.KEY=VALUE`` overrides for ``llmos_kernel`` and ``llmos_cli``; override it."""
    return []


@pytest.fixture
async def llmos_kernel(llmos_workspace: Path, llmos_settings: list[str]) -> AsyncIterator[Kernel]:
    """A started kernel on a fresh workspace, with every installed plugin."""
    from llmos.kernel import Kernel

    async with Kernel(llmos_workspace, flags=llmos_settings, interactive=False) as kernel:
        yield kernel


@pytest.fixture
def llmos_cli(
    llmos_workspace: Path, llmos_settings: list[str]
) -> Callable[..., Result]:
    """``llmos_cli("tools", "--json")`` runs the CLI in-process on the test workspace."""
    from click.testing import CliRunner

    from llmos.cli import cli

    def invoke(*args: str, input: str | None = None, **kwargs: Any) -> Result:
        flags = [item for setting in llmos_settings for item in ("--set", setting)]
        return CliRunner().invoke(
            cli, ["--workspace", str(llmos_workspace), *flags, *args], input=input, **kwargs
        )

    return invoke


@pytest.fixture
def llmos_model_server(llmos_env: Path, monkeypatch: pytest.MonkeyPatch):
    """A scripted model server; add turns to ``server.script`` before the run."""
    from llmos.testing.model_server import ScriptedModelServer

    with ScriptedModelServer() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cli: drives the real bundled Claude Code CLI through the scripted model server"
    )
