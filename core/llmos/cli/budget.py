"""``llmos budget``: the battery — balance, top-ups and the ledger."""

from __future__ import annotations

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def budget(ctx: click.Context, as_json: bool) -> None:
    """Show the balance. JSON: {balance_usd, reserved_usd, available_usd,
    balance_micro, reserved_micro}."""
    if ctx.invoked_subcommand is not None:
        return
    status = kernel_from(ctx).economy.status()
    if as_json:
        emit_json(status)
        return
    console().print(
        f"balance ${status['balance_usd']:.4f}  reserved ${status['reserved_usd']:.4f}  "
        f"available ${status['available_usd']:.4f}"
    )


@budget.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("usd", metavar="USD")
@click.pass_context
def set_budget(ctx: click.Context, usd: str) -> None:
    """Set the balance to USD dollars (from 0 to 1,000,000)."""
    from llmos.economy import check_budget_usd

    try:
        amount = float(usd)
        if amount < 0:  # click would have taken "-5" for an option: it is read here
            raise ValueError(f"the budget must be ≥ 0 (a number of dollars up to "
                             f"1,000,000), not {usd}; for example: llmos budget set 5")
        check_budget_usd(amount)
    except ValueError as exc:
        detail = str(exc) if "budget" in str(exc) else f"{usd!r} is not a number of dollars"
        raise click.BadParameter(detail, param_hint="USD") from None
    kernel_from(ctx).economy.set_balance(amount)
    usd = amount
    click.echo(f"budget set to ${usd:.4f}")


@budget.command("history")
@click.option("--limit", default=50, show_default=True, help="How many ledger entries.")
@json_option
@click.pass_context
def history(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The ledger, newest first. JSON: a list of {id, ts, kind, amount_usd, balance_usd,
    run_id, description, input_tokens, output_tokens}."""
    entries = kernel_from(ctx).economy.history(limit)
    if as_json:
        emit_json(entries)
        return
    from rich.table import Table

    table = Table("when", "kind", "amount", "balance", "run", "what")
    for e in entries:
        table.add_row(e["ts"], e["kind"], f"${e['amount_usd']:.6f}", f"${e['balance_usd']:.4f}",
                      e["run_id"] or "", e["description"] or "")
    console().print(table)
