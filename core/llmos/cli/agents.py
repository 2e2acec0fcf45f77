"""``llmos agents``: the Markdown agents — list, show, create, check, history, revert."""

from __future__ import annotations

from pathlib import Path

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from

ACTOR = "user (llmos agents {})"


@click.group()
def agents() -> None:
    """Markdown agents from packs, the workspace's agents/ and the project's agents/
    (later ones win a name). Files are re-read when they change."""


@agents.command("list")
@json_option
@click.pass_context
def list_agents(ctx: click.Context, as_json: bool) -> None:
    """List the agents. JSON: a list of {name, description, tools, model, max_turns,
    budget_usd, prompt, source, origin}."""
    from llmos.agents.registry import agents_of

    registry = agents_of(kernel_from(ctx))
    found = registry.all()
    problems = registry.problems()
    if as_json:
        emit_json([a.as_dict() for a in found])
    elif not found:
        click.echo("no agents (create one with: llmos agents new NAME --description ... "
                   "--tools Read,Write --prompt ...)")
    else:
        from rich.table import Table

        table = Table("name", "origin", "model", "tools", "description")
        for a in found:
            table.add_row(a.name, a.origin, a.spec.model or "", ", ".join(a.spec.tools),
                          a.spec.description)
        console().print(table)
    for problem in problems:
        click.echo(f"warning: skipped {problem}", err=True)


@agents.command("show")
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show one agent: its settings, where it comes from and its system prompt."""
    from llmos.agents.registry import agents_of

    agent = agents_of(kernel_from(ctx)).get(name)
    if as_json:
        emit_json(agent.as_dict())
        return
    spec = agent.spec
    click.echo(f"{agent.name} ({agent.origin}: {agent.source})\n{spec.description}")
    click.echo(f"tools: {', '.join(spec.tools)}")
    for key in ("model", "max_turns", "budget_usd"):
        if getattr(spec, key) is not None:
            click.echo(f"{key}: {getattr(spec, key)}")
    click.echo(f"\n{agent.prompt}")


@agents.command("new")
@click.argument("name")
@click.option("--description", required=True, help="One line: what the agent is for.")
@click.option("--tools", required=True, help="Comma-separated tools it may use: Read,Write,Bash")
@click.option("--model", help="Claude model for its runs.")
@click.option("--max-turns", type=int)
@click.option("--budget-usd", type=float, help="At most this much per run.")
@click.option("--prompt", help="Its system prompt.")
@click.option("--prompt-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the system prompt from a file.")
@json_option
@click.pass_context
def new(ctx: click.Context, name: str, description: str, tools: str, model: str | None,
        max_turns: int | None, budget_usd: float | None, prompt: str | None,
        prompt_file: Path | None, as_json: bool) -> None:
    """Create an agent in the agents folder (the project's with --project)."""
    from pydantic import ValidationError

    from llmos.agents.changes import save_agent
    from llmos.agents.format import AgentSpec, render_agent

    if prompt_file is not None:
        prompt = prompt_file.read_text(encoding="utf-8")
    if not prompt or not prompt.strip():
        raise click.UsageError("give the agent a system prompt with --prompt or --prompt-file")
    data = {"name": name, "description": description,
            "tools": [t.strip() for t in tools.split(",") if t.strip()], "model": model,
            "max_turns": max_turns, "budget_usd": budget_usd}
    try:
        spec = AgentSpec.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise click.UsageError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    kernel = kernel_from(ctx)
    agent, change = save_agent(kernel, name, render_agent(spec, prompt), create=True,
                               actor=ACTOR.format("new"))
    if as_json:
        emit_json({**agent.as_dict(), "change": change.id, "path": change.path})
    else:
        click.echo(f"created agent {name!r}: {change.path} (change #{change.id})")


@agents.command("check")
@json_option
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Validate every agent file; exit 1 when one is invalid (file:line: problem)."""
    from llmos.agents.registry import agents_of

    registry = agents_of(kernel_from(ctx))
    valid = registry.all()
    problems = registry.problems()
    if as_json:
        emit_json({"valid": [a.name for a in valid],
                   "problems": [p.as_dict() for p in problems]})
    else:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{len(valid)} valid agent(s), {len(problems)} invalid")
    if problems:
        ctx.exit(1)


@agents.command("history")
@click.argument("name", required=False)
@click.option("--limit", default=20, show_default=True)
@click.option("--diff", "show_diff", is_flag=True, help="Show each change's diff.")
@json_option
@click.pass_context
def history(ctx: click.Context, name: str | None, limit: int, show_diff: bool,
            as_json: bool) -> None:
    """Every change to agent files: who, when, and the diff. JSON: a list of {id, ts,
    agent, path, action, actor, run_id, diff}."""
    from llmos.agents.changes import history as changes

    found = changes(kernel_from(ctx), name, limit)
    if as_json:
        emit_json([c.as_dict() for c in found])
        return
    if not found:
        click.echo("no agent changes")
    for change in found:
        click.echo(f"#{change.id} {change.ts} {change.action} {change.agent} ({change.path}) "
                   f"by {change.actor}")
        if show_diff:
            click.echo(change.diff)


@agents.command("revert")
@click.argument("change_id", type=int)
@click.pass_context
def revert(ctx: click.Context, change_id: int) -> None:
    """Undo one change: the file gets back the text it had before it."""
    from llmos.agents.changes import revert as undo

    change = undo(kernel_from(ctx), change_id, actor=ACTOR.format("revert"))
    click.echo(f"reverted #{change_id}: {change.path} (change #{change.id})")
