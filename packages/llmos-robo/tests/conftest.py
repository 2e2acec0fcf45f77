"""Fixtures: kernels with the pack loaded from its entry point, on a fresh workspace, with
the real pybullet simulation behind the tools."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def robo_kernel(llmos_workspace: Path, llmos_settings: list[str]):
    """``async with robo_kernel("robo.max_step_m=0.5") as kernel:``."""
    from llmos.kernel import Kernel

    @contextlib.asynccontextmanager
    async def make(*settings: str) -> AsyncIterator[Kernel]:
        async with Kernel(llmos_workspace, flags=[*llmos_settings, *settings],
                          interactive=False) as kernel:
            yield kernel

    return make


@pytest.fixture
def call_json(llmos_cli):
    """``call_json("robot_move_to", {...})`` → (exit code, parsed ``tools call --json``)."""

    def call(tool: str, data: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        result = llmos_cli("tools", "call", tool, "--input", json.dumps(data or {}), "--json")
        return result.exit_code, json.loads(result.output)

    return call
