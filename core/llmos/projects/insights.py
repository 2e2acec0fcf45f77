"""Cross-project insights, from the records themselves: each project's run log and traces,
the dispatch log (what replay saved) and the orchestrator's sub-goal log (which agent ran
what, and how it went).

- ``projects``: per scope (the workspace itself, then each project): runs, successes,
  runs by mode, spend, replays and what they saved, traces kept;
- ``patterns``: goal patterns (normalized goals) that recur, across projects first;
- ``agents``: per agent and project, the sub-goals it ran, how many succeeded, the cost.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from llmos.goals import analyze_goal

if TYPE_CHECKING:
    from llmos.kernel import Kernel
    from llmos.memory.base import MemoryBackend

ROOT = "(workspace)"


def _scopes(kernel: Kernel) -> list[tuple[str, MemoryBackend, bool]]:
    """(name, memory, opened here) for the workspace and every project."""
    from llmos.projects import ProjectWorkspace, list_projects, memory_of, project_dir

    current = getattr(kernel.workspace, "project", "")
    root = getattr(kernel.workspace, "parent", None) or kernel.workspace
    scopes: list[tuple[str, MemoryBackend, bool]] = []
    scopes.append((ROOT, kernel.memory, False) if not current
                  else (ROOT, memory_of(kernel, root), True))
    for name in list_projects(root):
        if name == current:
            scopes.append((name, kernel.memory, False))
            continue
        workspace = ProjectWorkspace(project_dir(root, name).resolve(), parent=root,
                                     project=name)
        scopes.append((name, memory_of(kernel, workspace), True))
    return scopes


def _saved(kernel: Kernel) -> dict[str, tuple[float, int]]:
    from llmos.learning.stats import DispatchLog

    log = DispatchLog(kernel.db)
    return {row["run_id"]: (row["saved_usd"] or 0.0, row["model_requests"] or 0)
            for row in log.db.query("SELECT run_id, saved_usd, model_requests "
                                    "FROM dispatch_log")}


def _agents(kernel: Kernel) -> list[dict[str, Any]]:
    from llmos.agents.plan import migrations

    migrations.apply(kernel.db)
    rows = kernel.db.query(
        "SELECT coalesce(agent, '') AS agent, project, count(*) AS runs, sum(success) AS ok, "
        "sum(cost_usd) AS cost, sum(mode = 'FOLLOWER') AS replayed "
        "FROM orchestrator_subgoals GROUP BY coalesce(agent, ''), project "
        "ORDER BY agent, project")
    return [{"agent": r["agent"] or None, "project": r["project"] or ROOT,
             "subgoals": r["runs"], "succeeded": r["ok"] or 0,
             "success_rate": round((r["ok"] or 0) / r["runs"], 4) if r["runs"] else 0.0,
             "replayed": r["replayed"] or 0, "cost_usd": round(r["cost"] or 0.0, 6)}
            for r in rows]


def insights(kernel: Kernel) -> dict[str, Any]:
    """The stable JSON of ``llmos insights --json``."""
    saved = _saved(kernel)
    projects: list[dict[str, Any]] = []
    patterns: dict[str, dict[str, Any]] = {}
    for name, memory, opened in _scopes(kernel):
        try:
            runs = memory.list_runs(limit=None)
            traces = memory.list_traces()
        finally:
            if opened and hasattr(memory, "close"):
                memory.close()
        by_mode = Counter(r.mode for r in runs)
        replays = [r for r in runs if r.mode == "FOLLOWER" and r.success]
        projects.append({
            "project": name,
            "runs": len(runs),
            "top_level_runs": sum(1 for r in runs if r.parent_run is None),
            "succeeded": sum(1 for r in runs if r.success),
            "by_mode": dict(sorted(by_mode.items())),
            "spend_usd": round(sum(r.cost_usd for r in runs), 6),
            "replays": len(replays),
            "saved_usd": round(sum(saved.get(r.id, (0.0, 0))[0] for r in runs), 6),
            "model_requests": sum(saved.get(r.id, (0.0, 0))[1] for r in runs),
            "traces": len(traces),
        })
        for run in runs:
            normalized = analyze_goal(run.goal).normalized
            entry = patterns.setdefault(normalized, {"pattern": normalized, "example": run.goal,
                                                     "runs": 0, "replayed": 0,
                                                     "projects": defaultdict(int)})
            entry["runs"] += 1
            entry["replayed"] += int(run.mode == "FOLLOWER" and bool(run.success))
            entry["projects"][name] += 1
    recurring = [
        {**p, "projects": dict(sorted(p["projects"].items()))}
        for p in patterns.values() if p["runs"] >= 2
    ]
    recurring.sort(key=lambda p: (-len(p["projects"]), -p["runs"], p["pattern"]))
    return {"projects": projects, "patterns": recurring, "agents": _agents(kernel)}
