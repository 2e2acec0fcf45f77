"""``llmos run "GOAL"``: carry out a goal, showing each tool call as it happens."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import click

from llmos.cli._common import console, emit_json, json_option, kernel_from, styled


def _terminal_asker(out):
    async def ask(call, decision) -> str:
        from rich.prompt import Prompt

        out.print(styled("\n", ("approval needed", "yellow"), " for ", (call.tool, "bold"),
                         f": {decision.reason}"))
        out.print(json.dumps(call.input, ensure_ascii=False)[:500], markup=False)
        answer = await asyncio.to_thread(
            Prompt.ask, "allow [o]nce, allow for this [r]un, or [d]eny?",
            choices=["o", "r", "d"], default="d", console=out,
        )
        return {"o": "once", "r": "run"}.get(answer, "deny")

    return ask


class LiveProgress:
    """Prints tool calls and streamed text as the run goes."""

    def __init__(self, out) -> None:
        self.out = out
        self.in_text = False

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "text":
            self.out.print(data["text"], end="", markup=False, highlight=False)
            self.in_text = True
            return
        if self.in_text:
            self.out.print()
            self.in_text = False
        if kind == "tool":
            summary = json.dumps(data["input"], ensure_ascii=False)
            summary = summary if len(summary) <= 160 else summary[:157] + "..."
            style = "green" if data["verdict"] == "allow" else "red"
            self.out.print(styled(("●", style), " ", (data["tool"], "bold"), " "), end="")
            self.out.print(summary, markup=False)
            if data["verdict"] != "allow":
                self.out.print(styled("  ", ("refused:", "red"), f" {data['reason']}"))
        elif kind == "handoff":
            self.out.print(styled(("replay diverged", "yellow"),
                                  f" ({data['reason']}); handing over to LEARNER"))
        elif kind == "tool_error":
            self.out.print(styled("  ", ("failed:", "red"), " "), end="")
            self.out.print(data["error"][:300], markup=False)
        elif kind == "retry":
            _print_retry(self.out, data)


def _print_retry(out, data: dict[str, Any]) -> None:
    out.print(styled(("model service:", "yellow"),
                     f" {data['problem']}; attempt {data['attempt']} "
                     f"in {data['wait_s']:g} s (retries stop after {data['bound_s']:g} s, "
                     "cortex.retry_max_s)"))


class RetryNotices:
    """With --json or --quiet, only the model service's retries are shown (on stderr; the
    console, and rich, only once there is one to show)."""

    def __init__(self) -> None:
        self.out = None

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "retry":
            self.out = self.out or console(stderr=True)
            _print_retry(self.out, data)


MAX_GOAL_BYTES = 1 << 20
"""The largest goal read from a file or stdin (1 MiB; an argument is limited by the
system to 128 KiB)."""


def read_goal(goal: str | None, path: str | None) -> str:
    """The goal: the argument, stdin for ``-``, or the file ``--file`` names (UTF-8, at
    most ``MAX_GOAL_BYTES``)."""
    if path is not None and goal is not None:
        raise click.UsageError("give the goal as an argument or with --file, not both")
    if path is None and goal != "-":
        if goal is None:
            raise click.UsageError('say what you want done: llmos run "GOAL", llmos run - '
                                   "(the goal on stdin) or llmos run --file PATH")
        return goal
    where = "stdin" if path is None else path
    try:
        if path is None:
            data = sys.stdin.buffer.read(MAX_GOAL_BYTES + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_GOAL_BYTES + 1)
    except OSError as exc:
        raise click.BadParameter(f"cannot read the goal from {where}: {exc.strerror or exc}",
                                 param_hint="--file") from None
    if len(data) > MAX_GOAL_BYTES:
        raise click.UsageError(f"the goal from {where} is over {MAX_GOAL_BYTES >> 20} MiB; "
                               "shorten it, or put the material in a workspace file and "
                               "name the file in the goal")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.UsageError(f"the goal from {where} is not UTF-8 text (byte "
                               f"{exc.start}); convert it, e.g. iconv -t UTF-8") from None


@click.command()
@click.argument("goal", required=False)
@click.option("--file", "-f", "goal_file", type=click.Path(dir_okay=False),
              help="Read the goal from this file (UTF-8, up to 1 MiB); GOAL - reads stdin.")
@click.option("--mode", help="Force a dispatch mode (LEARNER, FOLLOWER, MIXED, ...).")
@click.option("--simulate", is_flag=True, help="Work the goal in SIMULATION mode: a scratch copy "
              "of the workspace, nothing real changes, no trace is kept.")
@json_option
@click.option("--quiet", "-q", is_flag=True, help="Print only the final output.")
@click.pass_context
def run(ctx: click.Context, goal: str | None, goal_file: str | None, mode: str | None,
        simulate: bool, as_json: bool, quiet: bool) -> None:
    """Carry out GOAL (- reads it from stdin; --file from a file). Exit codes: 0 done, 1
    failed, 2 usage/config, 3 budget (balance or the run's cap), 4 policy (the run did
    nothing because its calls were refused), 130/143/129 stopped by
    Ctrl-C/SIGTERM/SIGHUP, 70 a bug in llmos.

    JSON: {run_id, goal, mode, success, cost_usd, input_tokens, output_tokens,
    duration_s, tool_calls, output, error, model_requests, trace_id, matched_trace,
    confidence, saved_usd, diverged, parent_run, refusals: [{tool, rule, reason}]}; on
    an error before the run, {error: {type, message, exit_code}}.
    """
    from llmos.errors import exit_code_for_run
    from llmos.runner import REFUSED, execute
    from llmos.watchdog import Interrupted, run_interruptible

    goal = read_goal(goal, goal_file)

    if simulate:
        if mode and mode.upper() != "SIMULATION":
            raise click.UsageError(f"--simulate runs in SIMULATION mode; drop --mode {mode}")
        mode = "SIMULATION"
    kernel = kernel_from(ctx)
    out = console(stderr=as_json) if not as_json else None  # --json prints no rich text
    progress = LiveProgress(out) if not (as_json or quiet) else RetryNotices()
    if kernel.interactive and not as_json:
        kernel.gateway.asker = _terminal_asker(out)
    runs = None

    async def go():
        nonlocal runs
        async with kernel:
            runs = kernel.bus.subscribe("run.*")
            return await execute(kernel, goal, mode=mode, progress=progress)

    try:
        result = run_interruptible(go())
    except Interrupted as stop:
        _report_interrupted(stop, runs, out, as_json)
        # Everything is settled and on disk; leave now rather than spend a second
        # tearing down the interpreter (the user asked to stop).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(stop.interruption.exit_code)
    if as_json:
        emit_json(result.as_dict())
    elif quiet:
        click.echo(result.output)
    else:
        if isinstance(progress, LiveProgress) and progress.in_text:
            out.print()
        status = ("done", "green") if result.success else ("failed", "red")
        out.print(styled(
            "\n", status, f" · {result.mode} · ${result.cost_usd:.4f} · "
            f"{result.input_tokens} in / {result.output_tokens} out tokens · "
            f"{result.tool_calls} tool calls · {result.duration_s:.1f} s · run {result.run_id}"
        ))
        for refusal in result.refusals:
            out.print(styled(("refused:", "red"), f" {refusal['tool']}: {refusal['reason']}"))
        if result.matched_trace:
            out.print(f"matched trace {result.matched_trace} · saved ${result.saved_usd:.4f}"
                      + (" · replay diverged" if result.diverged else ""))
        if result.error:
            out.print(styled(("error:", "red"), " "), end="")
            out.print(result.error, markup=False)
    code = exit_code_for_run(result.success, result.error)
    if not result.success and (result.error or "").startswith(REFUSED):
        code = 4
    if code:
        ctx.exit(code)


def _report_interrupted(stop, runs, out, as_json: bool) -> None:
    """What a stopped run cost and where its record is (JSON with --json)."""
    events = []
    while runs is not None and not runs.queue.empty():
        events.append(runs.queue.get_nowait())
    started = next((e.data for e in events if e.topic == "run.started"), {})
    ended = next((e.data for e in events if e.topic == "run.interrupted"), {})
    reason = stop.interruption.reason
    report = {"run_id": started.get("run_id"), "goal": started.get("goal"),
              "mode": started.get("mode"), "success": False, "status": "interrupted",
              "cost_usd": round(ended.get("cost_usd", 0.0), 6), "error": reason}
    if as_json:
        emit_json(report)
        return
    out.print()
    out.print(styled((reason, "yellow"), f" · ${report['cost_usd']:.4f}"
                     + (f" · run {report['run_id']} recorded as interrupted"
                        if report["run_id"] else "")))
