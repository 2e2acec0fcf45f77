"""The workspace: where agents, projects, generated plugins and the kernel's state live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmos.errors import BadInput

if TYPE_CHECKING:
    from llmos.security.protected import ProtectedPaths

STATE_DIR = ".llmos"
LAYOUT = ("agents", "projects", "plugins/generated", STATE_DIR)
PSEUDO_FILESYSTEMS = ("/proc", "/sys")
FIX = ("choose a writable directory with --workspace DIR or LLMOS_WORKSPACE=DIR "
       "(or fix its permissions)")


class WorkspaceError(BadInput, NotADirectoryError):
    """The workspace path cannot be used (exit code 2: a usage or config error)."""


def _unwritable_why(path: Path) -> str:
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "on a read-only file system" if read_only else "permission denied"


def _why(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


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
        """The workspace at ``path``, its layout created. A path that cannot be a
        workspace (a file, under /proc or /sys, unwritable, on a read-only mount) is a
        ``WorkspaceError`` that names the path and the fix."""
        root = Path(path) if path is not None else default_workspace()
        try:
            root = root.expanduser().resolve()
        except (OSError, RuntimeError) as exc:
            raise WorkspaceError(f"workspace {root} cannot be resolved: {_why(exc)}; "
                                 f"{FIX}") from None
        if any(root == Path(top) or Path(top) in root.parents for top in PSEUDO_FILESYSTEMS):
            raise WorkspaceError(f"workspace {root} is on a kernel pseudo-filesystem "
                                 f"({root.parts[1] if len(root.parts) > 1 else root}), "
                                 f"which cannot hold files; {FIX}")
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"workspace {root} exists and is not a directory; {FIX}")
        for sub in LAYOUT:
            try:
                (root / sub).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WorkspaceError(f"cannot create workspace {root} ({root / sub}: "
                                     f"{_why(exc)}); {FIX}") from None
        state = root / STATE_DIR
        unwritable = [p for p in (state, state / "llmos.db")
                      if p.exists() and not os.access(p, os.W_OK)]
        if unwritable:
            raise WorkspaceError(
                f"workspace {root} is not writable ({unwritable[0]}: "
                f"{_unwritable_why(unwritable[0])}); llmos keeps its state there (every "
                f"command, reading ones included, records to it), so {FIX}")
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
