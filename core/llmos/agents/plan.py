"""``run_plan``: the one tool through which the orchestrator acts.

Its input is the plan (structured: sub-goals, the agent of each, dependencies, an
acceptance check), validated before anything runs. Each sub-goal goes back through the
router (``llmos.runner.execute``) as its own run, linked to the orchestrating run by
``parent_run``: a sub-goal solved before replays at $0, a new one is learned (and becomes
a trace of its own). Sub-goals whose dependencies are done run concurrently, as many at a
time as ``orchestrator.max_parallel`` and the balance allow (each paid run needs its cap
free). The result is what each sub-goal delivered, for the orchestrator to check and
synthesize. Because the call is a tool call, it is a step of the orchestrating run: a
successful orchestration becomes a trace whose replay runs the same plan with no
planning request.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmos.storage import Migrations
from llmos.tools import Tool, ToolError, ToolMeta

if TYPE_CHECKING:
    from llmos.calls import CallContext
    from llmos.kernel import Kernel
    from llmos.runner import RunResult

RESULT_CHARS = 4000
IN_SUBGOAL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "llmos_orchestrated_subgoal", default=None)
"""The parent run id while a sub-goal runs (a sub-goal is not orchestrated again)."""

migrations = Migrations("orchestrator")


@migrations
def m001_subgoals(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE orchestrator_subgoals (
            parent_run TEXT NOT NULL, child_run TEXT, subgoal TEXT NOT NULL,
            goal TEXT NOT NULL, agent TEXT, project TEXT NOT NULL DEFAULT '',
            mode TEXT, success INTEGER NOT NULL, cost_usd REAL NOT NULL DEFAULT 0,
            saved_usd REAL NOT NULL DEFAULT 0, ts TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX orchestrator_subgoals_parent ON orchestrator_subgoals "
                "(parent_run)")


class SubGoal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="short id, e.g. 's1', used by depends_on")
    goal: str = Field(min_length=1, description="one self-contained goal, worded as a user "
                      "would ask it")
    agent: str | None = Field(None, description="the agent to run it (list_agents); omit "
                              "for a general run")
    depends_on: list[str] = Field(default_factory=list,
                                  description="ids of sub-goals that must be done first")
    acceptance: str = Field("", description="how to tell that it is done")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_-]{1,32}$", value):
            raise ValueError("use 1-32 letters, digits, '-' or '_'")
        return value


class RunPlanInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subgoals: list[SubGoal] = Field(min_length=1, max_length=12)


def check_plan(plan: RunPlanInput, kernel: Kernel) -> None:
    """Refuse a plan that cannot run: repeated ids, unknown dependencies or agents, a cycle."""
    from llmos.agents.registry import UnknownAgent, agents_of

    ids = [s.id for s in plan.subgoals]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ToolError(f"sub-goal ids must be unique; repeated: {', '.join(repeated)}")
    for sub in plan.subgoals:
        unknown = [d for d in sub.depends_on if d not in ids]
        if unknown:
            raise ToolError(f"sub-goal {sub.id!r} depends on unknown ids: {', '.join(unknown)}")
        if sub.id in sub.depends_on:
            raise ToolError(f"sub-goal {sub.id!r} depends on itself")
        if sub.agent:
            try:
                agents_of(kernel).get(sub.agent)
            except UnknownAgent as exc:
                raise ToolError(f"sub-goal {sub.id!r}: {exc}") from None
    done: set[str] = set()
    pending = {s.id: set(s.depends_on) for s in plan.subgoals}
    while pending:
        ready = [i for i, deps in pending.items() if deps <= done]
        if not ready:
            raise ToolError(f"the dependencies form a cycle among: {', '.join(sorted(pending))}")
        for i in ready:
            done.add(i)
            del pending[i]


def _parallel(kernel: Kernel) -> int:
    """How many sub-goals may run at once: the configured limit, and no more paid runs
    than the balance covers at the run cap."""
    from llmos.economy import MICRO

    limit = kernel.config.section("orchestrator").max_parallel
    cap = round(kernel.config.budget.run_cap_usd * MICRO)
    if cap > 0:
        limit = min(limit, max(1, kernel.economy.available_micro // cap))
    return max(1, limit)


def _record(kernel: Kernel, parent: str | None, sub: SubGoal, result: RunResult | None,
            error: str | None) -> None:
    db = kernel.db
    migrations.apply(db)
    db.execute(
        "INSERT INTO orchestrator_subgoals (parent_run, child_run, subgoal, goal, agent, "
        "project, mode, success, cost_usd, saved_usd, ts) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [parent or "", result.run_id if result else None, sub.id, sub.goal, sub.agent,
         getattr(kernel.workspace, "project", ""), result.mode if result else None,
         int(bool(result and result.success)), result.cost_usd if result else 0.0,
         result.saved_usd if result else 0.0, f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"])


async def _run_one(context: CallContext, sub: SubGoal) -> tuple[RunResult | None, str | None]:
    from llmos.agents.registry import agents_of
    from llmos.agents.session import run_extra
    from llmos.errors import exit_code_for
    from llmos.runner import execute

    kernel = context.kernel
    agent = agents_of(kernel).get(sub.agent) if sub.agent else None  # hot: read now
    token = IN_SUBGOAL.set(context.run_id or "")
    try:
        result = await execute(kernel, sub.goal, parent_run=context.run_id,
                               extra=run_extra(agent))
    except Exception as exc:
        if exit_code_for(exc) is None:
            raise
        return None, str(exc)
    finally:
        IN_SUBGOAL.reset(token)
    return result, None if result.success else (result.error or "the run failed")


def _shown(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > RESULT_CHARS:
        return text[:RESULT_CHARS] + f"\n[... {len(text) - RESULT_CHARS} characters more ...]"
    return text


async def run_plan(args: RunPlanInput, context: CallContext) -> dict[str, Any]:
    kernel = context.kernel
    if context.extra.get("parent_run"):
        raise ToolError("a sub-goal is not orchestrated further: solve it directly")
    check_plan(args, kernel)
    results: dict[str, tuple[RunResult | None, str | None]] = {}
    children: list[RunResult] = context.extra.setdefault("children", [])
    gate = asyncio.Semaphore(_parallel(kernel))
    by_id = {s.id: s for s in args.subgoals}
    finished: dict[str, asyncio.Event] = {s.id: asyncio.Event() for s in args.subgoals}

    async def one(sub: SubGoal) -> None:
        try:
            for dep in sub.depends_on:
                await finished[dep].wait()
            failed = [d for d in sub.depends_on if not (results[d][0] and results[d][0].success)]
            if failed:
                results[sub.id] = (None, f"not run: it depends on {', '.join(failed)}, which "
                                         "did not succeed")
            else:
                async with gate:
                    results[sub.id] = await _run_one(context, sub)
            result, error = results[sub.id]
            if result is not None:
                children.append(result)
            _record(kernel, context.run_id, sub, result, error)
        finally:
            finished[sub.id].set()

    await asyncio.gather(*(one(s) for s in args.subgoals))
    report = []
    for sub_id, sub in by_id.items():
        result, error = results[sub_id]
        entry: dict[str, Any] = {"id": sub_id, "goal": sub.goal, "agent": sub.agent,
                                 "success": bool(result and result.success)}
        if sub.acceptance:
            entry["acceptance"] = sub.acceptance
        if result is not None and result.success:
            entry["result"] = _shown(result.output)
        else:
            entry["error"] = _shown(error)
        report.append(entry)
    return {"subgoals": report}


RUN_PLAN = Tool(
    "run_plan",
    "Carry out a plan: each sub-goal runs as its own goal (replayed for free when it was "
    "solved before, else learned), by the agent named, after the sub-goals it depends on. "
    "Returns what each sub-goal delivered.",
    RunPlanInput, run_plan,
    ToolMeta(side_effects="mutating", offer_to_model=False, timeout_s=3600.0,
             error_modes=("invalid plan", "unknown agent", "a sub-goal failed")),
)


def children_of(kernel: Kernel, parent_run: str) -> list[dict[str, Any]]:
    db = kernel.db
    migrations.apply(db)
    return list(db.query("SELECT * FROM orchestrator_subgoals WHERE parent_run = ? "
                         "ORDER BY rowid", [parent_run]))
