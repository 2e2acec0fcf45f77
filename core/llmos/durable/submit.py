"""Queue goals for workers, and schedule them (a DBOS client: nothing is launched).

``submit`` puts a goal on the ``llmos-goals`` queue under a new run id (the workflow id);
a worker claims it (DBOS dequeues each workflow for exactly one executor) and runs it
through the router. ``Schedules`` keeps cron schedules in the same system database; every
worker's engine fires a due goal once per due time onto the same queue.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmos.config import ConfigError
from llmos.durable.engine import (
    APP_VERSION,
    GOALS_QUEUE,
    RUN_WORKFLOW,
    SCHEDULED_WORKFLOW,
    client,
    database_url,
    goal_spec,
)


def _site(workspace: Any, settings: list[str] | None, project: str | None) -> str:
    from llmos.kernel import Kernel

    kernel = Kernel(workspace, flags=settings or [], project=project)  # checks the project
    return database_url(kernel)


def _check(goal: str, budget_usd: float | None) -> str:
    goal = goal.strip()
    if not goal:
        raise ConfigError('the goal is empty: say what you want done, e.g. llmos submit "..."')
    if budget_usd is not None and not budget_usd > 0:
        raise ConfigError(f"--budget must be a positive number of USD, not {budget_usd:g}")
    return goal


def submit(goal: str, *, workspace: Any = None, settings: list[str] | None = None,
           project: str | None = None, budget_usd: float | None = None,
           mode: str | None = None) -> str:
    """Queue ``goal`` for a worker; returns its run id (``llmos runs show ID``). ``mode``
    forces a dispatch mode, like ``llmos run --mode``."""
    goal = _check(goal, budget_usd)
    url = _site(workspace, settings, project)
    run_id = uuid.uuid4().hex[:16]
    dbos = client(url)
    try:
        dbos.enqueue({"workflow_name": RUN_WORKFLOW, "queue_name": GOALS_QUEUE,
                      "workflow_id": run_id, "app_version": APP_VERSION},
                     goal_spec(goal, project=project, budget_usd=budget_usd, mode=mode))
    finally:
        dbos.destroy()
    return run_id


def queued(kernel: Any, run_id: str) -> dict[str, Any] | None:
    """A submitted goal no worker has started yet (no run record so far): its id, status
    ("queued"), goal and submission time; None when ``run_id`` is no such goal. A workspace
    that never used the durable engine answers at once, without loading it."""
    url = database_url(kernel)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return None
    dbos = client(url)
    try:
        found = dbos.list_workflows(workflow_ids=[run_id], load_output=False)
    finally:
        dbos.destroy()
    if not found or found[0].status not in ("ENQUEUED", "PENDING", "DELAYED"):
        return None
    workflow = found[0]
    args = (workflow.input or {}).get("args") or ()  # the workflow's input: (spec,)
    spec = args[0] if args and isinstance(args[0], dict) else {}
    submitted = (datetime.fromtimestamp(workflow.created_at / 1000, tz=UTC)
                 .isoformat(timespec="seconds") if workflow.created_at else None)
    return {"id": run_id, "status": "queued", "goal": spec.get("goal"),
            "project": spec.get("project"), "budget_usd": spec.get("budget_usd"),
            "submitted_at": submitted, "queue": workflow.queue_name}


def check_cron(expression: str) -> str:
    from croniter import croniter

    expression = " ".join(expression.split())
    if not croniter.is_valid(expression, second_at_beginning=True):
        raise ConfigError(
            f"{expression!r} is not a cron expression: use 5 fields (minute hour day month "
            "weekday, e.g. '0 3 * * *' for 03:00 every day) or 6 with seconds first "
            "(e.g. '*/10 * * * * *' for every 10 seconds)")
    return expression


@dataclass
class Schedule:
    id: str
    cron: str
    goal: str
    project: str | None
    budget_usd: float | None
    status: str
    last_fired_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Schedules:
    """The cron schedules of the system database ``llmos schedule`` works on."""

    def __init__(self, workspace: Any = None, settings: list[str] | None = None,
                 project: str | None = None) -> None:
        self.project = project
        self.client = client(_site(workspace, settings, project))

    def close(self) -> None:
        self.client.destroy()

    def add(self, cron: str, goal: str, *, budget_usd: float | None = None) -> Schedule:
        cron = check_cron(cron)
        goal = _check(goal, budget_usd)
        name = uuid.uuid4().hex[:8]
        self.client.create_schedule(
            schedule_name=name, workflow_name=SCHEDULED_WORKFLOW, schedule=cron,
            context={"goal": goal, "project": self.project, "budget_usd": budget_usd},
            queue_name=GOALS_QUEUE)
        return self.get(name)

    def list(self) -> list[Schedule]:
        found = self.client.list_schedules(workflow_name=SCHEDULED_WORKFLOW)
        return sorted((self._of(s) for s in found), key=lambda s: s.id)

    def get(self, name: str) -> Schedule:
        found = self.client.get_schedule(name)
        if found is None or found["workflow_name"] != SCHEDULED_WORKFLOW:
            raise ScheduleNotFound(f"no schedule {name!r} (llmos schedule list shows them)")
        return self._of(found)

    def remove(self, name: str) -> None:
        self.get(name)
        self.client.delete_schedule(name)

    def pause(self, name: str) -> Schedule:
        self.get(name)
        self.client.pause_schedule(name)
        return self.get(name)

    def resume(self, name: str) -> Schedule:
        self.get(name)
        self.client.resume_schedule(name)
        return self.get(name)

    def _of(self, raw: Any) -> Schedule:
        context = raw["context"]
        if isinstance(context, (str, bytes)):
            context = self.client._sys_db.serializer.deserialize(context)
        context = context or {}
        return Schedule(id=raw["schedule_name"], cron=raw["schedule"],
                        goal=context.get("goal", ""), project=context.get("project"),
                        budget_usd=context.get("budget_usd"), status=raw["status"].lower(),
                        last_fired_at=raw.get("last_fired_at"))


class ScheduleNotFound(LookupError):
    pass
