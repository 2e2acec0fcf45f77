"""Where crystals live: versions content-addressed on disk, their life cycle in SQLite.

Each version is ``plugins/generated/crystals/<name>/<version>.py`` (``version`` is the
sha256 of the source, 16 hex digits) beside ``<version>.json``, its provenance (source
traces, the run and model that wrote it, its parameters, its cassettes and test results).
``plugins/generated/`` is llmos's own state: nothing the agent runs may write there. A
version whose file no longer hashes to its name is never loaded.

Life cycle (``status``): ``candidate`` (written, checked, its cassette tests pending or
failed) → ``shadow`` (tests passed; compared with the normal path on every run of its
goal) → ``active`` (agreed ``[crystallize] agreements`` times; bids in CRYSTALLIZED mode)
→ ``demoted`` (``demote_after`` failures, or by hand) / ``retired`` (replaced, rolled
back). ``rejected`` versions failed the allowlist and never ran.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from llmos.storage import Migrations, immediate

if TYPE_CHECKING:
    from llmos.workspace import Workspace

migrations = Migrations("crystallize")
STATUSES = ("candidate", "shadow", "active", "demoted", "retired", "rejected")
LIVE = ("candidate", "shadow", "active")


@migrations
def m001_crystals(db: sqlite_utils.Database) -> None:
    db["crystal_versions"].create(
        {"name": str, "version": str, "signature": str, "normalized_goal": str,
         "status": str, "created_at": str, "agreements": int, "failures": int, "runs": int,
         "saved_usd": float, "reason": str, "previous": str, "was_active": int},
        pk=("name", "version"),
    )
    db["crystal_versions"].create_index(["signature", "status"])
    db["crystal_events"].create(
        {"id": int, "ts": str, "name": str, "version": str, "event": str, "detail": str,
         "run_id": str},
        pk="id",
    )


@dataclass
class Version:
    name: str
    version: str
    signature: str
    normalized_goal: str
    status: str
    created_at: str = ""
    agreements: int = 0
    failures: int = 0
    runs: int = 0
    saved_usd: float = 0.0
    reason: str = ""
    previous: str = ""
    was_active: int = 0
    provenance: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["was_active"] = bool(self.was_active)
        return data


def crystal_name(normalized_goal: str, signature: str) -> str:
    """``count lines of <file.txt> into <file.txt>`` -> ``crystal_count_lines_of_into_1a2b3c``."""
    words = [w for w in re.sub(r"<[^>]*>", " ", normalized_goal).split() if w.isalnum()]
    slug = "_".join(words)[:40].strip("_") or "goal"
    return f"crystal_{slug}_{signature[:6]}"


def source_digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


class UnknownCrystal(LookupError):
    pass


class CrystalStore:
    def __init__(self, db: sqlite_utils.Database, workspace: Workspace) -> None:
        self.db = db
        self.root = workspace.generated_plugins_dir / "crystals"
        migrations.apply(db)

    # -- files ----------------------------------------------------------------------------
    def directory(self, name: str) -> Path:
        return self.root / name

    def source(self, name: str, version: str) -> str:
        """The version's source, checked against its content address."""
        path = self.directory(name) / f"{version}.py"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UnknownCrystal(f"crystal {name} version {version}: its code is missing "
                                 f"({exc.strerror})") from None
        if source_digest(text) != version:
            raise UnknownCrystal(f"crystal {name} version {version}: {path} was changed "
                                 "(it no longer hashes to its version); it is not loaded")
        return text

    def provenance(self, name: str, version: str) -> dict[str, Any]:
        path = self.directory(name) / f"{version}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def write_provenance(self, name: str, version: str, data: dict[str, Any]) -> None:
        path = self.directory(name) / f"{version}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n",
                       encoding="utf-8")
        tmp.replace(path)

    # -- records --------------------------------------------------------------------------
    def add(self, name: str, signature: str, normalized_goal: str, source: str,
            provenance: dict[str, Any], status: str, reason: str = "") -> Version:
        version = source_digest(source)
        existing = self._rows("WHERE name = ? AND version = ?", (name, version))
        if existing:  # the same code again: one version, its record and evidence kept
            self.event(name, version, "written again", "the same code (same version)")
            return self.get(name, version)
        folder = self.directory(name)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{version}.py").write_text(source, encoding="utf-8")
        self.write_provenance(name, version, provenance)
        with immediate(self.db):
            current = self._current(name)
            self.db.execute(
                "INSERT INTO crystal_versions (name, version, signature, normalized_goal,"
                " status, created_at, agreements, failures, runs, saved_usd, reason,"
                " previous, was_active) VALUES (?, ?, ?, ?, ?,"
                " strftime('%Y-%m-%dT%H:%M:%fZ','now'), 0, 0, 0, 0, ?, ?, 0)",
                (name, version, signature, normalized_goal, status, reason,
                 current.version if current and current.version != version else ""))
        self.event(name, version, "created", f"{status}: {reason}" if reason else status)
        return self.get(name, version)

    def _rows(self, where: str = "", args: tuple[Any, ...] = ()) -> list[Version]:
        rows = self.db.execute(
            f"SELECT name, version, signature, normalized_goal, status, created_at, agreements,"
            f" failures, runs, saved_usd, reason, previous, was_active FROM crystal_versions"
            f" {where} ORDER BY created_at, rowid", args).fetchall()
        return [Version(*row) for row in rows]

    def versions(self, name: str) -> list[Version]:
        found = self._rows("WHERE name = ?", (name,))
        if not found:
            raise UnknownCrystal(f"no crystal named {name!r}; see llmos crystals list")
        return found

    def get(self, name: str, version: str | None = None) -> Version:
        if version is None:
            current = self._current(name)
            if current is None:
                self.versions(name)  # raises for an unknown name
                current = self.versions(name)[-1]
            found = current
        else:
            matches = [v for v in self.versions(name) if v.version.startswith(version)]
            if len(matches) != 1:
                raise UnknownCrystal(f"crystal {name} has no version {version!r}" if not
                                     matches else f"{version!r} names several versions")
            found = matches[0]
        found.provenance = self.provenance(found.name, found.version)
        return found

    def _current(self, name: str) -> Version | None:
        """The version that speaks for the crystal: the active one, else the newest live
        one, else the newest."""
        versions = self._rows("WHERE name = ?", (name,))
        for wanted in (("active",), LIVE):
            live = [v for v in versions if v.status in wanted]
            if live:
                return live[-1]
        return versions[-1] if versions else None

    def names(self) -> list[str]:
        return [row[0] for row in self.db.execute(
            "SELECT DISTINCT name FROM crystal_versions ORDER BY name").fetchall()]

    def current_all(self) -> list[Version]:
        out = []
        for name in self.names():
            current = self._current(name)
            if current is not None:
                current.provenance = self.provenance(name, current.version)
                out.append(current)
        return out

    def by_signature(self, signature: str, status: str) -> list[Version]:
        return self._rows("WHERE signature = ? AND status = ?", (signature, status))

    def with_status(self, status: str) -> list[Version]:
        return self._rows("WHERE status = ?", (status,))

    # -- life cycle -----------------------------------------------------------------------
    def set_status(self, name: str, version: str, status: str, reason: str,
                   run_id: str | None = None) -> Version:
        assert status in STATUSES
        with immediate(self.db):
            if status == "active":
                # one active version per crystal: the one it replaces retires
                for other in self._rows("WHERE name = ? AND status = 'active' AND version != ?",
                                        (name, version)):
                    self.db.execute("UPDATE crystal_versions SET status = 'retired', reason = ?"
                                    " WHERE name = ? AND version = ?",
                                    (f"replaced by {version}", name, other.version))
            self.db.execute(
                "UPDATE crystal_versions SET status = ?, reason = ?,"
                " was_active = MAX(was_active, ?), failures = CASE WHEN ? THEN 0"
                " ELSE failures END WHERE name = ? AND version = ?",
                (status, reason, int(status == "active"), int(status == "active"), name,
                 version))
        self.event(name, version, status, reason, run_id)
        return self.get(name, version)

    def count(self, name: str, version: str, column: str, by: float = 1) -> Version:
        assert column in ("agreements", "failures", "runs", "saved_usd")
        self.db.execute(f"UPDATE crystal_versions SET {column} = {column} + ?"
                        " WHERE name = ? AND version = ?", (by, name, version))
        return self.get(name, version)

    def remove(self, name: str, version: str | None = None) -> list[str]:
        targets = [self.get(name, version)] if version else self.versions(name)
        for target in targets:
            self.db.execute("DELETE FROM crystal_versions WHERE name = ? AND version = ?",
                            (name, target.version))
            for suffix in (".py", ".json"):
                (self.directory(name) / f"{target.version}{suffix}").unlink(missing_ok=True)
            self.event(name, target.version, "removed", "by the user")
        if not version or not self._rows("WHERE name = ?", (name,)):
            shutil.rmtree(self.directory(name), ignore_errors=True)
        return [t.version for t in targets]

    def event(self, name: str, version: str, event: str, detail: str = "",
              run_id: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO crystal_events (ts, name, version, event, detail, run_id) VALUES"
            " (strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?, ?, ?, ?, ?)",
            (name, version, event, detail, run_id))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [dict(zip(("ts", "version", "event", "detail", "run_id"), row, strict=True))
                for row in self.db.execute(
                    "SELECT ts, version, event, detail, run_id FROM crystal_events"
                    " WHERE name = ? ORDER BY id", (name,)).fetchall()]
