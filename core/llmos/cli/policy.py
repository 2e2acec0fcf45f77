"""``llmos policy``: ask the gate about a call, list its rules, read the audit log."""

from __future__ import annotations

import click

from llmos.cli._common import (
    console,
    emit_json,
    json_object,
    json_option,
    kernel_from,
    run,
    styled,
)


@click.group()
def policy() -> None:
    """The security policy every tool call passes."""


@policy.command("check")
@click.option("--tool", "tool", required=True, help="Tool name (Bash, Write, web_fetch, ...).")
@click.option("--input", "input_json", required=True, help="The tool's input as JSON.")
@click.option("--source", type=click.Choice(["model", "replay", "cli"]), default="model",
              show_default=True, help="Who makes the call (a model's Bash runs in Claude "
              "Code's sandbox, a replay's in llmos's).")
@click.option("--cwd", "shell_cwd", default=None, metavar="DIR",
              help="The shell's working directory, relative to the workspace (a Bash call "
              "after a 'cd'); relative paths in the command resolve from it.")
@json_option
@click.pass_context
def check(ctx: click.Context, tool: str, input_json: str, source: str, shell_cwd: str | None,
          as_json: bool) -> None:
    """The verdict on one call, without running it. Exit 0 on allow, 4 otherwise.

    JSON: {decision: allow|ask|deny, rule, reason}.
    """
    data = json_object(input_json)
    from llmos.calls import ToolCall
    from llmos.cortex.learner import claude_sandbox_available

    kernel = kernel_from(ctx)
    context = kernel.context()
    context.extra["claude_sandbox"] = claude_sandbox_available()
    if shell_cwd is not None:
        context.extra["shell_cwd"] = shell_cwd
    decision = run(kernel.gateway.decide(ToolCall(tool, data, source=source), context))
    if as_json:
        emit_json({"decision": decision.verdict, "rule": decision.rule,
                   "reason": decision.reason})
    else:
        color = {"allow": "green", "ask": "yellow", "deny": "red"}[decision.verdict]
        console().print(styled((decision.verdict, color),
                               f" ({decision.rule}) {decision.reason}"))
    if decision.verdict != "allow":
        ctx.exit(4)


@policy.command("rules")
@json_option
def rules(as_json: bool) -> None:
    """Every rule of the layered policy, with the examples checked when it loads.

    JSON: a list of {id, decision, description, match, not_match}.
    """
    from llmos.security.rules import rules as all_rules

    listed = [{"id": r.id, "decision": r.decision, "description": r.description,
               "match": list(r.match), "not_match": list(r.not_match)} for r in all_rules()]
    if as_json:
        emit_json(listed)
        return
    out = console()
    for rule in listed:
        out.print(styled((rule["id"], "bold"), f" ({rule['decision']}): {rule['description']}"))
        for example in rule["match"][:3]:
            out.print(f"    matches:     {example}", markup=False)
        for example in rule["not_match"][:2]:
            out.print(f"    not matches: {example}", markup=False)


@policy.command("audit")
@click.option("--run", "run_id", help="Only this run's decisions.")
@click.option("--limit", default=50, show_default=True)
@json_option
@click.pass_context
def audit(ctx: click.Context, run_id: str | None, limit: int, as_json: bool) -> None:
    """Recent policy decisions, newest first. JSON: a list of {id, ts, run_id, tool,
    source, input_digest, decision, rule, reason}."""
    entries = kernel_from(ctx).audit.entries(run_id=run_id, limit=limit)
    if as_json:
        emit_json(entries)
        return
    out = console()
    for e in entries:
        out.print(styled(f"{e['ts']} {e['decision']:<5} {e['tool']:<10} {e['rule']} ",
                         (e["run_id"] or "", "dim")))
