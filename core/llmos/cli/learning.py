"""``llmos route`` (explain a dispatch without running) and ``llmos stats``."""

from __future__ import annotations

from pathlib import Path

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from, styled


@click.command()
@click.argument("goal")
@json_option
@click.pass_context
def route(ctx: click.Context, goal: str, as_json: bool) -> None:
    """Explain which mode would run GOAL, and why, without running it; says which modes
    the balance cannot pay for now (exit 0 all the same).

    JSON: {goal, normalized_goal, chosen (null when nothing can run now), reason,
    available_usd, bids: [{mode, confidence, reason, estimated_cost_usd, trace_id, paid,
    affordable, unaffordable (why, or null)}], matched_trace: {trace_id, goal,
    confidence, reason, replayable, bindings, success_rating, usage_count} | null}.
    """
    from llmos.economy import MICRO, LowBatteryError
    from llmos.learning.dispatcher import route as route_goal

    if not goal.strip():
        raise click.UsageError('the goal is empty: say what you want explained, e.g. '
                               'llmos route "..."')
    kernel = kernel_from(ctx)
    try:
        decided = route_goal(kernel, goal)
        chosen, reason = decided.chosen, decided.reason
    except LowBatteryError as exc:
        # a forced route collects every bid without choosing; nothing is run either way
        decided = route_goal(kernel, goal, forced=kernel.dispatch_modes.names()[0])
        chosen, reason = None, f"nothing can run now: {exc}"
    available = kernel.economy.available_micro
    cap = kernel.config.budget.run_cap_usd
    data = {**decided.as_dict(), "chosen": chosen, "reason": reason,
            "available_usd": round(max(available, 0) / MICRO, 6)}
    for bid in data["bids"]:
        paid = bool(getattr(kernel.dispatch_modes.get(bid["mode"]).value, "paid", False))
        affordable = not paid or available >= round(cap * MICRO)
        bid.update(paid=paid, affordable=affordable, unaffordable=None if affordable else (
            f"unaffordable now: a run may cost up to ${cap:.4f} (budget.run_cap_usd) and "
            f"${max(available, 0) / MICRO:.4f} is available; raise it with "
            "llmos budget set USD"))
    if as_json:
        emit_json(data)
        return
    out = console()
    out.print(styled((chosen or "nothing", "bold"), f" — {reason}"))
    for bid in data["bids"]:
        out.print(f"  {bid['mode']:<12} {bid['confidence']:.2f}  "
                  f"est. ${bid['estimated_cost_usd']:.4f}  {bid['reason']}", markup=False)
        if bid["unaffordable"]:
            out.print(f"{'':15}{bid['unaffordable']}", markup=False)


@click.command()
@json_option
@click.option("--plot", is_flag=True, help="Draw spend, savings and hit rate in the terminal.")
@click.option("--png", "png", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw them into a PNG file.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool, plot: bool, png: Path | None) -> None:
    """Replay hit rate, divergences, spend and savings over every run.

    JSON: {runs, by_mode: {mode: n}, replay_hits, hit_rate, divergences, succeeded,
    model_requests, spend_usd, saved_usd, crystallized_runs, crystallized_saved_usd}.
    """
    from llmos.learning.stats import DispatchLog

    kernel = kernel_from(ctx)
    data = DispatchLog(kernel.db).stats()
    if plot or png:
        from llmos.ui import plot as plots
        from llmos.ui.data import savings_series

        series = savings_series(kernel)
        if not series:
            click.echo("no runs yet: nothing to plot (llmos run \"a goal\" first)")
            return
        if png:
            plots.png(series, png)
            click.echo(f"wrote {png} ({len(series)} runs)")
        if plot:
            click.echo(plots.terminal(series))
        return
    if as_json:
        emit_json(data)
        return
    out = console()
    modes = ", ".join(f"{m} {n}" for m, n in data["by_mode"].items()) or "none"
    out.print(f"runs {data['runs']} ({modes})")
    out.print(f"replay hits {data['replay_hits']} · hit rate {data['hit_rate']:.0%} · "
              f"divergences {data['divergences']} · model requests {data['model_requests']}")
    out.print(f"spent ${data['spend_usd']:.4f} · saved ${data['saved_usd']:.4f}")
    if data.get("crystallized_runs"):
        out.print(f"crystallized runs {data['crystallized_runs']} · saved "
                  f"${data['crystallized_saved_usd']:.4f}")
