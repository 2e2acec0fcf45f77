"""Every hookspec has a test and an entry in the plugin-authoring documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmos import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("llmos_"))


def test_there_are_hooks():
    assert len(HOOKS) == 13


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_is_documented(hook):
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert f"### `{hook}" in docs, f"docs/plugins.md has no section for {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_is_exercised_by_a_test(hook):
    this = Path(__file__).resolve()
    sources = [
        p.read_text(errors="replace")
        for base in (ROOT / "tests", *ROOT.glob("packages/*/tests"))
        for p in base.rglob("test_*.py")
        if p.resolve() != this
    ]
    assert any(f"def {hook}(" in text for text in sources), f"no test implements {hook}"
