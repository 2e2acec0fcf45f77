"""The extension points of llmos. Specs only: every built-in feature implements these too.

Hooks are always called with keyword arguments and only ever grow new arguments.
``llmos_register_*`` hooks receive a ``register`` callable owned by the kernel, which
decides name collisions and records which plugin registered what.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    import click

    from llmos.calls import CallContext, Decision, ToolCall, ToolResult
    from llmos.kernel import Kernel

hookspec = pluggy.HookspecMarker("llmos")


@hookspec
def llmos_register_tools(register: Callable[..., None]) -> None:
    """Contribute tools: ``register(Tool(...))`` for each one."""


@hookspec
def llmos_pre_tool_use(call: ToolCall, context: CallContext) -> Decision | None:
    """Allow, ask or deny a tool call before it runs; deny wins, ``None`` abstains."""


@hookspec
def llmos_post_tool_use(call: ToolCall, result: ToolResult, context: CallContext) -> None:
    """Observe a finished tool call (trace capture, cost tracking, audit)."""


@hookspec
def llmos_user_prompt_submit(goal: str, context: CallContext) -> str | None:
    """Return extra context to give the model with a goal (memory injection), or ``None``."""


@hookspec
def llmos_register_memory_backends(register: Callable[..., None]) -> None:
    """Contribute named memory drivers: ``register(name, factory, description=...)``."""


@hookspec
def llmos_register_security_backends(register: Callable[..., None]) -> None:
    """Contribute named policy drivers: ``register(name, factory, description=...)``."""


@hookspec
def llmos_register_dispatch_modes(register: Callable[..., None]) -> None:
    """Contribute dispatch modes that bid on goals and run them: ``register(mode)``."""


@hookspec
def llmos_register_crystallizers(register: Callable[..., None]) -> None:
    """Contribute crystallizers that compile proven traces into tools: ``register(c)``."""


@hookspec
def llmos_register_agents(register: Callable[..., None]) -> None:
    """Contribute markdown agents: ``register(path_or_definition)``."""


@hookspec
def llmos_register_commands(cli: click.Group) -> None:
    """Add CLI subcommands to the ``llmos`` command group."""


@hookspec
def llmos_register_config(register: Callable[[str, Any], None]) -> None:
    """Contribute a config section: ``register("web", WebConfig)`` (a pydantic model)."""


@hookspec
def llmos_startup(kernel: Kernel) -> None:
    """The kernel has started: config, workspace and storage are ready."""


@hookspec
def llmos_shutdown(kernel: Kernel) -> None:
    """The kernel is shutting down."""
