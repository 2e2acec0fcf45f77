"""Helpers the subcommands share: opening a kernel, printing JSON or rich output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from llmos.kernel import Kernel

T = TypeVar("T")

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON (a stable format)."
)


def kernel_from(ctx: click.Context) -> Kernel:
    from llmos.kernel import Kernel

    obj = ctx.find_root().obj or {}
    return Kernel(obj.get("workspace"), flags=obj.get("settings"), project=obj.get("project"))


def json_object(raw: str, option: str = "--input") -> dict[str, Any]:
    """A command-line JSON object, or a usage error that says what is wrong."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.UsageError(
            f"{option} must be a JSON object, for example {option} '{{\"a\": 1}}'"
        )
    return data


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)
