"""find: its expression is parsed; -exec commands are analyzed with {} standing for the roots."""

from __future__ import annotations

from llmos.security import shellrules as R
from llmos.security.programs.common import Handler, approve
from llmos.security.shellargs import Context, Invocation
from llmos.security.shellwords import Word

_FIND_VALUE = frozenset(
    ["-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex", "-iregex",
     "-lname", "-ilname", "-type", "-xtype", "-maxdepth", "-mindepth", "-size", "-mtime", "-mmin",
     "-atime", "-amin", "-ctime", "-cmin", "-user", "-group", "-uid", "-gid", "-perm", "-links",
     "-inum", "-regextype", "-printf", "-fstype", "-used", "-context", "-newermt", "-newerct",
     "-newerat"])


_FIND_READ_VALUE = frozenset(["-newer", "-anewer", "-cnewer", "-samefile"])


_FIND_BOOL = frozenset(
    ["-print", "-print0", "-prune", "-quit", "-empty", "-true", "-false", "-readable", "-writable",
     "-executable", "-nouser", "-nogroup", "-depth", "-xdev", "-mount", "-ls", "-o", "-or", "-a",
     "-and", "-not", "!", "(", ")", ",", "-daystart", "-noleaf", "-ignore_readdir_race",
     "-noignore_readdir_race", "-nowarn", "-warn"])


_FIND_WRITE_VALUE = frozenset(["-fprint", "-fprint0", "-fls"])


_FIND_EXEC = frozenset(["-exec", "-execdir", "-ok", "-okdir"])


def _find(ctx: Context, inv: Invocation) -> None:
    args = list(inv.args)
    index = 0
    while index < len(args) and args[index].text in ("-H", "-P", "-D", "-O0", "-O1", "-O2",
                                                     "-O3"):
        if args[index].text == "-D" and index + 1 < len(args):
            index += 1
        index += 1
    roots: list[Word] = []
    while index < len(args):
        text = args[index].text
        if text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict(f"find argument {args[index].raw} could be an "
                                            "expression such as -delete or -exec"))
            index += 1
            continue
        if text.startswith("-") or text in ("(", "!", ")", ","):
            break
        roots.append(args[index])
        index += 1
    deleting = any(w.text == "-delete" for w in args[index:])
    for root in roots or [Word.literal(".")]:
        ctx.check_path(root, "destroy" if deleting else "read")
    ok = _find_expression(ctx, inv, args[index:], roots or [Word.literal(".")])
    if deleting:
        ctx.add(R.DESTRUCTIVE.verdict("find -delete removes files"))
    if ok:
        approve(ctx, inv)


def _find_expression(ctx: Context, inv: Invocation, expr: list[Word], roots: list[Word]) -> bool:
    index = 0
    while index < len(expr):
        word = expr[index]
        index += 1
        text = word.text
        if text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict(f"find expression word {word.raw} could be -exec or "
                                            "-delete"))
            continue
        if text in _FIND_BOOL or text == "-delete":
            continue
        if text in _FIND_VALUE or (text.startswith("-newer") and text not in _FIND_READ_VALUE):
            index += 1
        elif text in _FIND_READ_VALUE:
            if index < len(expr):
                ctx.check_path(expr[index], "read")
            index += 1
        elif text in _FIND_WRITE_VALUE or text == "-fprintf":
            if index < len(expr):
                ctx.check_path(expr[index], "write")
            index += 2 if text == "-fprintf" else 1
        elif text in _FIND_EXEC:
            end = next((i for i in range(index, len(expr)) if expr[i].text in (";", "+")), None)
            if end is None:
                ctx.add(R.PARSE_ERROR.verdict(f"find {text} without a terminating ';' or '+'"))
                return False
            inner = expr[index:end]
            index = end + 1
            ctx.add(R.FIND_EXEC.verdict(f"find {text} runs a command for every match"))
            if not inner:
                continue
            for root in roots:
                argv = [_substitute(w, root) for w in inner]
                ctx.analyze_argv(argv, Invocation(name=argv[0].text or "?", args=argv[1:]))
        else:
            ctx.add(R.UNKNOWN_FLAG.verdict(f"find {text} is not on the allowlist"))
    return True


def _substitute(word: Word, root: Word) -> Word:
    if word.text is None or "{}" not in word.text:
        return word
    if root.text is None:
        return Word.unknown(word.raw)
    return Word(text=word.text.replace("{}", root.text), raw=word.raw, quoted=word.quoted)


HANDLERS: dict[str, Handler] = {
    "find": _find,
}
