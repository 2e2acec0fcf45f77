"""What the dashboard shows, read from the kernel's stores (never written)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmos.kernel import Kernel
    from llmos.memory.models import RunRecord, Trace

HIT_MODES = ("FOLLOWER",)  # as llmos stats counts replay hits


def _dispatch(kernel: Kernel) -> dict[str, dict[str, Any]]:
    from llmos.learning.stats import DispatchLog

    log = DispatchLog(kernel.db)
    return {r["run_id"]: r for r in log.db.query("SELECT * FROM dispatch_log")}


def _run_row(run: RunRecord, dispatch: dict[str, dict[str, Any]],
             children: dict[str, list[str]]) -> dict[str, Any]:
    logged = dispatch.get(run.id, {})
    return {
        "id": run.id, "goal": run.goal, "mode": run.mode, "status": run.status,
        "success": run.success, "cost_usd": round(run.cost_usd, 6),
        "saved_usd": round(logged.get("saved_usd") or 0.0, 6),
        "duration_s": round(run.duration_s, 3) if run.duration_s is not None else None,
        "started_at": run.started_at.isoformat(), "trace_id": run.trace_id,
        "parent_run": run.parent_run, "sub_goals": children.get(run.id, []),
        "steps": run.step_count, "error": run.error,
    }


def runs(kernel: Kernel, limit: int = 200) -> list[dict[str, Any]]:
    """Newest first, each with its mode, cost, savings, duration, status and sub-goals."""
    records = kernel.memory.list_runs(limit=limit)
    dispatch = _dispatch(kernel)
    children: dict[str, list[str]] = {}
    for run in reversed(records):
        if run.parent_run:
            children.setdefault(run.parent_run, []).append(run.id)
    return [_run_row(r, dispatch, children) for r in records]


def run_detail(kernel: Kernel, run_id: str) -> dict[str, Any]:
    """One run, its steps, its sub-goal runs and the policy decisions made in it."""
    from llmos.audit import AuditLog

    run = kernel.memory.get_run(run_id)
    dispatch = _dispatch(kernel)
    subs = [r for r in kernel.memory.list_runs(limit=None) if r.parent_run == run_id]
    row = _run_row(run, dispatch, {run_id: [s.id for s in reversed(subs)]})
    steps = [{"index": s.index, "tool": s.tool, "input": s.input, "source": s.source,
              "is_error": s.outcome.is_error, "refused": s.outcome.refused,
              "exit_code": s.outcome.exit_code, "excerpt": s.outcome.excerpt}
             for s in kernel.memory.run_steps(run_id)]
    return {"run": row, "steps": steps, "output": run.output,
            "sub_goals": [_run_row(r, dispatch, {}) for r in reversed(subs)],
            "decisions": AuditLog(kernel.db).entries(run_id=run_id, limit=500)}


def _trace_row(trace: Trace) -> dict[str, Any]:
    return {
        "id": trace.id, "goal": trace.goal_text, "steps": len(trace.steps),
        "success_rating": trace.success_rating, "usage_count": trace.usage_count,
        "success_count": trace.success_count, "failure_count": trace.failure_count,
        "divergence_count": trace.divergence_count, "demoted": trace.demoted,
        "demoted_reason": trace.demoted_reason, "source_run": trace.source_run,
        "created_at": trace.created_at.isoformat(),
        "last_used": trace.last_used.isoformat() if trace.last_used else None,
        "estimated_cost_usd": trace.estimated_cost_usd,
    }


def traces(kernel: Kernel) -> list[dict[str, Any]]:
    return [_trace_row(t) for t in kernel.memory.list_traces()]


def trace_detail(kernel: Kernel, trace_id: str) -> dict[str, Any]:
    """A trace's steps with their recorded evidence, and the runs that replayed it."""
    trace = kernel.memory.get_trace(trace_id)
    steps = [{"index": s.index, "tool": s.tool, "input": s.input,
              "is_error": s.outcome.is_error, "exit_code": s.outcome.exit_code,
              "files": [f.model_dump() for f in s.outcome.files],
              "observation": s.outcome.observation, "excerpt": s.outcome.excerpt}
             for s in trace.steps]
    dispatch = _dispatch(kernel)
    replays = [_run_row(r, dispatch, {}) for r in kernel.memory.list_runs(limit=None)
               if r.trace_id == trace_id and r.id != trace.source_run]
    return {"trace": _trace_row(trace), "steps": steps, "replays": replays,
            "slots": [s.model_dump() if hasattr(s, "model_dump") else str(s)
                      for s in trace.slots]}


def budget_series(kernel: Kernel, limit: int = 2000) -> list[dict[str, Any]]:
    """The balance after each ledger entry, oldest first."""
    return [{"ts": e["ts"], "balance_usd": e["balance_usd"], "kind": e["kind"],
             "amount_usd": e["amount_usd"], "run_id": e["run_id"],
             "description": e["description"]}
            for e in reversed(kernel.economy.history(limit=limit))]


def savings_series(kernel: Kernel) -> list[dict[str, Any]]:
    """After each run: cumulative spend and savings, and the replay hit rate so far."""
    from llmos.learning.stats import DispatchLog

    rows = list(DispatchLog(kernel.db).db.query("SELECT * FROM dispatch_log ORDER BY ts"))
    out, spent, saved, hits = [], 0.0, 0.0, 0
    for n, row in enumerate(rows, start=1):
        spent += row["cost_usd"] or 0.0
        saved += row["saved_usd"] or 0.0
        hits += int(row["mode"] in HIT_MODES and bool(row["success"])
                    and not row["diverged"])
        out.append({"ts": row["ts"], "run_id": row["run_id"], "mode": row["mode"],
                    "spend_usd": round(spent, 6), "saved_usd": round(saved, 6),
                    "hit_rate": round(hits / n, 4)})
    return out


def decisions(kernel: Kernel, limit: int = 300) -> list[dict[str, Any]]:
    from llmos.audit import AuditLog

    return AuditLog(kernel.db).entries(limit=limit)


def version(kernel: Kernel) -> str:
    """Changes whenever a run starts, takes a step or ends, or the ledger moves: what the
    live view polls."""
    mem = kernel.memory.list_runs(limit=5)
    ledger = kernel.economy.history(limit=1)
    return "|".join([*(f"{r.id}:{r.status}:{r.step_count}" for r in mem),
                     str(ledger[0]["id"] if ledger else 0)])
