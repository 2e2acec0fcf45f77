"""The workspace: where agents, projects, generated plugins and the kernel's state live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmos.security.protected import ProtectedPaths

STATE_DIR = ".llmos"
LAYOUT = ("agents", "projects", "plugins/generated", STATE_DIR)


def default_workspace() -> Path:
    """``LLMOS_WORKSPACE`` if set, else a per-user data directory."""
    env = os.environ.get("LLMOS_WORKSPACE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("llmos")) / "workspace"


@dataclass(frozen=True)
class Workspace:
    """A directory laid out for llmos. ``open`` creates what is missing."""

    root: Path

    @classmethod
    def open(cls, path: Path | str | None = None) -> Workspace:
        root = Path(path) if path is not None else default_workspace()
        root = root.expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(f"workspace {root} exists and is not a directory")
        for sub in LAYOUT:
            (root / sub).mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def database_path(self) -> Path:
        return self.state_dir / "llmos.db"

    @property
    def memory_database_path(self) -> Path:
        """Where the ``sqlite`` memory driver keeps runs and traces (a project: its own)."""
        return self.database_path

    @property
    def agents_dir(self) -> Path:
        return self.root / "agents"

    @property
    def projects_dir(self) -> Path:
        return self.root / "projects"

    @property
    def generated_plugins_dir(self) -> Path:
        return self.root / "plugins" / "generated"

    @property
    def config_path(self) -> Path:
        return self.root / "llmos.toml"

    def protected_paths(self) -> ProtectedPaths:
        """llmos's own state in this workspace, which nothing the agent runs may write
        (config, ``.llmos/``, generated plugins, git hooks and config, shell rc files).
        The kernel adds the memory folder: ``llmos.security.protected.protected_paths``."""
        from llmos.security.protected import base_protected_paths

        return base_protected_paths(self.root)
