"""Finding and loading plugins: built-ins first, then the ``llmos`` entry-point group, then
local plugin files (the user's plugin directory, ``--plugin PATH`` / ``LLMOS_PLUGINS``).

stevedore loads the entry points with failure isolation (a pack that fails to import is
recorded, never fatal); each loaded module or object is registered into a fresh pluggy
manager built here, never at import time. Every plugin that exists, loaded or not, gets a
``PluginInfo`` with its state, so ``llmos plugins`` and ``llmos config show`` can say what
is disabled, what failed and why.

Load order is registration order, and the first to register a name keeps it: built-ins,
then entry points (alphabetical by entry-point name), then the plugin directory's files
(alphabetical), then ``--plugin`` / ``LLMOS_PLUGINS`` files (in the order given), then
objects passed by an embedding program.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from llmos import hookspecs

ENTRY_POINT_GROUP = "llmos"
PLUGIN_DIR_ENV = "LLMOS_PLUGIN_DIR"
PLUGIN_PATHS_ENV = "LLMOS_PLUGINS"

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

# The first-party packs: their config section (named like the entry point) and the
# distribution that provides it, so a section whose pack is not installed is explained.
KNOWN_PACKS: dict[str, str] = {
    "web": "llmos-web",
    "quantum": "llmos-quantum",
    "robo": "llmos-robo",
}


@dataclass
class PluginInfo:
    """What ``llmos plugins`` shows about one plugin.

    ``kind``: builtin, entry-point, local (a file: ``path``), embedded or generated.
    ``state`` is derived: failed (``error``), disabled (``disabled_by``) or loaded.
    """

    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False
    kind: str = "embedded"
    path: str | None = None
    disabled_by: str | None = None
    detail: str | None = None  # the traceback behind ``error``
    warnings: list[str] = field(default_factory=list)
    named: bool = False  # a local file named by --plugin / LLMOS_PLUGINS (not in as_dict)

    @property
    def state(self) -> str:
        if self.error:
            return "failed"
        if self.disabled_by:
            return "disabled"
        return "loaded"

    def fail(self, message: str, exc: BaseException | None = None) -> None:
        """Record a failure (several are joined); keeps the traceback for ``-v``."""
        self.error = f"{self.error}; {message}" if self.error else message
        if exc is not None:
            text = "".join(traceback.format_exception(exc))
            self.detail = f"{self.detail}\n{text}" if self.detail else text

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "kind": self.kind,
            "distribution": self.distribution,
            "version": self.version,
            "path": self.path,
            "hooks": self.hooks,
            "error": self.error,
            "disabled_by": self.disabled_by,
            "warnings": self.warnings,
            "builtin": self.builtin,
        }


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


def _disabled_by(name: str, load: set[str] | None, disable: set[str] | dict[str, str],
                 ) -> str | None:
    if name in disable:
        return disable[name] if isinstance(disable, dict) else "LLMOS_DISABLE_PLUGINS"
    if load is not None and name not in load:
        return "LLMOS_LOAD_PLUGINS (not listed)"
    return None


def plugin_dir() -> Path:
    """The user's local plugin directory: ``LLMOS_PLUGIN_DIR``, else
    ``<user config dir>/llmos/plugins`` (never inside a workspace)."""
    env = os.environ.get(PLUGIN_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("llmos")) / "plugins"


def local_plugin_files(paths: list[str] | None = None) -> list[tuple[Path, str]]:
    """Local plugin files, each with where it was named: the plugin directory's ``*.py``
    (alphabetical; names starting with ``_`` or ``.`` are skipped), then ``paths`` (the
    ``--plugin`` options) and ``LLMOS_PLUGINS`` (``os.pathsep``-separated)."""
    found: list[tuple[Path, str]] = []
    directory = plugin_dir()
    try:
        entries = sorted(directory.iterdir()) if directory.is_dir() else []
    except OSError:
        entries = []
    for path in entries:
        if path.suffix == ".py" and not path.name.startswith(("_", ".")):
            found.append((path, "plugin directory"))
    for item in paths or []:
        found.append((Path(item).expanduser(), "--plugin"))
    for item in (os.environ.get(PLUGIN_PATHS_ENV) or "").split(os.pathsep):
        if item.strip():
            found.append((Path(item.strip()).expanduser(), f"--plugin or {PLUGIN_PATHS_ENV}"))
    return found


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _load_local(pm: pluggy.PluginManager, infos: dict[str, PluginInfo], path: Path,
                source: str, workspace: Path, load: set[str] | None,
                disable: dict[str, str]) -> None:
    name = path.stem
    info = PluginInfo(name, kind="local", path=str(path), named=source != "plugin directory")
    resolved = path.resolve()
    if name in infos or pm.has_plugin(name):
        other = infos.get(name)
        where = f" ({other.path or other.kind})" if other is not None else ""
        info.name = name = f"{name} ({path})"
        info.fail(f"plugin name {path.stem!r} is already taken by another plugin{where}; "
                  "rename the file")
    elif _inside(resolved, workspace):
        # The agent can write anything in the workspace: code there must never load.
        info.fail(f"refused: {resolved} is inside the workspace {workspace}, which the "
                  f"agent can write; move it to {plugin_dir()} or another directory "
                  "outside the workspace")
    elif (why := _disabled_by(name, load, disable)) is not None:
        info.disabled_by = why
    elif not resolved.is_file():
        info.fail(f"no such plugin file {path} (named by {source})")
    else:
        import importlib.util

        module_name = f"llmos_local_plugins.{name}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, resolved)
            if spec is None or spec.loader is None:
                raise ImportError(f"{resolved} is not a Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
            pm.register(module, name=name)
        except (Exception, SystemExit) as exc:
            info.fail(_one_line(exc), exc)
        else:
            info.warnings.extend(_unknown_hooks(pm, module))
    infos[name] = info


def _unknown_hooks(pm: pluggy.PluginManager, module: Any) -> list[str]:
    """A hook implementation whose name no hook has (a typo) would silently do nothing."""
    import difflib

    known = [name for name in dir(pm.hook) if name.startswith("llmos_")
             and getattr(pm.hook, name).spec is not None]  # pluggy adds unknown ones unspecced
    found = []
    for attr in sorted(vars(module)):
        if getattr(vars(module)[attr], "llmos_impl", None) is not None and attr not in known:
            close = difflib.get_close_matches(attr, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            found.append(f"{attr} is not an llmos hook, so it is never called{hint}")
    return found


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, finding a module plugin's hook implementations in the module's
    namespace directly: what ``parse_hookimpl_opts`` (its documented extension point)
    does through ``inspect.getattr_static`` for each of a module's names, which is most
    of the cost of building a manager. Functions are read here; anything else pluggy
    could take for a hook (a staticmethod, classmethod or bound method) is left to it."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        if type(plugin) is not types.ModuleType:
            return super().parse_hookimpl_opts(plugin, name)
        value = plugin.__dict__.get(name)
        if isinstance(value, (staticmethod, classmethod, types.MethodType)):
            return super().parse_hookimpl_opts(plugin, name)
        if not inspect.isfunction(value):
            return None
        opts = getattr(value, f"{self.project_name}_impl", None)
        return opts if isinstance(opts, dict) else None


def build_plugin_manager(
    *,
    load_entry_points: bool = True,
    builtins: tuple[str, ...] | None = None,
    extra: dict[str, object] | None = None,
    plugin_paths: list[str] | None = None,
    workspace: Path | str | None = None,
    load_local: bool | None = None,
    disabled: dict[str, str] | None = None,
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """A fresh manager with the built-ins and the selected plugins registered.

    ``LLMOS_LOAD_PLUGINS`` (comma list; empty loads no external plugin) restricts the
    entry-point and local plugins, ``LLMOS_DISABLE_PLUGINS`` removes plugins, built-ins
    included; what they leave out is listed as disabled. Local plugin files load unless
    ``load_local`` is False (default: when entry points load); a file inside
    ``workspace`` (default: the default workspace) is refused. ``extra`` registers plugin
    objects directly (embedding, tests), by name. ``disabled`` maps more plugin names
    to what disabled them (the config's ``plugins.disable``).
    """
    pm = PluginManager("llmos")
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    load = _env_list("LLMOS_LOAD_PLUGINS")
    disable: dict[str, str] = dict(disabled or {})
    disable.update((name, "LLMOS_DISABLE_PLUGINS")
                   for name in _env_list("LLMOS_DISABLE_PLUGINS") or ())

    from llmos import __version__

    for module_name in DEFAULT_PLUGINS if builtins is None else builtins:
        info = PluginInfo(module_name, "llmos", __version__, builtin=True, kind="builtin")
        infos[module_name] = info
        if module_name in disable:
            info.disabled_by = disable[module_name]
            continue
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:  # a broken built-in is reported like any plugin
            info.fail(_one_line(exc), exc)

    if load_entry_points:
        _load_entry_points(pm, infos, load, disable)

    if load_local is None:
        load_local = load_entry_points
    files = local_plugin_files(plugin_paths) if load_local else []
    if files:
        if workspace is None:
            from llmos.workspace import default_workspace

            workspace = default_workspace()
        root = Path(workspace).expanduser().resolve()
        for path, source in files:
            _load_local(pm, infos, path, source, root, load, disable)

    for name, plugin in (extra or {}).items():
        info = PluginInfo(name, None, None)
        try:
            pm.register(plugin, name=name)
        except Exception as exc:
            info.fail(_one_line(exc), exc)
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
    disable: dict[str, str],
) -> None:
    from llmos.cheap_imports import entry_point_distributions, entry_points

    # one scan of the installed distributions (shared with pydantic's under the CLI)
    found = entry_points(group=ENTRY_POINT_GROUP)
    available = sorted({ep.name for ep in found})
    dists = entry_point_distributions(ENTRY_POINT_GROUP)
    wanted = []
    for name in available:
        why = _disabled_by(name, load, disable)
        if why is None:
            wanted.append(name)
        elif name not in infos:
            dist_name, dist_version = dists.get(name, (None, None))
            infos[name] = PluginInfo(name, dist_name, dist_version, kind="entry-point",
                                     disabled_by=why)
    if not wanted:
        return
    from stevedore import NamedExtensionManager

    failures: dict[str, BaseException] = {}

    def on_failure(_manager: Any, entry_point: Any, exc: BaseException) -> None:
        failures[entry_point.name] = exc

    # NamedExtensionManager never imports a plugin that is not selected; name_order keeps
    # the load order (and so who keeps a contested name) alphabetical.
    class _Found(NamedExtensionManager):
        def list_entry_points(self) -> list[Any]:  # the scan above, not stevedore's own
            return list(found)

    manager = _Found(
        namespace=ENTRY_POINT_GROUP,
        names=wanted,
        invoke_on_load=False,
        on_load_failure_callback=on_failure,
        on_missing_entrypoints_callback=lambda names: None,
        name_order=True,
    )
    for ext in manager:
        dist = getattr(ext.entry_point, "dist", None)
        # read once per scan (a distribution's name and version parse its metadata file)
        dist_name, dist_version = dists.get(ext.name) or (
            (dist.name, dist.version) if dist is not None else (None, None))
        info = PluginInfo(ext.name, dist_name, dist_version, kind="entry-point")
        try:
            if ext.name in infos or pm.has_plugin(ext.name):
                raise ValueError(f"plugin name {ext.name!r} is already taken")
            pm.register(ext.plugin, name=ext.name)
        except Exception as exc:
            info.fail(_one_line(exc), exc)
        infos[ext.name] = info
    for name, exc in failures.items():
        dist_name, dist_version = dists.get(name, (None, None))
        info = PluginInfo(name, dist_name, dist_version, kind="entry-point")
        info.fail(_one_line(exc), exc)
        infos[name] = info


def preload_entry_points() -> list[str]:
    """Import (not register) the modules of the ``llmos`` entry points that the
    environment's ``LLMOS_LOAD_PLUGINS`` / ``LLMOS_DISABLE_PLUGINS`` leave in, and read
    their distributions' names and versions, so that managers built later in this process
    (or in processes forked from it) find them loaded. Returns those that failed."""
    from llmos.cheap_imports import entry_point_distributions, entry_points

    load = _env_list("LLMOS_LOAD_PLUGINS")
    disable = _env_list("LLMOS_DISABLE_PLUGINS") or set()
    entry_point_distributions(ENTRY_POINT_GROUP)
    failed = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if _disabled_by(ep.name, load, disable) is not None:
            continue
        try:
            importlib.import_module(ep.module)
        except (Exception, SystemExit):
            failed.append(ep.name)
    return failed


def unavailable_sections(infos: dict[str, PluginInfo]) -> dict[str, str]:
    """Config sections whose plugin is known but not loaded, with the state and the fix.
    A plugin's section is taken to be named like the plugin (as the packs' are)."""
    found: dict[str, str] = {}
    for name, dist in KNOWN_PACKS.items():
        if name not in infos:
            found[name] = (f"plugin {name!r} is not installed; install it (pip install "
                           f"{dist}) or remove the section")
    for name, info in infos.items():
        if info.builtin or info.state == "loaded":
            continue
        if info.state == "disabled":
            if info.disabled_by == "LLMOS_DISABLE_PLUGINS":
                how = f"remove {name!r} from LLMOS_DISABLE_PLUGINS"
            elif (info.disabled_by or "").startswith("plugins.disable"):
                how = f"remove {name!r} from plugins.disable"
            else:
                how = f"add {name!r} to LLMOS_LOAD_PLUGINS"
            found[name] = (f"plugin {name!r} is disabled by {info.disabled_by}; enable it "
                           f"({how}) or remove the section")
        else:
            found[name] = (f"plugin {name!r} failed to load ({info.error}); fix it (llmos "
                           "plugins -v shows the traceback) or remove the section")
    return found


def collect_commands(pm: pluggy.PluginManager) -> tuple[dict[str, Any], list[str]]:
    """Each plugin's ``llmos_register_commands``, one plugin at a time: a plugin that
    raises adds no command and the others are kept. A plugin whose other registration
    hooks raise (the kernel isolates it) adds none either. Returns (commands, warnings)."""
    import click

    commands: dict[str, Any] = {}
    warnings: list[str] = []
    everyone = [plugin for _, plugin in pm.list_name_plugin()]
    impls = {id(impl.plugin) for impl in pm.hook.llmos_register_commands.get_hookimpls()}
    register_hooks = [h for h in dir(pm.hook) if h.startswith("llmos_register_")
                      and h != "llmos_register_commands"]
    for name, plugin in pm.list_name_plugin():
        if id(plugin) not in impls:
            continue
        others = [p for p in everyone if p is not plugin]
        group = click.Group()
        hook = "llmos_register_commands"
        try:
            for hook in register_hooks:
                if any(i.plugin is plugin for i in getattr(pm.hook, hook).get_hookimpls()):
                    pm.subset_hook_caller(hook, remove_plugins=others)(
                        register=lambda *args, **kwargs: None)
            hook = "llmos_register_commands"
            pm.subset_hook_caller(hook, remove_plugins=others)(cli=group)
        except Exception as exc:
            if hook == "llmos_register_commands":
                warnings.append(f"plugin {name!r} failed to add its commands: {_one_line(exc)}")
            else:
                warnings.append(f"plugin {name!r} failed ({hook}: {_one_line(exc)}); its "
                                "commands are not added (llmos plugins shows it)")
            continue
        for command_name, command in group.commands.items():
            if command_name in commands:
                warnings.append(f"command {command_name!r} of plugin {name!r} is refused: "
                                "another plugin already added it")
                continue
            commands[command_name] = command
    return commands, warnings
