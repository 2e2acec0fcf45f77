"""``llmos runs``: the run log — what ran, in which mode, what it cost and how it ended."""

from __future__ import annotations

from typing import Any

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from, styled
from llmos.cli.traces import warn_problems
from llmos.memory.base import RunNotFound

STATUSES = ("running", "succeeded", "failed", "interrupted")


@click.group()
def runs() -> None:
    """The run log (a run still marked running whose process is gone shows as interrupted)."""


class _Settled:
    """The run log as shown: a run whose process died shows what the ledger charged it."""

    def __init__(self, ctx: click.Context) -> None:
        self.kernel = kernel_from(ctx)
        self.kernel.economy  # noqa: B018 - settles reservations their dead owners left open

    def list_runs(self, **kwargs: Any) -> list[Any]:
        return [self.kernel.settle_run(r) for r in self.kernel.memory.list_runs(**kwargs)]

    def get_run(self, run_id: str) -> Any:
        return self.kernel.settle_run(self.kernel.memory.get_run(run_id))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kernel.memory, name)


def _settled_memory(ctx: click.Context) -> Any:
    return _Settled(ctx)


def _row(run: Any) -> dict[str, Any]:
    return run.model_dump(mode="json")


@runs.command("list")
@click.option("--limit", default=20, show_default=True, help="How many runs (newest first).")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs with this status.")
@json_option
@click.pass_context
def list_runs(ctx: click.Context, limit: int, status: str | None, as_json: bool) -> None:
    """List runs. JSON: a list of {id, goal, mode, status, success, cost_usd, input_tokens,
    output_tokens, duration_s, started_at, finished_at, error, output, trace_id, owner,
    step_count}."""
    memory = _settled_memory(ctx)
    found = memory.list_runs(limit=limit, status=status)  # type: ignore[arg-type]
    warn_problems(memory)
    if as_json:
        emit_json([_row(r) for r in found])
        return
    if not found:
        click.echo("no runs")
        return
    from rich.table import Table

    colors = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "running": "cyan"}
    table = Table("id", "started", "mode", "status", "steps", "cost", "time", "goal")
    for r in found:
        goal = r.goal if len(r.goal) <= 50 else r.goal[:49] + "…"
        table.add_row(
            r.id, f"{r.started_at:%Y-%m-%d %H:%M:%S}", r.mode,
            styled((r.status, colors[r.status])), str(r.step_count),
            f"${r.cost_usd:.4f}", f"{r.duration_s:.1f}s" if r.duration_s is not None else "",
            goal,
        )
    console().print(table)


@runs.command("show")
@click.argument("run_id")
@json_option
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show a run and each tool call it made. JSON: the run (as in `list`) plus
    steps: [{index, tool, input, outcome, duration_s, source, call_id}]."""
    memory = _settled_memory(ctx)
    try:
        run = memory.get_run(run_id)
    except RunNotFound:
        if _show_queued(memory.kernel, run_id, as_json):
            return
        raise
    steps = memory.run_steps(run_id)
    if as_json:
        emit_json({**_row(run), "steps": [s.model_dump(mode="json") for s in steps]})
        return
    out = console()
    out.print(styled((run.goal, "bold")))
    line = (f"run {run.id} · {run.mode} · {run.status} · ${run.cost_usd:.4f} · "
            f"{run.input_tokens} in / {run.output_tokens} out tokens")
    if run.duration_s is not None:
        line += f" · {run.duration_s:.1f} s"
    out.print(line, markup=False)
    if run.trace_id:
        out.print(f"trace {run.trace_id}", markup=False)
    if run.error:
        out.print(styled(("error:", "red"), f" {run.error}"))
    for step in steps:
        status = "refused" if step.outcome.refused else "error" if step.outcome.is_error else "ok"
        if step.outcome.exit_code is not None:
            status += f", exit {step.outcome.exit_code}"
        args = ", ".join(f"{k}={str(v)[:60]!s}" for k, v in step.input.items())
        out.print(f"{(step.index or 0) + 1:>3}. {step.tool}({args}) [{status}]", markup=False)
    if run.output:
        out.print("\n" + run.output, markup=False)


def _show_queued(kernel: Any, run_id: str, as_json: bool) -> bool:
    """A goal submitted with ``llmos submit`` that no worker has started yet."""
    from llmos.durable.submit import queued

    goal = queued(kernel, run_id)
    if goal is None:
        return False
    if as_json:
        emit_json(goal)
        return True
    out = console()
    out.print(styled((goal["goal"] or "", "bold")))
    out.print(f"run {run_id} · queued (submitted {goal['submitted_at']}): waiting for a "
              f"worker (llmos worker)", markup=False)
    return True


@runs.command("resume")
@click.argument("run_id")
@json_option
@click.pass_context
def resume(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Continue an interrupted run (killed, stopped, its machine gone) from its last
    completed step, under the same id: completed tool calls are not run again, model
    turns already paid for are not paid again (its Claude session is resumed). Exit
    codes as for `llmos run`. JSON: as `llmos run --json`."""
    from llmos.durable.runs import resume_run
    from llmos.errors import exit_code_for_run

    obj = ctx.find_root().obj or {}
    try:
        result = resume_run(run_id, workspace=obj.get("workspace"),
                            settings=obj.get("settings"), project=obj.get("project"))
    except KeyboardInterrupt:
        click.echo(f"stopped; run {run_id} is recorded as interrupted (llmos runs resume "
                   f"{run_id} continues it)", err=True)
        ctx.exit(130)
    if as_json:
        emit_json(result)
    else:
        out = console()
        status = ("done", "green") if result.get("success") else ("failed", "red")
        out.print(styled(status, f" · {result.get('mode', '')} · "
                         f"${result.get('cost_usd', 0):.4f} · run {result['run_id']} (resumed)"))
        if result.get("output"):
            out.print(result["output"], markup=False)
        if result.get("error"):
            out.print(styled(("error:", "red"), " "), end="")
            out.print(result["error"], markup=False)
    code = exit_code_for_run(bool(result.get("success")), result.get("error"))
    if code:
        ctx.exit(code)
