"""A run as a DBOS workflow, and a scheduled goal.

``llmos.run`` (workflow id = the run id) has one step, ``llmos.work``: open the
workspace's kernel and carry the goal through the router, like ``llmos run``. When DBOS
runs the step again (its process died mid-goal: ``llmos runs resume``, or a worker
recovering a dead worker's goals) the run record already exists, and the step resumes
it where it stopped (``llmos.durable.resume``): the replayed steps already done are not
redone, the Claude session goes on with the turns it already paid for. When the step
has completed, DBOS returns its recorded result and nothing runs again.

``llmos.scheduled`` is what a cron schedule fires, once per due time (DBOS names it
``sched-<schedule>-<time>``): it starts ``llmos.run`` under a run id derived from that
name, so a due time is one run whoever fires it.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import Any

from dbos import DBOS, SetWorkflowID

from llmos.durable.engine import RUN_WORKFLOW, SCHEDULED_WORKFLOW, goal_spec

# Where this process runs goals: the workspace and ``--set`` overrides of the command
# that launched the engine (a worker, ``llmos runs resume``).
SITE: dict[str, Any] = {"workspace": None, "settings": [], "log": None}


def register() -> None:
    """The workflows are registered when this module is imported; quiet DBOS's logs."""
    import logging

    logging.getLogger("dbos").setLevel(logging.WARNING)


def run_id_for(workflow_id: str) -> str:
    """A run id (16 hex digits) for a workflow id that is not one."""
    return hashlib.blake2b(workflow_id.encode(), digest_size=8).hexdigest()


@DBOS.workflow(name=RUN_WORKFLOW)
def run_goal(spec: dict[str, Any]) -> dict[str, Any]:
    return work(spec, DBOS.workflow_id)


@DBOS.step(name="llmos.work")
def work(spec: dict[str, Any], run_id: str) -> dict[str, Any]:
    return asyncio.run(_work(spec, run_id))


async def _work(spec: dict[str, Any], run_id: str) -> dict[str, Any]:
    from llmos.durable.resume import NothingToResume, ResumePoint
    from llmos.errors import exit_code_for
    from llmos.kernel import Kernel
    from llmos.memory.base import RunNotFound
    from llmos.runner import execute

    settings = list(SITE["settings"])
    if spec.get("budget_usd") is not None:
        settings.append(f"budget.run_cap_usd={float(spec['budget_usd'])}")
    kernel = Kernel(SITE["workspace"], flags=settings, project=spec.get("project"),
                    interactive=False)
    async with kernel:
        try:
            point: ResumePoint | None = ResumePoint.of(kernel, run_id, recovering=True)
        except RunNotFound:
            point = None
        except NothingToResume:  # it finished before its process died
            return _record(kernel, run_id)
        try:
            result = await execute(kernel, spec["goal"], mode=spec.get("mode"),
                                   run_id=run_id, resume=point)
        except Exception as exc:
            if exit_code_for(exc) is None:  # a bug: the run says so, the workflow fails
                _refused(kernel, run_id, spec["goal"],
                         f"internal error: {type(exc).__name__}: {exc}")
                raise
            # a refused goal (budget, config, policy) is an ordinary failed run
            _refused(kernel, run_id, spec["goal"], str(exc))
            return {"run_id": run_id, "goal": spec["goal"], "success": False,
                    "error": str(exc), "cost_usd": _spent(kernel, run_id)}
        log = SITE.get("log")
        if log is not None:
            state = "done" if result.success else "failed"
            log(f"run {run_id} {state} · {result.mode} · ${result.cost_usd:.4f}"
                + (" · resumed" if point is not None else "") + f" · {result.goal[:60]}")
        return result.as_dict()


def _refused(kernel: Any, run_id: str, goal: str, error: str) -> None:
    """A goal refused before its run started still gets its record (``runs show ID``)."""
    from llmos.memory.base import RunNotFound

    memory = kernel.memory
    try:
        if memory.get_run(run_id).status != "running":
            return  # the runner closed it
    except RunNotFound:
        memory.start_run(goal, "REFUSED", run_id=run_id)
    memory.finish_run(run_id, success=False, error=error,
                      cost_usd=_spent(kernel, run_id))


def _spent(kernel: Any, run_id: str) -> float:
    from llmos.economy import MICRO

    return kernel.economy.run_spent_micro(run_id) / MICRO


def _record(kernel: Any, run_id: str) -> dict[str, Any]:
    run = kernel.memory.get_run(run_id)
    return {"run_id": run.id, "goal": run.goal, "mode": run.mode, "success": run.success,
            "cost_usd": run.cost_usd, "output": run.output or "", "error": run.error}


@DBOS.workflow(name=SCHEDULED_WORKFLOW)
def scheduled_goal(when: datetime, context: dict[str, Any]) -> dict[str, Any]:
    spec = goal_spec(context["goal"], project=context.get("project"),
                     budget_usd=context.get("budget_usd"))
    with SetWorkflowID(run_id_for(DBOS.workflow_id)):
        return run_goal(spec)
