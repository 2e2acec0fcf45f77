"""Third-party imports made cheap for every llmos process (installed by ``llmos``'s package
root, before anything imports them).

``sqlite_utils.db`` imports pandas and numpy when they are installed, only to map their
value types to columns (0.3-1 s of CPU per process, most of a replay's start-up). llmos
stores neither, so the module runs with both hidden, unless they are loaded already; they
import normally afterwards, and sqlite_utils computes exactly what it would for every
value llmos gives it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec, PathFinder
from typing import Any


def _hiding(*names: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def wrap(exec_module: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(module: Any) -> None:
            hidden = [n for n in names if n not in sys.modules]
            for n in hidden:
                sys.modules[n] = None  # type: ignore[assignment]  # "import n" fails
            try:
                exec_module(module)
            finally:
                for n in hidden:
                    if n in sys.modules and sys.modules[n] is None:
                        del sys.modules[n]
        return run
    return wrap


_RULES = {"sqlite_utils.db": _hiding("pandas", "numpy")}


class CheapImports:
    """A meta-path finder that wraps the loading of each module in ``_RULES`` (once)."""

    pending = set(_RULES)

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name not in cls.pending:
            return None
        cls.pending.discard(name)
        if not cls.pending:
            uninstall()
        spec = PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        loader.exec_module = _RULES[name](loader.exec_module)
        return spec


def install() -> None:
    """Put the finder first (once), for the modules not imported yet."""
    CheapImports.pending = {n for n in _RULES if n not in sys.modules}
    if CheapImports.pending and CheapImports not in sys.meta_path:
        sys.meta_path.insert(0, CheapImports)  # type: ignore[arg-type]


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if f is not CheapImports]
