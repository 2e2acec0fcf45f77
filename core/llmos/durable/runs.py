"""``llmos runs resume``: continue a stopped run from its last completed step.

The run is (re)started as the DBOS workflow named by its id: if it never was one (a plain
``llmos run`` killed with -9) it becomes one now; if it was (a worker's goal) DBOS picks
it up where its steps stopped. Either way the work step finds the run record and goes on
from what the run log and the saved Claude session say was done (``resume``).
"""

from __future__ import annotations

from typing import Any

from llmos.durable import engine


def resume_run(run_id: str, *, workspace: Any = None, settings: list[str] | None = None,
               project: str | None = None) -> dict[str, Any]:
    """Resume ``run_id``; returns the run's result (``llmos run --json``'s keys)."""
    from llmos.durable.resume import ResumePoint
    from llmos.kernel import Kernel

    settings = list(settings or [])
    kernel = Kernel(workspace, flags=settings, project=project)
    point = ResumePoint.of(kernel, run_id)  # refuses a finished or still running run
    url = engine.database_url(kernel)

    from dbos import DBOS, SetWorkflowID

    from llmos.durable import workflows
    from llmos.durable.liveness import Liveness, Monitor

    workflows.SITE.update(workspace=workspace, settings=settings)
    executor_id = engine.new_executor_id("resume")
    workflows.register()
    DBOS(config=engine.config(url, executor_id))
    DBOS.listen_queues([])  # this process runs this run, not the workers' goals
    with engine.reachable(url):
        DBOS.launch()
    liveness = Liveness(url)
    monitor = Monitor(liveness, executor_id, "resume")
    monitor.start()
    try:
        with SetWorkflowID(run_id):
            return workflows.run_goal(engine.goal_spec(point.run.goal, project=project))
    finally:
        engine.shutdown()
        monitor.stop(forget=True)
        liveness.close()
