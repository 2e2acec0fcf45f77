"""llmos: an operating system for LLM agents.

Claude is the CPU, this kernel is the motherboard, tokens are the battery. The package
root stays cheap to import (``llmos --version`` must be fast): heavier names are loaded
on first use.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not ``typing``'s: the ``llmos`` command's client imports this

__version__ = "0.1.0"

# ``hookimpl`` (the decorator for plugin hook implementations, ``@llmos.hookimpl``) is
# made on first use by ``__getattr__`` below: importing pluggy here would cost every
# ``llmos`` command's thin client (``llmos.client``) its import.


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
    import pluggy

    from llmos.api import LLMOS
    from llmos.calls import CallContext, Decision, ToolCall, ToolResult
    from llmos.config import ConfigError
    from llmos.economy import LowBatteryError
    from llmos.kernel import Kernel
    from llmos.tools import Tool, ToolMeta

    hookimpl: pluggy.HookimplMarker


def __getattr__(name: str) -> object:
    if name == "hookimpl":
        import pluggy

        marker = globals()["hookimpl"] = pluggy.HookimplMarker("llmos")
        return marker
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmos' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
