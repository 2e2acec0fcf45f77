"""Projects: a folder of the workspace with its own agents, outputs, state and memory.

``llmos --project NAME ...`` (or ``LLMOS_PROJECT``) runs any command inside
``<workspace>/projects/NAME/``: the model works there (its working directory, the only
place file tools and commands may write), the project's ``agents/`` add to and override
the workspace's, its ``llmos.toml`` is read over the workspace's, and its memory (runs,
traces, facts) is its own. The budget, the audit log and the agents' change log stay
the workspace's: one wallet, one history.

Traces learned in one project replay in another only when both allow it::

    # projects/NAME/llmos.toml
    [project]
    share_traces = true   # this project's traces may replay in other sharing projects,
                          # and theirs here

Writes (runs, steps, new traces) always go to the project's own memory; a shared trace
that is replayed gains its evidence in the project it belongs to.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

import llmos
from llmos.config import ConfigError
from llmos.workspace import STATE_DIR, Workspace

if TYPE_CHECKING:
    from llmos.kernel import Kernel
    from llmos.memory.base import MemoryBackend
    from llmos.memory.models import Trace

PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PROJECT_LAYOUT = ("agents", "outputs", STATE_DIR)
MEMORY_DB = "memory.db"


class ProjectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share_traces: bool = Field(False, description="Let this project's traces replay in other "
                               "projects that share, and theirs here.")
    description: str = Field("", description="What the project is for (llmos projects list).")


@dataclass(frozen=True)
class ProjectWorkspace(Workspace):
    """A project's folder, used as the kernel's workspace."""

    parent: Workspace | None = None
    project: str = ""

    @property
    def database_path(self) -> Path:  # the wallet, audit and change logs are shared
        assert self.parent is not None
        return self.parent.database_path

    @property
    def memory_database_path(self) -> Path:
        return self.state_dir / MEMORY_DB

    @property
    def projects_dir(self) -> Path:
        assert self.parent is not None
        return self.parent.projects_dir


def check_name(name: str) -> str:
    if not PROJECT_NAME.match(name or ""):
        raise ConfigError(f"invalid project name {name!r}: use 1-64 letters, digits, '.', '_' "
                          "or '-', starting with a letter or digit")
    return name


def project_dir(workspace: Workspace, name: str) -> Path:
    return workspace.projects_dir / check_name(name)


def open_project(workspace: Workspace, name: str, *, create: bool = False) -> ProjectWorkspace:
    """The project's workspace; ``ConfigError`` when it does not exist (unless ``create``)."""
    root = project_dir(workspace, name)
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise ConfigError(f"{root} is not a project folder")
    if not root.exists():
        if not create:
            known = ", ".join(list_projects(workspace)) or "none"
            raise ConfigError(f"no project named {name!r} in {workspace.root} (projects: "
                              f"{known}); create it with: llmos projects new {name}")
        root.mkdir(parents=True)
    for sub in PROJECT_LAYOUT:
        (root / sub).mkdir(parents=True, exist_ok=True)
    return ProjectWorkspace(root.resolve(), parent=workspace, project=name)


def list_projects(workspace: Workspace) -> list[str]:
    folder = workspace.projects_dir
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and not p.is_symlink() and PROJECT_NAME.match(p.name))


def project_settings(root: Path) -> ProjectConfig:
    """A project's ``[project]`` section, read from its own llmos.toml (for its peers)."""
    path = root / "llmos.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return ProjectConfig.model_validate(data.get("project") or {})
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: the [project] section cannot be read: {exc}") from None


def config_layers(workspace: ProjectWorkspace, flags: list[str] | None,
                  environ: Any = None) -> list[Any]:
    """A project's config: user < workspace llmos.toml < project llmos.toml < env < flags."""
    import os

    from llmos.config import Layer, env_layer, flags_layer, read_toml_layer, user_config_path

    assert workspace.parent is not None
    layers = []
    for path in (user_config_path(), workspace.parent.config_path, workspace.config_path):
        layer = read_toml_layer(path)  # a missing file is listed by config show as such
        layers.append(layer or Layer(str(path), {}, path=path, exists=False))
    layers.append(env_layer(os.environ if environ is None else environ))
    layers.append(flags_layer(flags or []))
    return layers


class _View:
    """The kernel as a memory driver sees it, with another project's workspace."""

    def __init__(self, kernel: Kernel, workspace: Workspace) -> None:
        self._kernel, self.workspace = kernel, workspace

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kernel, name)


def memory_of(kernel: Kernel, workspace: Workspace) -> MemoryBackend:
    """The configured memory driver opened on ``workspace`` (a project, or the root)."""
    entry = kernel.memory_backends.get(kernel.config.memory.backend)
    return entry.value(_View(kernel, workspace))


def _rebased(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new) if old in value else value
    if isinstance(value, dict):
        return {k: _rebased(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebased(v, old, new) for v in value]
    return value


def rebase_trace(trace: Trace, old_root: Path, new_root: Path) -> Trace:
    """A peer project's trace as this project would run it: the paths in its steps (and
    its answer) that lead into the peer's folder lead into this one's instead."""
    old, new = f"{old_root}/", f"{new_root}/"
    steps = [step.model_copy(update={"input": _rebased(step.input, old, new)})
             for step in trace.steps]
    return trace.model_copy(update={"steps": steps,
                                    "answer": _rebased(trace.answer, old, new)})


class SharedMemory:
    """A project's memory that also reads the traces of the projects sharing with it
    (rebased into this project's folder)."""

    def __init__(self, own: MemoryBackend, peers: dict[str, tuple[MemoryBackend, Path]],
                 root: Path) -> None:
        self._own, self._peers, self._root = own, peers, root

    def _from(self, traces: list[Trace], peer_root: Path) -> list[Trace]:
        return [rebase_trace(t, peer_root, self._root) for t in traces]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._own, name)

    def _owner(self, trace_id: str) -> tuple[MemoryBackend, Path | None]:
        from llmos.memory.base import TraceNotFound

        try:
            self._own.get_trace(trace_id)
            return self._own, None
        except TraceNotFound:
            for peer, root in self._peers.values():
                try:
                    peer.get_trace(trace_id)
                    return peer, root
                except TraceNotFound:
                    continue
        return self._own, None

    def get_trace(self, trace_id: str) -> Trace:
        memory, root = self._owner(trace_id)
        trace = memory.get_trace(trace_id)
        return trace if root is None else rebase_trace(trace, root, self._root)

    def update_trace_stats(self, trace_id: str, *args: Any, **kwargs: Any) -> Trace:
        memory, _ = self._owner(trace_id)  # the evidence goes where the trace lives
        return memory.update_trace_stats(trace_id, *args, **kwargs)

    def find_traces(self, *, signature: str) -> list[Trace]:
        found = list(self._own.find_traces(signature=signature))
        for peer, root in self._peers.values():
            found.extend(self._from(peer.find_traces(signature=signature), root))
        return found

    def search_traces(self, text: str, *, limit: int = 10) -> list[Trace]:
        found = list(self._own.search_traces(text, limit=limit))
        for peer, root in self._peers.values():
            found.extend(self._from(peer.search_traces(text, limit=limit), root))
        return found[: limit * (1 + len(self._peers))]

    def close(self) -> None:
        for peer, _ in self._peers.values():
            if hasattr(peer, "close"):
                peer.close()
        if hasattr(self._own, "close"):
            self._own.close()


def scope_memory(kernel: Kernel, backend: MemoryBackend) -> MemoryBackend:
    """The kernel's memory: the project's own, plus its sharing peers' traces."""
    workspace = kernel.workspace
    parent = getattr(workspace, "parent", None)
    if parent is None or not kernel.config.section("project").share_traces:
        return backend
    peers: dict[str, tuple[MemoryBackend, Path]] = {}
    for name in list_projects(parent):
        if name == workspace.project:
            continue
        root = project_dir(parent, name).resolve()
        if project_settings(root).share_traces:
            peer = ProjectWorkspace(root, parent=parent, project=name)
            peers[name] = (memory_of(kernel, peer), root)
    return SharedMemory(backend, peers, workspace.root) if peers else backend


@llmos.hookimpl
def llmos_register_config(register) -> None:
    register("project", ProjectConfig)
