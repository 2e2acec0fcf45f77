"""Helpers every program handler uses: approving, flag checks, wrapped commands, workspace code."""

from __future__ import annotations

import re
from collections.abc import Callable

from llmos.security import shellrules as R
from llmos.security.shellargs import Context, FlagSpec, Invocation, ParsedArgs, Role, parse_flags
from llmos.security.shellwords import Word

Handler = Callable[[Context, Invocation], None]
RoleMap = Role | Callable[[ParsedArgs], list[tuple[Word, Role]]]


def approve(ctx: Context, inv: Invocation, what: str = "") -> None:
    """Record that ``inv`` is an allowlisted command."""
    ctx.add(R.ALLOWLISTED.verdict(what or f"{inv.name} with allowlisted flags and workspace paths"))


def report_unknown(ctx: Context, inv: Invocation, parsed: ParsedArgs) -> None:
    """Ask about every flag of ``inv`` that is not on its allowlist."""
    for flag in parsed.unknown:
        ctx.add(R.UNKNOWN_FLAG.verdict(f"{inv.name} {flag} is not on the allowlist"))


def run_spec(ctx: Context, inv: Invocation, flags: FlagSpec, roles: RoleMap, *,
             glob_ok: bool = False, exec_capable: bool = False) -> ParsedArgs:
    """Parse ``inv`` with ``flags``, check flag values and operands, approve."""
    parsed = parse_flags(flags, inv.args)
    report_unknown(ctx, inv, parsed)
    if exec_capable:
        for word in parsed.dynamic_options:
            ctx.add(R.DYNAMIC_VALUE.verdict(
                f"{inv.name} has flags that run programs and {word.raw} could be one of them"))
    for flag, value in parsed.flags:
        role = flags.value_roles.get(flag)
        if role is not None and value is not None:
            ctx.check_path(value, role)
    assigned = roles(parsed) if callable(roles) else [(w, roles) for w in parsed.operands]
    for word, role in assigned:
        ctx.check_path(word, role, glob_ok=glob_ok)
    approve(ctx, inv)
    return parsed


def simple(flags: FlagSpec, roles: RoleMap, *, glob_ok: bool = False,
           exec_capable: bool = False) -> Handler:
    """A handler that only runs ``run_spec`` with these flags and operand roles."""

    def handler(ctx: Context, inv: Invocation) -> None:
        run_spec(ctx, inv, flags, roles, glob_ok=glob_ok, exec_capable=exec_capable)
    return handler


def pattern_then(role: Role, pattern_flags: tuple[str, ...]
                 ) -> Callable[[ParsedArgs], list[tuple[Word, Role]]]:
    """First operand is a pattern unless one of ``pattern_flags`` supplied it."""
    def roles(parsed: ParsedArgs) -> list[tuple[Word, Role]]:
        operands = list(parsed.operands)
        out: list[tuple[Word, Role]] = []
        if operands and not parsed.has(*pattern_flags) and "--files" not in (
                name for name, _ in parsed.flags):
            out.append((operands.pop(0), "text"))
        out.extend((w, role) for w in operands)
        return out
    return roles


MAX_SUFFIXES = 16


_NAME_LIKE = re.compile(r"^[A-Za-z0-9_./+:\[-][A-Za-z0-9_./+:@,\[\]-]*$")


def suffixes(ctx: Context, args: list[Word], inv: Invocation) -> None:
    """Analyze every plausible command suffix of ``args`` (escalation only: denies count)."""
    starts = [i for i, w in enumerate(args)
              if w.text is not None and _NAME_LIKE.match(w.text) and not w.text.startswith("-")]
    if len(starts) > MAX_SUFFIXES:
        ctx.add(R.TOO_COMPLEX.verdict(f"{inv.name} has too many arguments to analyze safely"))
        return
    for start in starts:
        sub = Invocation(name=args[start].text or "?", args=args[start + 1:], stdin=inv.stdin,
                         stage=inv.stage)
        ctx.analyze_argv(args[start:], sub, escalate_only=True)
        inv.programs |= sub.programs


def run_inner(ctx: Context, inv: Invocation, inner: list[Word]) -> None:
    """Analyze the wrapped command ``inner`` fully, plus every suffix for escalation."""
    if not inner:
        return
    if inner[0].text is None:
        ctx.add(R.DYNAMIC_VERB.verdict(f"{inv.name} runs a command named by an expansion"))
        return
    sub = Invocation(name=inner[0].text, args=inner[1:], stdin=inv.stdin, stage=inv.stage)
    ctx.analyze_argv(inner, sub)
    inv.programs |= sub.programs


def reads_program_from_stdin(ctx: Context, inv: Invocation) -> None:
    """A shell or interpreter without a program: deny if stdin is fed by this command line."""
    if inv.stdin in ("pipe", "heredoc", "herestring", "file"):
        ctx.add(R.PIPE_TO_SHELL.verdict(f"{inv.name} reads the program it runs from its "
                                        f"{inv.stdin}"))
    else:
        ctx.add(R.INTERACTIVE.verdict(f"{inv.name} without a program starts an interactive "
                                      "session"))


def workspace_code(ctx: Context, inv: Invocation, what: str) -> None:
    """Running workspace code: allowed in the sandbox, ask outside it."""
    inv.programs.add("workspace-code")
    if ctx.sandboxed:
        ctx.add(R.WORKSPACE_CODE_SANDBOXED.verdict(f"{what} runs inside the OS sandbox"))
    else:
        ctx.add(R.WORKSPACE_CODE.verdict(f"{what} runs workspace code outside the OS sandbox"))


def run_script(ctx: Context, inv: Invocation, script: Word) -> None:
    """An interpreter running ``script``: a workspace file is workspace code."""
    if script.text is None:
        ctx.add(R.DYNAMIC_VALUE.verdict(f"{inv.name} runs a program file computed at run time "
                                        f"({script.raw})"))
        return
    if script.text in ("/dev/stdin", "/proc/self/fd/0", "/dev/fd/0"):
        reads_program_from_stdin(ctx, Invocation(inv.name, inv.args, stdin="pipe"))
        return
    ctx.check_path(script, "read")
    workspace_code(ctx, inv, f"{inv.name} {script.raw}")


def unknown(ctx: Context, inv: Invocation) -> None:
    """Default: not on the allowlist; dig for wrapped dangerous commands anyway."""
    ctx.add(R.UNKNOWN_PROGRAM.verdict(f"{inv.name} is not on the allowlist"))
    suffixes(ctx, inv.args, inv)
