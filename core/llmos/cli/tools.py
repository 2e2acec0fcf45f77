"""``llmos tools``: list the registered tools, or call one through the kernel's gate."""

from __future__ import annotations

from typing import NoReturn

import click

from llmos.cli._common import (
    console,
    emit_json,
    json_object,
    json_option,
    kernel_from,
    styled,
)


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def tools(ctx: click.Context, as_json: bool) -> None:
    """List tools: name, plugin, description, input schema, side effects.

    JSON: a list of {name, plugin, description, input_schema, side_effects,
    cost_hint_usd, latency_hint_s, error_modes, inputs} (inputs: field name → path,
    read_path, write_path, url, command or note, as the policy checks them).
    """
    if ctx.invoked_subcommand is not None:
        return
    kernel = kernel_from(ctx)
    described = [tool.describe() for tool in kernel.tools]
    if as_json:
        emit_json(described)
        return
    from rich.table import Table

    table = Table("tool", "plugin", "side effects", "description")
    for item in described:
        table.add_row(item["name"], item["plugin"], item["side_effects"], item["description"])
    console().print(table)


@tools.command("call")
@click.argument("name")
@click.option("--input", "input_json", default="{}", help="The tool's input as a JSON object.")
@json_option
@click.pass_context
def call(ctx: click.Context, name: str, input_json: str, as_json: bool) -> None:
    """Run one tool through the kernel's gate (validation, policy, watchdog, hooks).

    JSON: {tool, ok, output, error, decision: {verdict, rule, reason}, duration_s}; on
    bad input or an interruption, {error: {type, message, exit_code}}.
    Exit codes: 0 ok, 1 the tool failed, 2 bad input (an unknown field included), 4
    refused by policy, 130/143/129 stopped by Ctrl-C/SIGTERM/SIGHUP.
    """
    from llmos.watchdog import Interrupted, run_interruptible

    data = json_object(input_json)
    kernel = kernel_from(ctx)

    async def go():
        async with kernel:
            return await kernel.call_tool(name, data)

    try:
        result = run_interruptible(go())
    except Interrupted as stop:
        _leave_interrupted(name, stop.interruption, as_json)
    decision = result.decision
    refused = decision is not None and decision.verdict != "allow"
    if as_json:
        emit_json(
            {
                "tool": name,
                "ok": not result.is_error,
                "output": result.output,
                "error": result.error or None,
                "decision": {
                    "verdict": decision.verdict,
                    "rule": decision.rule,
                    "reason": decision.reason,
                }
                if decision
                else None,
                "duration_s": round(result.duration_s, 6),
            }
        )
    elif result.is_error:
        console(stderr=True).print(styled(("error:", "red"), f" {result.error}"))
    else:
        click.echo(result.text)
    if refused:
        ctx.exit(4)
    if result.is_error:
        ctx.exit(1)


def _leave_interrupted(name: str, interruption, as_json: bool) -> NoReturn:
    """Say the call was stopped (a JSON error object with --json) and leave at once: the
    tool's worker thread may still wait on a command, whose sandbox dies with llmos."""
    import os
    import sys

    message = f"{interruption.reason}: the call to {name} was stopped"
    click.echo(f"error: {message}", err=True)
    if as_json:
        emit_json({"error": {"type": "interrupted", "message": message,
                             "exit_code": interruption.exit_code}})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(interruption.exit_code)
