"""``llmos traces``: list, show, export, import and remove execution traces.

Export and import use the Markdown format (YAML front matter), so traces move between
any two memory backends: ``llmos traces export --out dir/`` on one workspace,
``llmos traces import dir/`` on another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from, styled

if TYPE_CHECKING:
    from llmos.memory.base import MemoryBackend
    from llmos.memory.models import Trace


def memory_of(ctx: click.Context) -> MemoryBackend:
    return kernel_from(ctx).memory


def warn_problems(memory: MemoryBackend) -> None:
    """Unreadable records are reported on stderr (file:line: problem) and skipped."""
    for problem in memory.skipped():
        click.echo(f"warning: skipped {problem}", err=True)


def summary(trace: Trace) -> dict[str, Any]:
    data = trace.model_dump(mode="json", exclude={"steps", "slots"})
    data["steps"] = len(trace.steps)
    return data


@click.group()
def traces() -> None:
    """Execution traces: how past goals were achieved, replayable step by step."""


@traces.command("list")
@click.option("--limit", default=50, show_default=True, help="How many traces (newest first).")
@click.option("--search", "query", help="Only traces matching this full-text query.")
@click.option("--signature", help="Only traces with this goal signature.")
@json_option
@click.pass_context
def list_traces(ctx: click.Context, limit: int, query: str | None, signature: str | None,
                as_json: bool) -> None:
    """List traces. JSON: a list of {id, goal_text, normalized_goal, goal_signature,
    success_rating, usage_count, success_count, failure_count, last_used, created_at,
    estimated_cost_usd, estimated_time_secs, mode, tools_used, demoted, source_run, steps}."""
    memory = memory_of(ctx)
    if signature:
        found = memory.find_traces(signature=signature)[:limit]
    elif query:
        found = memory.search_traces(query, limit=limit)
    else:
        found = memory.list_traces(limit=limit)
    warn_problems(memory)
    if as_json:
        emit_json([summary(t) for t in found])
        return
    if not found:
        click.echo("no traces")
        return
    from rich.table import Table

    table = Table("id", "goal", "mode", "steps", "rating", "uses", "last used")
    for t in found:
        goal = t.goal_text if len(t.goal_text) <= 60 else t.goal_text[:59] + "…"
        flag = ("" if not t.demoted else " (demoted)", "red")
        last = f"{t.last_used:%Y-%m-%d %H:%M}" if t.last_used else ""
        table.add_row(t.id, styled(goal, flag), t.mode, str(len(t.steps)),
                      f"{t.success_rating:.2f}", str(t.usage_count), last)
    console().print(table)


@traces.command("show")
@click.argument("trace_id")
@json_option
@click.option("--markdown", "as_markdown", is_flag=True, help="Print the Markdown form.")
@click.pass_context
def show(ctx: click.Context, trace_id: str, as_json: bool, as_markdown: bool) -> None:
    """Show one trace with its steps. JSON: the whole trace (as in a list entry, plus
    slots and steps: [{index, tool, input, outcome, duration_s, source, call_id}])."""
    from llmos.errors import OperationFailed
    from llmos.memory.markdown_format import TraceFormatError

    try:
        trace = memory_of(ctx).get_trace(trace_id)
    except TraceFormatError as exc:  # a file the markdown driver cannot read
        raise OperationFailed(f"{exc}; fix the file or remove it with "
                              f"`llmos traces rm {trace_id}`") from None
    if as_json:
        emit_json(trace.model_dump(mode="json"))
        return
    from llmos.memory.base import redact_trace
    from llmos.memory.markdown_format import render_trace

    if as_markdown:
        click.echo(render_trace(redact_trace(trace)), nl=False)
        return
    out = console()
    out.print(styled((trace.goal_text, "bold")))
    out.print(f"trace {trace.id} · signature {trace.goal_signature} · {trace.mode} · "
              f"rating {trace.success_rating:.2f} over {trace.usage_count} uses "
              f"({trace.success_count} verified, {trace.failure_count} failed, "
              f"{trace.divergence_count} spotted another world)"
              + (f" · DEMOTED: {trace.demoted_reason or 'no reason recorded'}"
                 if trace.demoted else ""), markup=False)
    out.print(f"normalized: {trace.normalized_goal}", markup=False)
    if trace.slots:
        out.print("slots: " + ", ".join(f"{s.kind}={s.value!r}" for s in trace.slots),
                  markup=False)
    if trace.answer:
        out.print(f"answer: {_preview(trace.answer)}", markup=False)
    for step in trace.steps:
        status = "error" if step.outcome.is_error else "ok"
        if step.outcome.exit_code is not None:
            status += f", exit {step.outcome.exit_code}"
        number = step.index + 1 if step.index is not None else "?"
        out.print(styled("\n", (f"{number}. {step.tool}", "bold"), f" ({status})"))
        for key, value in step.input.items():
            out.print(f"  {key}: {_preview(value)}", markup=False)
        for f in step.outcome.files:
            out.print(f"  wrote {f.path} sha256:{f.sha256[:12]}…", markup=False)


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    lines = text.splitlines() or [""]
    shown = lines[0] if len(lines[0]) <= 120 else lines[0][:119] + "…"
    return shown + (f"  (+{len(lines) - 1} more lines)" if len(lines) > 1 else "")


@traces.command("export")
@click.argument("trace_ids", nargs=-1)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write <id>.md files into (created if missing).")
@json_option
@click.pass_context
def export(ctx: click.Context, trace_ids: tuple[str, ...], out_dir: str, as_json: bool) -> None:
    """Export traces (all when no ID is given) as Markdown files.
    JSON: {count, exported: [{id, path}]}."""
    from llmos.memory.base import redact_trace
    from llmos.memory.files import atomic_write
    from llmos.memory.markdown_format import render_trace

    memory = memory_of(ctx)
    chosen = [memory.get_trace(i) for i in trace_ids] if trace_ids else memory.list_traces()
    warn_problems(memory)
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    exported = []
    for trace in chosen:
        path = target / f"{trace.id}.md"
        atomic_write(path, render_trace(redact_trace(trace)))  # cleans older records too
        exported.append({"id": trace.id, "path": str(path)})
    if as_json:
        emit_json({"count": len(exported), "exported": exported})
    else:
        click.echo(f"exported {len(exported)} trace(s) to {target}")


def _markdown_files(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.glob("*.md") if not p.name.startswith("."))
        else:
            files.append(path)
    return files


@traces.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--replace", is_flag=True, help="Overwrite traces whose id already exists.")
@json_option
@click.pass_context
def import_(ctx: click.Context, paths: tuple[str, ...], replace: bool, as_json: bool) -> None:
    """Import Markdown traces (files, or every *.md in a directory). Each file is reported:
    imported, already present, or skipped with the reason (file, line, problem: not valid
    Markdown/YAML, a YAML alias, over 4 MiB, nested over 64 levels, an invalid field);
    the good files are kept and the exit code is 1 when any was skipped.
    JSON: {imported: [ids], existing: [ids], skipped: [{file, line, problem}],
    files: [{file, status (imported|existing|skipped), id, line, problem}]}."""
    from llmos.memory.base import TraceNotFound, UnreadableRecord
    from llmos.memory.markdown_format import MAX_RECORD_BYTES, TraceFormatError, parse_trace

    memory = memory_of(ctx)
    imported: list[str] = []
    existing: list[str] = []
    skipped: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []

    def skip(file: str, line: int, problem: str) -> None:
        skipped.append({"file": file, "line": line, "problem": problem})
        files.append({"file": file, "status": "skipped", "id": None, "line": line,
                      "problem": problem})

    for path in _markdown_files(paths):
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_RECORD_BYTES + 1)
            if len(data) > MAX_RECORD_BYTES:
                skip(str(path), 1, f"the file is larger than "
                     f"{MAX_RECORD_BYTES // (1024 * 1024)} MiB")
                continue
            trace = parse_trace(data.decode("utf-8"), str(path), default_id=path.stem)
        except TraceFormatError as exc:
            skip(exc.file, exc.line, exc.problem)
            continue
        except UnicodeDecodeError as exc:
            skip(str(path), 1, f"not UTF-8 text (byte {exc.start + 1}); save it as UTF-8")
            continue
        except OSError as exc:
            skip(str(path), 1, f"cannot read: {exc.strerror or exc}")
            continue
        if not replace:
            try:
                memory.get_trace(trace.id)
                existing.append(trace.id)
                files.append({"file": str(path), "status": "existing", "id": trace.id,
                              "line": None, "problem": None})
                continue
            except TraceNotFound:
                pass
            except UnreadableRecord:  # the stored one is unreadable: replaced by this one
                pass
        try:
            memory.save_trace(trace)
        except (ValueError, RecursionError) as exc:
            skip(str(path), 1, str(exc) or type(exc).__name__)
            continue
        imported.append(trace.id)
        files.append({"file": str(path), "status": "imported", "id": trace.id, "line": None,
                      "problem": None})
    for item in skipped:
        click.echo(f"error: skipped {item['file']}:{item['line']}: {item['problem']}",
                   err=True)
    if as_json:
        emit_json({"imported": imported, "existing": existing, "skipped": skipped,
                   "files": files})
    else:
        for item in files:
            if item["status"] == "imported":
                click.echo(f"imported {item['file']} as trace {item['id']}")
            elif item["status"] == "existing":
                click.echo(f"already present: {item['file']} (trace {item['id']}; "
                           "--replace overwrites it)")
        click.echo(f"imported {len(imported)} trace(s)"
                   + (f", {len(existing)} already present (use --replace)" if existing else "")
                   + (f", {len(skipped)} skipped" if skipped else ""))
    if skipped:
        ctx.exit(1)


@traces.command("rm")
@click.argument("trace_ids", nargs=-1, required=True)
@json_option
@click.pass_context
def rm(ctx: click.Context, trace_ids: tuple[str, ...], as_json: bool) -> None:
    """Remove traces. Exit code 1 when one does not exist. JSON: {removed: [ids]}."""
    from llmos.memory.base import TraceNotFound, UnreadableRecord
    from llmos.memory.markdown_format import TraceFormatError

    memory = memory_of(ctx)
    unreadable: set[str] | None = None
    for trace_id in trace_ids:
        try:  # all must exist before anything is removed (an unreadable one does)
            memory.get_trace(trace_id)
        except (UnreadableRecord, TraceFormatError):
            pass
        except TraceNotFound:
            if unreadable is None:
                unreadable = {p.record for p in memory.problems() if p.record}
            if f"trace {trace_id}" not in unreadable:
                raise
    for trace_id in trace_ids:
        memory.delete_trace(trace_id)
    if as_json:
        emit_json({"removed": list(trace_ids)})
    else:
        click.echo(f"removed {len(trace_ids)} trace(s)")


@traces.command("demote")
@click.argument("trace_id")
@click.option("--reason", default="demoted by hand", show_default=True,
              help="Why (shown by traces show and route).")
@json_option
@click.pass_context
def demote(ctx: click.Context, trace_id: str, reason: str, as_json: bool) -> None:
    """Take a trace out of replay service (it stays as guidance). JSON: the trace summary."""
    _set_demoted(ctx, trace_id, True, reason, as_json)


@traces.command("promote")
@click.argument("trace_id")
@json_option
@click.pass_context
def promote(ctx: click.Context, trace_id: str, as_json: bool) -> None:
    """Put a demoted trace back in service. JSON: the trace summary."""
    _set_demoted(ctx, trace_id, False, None, as_json)


def _set_demoted(ctx: click.Context, trace_id: str, demoted: bool, reason: str | None,
                 as_json: bool) -> None:
    memory = memory_of(ctx)
    trace = memory.get_trace(trace_id)
    saved = memory.save_trace(trace.model_copy(update={"demoted": demoted,
                                                       "demoted_reason": reason}))
    if as_json:
        emit_json(summary(saved))
    else:
        click.echo(f"{'demoted' if demoted else 'promoted'} trace {saved.id}"
                   + (f": {reason}" if reason else ""))
