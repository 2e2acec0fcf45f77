"""sed, awk and jq: their scripts are inspected for commands that run programs or touch files."""

from __future__ import annotations

import re

from llmos.security import shellrules as R
from llmos.security.programs.common import Handler, approve, report_unknown
from llmos.security.shellargs import Context, Invocation, parse_flags, spec
from llmos.security.shellwords import Word

_SED_SIMPLE = set("pdDnNgGhHxlzF=")


def safe_sed_script(script: str) -> bool:
    """True when a sed script only edits text: no e/w/W/r/R commands or s///e|w flags."""
    pos = 0
    length = len(script)
    while pos < length:
        ch = script[pos]
        if ch in " \t\n;{}!":
            pos += 1
            continue
        if ch == "#":
            pos = _line_end(script, pos)
            continue
        pos = _sed_address(script, pos)
        if pos is None or pos >= length:
            return pos is not None
        while pos < length and script[pos] in " \t!":
            pos += 1
        if pos >= length:
            return True
        cmd = script[pos]
        pos += 1
        if cmd in _SED_SIMPLE or cmd in "{}":
            continue
        if cmd in "qQlL":
            while pos < length and script[pos].isdigit():
                pos += 1
            continue
        if cmd in "aic":
            pos = _line_end(script, pos)
            continue
        if cmd in ":btT":
            while pos < length and script[pos] not in ";\n":
                pos += 1
            continue
        if cmd in "sy":
            end = _sed_subst(script, pos, 2)
            if end is None:
                return False
            pos = end
            if cmd == "s":
                start = pos
                while pos < length and script[pos] in "gpiImM0123456789":
                    pos += 1
                if pos < length and script[pos] in "ewW":
                    return False
                if start == pos and pos < length and script[pos] not in " \t\n;}":
                    return False
            continue
        return False
    return True


def _line_end(script: str, pos: int) -> int:
    end = script.find("\n", pos)
    return len(script) if end < 0 else end + 1


def _sed_address(script: str, pos: int) -> int | None:
    for _ in range(2):
        match = re.match(r"\d+(~\d+)?|\$|\+\d+|~\d+", script[pos:])
        if match:
            pos += match.end()
        elif pos < len(script) and script[pos] == "/":
            end = _sed_delimited(script, pos + 1, "/")
            if end is None:
                return None
            pos = end
            while pos < len(script) and script[pos] in "IM":
                pos += 1
        elif pos < len(script) and script[pos] == "\\" and pos + 1 < len(script):
            end = _sed_delimited(script, pos + 2, script[pos + 1])
            if end is None:
                return None
            pos = end
        if pos < len(script) and script[pos] == ",":
            pos += 1
            continue
        break
    return pos


def _sed_delimited(script: str, pos: int, delim: str) -> int | None:
    while pos < len(script):
        if script[pos] == "\\":
            pos += 2
            continue
        if script[pos] == delim:
            return pos + 1
        if script[pos] == "\n":
            return None
        pos += 1
    return None


def _sed_subst(script: str, pos: int, parts: int) -> int | None:
    if pos >= len(script) or script[pos] in "\n\\":
        return None
    delim = script[pos]
    pos += 1
    for _ in range(parts):
        end = _sed_delimited(script, pos, delim)
        if end is None:
            return None
        pos = end
    return pos


SED = spec("nErsuzbi", "efl",
           "quiet silent regexp-extended separate unbuffered null-data posix debug sandbox "
           "binary help version", "expression file line-length", "in-place")


def _sed(ctx: Context, inv: Invocation) -> None:
    parsed = parse_flags(SED, [_sed_inplace(w) for w in inv.args])
    report_unknown(ctx, inv, parsed)
    for word in parsed.dynamic_options:
        ctx.add(R.DYNAMIC_VALUE.verdict(f"sed argument {word.raw} could be a script with e/w"))
    scripts = parsed.values("-e", "--expression")
    operands = list(parsed.operands)
    if parsed.values("-f", "--file"):
        ctx.add(R.INTERPRETER_INLINE.verdict("sed -f runs a script file the policy cannot see"))
    elif not scripts and operands:
        scripts = [operands.pop(0)]
    for script in scripts:
        if script.text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict("sed script comes from an expansion"))
        elif not safe_sed_script(script.text):
            ctx.add(R.INTERPRETER_INLINE.verdict(
                f"sed script {script.text[:40]!r} uses commands that run programs, read or write "
                "files (e, w, W, r, R, s///e, s///w) or that the policy does not know"))
    in_place = parsed.has("-i", "--in-place")
    for word in operands:
        ctx.check_path(word, "write" if in_place else "read")
    approve(ctx, inv)


def _sed_inplace(word: Word) -> Word:
    """GNU sed's -i takes an optional *attached* suffix (-i.bak, -Ei.orig): drop it.

    Everything after the ``i`` of a short cluster is the suffix, unless a letter
    that takes a value (-e, -f, -l) comes first and swallows the rest.
    """
    text = word.text
    if text is None or not text.startswith("-") or text.startswith("--") or len(text) < 3:
        return word
    for pos, letter in enumerate(text[1:], start=1):
        if letter in "efl":
            return word
        if letter == "i":
            return Word.literal(text[: pos + 1])
    return word


_AWK_UNSAFE = re.compile(r"system|getline|close|fflush|ENVIRON|PROCINFO|@load|@include|\||"
                         r"\bprintf?\b[^;{}]*>")


AWK = spec("bcCdDhMNOPrSstVgl", "Fvfeil", "posix traditional lint sandbox re-interval "
           "characters-as-bytes", "field-separator assign file source include load exec",
           "dump-variables profile pretty-print debug")


def safe_awk_program(program: str) -> bool:
    """True when an awk program cannot run commands, read other files or write files."""
    return not _AWK_UNSAFE.search(program)


def _awk(ctx: Context, inv: Invocation) -> None:
    parsed = parse_flags(AWK, inv.args)
    report_unknown(ctx, inv, parsed)
    for word in parsed.dynamic_options:
        ctx.add(R.DYNAMIC_VALUE.verdict(f"awk argument {word.raw} could be a program"))
    operands = list(parsed.operands)
    if parsed.values("-f", "--file", "-i", "--include", "-l", "--load", "-E", "--exec"):
        ctx.add(R.INTERPRETER_INLINE.verdict("awk -f/-i/-l/-E loads program text from files"))
        programs = parsed.values("-e", "--source")
    else:
        programs = parsed.values("-e", "--source") or ([operands.pop(0)] if operands else [])
    for program in programs:
        if program.text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict("awk program comes from an expansion"))
        elif not safe_awk_program(program.text):
            ctx.add(R.INTERPRETER_INLINE.verdict(
                "awk program uses system(), getline, pipes, output redirection or ENVIRON"))
    for word in operands:
        if word.text is not None and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word.text):
            continue
        ctx.check_path(word, "read")
    approve(ctx, inv)


JQ = spec("rjacsnSeCMRh", "", "raw-output join-output ascii-output compact-output slurp "
          "null-input sort-keys exit-status tab color-output monochrome-output raw-input "
          "seq stream help version", "indent")


def _jq(ctx: Context, inv: Invocation) -> None:
    parsed = parse_flags(JQ, inv.args)
    report_unknown(ctx, inv, parsed)
    operands = list(parsed.operands)
    if operands:
        program = operands.pop(0)
        if program.text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict("jq filter comes from an expansion"))
        elif re.search(r"\benv\b|\$ENV|\$__prog_args|input_filename", program.text):
            ctx.add(R.ENV_DUMP.verdict("jq filter reads the environment"))
    for word in operands:
        ctx.check_path(word, "read")
    approve(ctx, inv)


HANDLERS: dict[str, Handler] = {
    "sed": _sed,
    "awk": _awk,
    "gawk": _awk,
    "mawk": _awk,
    "nawk": _awk,
    "jq": _jq,
}
