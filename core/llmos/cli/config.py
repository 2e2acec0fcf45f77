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
    """Show the effective configuration, where each key's value came from, and warnings.

    Each key's source is its own: defaults, a config file's path, an environment variable
    or a --set flag. JSON: {workspace, files: [{path, exists}] (the config files looked
    for, lowest precedence first), config: {section: {key: value}}, origins:
    {"section.key": source}, warnings: [sections ignored, with why and the fix]}.
    """
    kernel = kernel_from(ctx)
    cfg = kernel.config
    data = cfg.as_dict()
    origins = {
        f"{section}.{key}": cfg.origin(section, key)
        for section, values in data.items()
        for key in values
    }
    for warning in cfg.warnings:
        console(stderr=True).print(f"warning: {warning}", markup=False, style="yellow")
    if as_json:
        emit_json(
            {
                "workspace": str(kernel.workspace.root),
                "files": cfg.files,
                "config": data,
                "origins": origins,
                "warnings": cfg.warnings,
            }
        )
        return
    out = console()
    out.print(f"workspace {kernel.workspace.root}", markup=False)
    out.print("files (lowest precedence first):", markup=False)
    for item in cfg.files:
        state = "read" if item["exists"] else "not found"
        out.print(f"  {item['path']}  ({state})", markup=False)
    for section, values in data.items():
        out.print(f"\n[{section}]", markup=False, style="bold")
        for key, value in values.items():
            out.print(f"{key} = {value!r}  # {origins[f'{section}.{key}']}", markup=False)
