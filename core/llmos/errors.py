"""How the kernel's exceptions map to the CLI's documented exit codes."""

from __future__ import annotations

EXIT_FAILED, EXIT_USAGE, EXIT_BUDGET = 1, 2, 3
# A run stopped by a signal exits 128 + its number: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP.

BUDGET_STOPS = ("stopped on its cap", "low battery")
"""How the error of a run that paid work was refused to begins (it exits 3)."""


class OperationFailed(Exception):
    """An operation failed for a reason the user should read (no traceback)."""


class BadInput(ValueError):
    """Input the user can fix (a workspace path, a goal's characters, a tool input's
    size): exit code 2, with a message that names the problem and the fix."""


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code for a known error, or None for a bug (which keeps its traceback)."""
    from llmos.config import ConfigError
    from llmos.economy import LowBatteryError
    from llmos.gateway import UnknownTool
    from llmos.tools import ToolError, ToolInputError

    if isinstance(exc, LowBatteryError):
        return EXIT_BUDGET
    if isinstance(exc, (BadInput, ConfigError, ToolInputError, UnknownTool,
                        NotADirectoryError)):
        return EXIT_USAGE
    if isinstance(exc, (OperationFailed, ToolError, LookupError)):
        return EXIT_FAILED
    return None


def exit_code_for_run(success: bool, error: str | None) -> int:
    """The exit code of a finished run: 0 done, 3 stopped by the budget, 1 failed."""
    if success:
        return 0
    if error and error.startswith(BUDGET_STOPS):
        return EXIT_BUDGET
    return EXIT_FAILED
