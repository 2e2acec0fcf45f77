"""``llmos export training``: runs as fine-tuning datasets (OpenAI, TRL, Anthropic)."""

from __future__ import annotations

from pathlib import Path

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from


@click.group()
def export() -> None:
    """Export what llmos learned."""


@export.command()
@click.option("--format", "fmt", required=True, type=click.Choice(["openai", "trl", "anthropic"]),
              help="openai: chat fine-tuning JSONL; trl: for TRL's SFTTrainer; anthropic: "
              "lossless Messages blocks.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The JSON Lines file to write.")
@click.option("--since", help="Only runs started since: a duration (7d, 12h) or an ISO date.")
@click.option("--project", help="Export the runs of projects/NAME (like llmos --project).")
@click.option("--successful-only", is_flag=True, help="Leave out runs that failed.")
@json_option
@click.pass_context
def training(ctx: click.Context, fmt: str, out: Path, since: str | None, project: str | None,
             successful_only: bool, as_json: bool) -> None:
    """Write the model's conversations of past runs as a training dataset, redacted.

    JSON: {format, out, examples, runs, skipped: {reason: n}, dropped: {what: n},
    zero_weight_turns, redacted_strings}.
    """
    from llmos.export.training import export_training, parse_since

    if project:
        ctx.find_root().obj["project"] = project
    moment = parse_since(since) if since else None
    report = export_training(kernel_from(ctx), fmt, out, since=moment,
                             successful_only=successful_only)
    if as_json:
        emit_json(report.as_dict())
        return
    shown = console()
    shown.print(f"wrote {report.examples} examples ({fmt}) from {len(report.runs)} runs to "
                f"{out}", markup=False)
    for reason, n in sorted(report.skipped.items()):
        shown.print(f"  left out {n} run(s): {reason}", markup=False)
    for what, n in sorted(report.dropped.items()):
        shown.print(f"  dropped {n} {what}(s): the {fmt} format cannot carry them",
                    markup=False)
    if report.zero_weight_turns:
        shown.print(f"  {report.zero_weight_turns} assistant turn(s) with weight 0 (failed "
                    "or retried)", markup=False)
    if report.redacted:
        shown.print(f"  {report.redacted} value(s) redacted on the way out", markup=False)
