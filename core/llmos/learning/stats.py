"""The dispatch log: what each run cost, which mode ran it and what replay saved."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from llmos.storage import Migrations

migrations = Migrations("learning")


@migrations
def m001_dispatch_log(db: sqlite_utils.Database) -> None:
    db["dispatch_log"].create(
        {
            "run_id": str,
            "ts": str,
            "mode": str,
            "confidence": float,
            "trace_id": str,
            "success": int,
            "diverged": int,
            "cost_usd": float,
            "saved_usd": float,
            "model_requests": int,
        },
        pk="run_id",
    )


class DispatchLog:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        migrations.apply(db)

    def record(self, **row: Any) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO dispatch_log (run_id, ts, mode, confidence, trace_id,"
            " success, diverged, cost_usd, saved_usd, model_requests) VALUES"
            " (?, strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?, ?, ?, ?, ?, ?, ?, ?)",
            (row["run_id"], row["mode"], row.get("confidence"), row.get("trace_id"),
             int(row["success"]), int(row.get("diverged", False)), row["cost_usd"],
             row.get("saved_usd", 0.0), row.get("model_requests", 0)),
        )

    def stats(self) -> dict[str, Any]:
        """The stable JSON of ``llmos stats --json``."""
        rows = list(self.db.query("SELECT * FROM dispatch_log"))
        runs = len(rows)
        by_mode: dict[str, int] = {}
        for row in rows:
            by_mode[row["mode"]] = by_mode.get(row["mode"], 0) + 1
        hits = sum(1 for r in rows if r["mode"] == "FOLLOWER" and r["success"]
                   and not r["diverged"])
        crystallized = [r for r in rows if r["mode"] == "CRYSTALLIZED" and r["success"]
                        and not r["diverged"]]
        return {
            "runs": runs,
            "by_mode": dict(sorted(by_mode.items())),
            "replay_hits": hits,
            "hit_rate": round(hits / runs, 4) if runs else 0.0,
            "divergences": sum(r["diverged"] for r in rows),
            "succeeded": sum(r["success"] for r in rows),
            "model_requests": sum(r["model_requests"] or 0 for r in rows),
            "spend_usd": round(sum(r["cost_usd"] or 0 for r in rows), 6),
            "saved_usd": round(sum(r["saved_usd"] or 0 for r in rows), 6),
            "crystallized_runs": len(crystallized),
            "crystallized_saved_usd": round(sum(r["saved_usd"] or 0 for r in crystallized), 6),
        }
