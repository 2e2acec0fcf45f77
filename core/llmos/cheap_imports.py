"""Third-party imports made cheap for llmos's command line (installed by ``llmos.cli``
before anything imports them; a program embedding llmos opts in with ``install()``).

* ``sqlite_utils.db`` imports pandas and numpy when they are installed, only to map their
  value types to columns (0.3-1 s of CPU per process, most of a replay's start-up). llmos
  stores neither, so the module runs with both hidden, unless they are loaded already;
  they import normally afterwards, and sqlite_utils computes exactly what it would for
  every value llmos gives it.
* ``detect_secrets`` (the redaction's scanner) imports ``requests`` with urllib3 and
  charset_normalizer (~45 ms) only to verify found secrets online, which llmos never
  asks it to do. While one of its modules runs, ``requests`` is a placeholder that loads
  the real module the first time one of its attributes is used, except the return
  annotation ``-> requests.Response`` of two verification helpers, which becomes the
  forward reference ``'requests.Response'`` (what ``from __future__ import annotations``
  would make of it). Anyone else's ``import requests`` gets the real module.
* ``detect_secrets``' package ``__init__`` imports its whole scanning machinery
  (``SecretsCollection``: multiprocessing, pickle, every filter and its plugin loader),
  and ``detect_secrets.filters`` every filter; the redaction uses a few plugin classes and
  the heuristic filters only. Both packages' own code runs on first use of one of their
  own attributes (``detect_secrets.SecretsCollection``), not on the import of one of
  their submodules, which loads just that submodule (and what it imports).
* ``httpx`` (the LEARNER's metering proxy) imports its command-line tool, and with it
  pygments and ``rich.console`` (~25 ms), whenever they are installed; ``httpcore`` imports ``trio``
  (~40 ms) whenever it is installed, for requests made under trio. llmos runs neither
  the tool nor trio: while ``httpx`` (resp. a module of ``httpcore``) runs, pygments and
  rich (resp. ``trio``) cannot be imported unless loaded already, so ``httpx.main`` is its
  stub that says to install ``httpx[cli]`` and ``httpcore`` serves asyncio and the
  synchronous API only (under trio it says trio is not installed, unless trio was loaded
  first); both import normally afterwards, for anyone else.
* Entry points: pydantic looks for its plugins, sqlite-utils for its own and llmos for
  its packs, and each lookup reads the entry points of every installed distribution
  (~10 ms each). While installed, ``entry_points(group)`` below (which ``llmos.plugins``
  and pydantic's plugin loader use) reads them once per process, again only if a folder
  of ``sys.path`` changed (a distribution installed or removed since); sqlite-utils'
  pluggy scan is skipped when that scan holds no ``sqlite_utils`` plugin (it would
  register none), and runs as before when it does.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
import typing
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


class _Deferred(types.ModuleType):
    """Stands in for a module while another one is defined; ``annotations`` names the
    attributes only used in annotations there."""

    def __init__(self, name: str, annotations: frozenset[str]) -> None:
        super().__init__(name)
        self.__spec__ = ModuleSpec(name, None)  # read (not loaded) by the import statement
        self._annotations = annotations
        self._defining = True

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        if self._defining and attr in self._annotations:
            return typing.ForwardRef(f"{self.__name__}.{attr}")
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def _deferring(name: str, annotations: frozenset[str]
               ) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def wrap(exec_module: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(module: Any) -> None:
            stub = None
            if name not in sys.modules and PathFinder.find_spec(name) is not None:
                stub = sys.modules[name] = _Deferred(name, annotations)
            try:
                exec_module(module)
            finally:
                if stub is not None:
                    stub._defining = False
                    if sys.modules.get(name) is stub:
                        del sys.modules[name]
        return run
    return wrap


def _deferred_init(exec_module: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(module: Any) -> None:
        def first_use(attr: str) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)
            if PathFinder.find_spec(f"{module.__name__}.{attr}", module.__path__):
                return importlib.import_module(f"{module.__name__}.{attr}")  # just that
            del module.__getattr__
            exec_module(module)
            return getattr(module, attr)

        module.__getattr__ = first_use
    return run


def _sharing_entry_points(exec_module: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(module: Any) -> None:
        exec_module(module)
        module.entry_points = entry_points
    return run


def _no_empty_plugin_scan(exec_module: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(module: Any) -> None:
        exec_module(module)
        original = module.ensure_plugins_loaded

        def ensure_plugins_loaded() -> None:
            if not module._plugins_loaded and not entry_points(group="sqlite_utils"):
                module._plugins_loaded = True  # what pluggy's own scan would register: none
            original()

        module.ensure_plugins_loaded = ensure_plugins_loaded
    return run


_scan: tuple[tuple[tuple[str, int], ...], Any] | None = None
_groups: dict[str, Any] = {}  # group -> its entry points, from ``_scan``


def _path_state() -> tuple[tuple[str, int], ...]:
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, -1))
    return tuple(state)


def entry_points(group: str) -> Any:
    """``importlib.metadata.entry_points(group=group)``; from one scan of every installed
    distribution per process while the cheap imports are installed."""
    from importlib import metadata

    if CheapImports not in sys.meta_path:
        return metadata.entry_points(group=group)
    global _scan
    state = _path_state()
    if _scan is None or _scan[0] != state:
        _scan = (state, metadata.entry_points())
        _groups.clear()
    if group not in _groups:  # an immutable tuple: the same one serves every caller
        _groups[group] = _scan[1].select(group=group)
    return _groups[group]


_dists: tuple[Any, dict[str, dict[str, tuple[str, str]]]] | None = None


def entry_point_distributions(group: str) -> dict[str, tuple[str, str]]:
    """{entry-point name: (distribution name, version)} for ``group``; read from each
    distribution's metadata once per scan of ``entry_points`` (every time when the cheap
    imports are not installed)."""
    global _dists
    found = entry_points(group=group)
    scan = _scan[1] if _scan is not None and CheapImports in sys.meta_path else None
    if scan is not None and _dists is not None and _dists[0] is scan and group in _dists[1]:
        return _dists[1][group]
    dists = {ep.name: (ep.dist.name, ep.dist.version) for ep in found if ep.dist is not None}
    if scan is not None:
        if _dists is None or _dists[0] is not scan:
            _dists = (scan, {})
        _dists[1][group] = dists
    return dists


_RULES = {"sqlite_utils.db": _hiding("pandas", "numpy"),
          "httpx": _hiding("pygments", "rich"),
          "pydantic.plugin._loader": _sharing_entry_points,
          "sqlite_utils.plugins": _no_empty_plugin_scan,
          "detect_secrets": _deferred_init, "detect_secrets.filters": _deferred_init}
#: Rules for a package and every module in it.
_PACKAGE_RULES = {"detect_secrets": _deferring("requests", frozenset({"Response"})),
                  "httpcore": _hiding("trio")}


class CheapImports:
    """A meta-path finder that wraps the loading of the modules named above."""

    pending = set(_RULES)

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        rules = []
        if name.partition(".")[0] in _PACKAGE_RULES:
            rules.append(_PACKAGE_RULES[name.partition(".")[0]])
        if name in cls.pending:
            cls.pending.discard(name)
            rules.append(_RULES[name])  # outermost: it decides when the module runs
        if not rules:
            return None
        spec = PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        for rule in rules:
            loader.exec_module = rule(loader.exec_module)
        return spec


def install() -> None:
    """Put the finder first (once)."""
    CheapImports.pending = {n for n in _RULES if n not in sys.modules}
    if CheapImports not in sys.meta_path:
        sys.meta_path.insert(0, CheapImports)  # type: ignore[arg-type]


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if f is not CheapImports]
