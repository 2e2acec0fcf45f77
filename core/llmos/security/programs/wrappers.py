"""Wrappers run another command; they are judged at least as strictly as what they wrap.

The wrapped command is dug out and analyzed; when a wrapper's options are not fully
understood, every plausible suffix of its arguments is analyzed and the worst kept.
"""

from __future__ import annotations

from llmos.security import shellrules as R
from llmos.security.programs.common import Handler, approve, run_inner, suffixes
from llmos.security.shellargs import Context, FlagSpec, Invocation, parse_flags, spec
from llmos.security.shellwords import Word


def _wrapper(flags: FlagSpec, skip: int = 0, *, no_command: str = "") -> Handler:
    def handler(ctx: Context, inv: Invocation) -> None:
        ctx.add(R.WRAPPER.verdict(f"{inv.name} runs another command"))
        parsed = parse_flags(flags, inv.args)
        for flag, value in parsed.flags:
            role = flags.value_roles.get(flag)
            if role is not None and value is not None:
                ctx.check_path(value, role)
        inner = parsed.operands[skip:]
        if parsed.unknown or parsed.dynamic_options:
            suffixes(ctx, inv.args, inv)
        if not inner and no_command:
            ctx.add(R.WRAPPER.verdict(f"{inv.name} {no_command}"))
        run_inner(ctx, inv, inner)
        suffixes(ctx, inner[1:], inv)
    return handler


def _fallback_wrapper(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.WRAPPER.verdict(f"{inv.name} runs another command"))
    suffixes(ctx, inv.args, inv)


def _command(ctx: Context, inv: Invocation) -> None:
    parsed = parse_flags(spec("pvV", posix=True), inv.args)
    if parsed.has("-v", "-V") and not parsed.unknown:
        approve(ctx, inv, "command -v only looks a name up")
        return
    ctx.add(R.WRAPPER.verdict("command runs another command, bypassing functions"))
    run_inner(ctx, inv, parsed.operands)
    suffixes(ctx, inv.args, inv)


def _xargs(ctx: Context, inv: Invocation) -> None:
    flags = spec("0rtpxo", "dEeIiLlnPsa",
                 "null no-run-if-empty verbose interactive exit open-tty show-limits help "
                 "version", "delimiter eof max-lines max-args max-procs max-chars arg-file "
                 "process-slot-var", "replace", roles={"-a": "read", "--arg-file": "read"},
                 posix=True)
    parsed = parse_flags(flags, inv.args)
    ctx.add(R.WRAPPER.verdict("xargs runs a command with arguments read from its input"))
    for flag, value in parsed.flags:
        if flag in ("-a", "--arg-file") and value is not None:
            ctx.check_path(value, "read")
    if parsed.unknown or parsed.dynamic_options:
        suffixes(ctx, inv.args, inv)
    replace = [v.text for v in parsed.values("-I", "--replace") if v.text] or (
        ["{}"] if parsed.has("-i", "--replace") else [])
    inner = list(parsed.operands) or [Word.literal("echo")]
    if replace:
        inner = [Word.unknown(w.raw) if w.text is None or any(r in w.text for r in replace)
                 else w for w in inner]
    else:
        inner.append(Word.unknown("<arguments from xargs input>"))
    run_inner(ctx, Invocation(name="xargs", args=[], stdin="inherit", stage=0,
                              programs=inv.programs), inner)
    suffixes(ctx, inner[1:], inv)


def _watch(ctx: Context, inv: Invocation) -> None:
    flags = spec("bcdeghptxr", "ns", "beep color no-color differences errexit chgexit "
                 "no-title precise exec no-rerun", "interval equexit", posix=True)
    parsed = parse_flags(flags, inv.args)
    ctx.add(R.NESTED_SHELL.verdict("watch runs its arguments through sh -c repeatedly"))
    texts = [w.text for w in parsed.operands]
    if any(t is None for t in texts):
        ctx.add(R.FOREIGN_SHELL.verdict("watch command comes from an expansion"))
        return
    if parsed.has("-x", "--exec"):
        run_inner(ctx, inv, parsed.operands)
    else:
        ctx.analyze_source(" ".join(t for t in texts if t is not None), label="watch")


def _string_runner(option: str, skip: int = 0) -> Handler:
    """flock FILE -c STRING, script -c STRING: run a string through a shell."""
    def handler(ctx: Context, inv: Invocation) -> None:
        ctx.add(R.WRAPPER.verdict(f"{inv.name} runs another command"))
        for index, word in enumerate(inv.args):
            if word.text in (option, "--command") and index + 1 < len(inv.args):
                text = inv.args[index + 1].text
                if text is None:
                    ctx.add(R.FOREIGN_SHELL.verdict(f"{inv.name} {option} string comes from an "
                                                    "expansion"))
                else:
                    ctx.add(R.NESTED_SHELL.verdict(f"{inv.name} {option} runs a shell string"))
                    ctx.analyze_source(text, label=f"{inv.name} {option}")
        suffixes(ctx, inv.args[skip:], inv)
    return handler


PRIVILEGED = frozenset({"sudo", "su", "doas", "pkexec", "runuser", "chroot", "nsenter",
                        "unshare", "setpriv", "capsh", "sg", "newgrp", "systemd-run",
                        "machinectl", "lxc-attach", "firejail", "bwrap"})


def _privilege(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.PRIVILEGE.verdict(f"{inv.name} changes privileges or the root directory"))
    for index, word in enumerate(inv.args):
        if word.text in ("-c", "--command") and inv.name in ("su", "runuser") and index + 1 < len(
                inv.args):
            inner = inv.args[index + 1]
            if inner.text is not None:
                ctx.analyze_source(inner.text, label=f"{inv.name} -c")
    suffixes(ctx, inv.args, inv)


HANDLERS: dict[str, Handler] = {
    **{name: _privilege for name in PRIVILEGED},
    "command": _command,
    "xargs": _xargs,
    "watch": _watch,
    "timeout": _wrapper(spec("v", "sk", "preserve-status foreground verbose",
                             "signal kill-after", posix=True), skip=1),
    "nice": _wrapper(spec("", "n", "", "adjustment", numeric=True, posix=True),
                     no_command="prints the niceness"),
    "nohup": _wrapper(spec(posix=True)),
    "stdbuf": _wrapper(spec("", "ioe", "", "input output error", posix=True)),
    "time": _wrapper(spec("pvaq", "of", "portability verbose append quiet", "output format",
                          roles={"-o": "write", "--output": "write"}, posix=True)),
    "exec": _wrapper(spec("cl", "a", posix=True), no_command="changes the shell's descriptors"),
    "ionice": _wrapper(spec("t", "cnp", posix=True)),
    "setsid": _wrapper(spec("cfw", "", "ctty fork wait", posix=True)),
    "busybox": _wrapper(spec(posix=True)),
    "builtin": _wrapper(spec(posix=True)),
    "coproc": _wrapper(spec(posix=True)),
    "unbuffer": _wrapper(spec("p", posix=True)),
    "flock": _string_runner("-c"),
    "script": _string_runner("-c"),
    "parallel": _fallback_wrapper,
    "taskset": _fallback_wrapper,
    "chrt": _fallback_wrapper,
    "strace": _fallback_wrapper,
    "ltrace": _fallback_wrapper,
    "valgrind": _fallback_wrapper,
    "catchsegv": _fallback_wrapper,
    "proxychains": _fallback_wrapper,
    "proxychains4": _fallback_wrapper,
    "torsocks": _fallback_wrapper,
    "tsocks": _fallback_wrapper,
    "caffeinate": _fallback_wrapper,
    "perf": _fallback_wrapper,
    "faketime": _fallback_wrapper,
    "fakeroot": _fallback_wrapper,
    "nocache": _fallback_wrapper,
    "eatmydata": _fallback_wrapper,
    "dbus-launch": _fallback_wrapper,
    "xvfb-run": _fallback_wrapper,
}
