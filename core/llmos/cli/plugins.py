"""``llmos plugins``: what is loaded, from which distribution, and what failed."""

from __future__ import annotations

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from


@click.command()
@json_option
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List plugins: name, distribution, version, hooks implemented, load error.

    JSON: a list of {name, distribution, version, hooks, error, builtin}.
    """
    kernel = kernel_from(ctx)
    infos = kernel.plugin_list()
    if as_json:
        emit_json([info.as_dict() for info in infos])
        return
    from rich.table import Table

    table = Table("plugin", "distribution", "hooks", "status")
    for info in infos:
        dist = f"{info.distribution or '?'} {info.version or ''}".strip()
        status = f"[red]error: {info.error}[/red]" if info.error else "[green]loaded[/green]"
        hooks = ", ".join(h.removeprefix("llmos_") for h in info.hooks)
        table.add_row(info.name + (" (built-in)" if info.builtin else ""), dist, hooks, status)
    console().print(table)
