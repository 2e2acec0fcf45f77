"""``llmos config show``: the effective configuration and where each value came from."""

from __future__ import annotations

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from


@click.group()
def config() -> None:
    """Inspect configuration (defaults < user file < workspace llmos.toml < env < --set)."""


@config.command("show")
@json_option
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Show the effective configuration.

    JSON: {workspace, files: [paths read], config: {section: {key: value}},
    origins: {"section.key": source}}.
    """
    kernel = kernel_from(ctx)
    cfg = kernel.config
    data = cfg.as_dict()
    origins = {
        f"{section}.{key}": cfg.origin(section, key)
        for section, values in data.items()
        for key in values
    }
    if as_json:
        emit_json(
            {
                "workspace": str(kernel.workspace.root),
                "config": data,
                "origins": origins,
            }
        )
        return
    out = console()
    out.print(f"[bold]workspace[/bold] {kernel.workspace.root}")
    for section, values in data.items():
        out.print(f"\n[bold]\\[{section}][/bold]")
        for key, value in values.items():
            out.print(f"{key} = {value!r}  [dim]# {origins[f'{section}.{key}']}[/dim]")
