"""Memory: the L2 run log, L3 execution traces and L4 facts, behind swappable drivers.

The contract is ``MemoryBackend`` (``llmos.memory.base``); the records are pydantic models
(``llmos.memory.models``). Built-in drivers: ``sqlite`` (default) and ``markdown``; pick
one with ``memory.backend`` in config and reach it as ``kernel.memory``. Names here are
imported on first use, so importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "MemoryBackend": "llmos.memory.base",
    "Problem": "llmos.memory.base",
    "RunNotFound": "llmos.memory.base",
    "TraceNotFound": "llmos.memory.base",
    "FactNotFound": "llmos.memory.base",
    "RunStateError": "llmos.memory.base",
    "Fact": "llmos.memory.models",
    "FileDigest": "llmos.memory.models",
    "RunOwner": "llmos.memory.models",
    "RunRecord": "llmos.memory.models",
    "Step": "llmos.memory.models",
    "StepOutcome": "llmos.memory.models",
    "Trace": "llmos.memory.models",
    "apply_outcome": "llmos.memory.models",
    "SqliteMemory": "llmos.memory.sqlite",
    "MarkdownMemory": "llmos.memory.markdown",
    "TraceFormatError": "llmos.memory.markdown_format",
    "parse_trace": "llmos.memory.markdown_format",
    "render_trace": "llmos.memory.markdown_format",
    "redact_text": "llmos.memory.redaction",
    "redact_obj": "llmos.memory.redaction",
    "promote_run_to_trace": "llmos.memory.runlog",
    "recorded_run": "llmos.memory.runlog",
    "memory_context": "llmos.memory.inject",
}

__all__ = [
    "Fact",
    "FactNotFound",
    "FileDigest",
    "MarkdownMemory",
    "MemoryBackend",
    "Problem",
    "RunNotFound",
    "RunOwner",
    "RunRecord",
    "RunStateError",
    "SqliteMemory",
    "Step",
    "StepOutcome",
    "Trace",
    "TraceFormatError",
    "TraceNotFound",
    "apply_outcome",
    "memory_context",
    "parse_trace",
    "promote_run_to_trace",
    "recorded_run",
    "redact_obj",
    "redact_text",
    "render_trace",
]

if TYPE_CHECKING:
    from llmos.memory.base import (
        FactNotFound,
        MemoryBackend,
        Problem,
        RunNotFound,
        RunStateError,
        TraceNotFound,
    )
    from llmos.memory.inject import memory_context
    from llmos.memory.markdown import MarkdownMemory
    from llmos.memory.markdown_format import TraceFormatError, parse_trace, render_trace
    from llmos.memory.models import (
        Fact,
        FileDigest,
        RunOwner,
        RunRecord,
        Step,
        StepOutcome,
        Trace,
        apply_outcome,
    )
    from llmos.memory.redaction import redact_obj, redact_text
    from llmos.memory.runlog import promote_run_to_trace, recorded_run
    from llmos.memory.sqlite import SqliteMemory


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmos.memory' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
