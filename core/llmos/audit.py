"""The audit log: every policy decision, durable (run id, tool, input digest, verdict, rule)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from llmos.storage import Migrations

migrations = Migrations("audit")


@migrations
def m001_audit(db: sqlite_utils.Database) -> None:
    db["audit"].create(
        {"id": int, "ts": str, "run_id": str, "tool": str, "source": str,
         "input_digest": str, "decision": str, "rule": str, "reason": str},
        pk="id",
    )
    db["audit"].create_index(["run_id"])


class AuditLog:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        migrations.apply(db)

    def record(self, **row: Any) -> None:
        """One decision; its reason can quote the input (a URL, a path), so it is redacted."""
        from llmos.memory.redaction import redact_text

        self.db.execute(
            "INSERT INTO audit (ts, run_id, tool, source, input_digest, decision, rule, reason)"
            " VALUES (strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?, ?, ?, ?, ?, ?, ?)",
            (row.get("run_id"), row["tool"], row["source"], row["input_digest"],
             row["decision"], row["rule"], redact_text(row["reason"])[:2000]),
        )

    def entries(self, *, run_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, args = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
        return list(self.db.query(
            f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?", [*args, limit]
        ))
