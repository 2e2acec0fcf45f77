"""Every change to an agent file, recorded and reversible.

``save_agent`` validates the new text before anything is written (an invalid agent is
never saved), writes the file atomically inside an agents folder, and records the change
in the kernel's database: who made it, when, the text before and after, and the diff.
``revert`` puts the text of before a change back, as one more recorded change.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from llmos.agents.format import NAME, Agent, AgentFileError, parse_agent
from llmos.agents.registry import agents_of
from llmos.errors import OperationFailed
from llmos.storage import Migrations

if TYPE_CHECKING:
    from llmos.kernel import Kernel

migrations = Migrations("agents")


@migrations
def m001_agent_changes(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE agent_changes (
            id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, agent TEXT NOT NULL,
            path TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, run_id TEXT,
            before TEXT, after TEXT, diff TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX agent_changes_agent ON agent_changes (agent, id)")


class AgentChangeError(OperationFailed):
    pass


@dataclass(frozen=True)
class Change:
    id: int
    ts: str
    agent: str
    path: str
    action: str
    actor: str
    run_id: str | None
    before: str | None
    after: str | None
    diff: str

    def as_dict(self, *, texts: bool = False) -> dict[str, Any]:
        data = {"id": self.id, "ts": self.ts, "agent": self.agent, "path": self.path,
                "action": self.action, "actor": self.actor, "run_id": self.run_id,
                "diff": self.diff}
        if texts:
            data.update(before=self.before, after=self.after)
        return data


def _db(kernel: Kernel) -> sqlite_utils.Database:
    db = kernel.db
    migrations.apply(db)
    return db


def history(kernel: Kernel, agent: str | None = None, limit: int = 50) -> list[Change]:
    db = _db(kernel)
    where, args = ("WHERE agent = ?", [agent]) if agent else ("", [])
    rows = db.execute(f"SELECT id, ts, agent, path, action, actor, run_id, before, after, diff "
                      f"FROM agent_changes {where} ORDER BY id DESC LIMIT ?",
                      [*args, limit]).fetchall()
    return [Change(*row) for row in rows]


def get_change(kernel: Kernel, change_id: int) -> Change:
    rows = _db(kernel).execute(
        "SELECT id, ts, agent, path, action, actor, run_id, before, after, diff "
        "FROM agent_changes WHERE id = ?", [change_id]).fetchall()
    if not rows:
        raise AgentChangeError(f"no agent change #{change_id}; see llmos agents history")
    return Change(*rows[0])


def _write_atomic(path: Path, text: str | None) -> None:
    if path.is_symlink():
        raise AgentChangeError(f"{path} is a symbolic link; agents are written only as "
                               "plain files inside the agents folder")
    if text is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _relative(kernel: Kernel, path: Path) -> str:
    root = getattr(kernel.workspace, "parent", kernel.workspace).root
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _record(kernel: Kernel, agent: str, path: Path, action: str, actor: str,
            run_id: str | None, before: str | None, after: str | None) -> Change:
    rel = _relative(kernel, path)
    diff = "".join(difflib.unified_diff(
        (before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True),
        fromfile=f"a/{rel}" if before is not None else "/dev/null",
        tofile=f"b/{rel}" if after is not None else "/dev/null"))
    ts = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"
    db = _db(kernel)
    cursor = db.execute(
        "INSERT INTO agent_changes (ts, agent, path, action, actor, run_id, before, after, "
        "diff) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ts, agent, rel, action, actor, run_id, before, after, diff])
    return Change(cursor.lastrowid, ts, agent, rel, action, actor, run_id, before, after, diff)


def target_path(kernel: Kernel, name: str) -> Path:
    """Where an agent named ``name`` is written: the active agents folder (the project's
    when a project is active), never anywhere else."""
    if not NAME.match(name):
        raise AgentChangeError(f"invalid agent name {name!r}: use lowercase letters, digits, "
                               "'-' or '_' (e.g. data-analyst)")
    folder = kernel.workspace.agents_dir
    root = kernel.workspace.root.resolve()
    if folder.is_symlink() or not folder.resolve().is_relative_to(root):
        raise AgentChangeError(f"{folder} is not a plain folder inside the workspace; agents "
                               "are written only there")
    return folder / f"{name}.md"


def save_agent(kernel: Kernel, name: str, text: str, *, create: bool, actor: str,
               run_id: str | None = None) -> tuple[Agent, Change]:
    """Validate ``text`` as agent ``name`` and write it; record the change."""
    path = target_path(kernel, name)
    agent = parse_agent(text, str(path), origin="workspace", expected_name=name)
    registry = agents_of(kernel)
    existing = registry.find(name)
    if create and (existing is not None or path.exists()):
        where = existing.source if existing is not None else str(path)
        raise AgentChangeError(f"agent {name!r} exists already ({where}); change it with "
                               "modify_agent (llmos agents edit)")
    if not create and existing is None and not path.exists():
        raise AgentChangeError(f"no agent named {name!r} to modify; create it with "
                               "create_agent (llmos agents new)")
    before = path.read_text(encoding="utf-8") if path.is_file() else None
    _write_atomic(path, text)
    change = _record(kernel, name, path, "create" if create else "modify", actor, run_id,
                     before, text)
    return agent, change


def revert(kernel: Kernel, change_id: int, *, actor: str) -> Change:
    """Undo one change: the file gets the text it had before it (removed if it had none)."""
    change = get_change(kernel, change_id)
    root = getattr(kernel.workspace, "parent", kernel.workspace).root
    path = (root / change.path).resolve()
    folders = [folder.resolve() for folder, _ in agents_folders_of(kernel)]
    if path.parent not in folders:
        raise AgentChangeError(f"change #{change_id} is of {change.path}, which is not in an "
                               "agents folder of this workspace or project")
    if change.before is not None:
        try:
            parse_agent(change.before, str(path), expected_name=change.agent)
        except AgentFileError as exc:
            raise AgentChangeError(f"cannot revert #{change_id}: the earlier text is not a "
                                   f"valid agent ({exc})") from None
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    _write_atomic(path, change.before)
    return _record(kernel, change.agent, path, f"revert #{change_id}", actor, None, current,
                   change.before)


def agents_folders_of(kernel: Kernel) -> list[tuple[Path, str]]:
    from llmos.agents.registry import agent_folders

    return agent_folders(kernel)
