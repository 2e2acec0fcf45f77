"""The Python API::

    async with LLMOS(workspace="workspace", budget_usd=5) as llm_os:
        result = await llm_os.execute("Create primes.py printing the first 10 primes")
        print(result.mode, result.cost_usd, result.output)

``execute`` returns a ``RunResult`` with the same fields as ``llmos run --json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmos.kernel import Kernel
from llmos.runner import RunResult, execute


class LLMOS:
    def __init__(
        self,
        workspace: Path | str | None = None,
        *,
        budget_usd: float | None = None,
        settings: list[str] | None = None,
        interactive: bool = False,
        plugins: dict[str, object] | None = None,
        project: str | None = None,
    ) -> None:
        """``budget_usd`` sets the battery's balance (as ``llmos budget set`` does);
        ``settings`` are ``section.key=value`` overrides, like ``--set``; ``project`` works
        inside ``projects/<project>/`` with its own memory, like ``--project``."""
        self.kernel = Kernel(workspace, flags=settings, interactive=interactive, plugins=plugins,
                             project=project)
        self._budget_usd = budget_usd

    async def __aenter__(self) -> LLMOS:
        await self.kernel.start()
        if self._budget_usd is not None:
            self.kernel.economy.set_balance(self._budget_usd, "LLMOS(budget_usd=...)")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kernel.aclose()

    async def execute(self, goal: str, *, mode: str | None = None) -> RunResult:
        """Carry out ``goal``: replayed for free when a proven trace fits, else learned."""
        return await execute(self.kernel, goal, mode=mode)

    def route(self, goal: str) -> dict[str, Any]:
        """Which mode would run ``goal`` and why (``llmos route --json``)."""
        from llmos.learning.dispatcher import route

        return route(self.kernel, goal).as_dict()

    def stats(self) -> dict[str, Any]:
        from llmos.learning.stats import DispatchLog

        return DispatchLog(self.kernel.db).stats()


def submit(goal: str, *, workspace: Path | str | None = None, project: str | None = None,
           budget_usd: float | None = None, settings: list[str] | None = None,
           mode: str | None = None) -> str:
    """Queue ``goal`` for a worker (``llmos worker``) and return its run id, like
    ``llmos submit``; ``budget_usd`` caps that run, ``mode`` forces a dispatch mode. Read
    the result with ``llmos runs show ID`` (or the run log) once a worker ran it."""
    from llmos.durable.submit import submit as enqueue

    return enqueue(goal, workspace=workspace, settings=settings, project=project,
                   budget_usd=budget_usd, mode=mode)
