"""``llmos worker`` and ``llmos submit``: goals queued, claimed once, run by any worker."""

from __future__ import annotations

import click

from llmos.cli._common import emit_json, json_option


def _root(ctx: click.Context) -> dict:
    return ctx.find_root().obj or {}


@click.command()
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=1, show_default=True,
              help="How many goals this worker runs at once (the queue's per-worker limit; "
              "the last worker started sets it for all).")
@click.option("--recover-after", type=click.FloatRange(min=1.0), default=15.0,
              show_default=True, metavar="SECONDS",
              help="Recover the goals of a worker silent for this long (it died).")
@click.option("--grace", type=click.IntRange(0, 3600), default=30, show_default=True,
              metavar="SECONDS", help="On SIGTERM, how long goals in progress may finish.")
@click.pass_context
def worker(ctx: click.Context, concurrency: int, recover_after: float, grace: int) -> None:
    """Claim goals queued with `llmos submit` (and due schedules) and run them through the
    router, until SIGTERM or Ctrl-C. Any number of workers may share one PostgreSQL
    (memory.backend = "postgres"): each goal runs on exactly one, a dead worker's goals
    are recovered by another. Without PostgreSQL, workers share the workspace's SQLite."""
    from llmos.durable.worker import WorkerOptions, serve

    obj = _root(ctx)
    if obj.get("project"):
        raise click.UsageError("a worker serves every project of its workspace: drop "
                               "--project (llmos submit --project P queues a goal for one)")
    options = WorkerOptions(workspace=obj.get("workspace"), settings=obj.get("settings", []),
                            concurrency=concurrency, recover_after_s=recover_after,
                            grace_s=grace)
    ctx.exit(serve(options))


@click.command()
@click.argument("goal")
@click.option("--budget", type=float, metavar="USD",
              help="This goal's cap (budget.run_cap_usd for its run).")
@click.option("--mode", help="Force a dispatch mode (LEARNER, FOLLOWER, MIXED, ...).")
@json_option
@click.pass_context
def submit(ctx: click.Context, goal: str, budget: float | None, mode: str | None,
           as_json: bool) -> None:
    """Queue GOAL for a worker (`llmos worker`) and print its run id; follow it with
    `llmos runs show ID`. JSON: {run_id, goal, project, budget_usd}."""
    from llmos.durable.submit import submit as enqueue

    obj = _root(ctx)
    run_id = enqueue(goal, workspace=obj.get("workspace"), settings=obj.get("settings"),
                     project=obj.get("project"), budget_usd=budget, mode=mode)
    if as_json:
        emit_json({"run_id": run_id, "goal": goal.strip(), "project": obj.get("project"),
                   "budget_usd": budget})
    else:
        click.echo(run_id)
