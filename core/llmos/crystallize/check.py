"""The AST allowlist a crystallized tool's source must pass before anything runs.

A crystal is one module: allowlisted imports, constants, helper functions and exactly one
``async def run(params, call)``. Everything it does to the world goes through ``call``
(a registered tool, through the kernel's gate); it may compute with what the tools return.
Refused, with the line of each problem: imports outside ``ALLOWED_IMPORTS``; classes,
``global``, ``while`` loops, ``with``, ``yield``, ``del``; the names ``exec``, ``eval``,
``compile``, ``open``, ``__import__``, ``getattr``... (``FORBIDDEN_NAMES``); any name or
attribute that starts with ``_``;
``str.format``/``format_map`` (their fields reach attributes); ``await`` on anything but
``call(...)``; a ``call`` whose tool is not a string literal among the trace's tools.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

# Not ``operator`` or ``string``: attrgetter and Formatter reach attributes named by a
# string built at run time, which no AST check can see.
ALLOWED_IMPORTS = frozenset({"json", "re", "math", "statistics", "textwrap", "itertools",
                             "collections", "functools", "datetime", "decimal", "fractions",
                             "csv", "shlex"})
FORBIDDEN_NAMES = frozenset({
    "exec", "eval", "compile", "open", "__import__", "getattr", "setattr", "delattr",
    "globals", "locals", "vars", "dir", "input", "breakpoint", "exit", "quit", "help",
    "memoryview", "type", "object", "super", "classmethod", "staticmethod", "property",
    "print", "id", "hash", "callable", "issubclass", "__builtins__", "__loader__",
    "__spec__", "bytearray", "aiter", "anext",
})
FORBIDDEN_ATTRIBUTES = frozenset({"format", "format_map", "gi_frame", "cr_frame", "ag_frame",
                                  "gi_code", "cr_code", "ag_code", "f_globals", "f_locals",
                                  "f_builtins", "f_code", "f_back", "tb_frame", "mro",
                                  "vformat", "get_field"})
_FORBIDDEN_NODES: dict[type[ast.AST], str] = {
    ast.ClassDef: "a class definition",
    ast.Global: "a global statement",
    ast.Nonlocal: "a nonlocal statement",
    ast.While: "a while loop (loop over data with for)",
    ast.With: "a with statement",
    ast.AsyncWith: "an async with statement",
    ast.AsyncFor: "an async for loop",
    ast.Yield: "yield",
    ast.YieldFrom: "yield from",
    ast.Delete: "del",
}
MAX_POWER = 64
MAX_SOURCE_CHARS = 40_000


class CrystalRejected(ValueError):
    """The generated source failed the allowlist; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("generated code rejected: " + "; ".join(problems))


@dataclass(frozen=True)
class Checked:
    """Source that passed: the tools it calls (literal names) in order of appearance."""

    source: str
    tools: tuple[str, ...]


def _where(node: ast.AST) -> str:
    return f"line {getattr(node, 'lineno', '?')}"


def check_source(source: str, allowed_tools: Iterable[str] | None = None) -> Checked:
    """Parse and check ``source``; raise CrystalRejected with every problem found.

    ``allowed_tools``: the tools the source traces used; a crystal may call no other."""
    if len(source) > MAX_SOURCE_CHARS:
        raise CrystalRejected([f"the source is longer than {MAX_SOURCE_CHARS} characters"])
    try:
        tree = ast.parse(source, filename="<crystal>")
    except SyntaxError as exc:
        raise CrystalRejected([f"syntax error at line {exc.lineno}: {exc.msg}"]) from None
    allowed = set(allowed_tools) if allowed_tools is not None else None
    problems: list[str] = []
    tools: list[str] = []
    runs = [n for n in tree.body if isinstance(n, ast.AsyncFunctionDef) and n.name == "run"]
    if len(runs) != 1:
        problems.append("the module must define exactly one `async def run(params, call)`")
    elif [a.arg for a in runs[0].args.args] != ["params", "call"]:
        problems.append("run must take exactly (params, call)")
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                             ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _is_constant(node.value):
            continue
        problems.append(f"{_where(node)}: only imports, constants and functions may stand at "
                        "the top level")
    awaited: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Await):
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and \
                    value.func.id == "call":
                awaited.add(id(value))
            else:
                problems.append(f"{_where(node)}: only `await call(...)` may be awaited")
    for node in ast.walk(tree):
        what = _FORBIDDEN_NODES.get(type(node))
        if what:
            problems.append(f"{_where(node)}: {what} is not allowed")
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in ALLOWED_IMPORTS or "." in alias.name:
                    problems.append(f"{_where(node)}: import of {alias.name!r} is not allowed "
                                    f"(allowed: {', '.join(sorted(ALLOWED_IMPORTS))})")
        elif isinstance(node, ast.ImportFrom):
            if node.level or (node.module or "") not in ALLOWED_IMPORTS:
                problems.append(f"{_where(node)}: import from {node.module!r} is not allowed")
            for alias in node.names:
                if alias.name.startswith("_") or alias.name == "*":
                    problems.append(f"{_where(node)}: importing {alias.name!r} is not allowed")
        elif isinstance(node, ast.Name):
            if node.id in FORBIDDEN_NAMES:
                problems.append(f"{_where(node)}: {node.id!r} is not allowed")
            elif node.id.startswith("_"):
                problems.append(f"{_where(node)}: the name {node.id!r} starts with '_'")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                problems.append(f"{_where(node)}: attribute {node.attr!r} starts with '_'")
            elif node.attr in FORBIDDEN_ATTRIBUTES:
                problems.append(f"{_where(node)}: .{node.attr} is not allowed (use f-strings)")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.startswith("_") or node.name in FORBIDDEN_NAMES:
                problems.append(f"{_where(node)}: the function name {node.name!r}")
            if node.decorator_list:
                problems.append(f"{_where(node)}: decorators are not allowed")
            for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                if arg.arg.startswith("_"):
                    problems.append(f"{_where(node)}: the argument {arg.arg!r}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            right = node.right
            if not (isinstance(right, ast.Constant) and isinstance(right.value, int)
                    and abs(right.value) <= MAX_POWER):
                problems.append(f"{_where(node)}: ** only with a small constant exponent")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == "call":
            if id(node) not in awaited:
                problems.append(f"{_where(node)}: call(...) must be awaited")
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                problems.append(f"{_where(node)}: the tool of call(...) must be a string "
                                "literal")
            else:
                tools.append(first.value)
                if allowed is not None and first.value not in allowed:
                    problems.append(f"{_where(node)}: call({first.value!r}): the source "
                                    f"traces used only {', '.join(sorted(allowed))}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value.startswith("__") and node.value.endswith("__"):
            problems.append(f"{_where(node)}: the string {node.value!r} names a dunder")
    if problems:
        raise CrystalRejected(list(dict.fromkeys(problems)))
    return Checked(source, tuple(dict.fromkeys(tools)))


def _is_constant(node: ast.AST | None) -> bool:
    if node is None:
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True
