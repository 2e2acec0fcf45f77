"""Tools that create, copy, move, link, delete or re-mode files, and archivers."""

from __future__ import annotations

from llmos.security import shellrules as R
from llmos.security.programs.common import Handler, report_unknown, simple
from llmos.security.shellargs import (
    Context,
    FlagSpec,
    Invocation,
    ParsedArgs,
    Role,
    long_prefix_of,
    parse_flags,
    spec,
)
from llmos.security.shellwords import Word

MKDIR = spec("pv", "m", "parents verbose help version", "mode")


TOUCH = spec("acfhm", "dtr", "no-create no-dereference help version", "date reference time",
             roles={"-r": "read", "--reference": "read"})


TEE = spec("aip", "", "append ignore-interrupts help version", "", "output-error")


CP = spec("afinpPrRTuvxHd", "tS",
          "archive force interactive no-clobber recursive parents no-target-directory "
          "one-file-system no-dereference strip-trailing-slashes attributes-only debug "
          "remove-destination verbose help version",
          "target-directory suffix no-preserve sparse", "preserve backup reflink update",
          roles={"-t": "write", "--target-directory": "write"})


MV = spec("finuvTb", "tS", "force interactive no-clobber no-target-directory "
          "strip-trailing-slashes no-copy verbose help version", "target-directory suffix",
          "backup update", roles={"-t": "write", "--target-directory": "write"})


def _copy_roles(parsed: ParsedArgs) -> list[tuple[Word, Role]]:
    operands = parsed.operands
    if parsed.values("-t", "--target-directory") or len(operands) < 2:
        return [(w, "read") for w in operands]
    return [*((w, "read") for w in operands[:-1]), (operands[-1], "write")]


def _destroy(flags: FlagSpec | None, first_is_mode: bool = False) -> Handler:
    """rm, rmdir, shred, unlink, truncate, chmod, chown, chgrp: modify or delete paths."""
    def handler(ctx: Context, inv: Invocation) -> None:
        for word in inv.args:
            if word.text is not None and long_prefix_of(word.text, ("--no-preserve-root",)):
                ctx.add(R.DESTROY_OUTSIDE.verdict(f"{inv.name} --no-preserve-root"))
        if flags is None:
            operands = [w for w in inv.args if w.text is None or not w.text.startswith("-")
                        or w.text == "-"]
            dashdash = [i for i, w in enumerate(inv.args) if w.text == "--"]
            if dashdash:
                operands = [w for w in inv.args[: dashdash[0]]
                            if w.text is None or not w.text.startswith("-")]
                operands += inv.args[dashdash[0] + 1:]
        else:
            parsed = parse_flags(flags, inv.args)
            operands = parsed.operands
            for flag, value in parsed.flags:
                role = flags.value_roles.get(flag)
                if role is not None and value is not None:
                    ctx.check_path(value, role)
        if first_is_mode and operands and not any(
                w.text is not None and w.text.startswith("--reference") for w in inv.args):
            mode = operands.pop(0)
            if mode.text is None:
                ctx.add(R.DYNAMIC_VALUE.verdict(f"{inv.name} mode comes from an expansion"))
        if not operands:
            ctx.add(R.DESTRUCTIVE.verdict(f"{inv.name} deletes or modifies files"))
        for word in operands:
            ctx.check_path(word, "destroy")
    return handler


TRUNCATE = spec("co", "rs", "no-create io-blocks help version", "reference size",
                roles={"-r": "read", "--reference": "read"})


def _ln(ctx: Context, inv: Invocation) -> None:
    flags = spec("bdfFinPLrsTv", "St", "backup directory force interactive logical no-dereference "
                 "no-target-directory physical relative symbolic verbose help version",
                 "suffix target-directory", roles={"-t": "write", "--target-directory": "write"})
    parsed = parse_flags(flags, inv.args)
    report_unknown(ctx, inv, parsed)
    operands = list(parsed.operands)
    has_target_dir = bool(parsed.values("-t", "--target-directory"))
    for flag, value in parsed.flags:
        if flags.value_roles.get(flag) and value is not None:
            ctx.check_path(value, "write")
    if len(operands) >= 2 and not has_target_dir:
        ctx.check_path(operands.pop(), "write")
    for target in operands:
        if target.text is None or target.text.startswith(("/", "~")) or ".." in target.text.split(
                "/"):
            ctx.add(R.WRITE_OUTSIDE.verdict(f"ln to {target.raw} would make a path in the "
                                            "workspace lead outside it"))
        else:
            ctx.check_path(target, "read")
    ctx.add(R.UNKNOWN_PROGRAM.verdict("ln creates links; a human should confirm"))


def _dd(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.UNKNOWN_PROGRAM.verdict("dd is not on the allowlist"))
    for word in inv.args:
        if word.text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict("dd operand comes from an expansion"))
            continue
        key, _, value = word.text.partition("=")
        if key == "of":
            ctx.check_path(Word(text=value, raw=word.raw), "write")
        elif key == "if":
            ctx.check_path(Word(text=value, raw=word.raw), "read")


def _tar(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.UNKNOWN_PROGRAM.verdict("tar is not on the allowlist"))
    dangerous = ("--checkpoint-action", "--to-command", "--use-compress-program",
                 "--info-script", "--new-volume-script", "--rsh-command", "--rmt-command",
                 "--index-file")
    for index, word in enumerate(inv.args):
        text = word.text
        if text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict("tar argument comes from an expansion and could be "
                                            "--checkpoint-action"))
            continue
        option = long_prefix_of(text, dangerous)
        if option is not None and option != "--index-file":
            ctx.add(R.EXEC_FLAG.verdict(f"tar {option} runs a program"))
        short = text[1:] if text.startswith("-") and not text.startswith("--") else (
            text if index == 0 and not text.startswith("-") else "")
        if any(letter in short for letter in "IF"):
            ctx.add(R.EXEC_FLAG.verdict("tar -I/-F runs a program"))
        if text.startswith("--directory=") or text == "-C" or (
                text.startswith("-") and not text.startswith("--") and text.endswith("C")):
            target = Word.literal(text.partition("=")[2]) if "=" in text else (
                inv.args[index + 1] if index + 1 < len(inv.args) else None)
            if target is not None:
                ctx.check_path(target, "write")


def _zip(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.UNKNOWN_PROGRAM.verdict(f"{inv.name} is not on the allowlist"))
    for word in inv.args:
        if word.text is not None and (word.text in ("-TT", "--unzip-command") or
                                      word.text.startswith("--unzip-command")):
            ctx.add(R.EXEC_FLAG.verdict("zip -TT/--unzip-command runs a program"))


HANDLERS: dict[str, Handler] = {
    "mkdir": simple(MKDIR, "write"),
    "touch": simple(TOUCH, "write"),
    "tee": simple(TEE, "write"),
    "cp": simple(CP, _copy_roles),
    "mv": simple(MV, "write"),
    "rm": _destroy(None),
    "rmdir": _destroy(None),
    "unlink": _destroy(None),
    "shred": _destroy(None),
    "truncate": _destroy(TRUNCATE),
    "chmod": _destroy(None, first_is_mode=True),
    "chown": _destroy(None, first_is_mode=True),
    "chgrp": _destroy(None, first_is_mode=True),
    "ln": _ln,
    "dd": _dd,
    "tar": _tar,
    "bsdtar": _tar,
    "gtar": _tar,
    "zip": _zip,
}
