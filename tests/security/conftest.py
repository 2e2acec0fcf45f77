"""Fixtures for the security tests: a real workspace with the traps attacks rely on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

INJECTION_NAMES = ("-rf", "--checkpoint=1", "--checkpoint-action=exec=sh x.sh", "-e sh x.sh",
                   "--pre=x.sh")


def build_workspace(root: Path) -> Path:
    """A workspace with ordinary files, git metadata, and the traps the attack corpus uses."""
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside secret\n")
    workspace = root / "workspace"
    (workspace / "src").mkdir(parents=True)
    (workspace / "docs").mkdir()
    (workspace / "build").mkdir()
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    (workspace / "README.md").write_text("# readme\n")
    (workspace / "notes.txt").write_text("notes\n")
    (workspace / "a.txt").write_text("a\n")
    (workspace / "b.txt").write_text("b\n")
    (workspace / ".env").write_text("TOKEN=x\n")
    (workspace / "src" / "app.py").write_text("print('hi')\n")
    (workspace / "src" / "util.py").write_text("X = 1\n")
    (workspace / "escape").symlink_to("/etc")
    (workspace / "inner").symlink_to("src")
    os.link(outside / "secret.txt", workspace / "hl.txt")
    return workspace


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared, read-only-by-convention workspace (tests must not modify it)."""
    return build_workspace(tmp_path_factory.mktemp("ws"))


@pytest.fixture(scope="session")
def injection_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared workspace plus files whose names are flags (wildcard injection)."""
    workspace = build_workspace(tmp_path_factory.mktemp("inj"))
    for name in INJECTION_NAMES:
        (workspace / name).write_text("")
    return workspace
