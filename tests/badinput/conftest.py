"""Shared helpers for the bad-input tests: a trace file, a CLI that fails on tracebacks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4}
"""README: 0 ok, 1 failed, 2 usage or config error, 3 budget exhausted, 4 refused."""


def trace_markdown(trace_id: str = "t1", goal: str = "write hello.py",
                   rating: str = "1.0", input_block: str | None = None) -> str:
    """A trace file as ``llmos traces export`` writes it, with parts swapped."""
    block = input_block or "```yaml\nfile_path: hello.py\ncontent: print(1)\n```"
    return (
        f"---\nid: {trace_id}\ngoal_text: {goal}\nsuccess_rating: {rating}\nusage_count: 1\n"
        "mode: learner\nformat: llmos-trace/1\n---\n\n"
        f"# {goal}\n\n## Execution Steps\n\n### Step 1: Write\n\n- source: model\n"
        f"- duration_s: 0.0\n\nInput:\n\n{block}\n\nOutcome:\n\n"
        "```yaml\nis_error: false\n```\n"
    )


@pytest.fixture
def cli(llmos_cli):
    """``llmos_cli`` that also asserts what every bad input must give: no traceback, no
    bug exit, a documented exit code."""

    def invoke(*args: str, **kwargs):
        result = llmos_cli(*args, **kwargs)
        text = result.output  # stdout and stderr, as a terminal shows them
        assert "Traceback" not in text, text
        assert result.exit_code in DOCUMENTED_EXIT_CODES, (result.exit_code, text,
                                                           result.exception)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"unhandled {result.exception!r}: {text}")
        return result

    return invoke


def llmos_command() -> list[str]:
    """The real ``llmos`` command in a separate process (argv bytes need one)."""
    return [sys.executable, "-c", "from llmos.cli import main; main()"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
