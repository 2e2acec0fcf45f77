"""Finding and loading plugins: built-ins first, then the ``llmos`` entry-point group.

stevedore loads the entry points with failure isolation (a pack that fails to import is
recorded, never fatal); each loaded module or object is registered into a fresh pluggy
manager built here, never at import time.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from llmos import hookspecs

ENTRY_POINT_GROUP = "llmos"

# Built-in features register through the same hooks as third-party packs.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "llmos.builtins.policies",
    "llmos.security.layered",
    "llmos.builtins.claude_tools",
    "llmos.modes.learner",
    "llmos.modes.follower",
    "llmos.modes.mixed",
    "llmos.modes.crystallized",
    "llmos.crystallize.plugin",
    "llmos.memory.backends",
    "llmos.memory.capture",
    "llmos.memory.inject",
    "llmos.agents.plugin",
    "llmos.modes.orchestrator",
    "llmos.projects",
    "llmos.modes.simulation",
)


@dataclass
class PluginInfo:
    """What ``llmos plugins`` shows about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": self.hooks,
            "error": self.error,
            "builtin": self.builtin,
        }


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


def _selected(name: str, load: set[str] | None, disable: set[str]) -> bool:
    if name in disable:
        return False
    return load is None or name in load


def build_plugin_manager(
    *,
    load_entry_points: bool = True,
    builtins: tuple[str, ...] | None = None,
    extra: dict[str, object] | None = None,
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """A fresh manager with the built-ins and the selected entry-point plugins registered.

    ``LLMOS_LOAD_PLUGINS`` (comma list; empty loads no external plugin) restricts the
    entry-point plugins, ``LLMOS_DISABLE_PLUGINS`` removes plugins, built-ins included.
    ``extra`` registers plugin objects directly (embedding, tests), by name.
    """
    pm = pluggy.PluginManager("llmos")
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    load = _env_list("LLMOS_LOAD_PLUGINS")
    disable = _env_list("LLMOS_DISABLE_PLUGINS") or set()

    from llmos import __version__

    for module_name in DEFAULT_PLUGINS if builtins is None else builtins:
        if module_name in disable:
            continue
        info = PluginInfo(module_name, "llmos", __version__, builtin=True)
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:  # a broken built-in is reported like any plugin
            info.error = f"{type(exc).__name__}: {exc}"
        infos[module_name] = info

    if load_entry_points:
        _load_entry_points(pm, infos, load, disable)

    for name, plugin in (extra or {}).items():
        info = PluginInfo(name, None, None)
        try:
            pm.register(plugin, name=name)
        except Exception as exc:
            info.error = f"{type(exc).__name__}: {exc}"
        infos[name] = info

    for name, info in infos.items():
        plugin = pm.get_plugin(name)
        if plugin is not None:
            info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    return pm, infos


def _load_entry_points(
    pm: pluggy.PluginManager,
    infos: dict[str, PluginInfo],
    load: set[str] | None,
    disable: set[str],
) -> None:
    from importlib.metadata import entry_points

    from stevedore import NamedExtensionManager

    found = entry_points(group=ENTRY_POINT_GROUP)  # one scan of the installed distributions
    available = {ep.name for ep in found}
    dists = {ep.name: (ep.dist.name, ep.dist.version) for ep in found if ep.dist is not None}
    wanted = sorted(name for name in available if _selected(name, load, disable))
    failures: dict[str, str] = {}

    def on_failure(_manager: Any, entry_point: Any, exc: BaseException) -> None:
        failures[entry_point.name] = f"{type(exc).__name__}: {exc}"

    # NamedExtensionManager never imports a plugin that is not selected.
    manager = NamedExtensionManager(
        namespace=ENTRY_POINT_GROUP,
        names=wanted,
        invoke_on_load=False,
        on_load_failure_callback=on_failure,
        on_missing_entrypoints_callback=lambda names: None,
    )
    for ext in manager:
        dist = getattr(ext.entry_point, "dist", None)
        # stevedore's cached entry points carry no distribution: look it up by name
        dist_name, dist_version = (
            (dist.name, dist.version) if dist is not None else dists.get(ext.name, (None, None))
        )
        info = PluginInfo(ext.name, dist_name, dist_version)
        try:
            if ext.name in infos or pm.has_plugin(ext.name):
                raise ValueError(f"plugin name {ext.name!r} is already taken")
            pm.register(ext.plugin, name=ext.name)
        except Exception as exc:
            info.error = f"{type(exc).__name__}: {exc}"
        infos[ext.name] = info
    for name, error in failures.items():
        dist_name, dist_version = dists.get(name, (None, None))
        infos[name] = PluginInfo(name, dist_name, dist_version, error=error)
