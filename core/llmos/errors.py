"""How the kernel's exceptions map to the CLI's documented exit codes."""

from __future__ import annotations

EXIT_FAILED, EXIT_USAGE, EXIT_BUDGET = 1, 2, 3


class OperationFailed(Exception):
    """An operation failed for a reason the user should read (no traceback)."""


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code for a known error, or None for a bug (which keeps its traceback)."""
    from llmos.config import ConfigError
    from llmos.economy import LowBatteryError
    from llmos.gateway import UnknownTool
    from llmos.tools import ToolError, ToolInputError

    if isinstance(exc, LowBatteryError):
        return EXIT_BUDGET
    if isinstance(exc, (ConfigError, ToolInputError, UnknownTool, NotADirectoryError)):
        return EXIT_USAGE
    if isinstance(exc, (OperationFailed, ToolError, LookupError)):
        return EXIT_FAILED
    return None
