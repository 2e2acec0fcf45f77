"""Fixtures for the memory tests: an isolated environment, kernels and the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def isolated_env(llmos_env, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config, no LLMOS_* variables (``llmos_env``), no external plugins."""
    monkeypatch.setenv("LLMOS_LOAD_PLUGINS", "")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture(params=["sqlite", "markdown"])
def backend_name(request: pytest.FixtureRequest) -> str:
    return request.param


def make_kernel(workspace: Path, *settings: str):
    from llmos.kernel import Kernel

    return Kernel(workspace, load_entry_points=False, interactive=False,
                  flags=["security.backend=trusted", *settings])


@pytest.fixture
def kernel_factory() -> Callable[..., Any]:
    """``kernel_factory(workspace, "memory.backend=markdown")``: an unstarted kernel."""
    return make_kernel


@pytest.fixture
async def kernel(workspace: Path, backend_name: str) -> AsyncIterator[Any]:
    async with make_kernel(workspace, f"memory.backend={backend_name}") as k:
        yield k


@pytest.fixture
def cli(workspace: Path) -> Callable[..., Any]:
    """``cli("traces", "list", "--json")`` on the test workspace (trusted policy)."""
    from click.testing import CliRunner

    from llmos.cli import cli as llmos_cli

    def invoke(*args: str, backend: str = "sqlite", **kwargs: Any):
        return CliRunner().invoke(
            llmos_cli,
            ["--workspace", str(workspace), "--set", "security.backend=trusted",
             "--set", f"memory.backend={backend}", *args],
            **kwargs,
        )

    return invoke


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Markdown files the markdown driver parses from now on (the index keeps the rest)."""
    files: list[str] = []
    import llmos.memory.markdown as driver

    real = driver.parse_trace

    def counting(text: str, source: str, **kw):
        files.append(Path(source).name)
        return real(text, source, **kw)

    monkeypatch.setattr(driver, "parse_trace", counting)
    return files
