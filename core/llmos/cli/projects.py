"""``llmos projects``: folders with their own agents, outputs, state and memory."""

from __future__ import annotations

import click

from llmos.cli._common import emit_json, json_option


def _workspace(ctx: click.Context):
    from llmos.workspace import Workspace

    obj = ctx.find_root().obj or {}
    return Workspace.open(obj.get("workspace"))


def _describe(workspace, name: str) -> dict:
    from llmos.projects import project_dir, project_settings

    root = project_dir(workspace, name)
    settings = project_settings(root)
    agents = sorted(p.stem for p in (root / "agents").glob("*.md"))
    return {"name": name, "path": str(root), "description": settings.description,
            "share_traces": settings.share_traces, "agents": agents}


@click.group()
def projects() -> None:
    """Projects of this workspace; use one with: llmos --project NAME <command>."""


@projects.command("list")
@json_option
@click.pass_context
def list_projects(ctx: click.Context, as_json: bool) -> None:
    """List the projects. JSON: a list of {name, path, description, share_traces, agents}."""
    from llmos.projects import list_projects as names

    workspace = _workspace(ctx)
    found = [_describe(workspace, n) for n in names(workspace)]
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no projects (create one with: llmos projects new NAME)")
    for p in found:
        share = " [shares traces]" if p["share_traces"] else ""
        click.echo(f"{p['name']}{share}: {p['description'] or '(no description)'}")


@projects.command("new")
@click.argument("name")
@click.option("--description", default="", help="What the project is for.")
@click.option("--share-traces", is_flag=True,
              help="Let its traces replay in other sharing projects, and theirs in it.")
@json_option
@click.pass_context
def new(ctx: click.Context, name: str, description: str, share_traces: bool,
        as_json: bool) -> None:
    """Create a project: projects/NAME/ with agents/, outputs/ and its own memory."""
    import json

    from llmos.config import ConfigError
    from llmos.projects import open_project, project_dir

    workspace = _workspace(ctx)
    if project_dir(workspace, name).exists():
        raise ConfigError(f"project {name!r} exists already: {project_dir(workspace, name)}")
    project = open_project(workspace, name, create=True)
    lines = ["[project]", f"description = {json.dumps(description)}",
             f"share_traces = {'true' if share_traces else 'false'}", ""]
    project.config_path.write_text("\n".join(lines), encoding="utf-8")
    if as_json:
        emit_json(_describe(workspace, name))
    else:
        click.echo(f"created project {name!r} at {project.root}; use it with: "
                   f"llmos --project {name} run \"...\"")


@projects.command("show")
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show a project: its folder, settings, agents, and its memory's runs and traces."""
    from llmos.kernel import Kernel

    obj = ctx.find_root().obj or {}
    kernel = Kernel(obj.get("workspace"), flags=obj.get("settings"), project=name)
    data = _describe(kernel.workspace.parent, name)
    try:
        runs = kernel.memory.list_runs(limit=None)
        data.update(runs=len(runs), succeeded=sum(1 for r in runs if r.success),
                    spend_usd=round(sum(r.cost_usd for r in runs), 6),
                    traces=len(kernel.memory.list_traces()))
    finally:
        kernel.memory.close()
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
