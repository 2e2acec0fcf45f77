"""Running a crystal's checked source: restricted builtins, proxied modules, a line budget,
and one way to act on the world — ``call(tool, input)``, which goes to a *caller*: the
kernel's gateway for a real run, a cassette for a regression test or a shadow comparison.

The allowlist (llmos.crystallize.check) is the first wall; this module is the second:
the code sees only the builtins in ``SAFE_BUILTINS``, an import that hands out read-only
views of the allowlisted modules (no submodules, nothing that starts with '_', no
infinite iterators), a ``range`` of bounded length, and a tracer that stops it after
``MAX_LINES`` lines.
"""

from __future__ import annotations

import builtins
import importlib
import sys
import types
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmos.crystallize.check import ALLOWED_IMPORTS, Checked

MAX_LINES = 2_000_000
MAX_RANGE = 1_000_000
# infinite iterators; shlex's lexer class (its ``source`` directive opens files)
_HIDDEN = {"itertools": {"count", "cycle", "repeat"}, "shlex": {"shlex"}}


class CrystalFailed(BaseException):
    """A BaseException, so that the crystal's own ``except Exception`` cannot hide it.

    The crystal could not do its job here (a call failed or was refused, the code
    said so with ``fail``, or it ran out of budget); the goal falls back to the normal
    path."""


@dataclass(frozen=True)
class CallResult:
    """What ``await call(...)`` gives the crystal: ``text`` is what the model would have
    read (a file's text, a command's output), ``output`` the tool's structured output."""

    ok: bool
    text: str
    output: Any = None
    error: str = ""
    exit_code: int | None = None


Caller = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""Runs one tool call and returns an llmos ToolResult."""


class ModuleView:
    """A module's public, non-module attributes, read-only."""

    def __init__(self, module: types.ModuleType) -> None:
        public = getattr(module, "__all__", None) or [n for n in dir(module)
                                                      if not n.startswith("_")]
        hidden = _HIDDEN.get(module.__name__, set())
        self._names = {n: getattr(module, n) for n in public
                       if n not in hidden and hasattr(module, n)
                       and not isinstance(getattr(module, n), types.ModuleType)}
        self._module = module.__name__

    def __getattr__(self, name: str) -> Any:
        try:
            return self._names[name]
        except KeyError:
            raise AttributeError(f"{self._module}.{name} is not available to a crystal") from None


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
            level: int = 0) -> ModuleView:
    if level or name not in ALLOWED_IMPORTS:
        raise ImportError(f"a crystal may not import {name!r}")
    return ModuleView(importlib.import_module(name))


def _range(*args: int) -> range:
    span = range(*args)
    if len(span) > MAX_RANGE:
        raise CrystalFailed(f"range of {len(span)} items is over the limit of {MAX_RANGE}")
    return span


def fail(message: str) -> None:
    """For the crystal: give up, with a reason (the goal goes to the normal path)."""
    raise CrystalFailed(str(message))


SAFE_BUILTINS: dict[str, Any] = {
    name: getattr(builtins, name) for name in (
        "abs", "all", "any", "bool", "chr", "dict", "divmod", "enumerate", "filter", "float",
        "frozenset", "int", "isinstance", "len", "list", "map", "max", "min", "ord", "repr",
        "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "zip", "bytes",
        "Exception", "ValueError", "KeyError", "IndexError", "TypeError", "ZeroDivisionError",
        "ArithmeticError", "LookupError", "AttributeError", "True", "False", "None",
    ) if hasattr(builtins, name)
}
SAFE_BUILTINS.update({"range": _range, "fail": fail, "__import__": _import})


class _LineBudget:
    def __init__(self, filename: str, limit: int) -> None:
        self.filename = filename
        self.left = limit

    def __call__(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "call" and frame.f_code.co_filename == self.filename:
            return self.local
        return None

    def local(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            self.left -= 1
            if self.left < 0:
                raise CrystalFailed(f"the crystal ran more than {MAX_LINES} lines")
        return self.local


def result_view(tool: str, result: Any, text_of: Callable[[str, Any], str | None]
                ) -> CallResult:
    from llmos.memory.capture import exit_code

    if result.is_error:
        return CallResult(False, result.error, result.output, result.error, exit_code(result))
    shown = text_of(tool, result.output)
    return CallResult(True, result.text if shown is None else shown, result.output, "",
                      exit_code(result))


async def execute(checked: Checked, version: str, params: Mapping[str, Any], caller: Caller,
                  text_of: Callable[[str, Any], str | None], allowed_tools: set[str],
                  allowed_programs: set[str] | None = None) -> Any:
    """Run ``checked``'s ``run(params, call)``; what it returns is the run's answer.

    ``allowed_programs``: the programs the source traces' Bash calls ran; a command that
    runs another is refused before it reaches the gate. Raises CrystalFailed when the
    crystal cannot do the job here."""
    filename = f"<crystal {version}>"
    namespace: dict[str, Any] = {"__builtins__": dict(SAFE_BUILTINS), "__name__": "crystal"}
    exec(compile(checked.source, filename, "exec"), namespace)  # checked by the allowlist

    async def call(tool: str, input: dict[str, Any], may_fail: bool = False) -> CallResult:
        if tool not in allowed_tools:
            raise CrystalFailed(f"call({tool!r}): the source traces never used it")
        if not isinstance(input, dict):
            raise CrystalFailed(f"call({tool!r}): the input must be a dict")
        if tool == "Bash" and allowed_programs is not None:
            from llmos.crystallize.programs import widening

            why = widening(str(input.get("command", "")), allowed_programs)
            if why:
                raise CrystalFailed(f"Bash refused: {why}")
        result = await caller(tool, dict(input))
        if result.decision is not None and result.decision.verdict != "allow":
            raise CrystalFailed(f"{tool} was refused: {result.error}")
        view = result_view(tool, result, text_of)
        if not view.ok and not may_fail:
            raise CrystalFailed(f"{tool} failed: {view.error[:500]}")
        return view

    budget = _LineBudget(filename, MAX_LINES)
    previous = sys.gettrace()
    sys.settrace(budget)
    try:
        answer = await namespace["run"](types.SimpleNamespace(**params), call)
    except CrystalFailed:
        raise
    except Exception as exc:
        raise CrystalFailed(f"the crystal's code raised {type(exc).__name__}: {exc}") from None
    finally:
        sys.settrace(previous)
    return "" if answer is None else str(answer)
