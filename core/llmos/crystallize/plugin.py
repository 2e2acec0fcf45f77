"""The built-in crystallizer, registered through ``llmos_register_crystallizers`` like a
third party's would be, with its ``[crystallize]`` config section.

A crystallizer is an object with ``name`` and ``description`` and, optionally:

* ``generated_plugins(kernel) -> {name: plugin}``: plugins it generated in this workspace
  (here: one per active crystal, each registering its tool), loaded by the kernel like any
  other plugin, so ``llmos tools`` and ``llmos plugins`` show them;
* ``async after_run(kernel, route, result)``: sees every finished run (here: shadow
  comparisons, and crystallizing a proven goal when ``[crystallize] auto`` is on).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import llmos
from llmos.crystallize.config import CrystallizeConfig
from llmos.crystallize.store import LIVE, CrystalStore, UnknownCrystal, Version

if TYPE_CHECKING:
    from llmos.goals import Goal
    from llmos.kernel import Kernel
    from llmos.learning.dispatcher import Route
    from llmos.runner import RunResult

log = logging.getLogger("llmos.crystallize")


class CrystalPlugin:
    """A generated plugin: one active crystal's tool."""

    def __init__(self, tool: Any = None, error: str | None = None,
                 version: str | None = None) -> None:
        self.tool, self.error, self.version = tool, error, version

    @llmos.hookimpl
    def llmos_register_tools(self, register: Any) -> None:
        if self.error is not None:
            raise UnknownCrystal(self.error)
        register(self.tool)


def load(store: CrystalStore, version: Version) -> Any:
    """The version's code, checked against its address and the allowlist."""
    from llmos.crystallize.tool import Crystal

    version.provenance = store.provenance(version.name, version.version)
    return Crystal(version, store.source(version.name, version.version))


def active_crystal(kernel: Kernel, goal: Goal) -> tuple[Any, dict[str, Any] | None, str]:
    """(crystal, parameters, why) for the active crystal whose signature and parameters fit
    ``goal``; (None, None, why not) otherwise."""
    from llmos.crystallize.check import CrystalRejected
    from llmos.crystallize.tool import Unbound, bind

    store = CrystalStore(kernel.db, kernel.workspace)
    active = store.by_signature(goal.signature, "active")
    if not active:
        waiting = [v for v in store.by_signature(goal.signature, "shadow")]
        if waiting:
            v = waiting[-1]
            need = kernel.config.section("crystallize").agreements
            return None, None, (f"crystal {v.name} is in shadow ({v.agreements} of {need} "
                                "agreements with the normal path)")
        return None, None, "no active crystal for this goal"
    version = active[-1]
    try:
        crystal = load(store, version)
    except (UnknownCrystal, CrystalRejected) as exc:
        return None, None, f"crystal {version.name} cannot be loaded: {exc}"
    try:
        params = bind(crystal.specs, goal.slots)
    except Unbound as exc:
        return None, None, f"crystal {version.name}: the parameters do not bind ({exc})"
    return crystal, params, ""


class TraceCrystallizer:
    name = "python"
    description = ("Compiles solved instances of one goal into a typed Python tool that calls "
                   "registered tools through the gate; trusted after cassette tests and "
                   "shadow agreement.")

    def generated_plugins(self, kernel: Kernel) -> dict[str, Any]:
        if not (kernel.workspace.generated_plugins_dir / "crystals").is_dir():
            return {}  # nothing was ever crystallized here: leave the database closed
        store = CrystalStore(kernel.db, kernel.workspace)
        found: dict[str, Any] = {}
        for version in store.with_status("active"):
            try:
                found[f"crystal:{version.name}"] = CrystalPlugin(load(store, version).tool(),
                                                                 version=version.version)
            except Exception as exc:  # one broken crystal is reported, never fatal
                found[f"crystal:{version.name}"] = CrystalPlugin(error=str(exc),
                                                                 version=version.version)
        return found

    async def crystallize(self, kernel: Kernel, trace_id: str, progress: Any = None) -> Version:
        from llmos.crystallize.writer import crystallize

        return await crystallize(kernel, trace_id, progress=progress)

    async def after_run(self, kernel: Kernel, route: Route, result: RunResult) -> None:
        if result.mode == "CRYSTALLIZED" or not result.success:
            return
        cfg = kernel.config.section("crystallize")
        store = CrystalStore(kernel.db, kernel.workspace)
        for version in store.by_signature(route.goal.signature, "shadow"):
            await shadow_compare(kernel, store, version, route.goal, result.run_id, cfg)
        if cfg.auto and result.trace_id and self._qualifies(kernel, store, route, result, cfg):
            try:
                await self.crystallize(kernel, result.trace_id)
            except Exception as exc:  # paid work refused, code rejected...: logged, no retry
                log.warning("automatic crystallization of %s failed: %s",
                            route.goal.normalized, exc)
                kernel.bus.publish("crystal.failed", run_id=result.run_id, error=str(exc))

    @staticmethod
    def _qualifies(kernel: Kernel, store: CrystalStore, route: Route, result: RunResult,
                   cfg: CrystallizeConfig) -> bool:
        """Enough solved instances, and replay cannot serve them (a derived value), and no
        crystal was tried for the signature before."""
        signature = route.goal.signature
        if any(store.by_signature(signature, status) for status in
               (*LIVE, "rejected", "demoted", "retired")):
            return False
        family = kernel.memory.find_traces(signature=signature)
        if len(family) < cfg.min_runs:
            return False
        replayable = any(c.replayable for c in route.candidates
                         if c.trace.goal_signature == signature)
        return result.diverged or not replayable


async def shadow_compare(kernel: Kernel, store: CrystalStore, version: Version, goal: Goal,
                         run_id: str, cfg: CrystallizeConfig) -> Version:
    """Drive the shadow version with the cassette of the run the normal path just made:
    the same calls (and so the same files) is an agreement; K of them make it active; a
    disagreement counts as a failure."""
    from llmos.crystallize.cassette import CassetteIncomplete, entries_from_steps
    from llmos.crystallize.tool import Unbound, bind
    from llmos.crystallize.writer import run_cassette

    name, number = version.name, version.version
    try:
        crystal = load(store, version)
        bind(crystal.specs, goal.slots)
        entries = entries_from_steps(kernel.memory.run_steps(run_id))
    except (Unbound, CassetteIncomplete, UnknownCrystal) as exc:
        store.event(name, number, "not compared", str(exc), run_id)
        return version
    outcome = await run_cassette(kernel, crystal.checked.source, number, crystal.specs,
                                 crystal.allowed, goal.slots, entries, crystal.programs)
    if outcome["agreed"]:
        version = store.count(name, number, "agreements")
        store.event(name, number, "agreed", f"with run {run_id} ({goal.text})", run_id)
        kernel.bus.publish("crystal.agreed", name=name, version=number, run_id=run_id)
        if version.agreements >= cfg.agreements:
            version = store.set_status(name, number, "active",
                                       f"agreed with the normal path {version.agreements} "
                                       "times", run_id)
        return version
    version = store.count(name, number, "failures")
    store.event(name, number, "disagreed", outcome["reason"], run_id)
    kernel.bus.publish("crystal.disagreed", name=name, version=number, run_id=run_id,
                       reason=outcome["reason"])
    if version.failures >= cfg.demote_after:
        version = store.set_status(name, number, "demoted",
                                   f"{version.failures} disagreements with the normal path; "
                                   f"last: {outcome['reason']}"[:1000], run_id)
    return version


@llmos.hookimpl
def llmos_register_crystallizers(register: Any) -> None:
    register(TraceCrystallizer())


@llmos.hookimpl
def llmos_register_config(register: Any) -> None:
    register("crystallize", CrystallizeConfig)
