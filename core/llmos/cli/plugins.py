"""``llmos plugins``: every plugin with its state (loaded, disabled, failed), where it
comes from, and the config sections that are ignored because their plugin is not loaded."""

from __future__ import annotations

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from


@click.command()
@json_option
@click.option("--verbose", "-v", is_flag=True, help="Show the traceback of each failure.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool, verbose: bool) -> None:
    """List plugins with their state: loaded, disabled (and by what) or failed (and why).

    Built-ins first, then the others, each alphabetical; local plugin files show their
    path. Config sections ignored because their plugin is not loaded are warned about on
    stderr. JSON: a list of {name, state (loaded|disabled|failed), kind
    (builtin|entry-point|local|embedded|generated), distribution, version, path, hooks,
    error, disabled_by, warnings (e.g. a refused tool name), builtin}.
    """
    kernel = kernel_from(ctx)
    infos = kernel.plugin_list()
    warnings = list(kernel.config.warnings)
    for warning in warnings:
        console(stderr=True).print(f"warning: {warning}", markup=False, style="yellow")
    if as_json:
        emit_json([info.as_dict() for info in infos])
        return
    from rich.table import Table
    from rich.text import Text

    table = Table("plugin", "from", "hooks", "state")
    for info in infos:
        if info.kind == "local":
            origin = info.path or ""
        else:
            origin = f"{info.distribution or '?'} {info.version or ''}".strip()
        if info.state == "failed":
            state = Text(f"failed: {info.error}", style="red")
        elif info.state == "disabled":
            state = Text(f"disabled by {info.disabled_by}", style="yellow")
        else:
            state = Text("loaded", style="green")
        for warning in info.warnings:
            state.append(f"\nwarning: {warning}", style="yellow")
        hooks = ", ".join(h.removeprefix("llmos_") for h in info.hooks)
        label = info.name + {"builtin": " (built-in)", "local": " (local)"}.get(info.kind, "")
        table.add_row(Text(label), Text(origin), Text(hooks), state)
    out = console()
    out.print(table)
    failed = [info for info in infos if info.state == "failed"]
    if failed and not verbose:
        out.print("llmos plugins -v shows the traceback of each failure.", markup=False)
    if verbose:
        for info in failed:
            out.print(f"\n{info.name}: {info.error}", markup=False, style="bold")
            out.print(info.detail or "(no traceback recorded)", markup=False)
