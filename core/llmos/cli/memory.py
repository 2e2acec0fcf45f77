"""``llmos memory``: facts (L4), the available backends and unreadable records."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from
from llmos.cli.traces import memory_of, warn_problems

if TYPE_CHECKING:
    from llmos.memory.models import Fact


@click.group()
def memory() -> None:
    """Memory: facts, backends and problems (traces: `llmos traces`, runs: `llmos runs`)."""


@memory.group()
def facts() -> None:
    """Facts and insights worth remembering, given to the model with related goals."""


def _print_facts(found: list[Fact], as_json: bool) -> None:
    if as_json:
        emit_json([f.model_dump(mode="json") for f in found])
        return
    if not found:
        click.echo("no facts")
        return
    from rich.table import Table

    table = Table("id", "fact", "tags", "run", "added")
    for f in found:
        table.add_row(f.id, f.text, ", ".join(f.tags), f.source_run or "",
                      f"{f.created_at:%Y-%m-%d %H:%M}")
    console().print(table)


@facts.command("add")
@click.argument("text")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--run", "source_run", help="The run this fact was learned in.")
@json_option
@click.pass_context
def add(ctx: click.Context, text: str, tags: tuple[str, ...], source_run: str | None,
        as_json: bool) -> None:
    """Remember a fact (secrets in it are redacted). JSON: {id, text, tags, source_run,
    created_at}."""
    if not text.strip():
        raise click.BadParameter("a fact needs some text", param_hint="TEXT")
    fact = memory_of(ctx).add_fact(text, tags=tags, source_run=source_run)
    if as_json:
        emit_json(fact.model_dump(mode="json"))
    else:
        click.echo(f"remembered fact {fact.id}")


@facts.command("list")
@click.option("--tag", help="Only facts with this tag.")
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_context
def list_facts(ctx: click.Context, tag: str | None, limit: int, as_json: bool) -> None:
    """List facts, newest first. JSON: a list of {id, text, tags, source_run, created_at}."""
    mem = memory_of(ctx)
    found = mem.list_facts(tag=tag, limit=limit)
    warn_problems(mem)
    _print_facts(found, as_json)


@facts.command("search")
@click.argument("query")
@click.option("--limit", default=10, show_default=True)
@json_option
@click.pass_context
def search(ctx: click.Context, query: str, limit: int, as_json: bool) -> None:
    """Full-text search over facts and tags, most relevant first. JSON: as `list`."""
    mem = memory_of(ctx)
    found = mem.search_facts(query, limit=limit)
    warn_problems(mem)
    _print_facts(found, as_json)


@facts.command("rm")
@click.argument("fact_id")
@json_option
@click.pass_context
def rm(ctx: click.Context, fact_id: str, as_json: bool) -> None:
    """Forget a fact. Exit code 1 when it does not exist. JSON: {removed: id}."""
    memory_of(ctx).delete_fact(fact_id)
    if as_json:
        emit_json({"removed": fact_id})
    else:
        click.echo(f"removed fact {fact_id}")


@memory.command("backends")
@json_option
@click.pass_context
def backends(ctx: click.Context, as_json: bool) -> None:
    """The registered memory drivers and which one config selects.
    JSON: a list of {name, plugin, description, selected}."""
    kernel = kernel_from(ctx)
    chosen = kernel.config.memory.backend
    rows = [{"name": e.name, "plugin": e.plugin, "description": e.description,
             "selected": e.name == chosen} for e in kernel.memory_backends]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        mark = "*" if row["selected"] else " "
        click.echo(f"{mark} {row['name']:<10} {row['description']}  ({row['plugin']})")


@memory.command("check")
@json_option
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Report stored records that cannot be read (file, line, problem); exit code 1 when
    there are any. JSON: a list of {file, line, problem}."""
    found = memory_of(ctx).problems()
    if as_json:
        emit_json([p.as_dict() for p in found])
    elif not found:
        click.echo("memory is readable: no problems")
    else:
        for p in found:
            click.echo(str(p))
    if found:
        ctx.exit(1)


__all__ = ["memory", "warn_problems"]
