"""Shells and the builtins that run text as code: bash -c is re-parsed one level deeper."""

from __future__ import annotations

from llmos.security import shellrules as R
from llmos.security.programs.common import Handler, reads_program_from_stdin, run_script
from llmos.security.shellargs import Context, Invocation

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "rbash",
                    "lksh", "oksh", "pdksh", "bosh"})


FOREIGN_SHELLS = frozenset({"fish", "csh", "tcsh", "pwsh", "powershell", "nu", "elvish", "xonsh",
                            "rc", "es", "cmd", "cmd.exe", "osh", "ion", "murex"})


def _shell(ctx: Context, inv: Invocation) -> None:
    inv.programs.add("shell")
    command_mode = False
    stdin_mode = False
    index = 0
    args = inv.args
    while index < len(args):
        text = args[index].text
        if text is None:
            break
        if text == "--" or text == "-":
            index += 1
            break
        if not text.startswith(("-", "+")) or len(text) == 1:
            break
        index += 1
        if text.startswith("--"):
            if text in ("--rcfile", "--init-file"):
                ctx.add(R.EVAL.verdict(f"{inv.name} {text} runs a startup file"))
                index += 1
            continue
        letters = text[1:]
        command_mode |= "c" in letters
        stdin_mode |= "s" in letters
        if "i" in letters:
            ctx.add(R.INTERACTIVE.verdict(f"{inv.name} -i starts an interactive shell"))
        if letters[-1:] in ("o", "O"):
            index += 1
    operands = args[index:]
    if inv.name in FOREIGN_SHELLS and command_mode:
        ctx.add(R.FOREIGN_SHELL.verdict(f"{inv.name} -c: the policy does not parse "
                                        f"{inv.name} syntax"))
        return
    if command_mode:
        if not operands or operands[0].text is None:
            ctx.add(R.FOREIGN_SHELL.verdict(f"{inv.name} -c with a command string that is not "
                                            "static text"))
            return
        ctx.add(R.NESTED_SHELL.verdict(f"{inv.name} -c runs a nested shell"))
        ctx.analyze_source(operands[0].text, label=f"{inv.name} -c", stdin=inv.stdin)
        return
    if stdin_mode or not operands:
        reads_program_from_stdin(ctx, inv)
        return
    if inv.name in FOREIGN_SHELLS:
        ctx.add(R.FOREIGN_SHELL.verdict(f"{inv.name} scripts are not analyzed"))
        return
    run_script(ctx, inv, operands[0])


def _eval(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.EVAL.verdict("eval runs text as shell code"))
    if any(w.text is None for w in inv.args):
        ctx.add(R.DYNAMIC_VALUE.verdict("eval of text built from expansions"))
        return
    ctx.analyze_source(" ".join(w.text or "" for w in inv.args), label="eval")


def _source(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.EVAL.verdict(f"{inv.name} runs a file in the current shell"))
    if not inv.args:
        return
    script = inv.args[0]
    if script.text is None:
        ctx.add(R.DYNAMIC_VALUE.verdict(f"{inv.name} of a file computed at run time"))
        return
    if script.text in ("/dev/stdin", "/proc/self/fd/0", "/dev/fd/0", "-"):
        ctx.add(R.PIPE_TO_SHELL.verdict(f"{inv.name} runs its standard input"))
        return
    ctx.check_path(script, "read")


def _trap(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.EVAL.verdict("trap runs its text as shell code on a signal"))
    if inv.args and inv.args[0].text not in (None, "-", "-l", "-p", "--"):
        ctx.analyze_source(inv.args[0].text or "", label="trap")
    elif inv.args and inv.args[0].text is None:
        ctx.add(R.DYNAMIC_VALUE.verdict("trap action comes from an expansion"))


def _alias(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.EVAL.verdict("alias defines command text"))
    for word in inv.args:
        if word.text is not None and "=" in word.text:
            ctx.analyze_source(word.text.partition("=")[2], label="alias")


HANDLERS: dict[str, Handler] = {
    **{name: _shell for name in SHELLS | FOREIGN_SHELLS},
    "eval": _eval, "source": _source, ".": _source, "trap": _trap, "alias": _alias,
}
