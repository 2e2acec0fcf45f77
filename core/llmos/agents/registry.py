"""Where agents come from, reloaded as their files change.

Sources, later ones winning a name: definitions and files registered by packs
(``llmos_register_agents``), the workspace's ``agents/``, and the active project's
``agents/``. Every access checks the folders' ``*.md`` files by (mtime, size, inode)
and re-reads only the ones that changed: an edit is seen at once, with no restart, in
``llmos shell`` and the servers alike. A file that does not parse is left out and kept
as a problem (``llmos agents check``).
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmos.agents.format import Agent, AgentFileError, agent_from_definition, read_agent_file

if TYPE_CHECKING:
    from llmos.kernel import Kernel


class UnknownAgent(LookupError):
    pass


@dataclass
class _Cached:
    stamp: tuple[int, int, int]
    agent: Agent | None
    problem: AgentFileError | None


@dataclass
class AgentRegistry:
    """The agents of one kernel (and its project)."""

    folders: list[tuple[Path, str]]  # (directory, origin), lowest precedence first
    registered: list[tuple[str, Any]] = field(default_factory=list)  # (plugin, item)
    _files: dict[Path, _Cached] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _read(self, path: Path, origin: str) -> _Cached:
        try:
            st = path.stat()
        except OSError as exc:
            return _Cached((0, 0, 0), None, AgentFileError(str(path), 1, f"cannot read: {exc}"))
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._files.get(path)
        if cached is not None and cached.stamp == stamp:
            return cached
        try:
            fresh = _Cached(stamp, read_agent_file(path, origin=origin), None)
        except AgentFileError as exc:
            fresh = _Cached(stamp, None, exc)
        self._files[path] = fresh
        return fresh

    def _scan(self) -> tuple[dict[str, Agent], list[AgentFileError]]:
        agents: dict[str, Agent] = {}
        problems: list[AgentFileError] = []
        with self._lock:
            for plugin, item in self.registered:
                for path, got in self._expand(plugin, item):
                    if isinstance(got, AgentFileError):
                        problems.append(got)
                    elif got is not None:
                        agents[got.name] = got
                    elif path is not None:
                        cached = self._read(path, plugin)
                        if cached.agent:
                            agents[cached.agent.name] = cached.agent
                        if cached.problem:
                            problems.append(cached.problem)
            for folder, origin in self.folders:
                for path in _markdown_files(folder):
                    cached = self._read(path, origin)
                    if cached.agent:
                        agents[cached.agent.name] = cached.agent
                    if cached.problem:
                        problems.append(cached.problem)
        return agents, problems

    def _expand(self, plugin: str, item: Any):
        """(path, None) for a file to read, (None, agent or error) for a definition."""
        if isinstance(item, (str, os.PathLike)):
            path = Path(item)
            if path.is_dir():
                return [(p, None) for p in _markdown_files(path)]
            return [(path, None)]
        try:
            return [(None, agent_from_definition(item, plugin))]
        except AgentFileError as exc:
            return [(None, exc)]

    def all(self) -> list[Agent]:
        agents, _ = self._scan()
        return sorted(agents.values(), key=lambda a: a.name)

    def problems(self) -> list[AgentFileError]:
        return self._scan()[1]

    def get(self, name: str) -> Agent:
        agents, problems = self._scan()
        if name in agents:
            return agents[name]
        broken = [p for p in problems if Path(p.file).stem == name]
        if broken:
            raise UnknownAgent(f"agent {name!r} cannot be used: {broken[0]}")
        known = ", ".join(sorted(agents)) or "none"
        raise UnknownAgent(f"no agent named {name!r}; known agents: {known} "
                           "(create one with llmos agents new NAME)")

    def find(self, name: str) -> Agent | None:
        return self._scan()[0].get(name)


def _markdown_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.glob("*.md") if p.is_file() and not p.is_symlink())
    except OSError:
        return []


_REGISTRIES: weakref.WeakKeyDictionary[Any, AgentRegistry] = weakref.WeakKeyDictionary()


def agent_folders(kernel: Kernel) -> list[tuple[Path, str]]:
    """The workspace's agents folder, then the project's (which wins a name)."""
    workspace = kernel.workspace
    parent = getattr(workspace, "parent", None)
    if parent is not None:
        return [(parent.agents_dir, "workspace"), (workspace.agents_dir, "project")]
    return [(workspace.agents_dir, "workspace")]


def agents_of(kernel: Kernel) -> AgentRegistry:
    """The kernel's agent registry (created on first use)."""
    registry = _REGISTRIES.get(kernel)
    if registry is None:
        registered = list(getattr(kernel, "agent_registrations", None)
                          or [("plugin", item) for item in kernel.agents])
        registry = AgentRegistry(agent_folders(kernel), registered)
        _REGISTRIES[kernel] = registry
    return registry
