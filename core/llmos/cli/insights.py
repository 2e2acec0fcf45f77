"""``llmos insights``: what recurs across projects, which agents succeed where, and what
replay saved per project — from the run logs, the traces and the dispatch log."""

from __future__ import annotations

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from


@click.command()
@json_option
@click.pass_context
def insights(ctx: click.Context, as_json: bool) -> None:
    """Cross-project insights. JSON: {projects: [{project, runs, top_level_runs, succeeded,
    by_mode, spend_usd, replays, saved_usd, model_requests, traces}], patterns: [{pattern,
    example, runs, replayed, projects: {name: runs}}], agents: [{agent, project, subgoals,
    succeeded, success_rate, replayed, cost_usd}]}."""
    from llmos.projects.insights import insights as compute

    data = compute(kernel_from(ctx))
    if as_json:
        emit_json(data)
        return
    from rich.table import Table

    out = console()
    table = Table("project", "runs", "ok", "replays", "spend", "saved", "traces",
                  title="Projects")
    for p in data["projects"]:
        table.add_row(p["project"], str(p["runs"]), str(p["succeeded"]), str(p["replays"]),
                      f"${p['spend_usd']:.4f}", f"${p['saved_usd']:.4f}", str(p["traces"]))
    out.print(table)
    if data["patterns"]:
        table = Table("goal pattern", "runs", "replayed", "projects", title="Recurring goals")
        for p in data["patterns"][:20]:
            table.add_row(p["pattern"][:60], str(p["runs"]), str(p["replayed"]),
                          ", ".join(f"{k} ({v})" for k, v in p["projects"].items()))
        out.print(table)
    if data["agents"]:
        table = Table("agent", "project", "sub-goals", "success", "replayed", "cost",
                      title="Agents")
        for a in data["agents"]:
            table.add_row(a["agent"] or "(general)", a["project"], str(a["subgoals"]),
                          f"{a['success_rate']:.0%}", str(a["replayed"]), f"${a['cost_usd']:.4f}")
        out.print(table)
