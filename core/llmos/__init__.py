"""llmos: an operating system for LLM agents.

Claude is the CPU, this kernel is the motherboard, tokens are the battery. The package
root stays cheap to import (``llmos --version`` must be fast): heavier names are loaded
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("llmos")
"""Decorator for plugin hook implementations: ``@llmos.hookimpl``."""


class _SqliteUtilsWithoutDataFrames:
    """sqlite_utils imports pandas and numpy at import time when they are installed, only
    to map their value types to columns (0.3-1 s of CPU in every process). llmos stores
    neither, so ``sqlite_utils.db`` is imported with both hidden, unless they are loaded
    already; they import normally afterwards."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name != "sqlite_utils.db":
            return None
        import sys
        from importlib.machinery import PathFinder

        sys.meta_path[:] = [f for f in sys.meta_path if f is not _SqliteUtilsWithoutDataFrames]
        spec = PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_hidden(module: Any) -> None:
            hidden = [n for n in ("pandas", "numpy") if n not in sys.modules]
            for n in hidden:
                sys.modules[n] = None  # type: ignore[assignment]  # "import n" fails
            try:
                exec_module(module)
            finally:
                for n in hidden:
                    if sys.modules.get(n, 0) is None:
                        del sys.modules[n]

        loader.exec_module = exec_hidden
        return spec


def _hide_data_frames_from_sqlite_utils() -> None:
    import sys

    if "sqlite_utils.db" not in sys.modules and _SqliteUtilsWithoutDataFrames not in sys.meta_path:
        sys.meta_path.insert(0, _SqliteUtilsWithoutDataFrames)  # type: ignore[arg-type]


_hide_data_frames_from_sqlite_utils()

_LAZY = {
    "LLMOS": "llmos.api",
    "Kernel": "llmos.kernel",
    "Tool": "llmos.tools",
    "ToolMeta": "llmos.tools",
    "ToolCall": "llmos.calls",
    "ToolResult": "llmos.calls",
    "CallContext": "llmos.calls",
    "Decision": "llmos.calls",
    "LowBatteryError": "llmos.economy",
    "ConfigError": "llmos.config",
}

__all__ = [
    "LLMOS",
    "CallContext",
    "ConfigError",
    "Decision",
    "Kernel",
    "LowBatteryError",
    "Tool",
    "ToolCall",
    "ToolMeta",
    "ToolResult",
    "__version__",
    "hookimpl",
]

if TYPE_CHECKING:
    from llmos.api import LLMOS
    from llmos.calls import CallContext, Decision, ToolCall, ToolResult
    from llmos.config import ConfigError
    from llmos.economy import LowBatteryError
    from llmos.kernel import Kernel
    from llmos.tools import Tool, ToolMeta


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmos' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
