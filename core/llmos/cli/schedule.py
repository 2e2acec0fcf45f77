"""``llmos schedule``: goals run by the workers on a cron schedule, once per due time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from llmos.cli._common import console, emit_json, json_option


@contextmanager
def _schedules(ctx: click.Context) -> Iterator[Any]:
    from llmos.durable.submit import Schedules

    obj = ctx.find_root().obj or {}
    found = Schedules(obj.get("workspace"), obj.get("settings"), obj.get("project"))
    try:
        yield found
    finally:
        found.close()


def _found(fn):
    """A schedule id that names nothing is a usage error (exit 2) that says so."""
    from functools import wraps

    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        from llmos.durable.submit import ScheduleNotFound

        try:
            return fn(*args, **kwargs)
        except ScheduleNotFound as exc:
            raise click.UsageError(str(exc)) from None

    return run


@click.group()
def schedule() -> None:
    """Cron schedules of goals, kept in the durable engine's database and fired by
    `llmos worker` once per due time (however many workers run)."""


@schedule.command("add")
@click.argument("cron")
@click.argument("goal")
@click.option("--budget", type=float, metavar="USD", help="Each run's cap.")
@json_option
@click.pass_context
def add(ctx: click.Context, cron: str, goal: str, budget: float | None, as_json: bool) -> None:
    """Run GOAL at every due time of CRON (5 fields, or 6 with seconds first; UTC).
    Prints the schedule's id. JSON: {id, cron, goal, project, budget_usd, status,
    last_fired_at}."""
    with _schedules(ctx) as schedules:
        made = schedules.add(cron, goal, budget_usd=budget)
    if as_json:
        emit_json(made.as_dict())
    else:
        click.echo(made.id)


@schedule.command("list")
@json_option
@click.pass_context
def list_schedules(ctx: click.Context, as_json: bool) -> None:
    """List the schedules. JSON: a list of {id, cron, goal, project, budget_usd, status,
    last_fired_at}."""
    with _schedules(ctx) as schedules:
        found = schedules.list()
    if as_json:
        emit_json([s.as_dict() for s in found])
        return
    if not found:
        click.echo("no schedules")
        return
    from rich.table import Table

    table = Table("id", "cron", "status", "project", "budget", "last fired", "goal")
    for s in found:
        table.add_row(s.id, s.cron, s.status, s.project or "",
                      f"${s.budget_usd:g}" if s.budget_usd else "", s.last_fired_at or "",
                      s.goal)
    console().print(table)


def _one(verb: str, help_text: str):
    @schedule.command(verb, help=help_text)
    @click.argument("schedule_id")
    @click.pass_context
    @_found
    def command(ctx: click.Context, schedule_id: str) -> None:
        with _schedules(ctx) as schedules:
            if verb == "rm":
                schedules.remove(schedule_id)
                click.echo(f"removed schedule {schedule_id}")
                return
            done = getattr(schedules, verb)(schedule_id)
        click.echo(f"schedule {done.id} is {done.status}")

    return command


rm = _one("rm", "Remove a schedule (its past runs stay in the run log).")
pause = _one("pause", "Stop firing a schedule until `llmos schedule resume`.")
resume = _one("resume", "Fire a paused schedule again (from its next due time).")
