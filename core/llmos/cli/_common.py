"""Helpers the subcommands share: opening a kernel, printing JSON or rich output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from llmos.kernel import Kernel

T = TypeVar("T")

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON (a stable format)."
)


def kernel_from(ctx: click.Context) -> Kernel:
    from llmos.kernel import Kernel

    check_arguments(ctx)
    obj = ctx.find_root().obj or {}
    kernel = Kernel(obj.get("workspace"), flags=obj.get("settings"), project=obj.get("project"))
    for info in kernel.plugins.values():  # a file named for this command that did not load
        if info.named and info.state == "failed":
            click.echo(f"warning: plugin file {info.path}: {info.error}", err=True)
    return kernel


def json_object(raw: str, option: str = "--input") -> dict[str, Any]:
    """A command-line JSON object, or a usage error that says what is wrong (bounded:
    size, nesting and text as ``llmos.bounds`` allows, never a RecursionError)."""
    from llmos.bounds import MAX_BYTES, MAX_DEPTH, check_text, check_value
    from llmos.errors import BadInput

    try:
        check_text(raw, option)
        if len(raw) > MAX_BYTES:
            raise BadInput(f"{option} is larger than {MAX_BYTES // (1024 * 1024)} MiB; "
                           "pass large content in a file instead")
        try:
            data = json.loads(raw)
        except RecursionError:
            raise BadInput(f"{option} nests too deeply (more than {MAX_DEPTH} levels of "
                           "lists and objects); flatten it") from None
        except json.JSONDecodeError as exc:
            raise BadInput(f"{option} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadInput(
                f"{option} must be a JSON object, for example {option} '{{\"a\": 1}}'")
        check_value(data, option)
    except BadInput as exc:
        raise click.UsageError(str(exc)) from None
    return data


def check_arguments(ctx: click.Context) -> None:
    """Every text argument and option of the command (and its parents) is valid Unicode:
    a non-UTF-8 byte (which Python decodes from argv as a lone surrogate) is a usage error
    naming the argument, the position and the fix, before anything stores or prints it."""
    from llmos.bounds import UTF8_FIX, bad_character

    current: click.Context | None = ctx
    while current is not None:
        for param in current.command.params:
            value = current.params.get(param.name or "")
            values = value if isinstance(value, (list, tuple)) else (value,)
            for item in values:
                found = bad_character(item) if isinstance(item, str) else None
                if found is not None:
                    position, char = found
                    name = (param.opts[0] if isinstance(param, click.Option)
                            else param.human_readable_name)
                    raise click.UsageError(f"{name} has {char} at character {position + 1}; "
                                           f"{UTF8_FIX}", ctx=ctx)
        current = current.parent


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


PIPED_WIDTH = 10_000
"""The width tables get when output is not a terminal: a row is never wrapped at 80
columns for a pipe or a file (``COLUMNS`` still wins when set)."""


def console(stderr: bool = False) -> Console:
    """The console every command prints through. It prints text literally, safe by
    construction: no markup (``[/]`` or ``[dice]`` in a goal, path, reason or output is
    shown as is), no emoji codes, no highlighting. Styled output is built from data with
    ``styled``, never by formatting data into markup. Tables use the terminal's width on
    a terminal and ``PIPED_WIDTH`` otherwise."""
    import os
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    width = None if tty or os.environ.get("COLUMNS") else PIPED_WIDTH
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=True,
                   width=width)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Styled text from literal pieces: ``styled(("error:", "red"), " ", message)``. A
    piece is printed as it is, whatever brackets it holds."""
    from rich.text import Text

    return Text.assemble(*parts)


def prewarm() -> list[str]:
    """``llmos.kernel.prewarm()`` and the modules ``llmos run`` imports (for a fork
    server's parent: a command forked after it starts with them loaded). Returns the
    modules that failed to import."""
    import importlib

    from llmos.kernel import prewarm as prewarm_kernel

    failed = prewarm_kernel()
    for name in ("llmos.cli.run",):
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
    return failed
