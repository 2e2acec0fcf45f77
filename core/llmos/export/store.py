"""The conversations kept for export: one row per model session of a run (redacted)."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from llmos.storage import Migrations

migrations = Migrations("export")


@migrations
def m001_conversations(db: sqlite_utils.Database) -> None:
    db["conversations"].create(
        {"id": int, "run_id": str, "ts": str, "mode": str, "simulated": int, "system": str,
         "tools": str, "messages": str, "result": str},
        pk="id",
    )
    db["conversations"].create_index(["run_id"])


class ConversationStore:
    """Where ``ConversationRecorder`` puts a session and the exporter finds it."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        migrations.apply(db)

    def add(self, run_id: str, *, mode: str, simulated: bool, system: str,
            tools: list[dict[str, Any]], messages: list[dict[str, Any]],
            result: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO conversations (run_id, ts, mode, simulated, system, tools, messages,"
            " result) VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?, ?, ?, ?, ?, ?)",
            (run_id, mode, int(simulated), system, json.dumps(tools), json.dumps(messages),
             json.dumps(result)),
        )

    def for_run(self, run_id: str) -> list[dict[str, Any]]:
        """A run's sessions, in the order they ran."""
        rows = self.db.query("SELECT * FROM conversations WHERE run_id = ? ORDER BY id",
                             [run_id])
        sessions = []
        for row in rows:
            try:
                sessions.append(_decode(row))
            except (ValueError, TypeError, RecursionError):
                continue  # an unreadable recorded session is left out, not the export
        return sessions

    def simulated_runs(self) -> set[str]:
        return {r["run_id"] for r in self.db.query(
            "SELECT DISTINCT run_id FROM conversations WHERE simulated = 1")}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "simulated": bool(row["simulated"]),
            **{k: json.loads(row[k]) for k in ("tools", "messages", "result")}}
