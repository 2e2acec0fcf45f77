"""ORCHESTRATOR: a goal with several distinct deliverables is planned into sub-goals, each
routed on its own (replayed when known, learned when new), and the results synthesized.

How it decides (``llmos route`` shows the reason): the goal's structure, read by
``llmos.agents.structure`` — two or more clauses that each produce their own deliverable.
It bids 0 otherwise, and never on a sub-goal of an orchestration.

How it runs: one Claude Code session with no file tools and no built-in tools at all;
it can only list or create agents and call ``run_plan`` (``llmos.agents.plan``), whose
input is the plan. Every sub-goal is a run of its own, linked to this one; the run's
single ``run_plan`` step makes a successful orchestration a trace, so the same goal
again is replayed by FOLLOWER: the plan runs with no planning request.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

import llmos
from llmos.calls import CallContext, Decision, ToolCall
from llmos.learning.dispatcher import Bid

if TYPE_CHECKING:
    from llmos.cortex.bridge import Progress
    from llmos.goals import Goal
    from llmos.kernel import Kernel
    from llmos.learning.matching import Candidate
    from llmos.runner import ModeOutcome

SESSION_TOOLS = ("run_plan", "list_agents", "create_agent", "modify_agent")
KNOWN_GOALS = 8


class OrchestratorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Whether ORCHESTRATOR bids at all.")
    max_parallel: int = Field(3, ge=1, le=16, description="Most sub-goals running at once "
                              "(fewer when the balance covers fewer paid runs).")
    plan_share: float = Field(0.3, gt=0, le=1, description="The planning session's "
                              "expected cost as a share of budget.run_cap_usd (its bid).")


SYSTEM_PROMPT = """You are llmos's orchestrator. You do not do the work yourself and you
have no file or shell tools. You split the user's goal into sub-goals and carry them out
with the run_plan tool; each sub-goal is run by llmos as a goal of its own, by the agent
you name. Rules:
- One sub-goal per deliverable; word each as a complete, self-contained goal a user
  would give (file names, numbers and sources included).
- When a sub-goal is one of the goals already solved (listed below), use exactly that
  wording: it is then replayed at no cost.
- Give a sub-goal to the agent whose description fits it; if none fits and a specialist
  would help, you may create one with create_agent first, then use it.
- depends_on lists the sub-goals whose results a sub-goal needs; independent sub-goals
  run at the same time. Give each an acceptance check.
- After run_plan, check each result against its acceptance check (you may run a
  corrective plan), then answer with a short synthesis of what was delivered."""


def _agents_text(kernel: Kernel) -> str:
    from llmos.agents.registry import agents_of

    agents = agents_of(kernel).all()
    if not agents:
        return "(no agents: sub-goals run as general runs)"
    return "\n".join(f"- {a.name}: {a.spec.description} (tools: {', '.join(a.spec.tools)})"
                     for a in agents)


def _known_goals(kernel: Kernel, goal: str) -> str:
    try:
        traces = kernel.memory.search_traces(goal, limit=KNOWN_GOALS)
    except Exception:  # a memory that cannot search only loses the hint
        return "(none)"
    texts = [t.goal_text for t in traces if not t.demoted and t.mode != "ORCHESTRATOR"]
    return "\n".join(f"- {t}" for t in dict.fromkeys(texts)) or "(none)"


def _mcp_server(context: CallContext) -> Any:
    from claude_agent_sdk import create_sdk_mcp_server, tool

    from llmos.cortex.bridge import call_for_model

    kernel = context.kernel
    sdk_tools = []
    for name in SESSION_TOOLS:
        registered = kernel.tools.get(name)
        if registered is None:
            continue

        async def handler(args: dict[str, Any], _name: str = name) -> dict[str, Any]:
            # counted, shown and checked like every call the model makes
            return await call_for_model(context, _name, args, images=False)

        sdk_tools.append(tool(name, registered.description, registered.input_schema())(handler))
    from llmos.cortex.bridge import MCP_SERVER

    return MCP_SERVER, create_sdk_mcp_server(MCP_SERVER, tools=sdk_tools)


def planning_session(context: CallContext, system_prompt: str):
    """The orchestrator's Claude Code options: no built-in tools, only its own MCP tools."""
    server_name, server = _mcp_server(context)

    def adjust(options: Any) -> Any:
        return dataclasses.replace(options, tools=[], mcp_servers={server_name: server},
                                   system_prompt=system_prompt)

    return adjust


class OrchestratorMode:
    name = "ORCHESTRATOR"
    description = ("Plans a goal with several deliverables into sub-goals, each routed on its "
                   "own (replayed when known) and run by the fitting agent.")
    paid = True
    min_confidence = 0.8

    def bid(self, goal: Goal, candidates: list[Candidate], kernel: Kernel) -> Bid | None:
        from llmos.agents.plan import IN_SUBGOAL
        from llmos.agents.structure import analyze_structure

        cfg = kernel.config.section("orchestrator")
        estimate = round(kernel.config.budget.run_cap_usd * cfg.plan_share, 6)
        if not cfg.enabled:
            return Bid(self.name, 0.0, "disabled (orchestrator.enabled = false)", estimate)
        if IN_SUBGOAL.get() is not None:
            return Bid(self.name, 0.0, "a sub-goal of an orchestration is not split again",
                       estimate)
        structure = analyze_structure(goal.text)
        if not structure.complex:
            return Bid(self.name, 0.0, f"{structure.explain()}: nothing to split", estimate)
        return Bid(self.name, 0.9, f"{structure.explain()}: planned as sub-goals, each "
                   "routed on its own", estimate)

    def preflight(self, kernel: Kernel) -> None:
        from llmos.cortex.learner import check_credentials

        check_credentials()

    async def run(self, goal: str, context: CallContext, *,
                  progress: Progress | None = None) -> ModeOutcome:
        from llmos.cortex.learner import learn_paid

        kernel = context.kernel
        system = (f"{SYSTEM_PROMPT}\n\nAgents:\n{_agents_text(kernel)}\n\n"
                  f"Goals already solved:\n{_known_goals(kernel, goal)}")
        context.extra.setdefault("adjust_options", []).append(
            planning_session(context, system))
        children = context.extra.setdefault("children", [])
        outcome = await learn_paid(context, goal, progress=progress, what="ORCHESTRATOR")
        outcome.details["children"] = [c.run_id for c in children]
        outcome.details["children_cost_usd"] = round(sum(c.cost_usd for c in children), 6)
        outcome.details["children_model_requests"] = sum(c.model_requests for c in children)
        delivered = {c.goal for c in children if c.success}
        failed = [c for c in children if not c.success and c.goal not in delivered]
        if outcome.success and not children:
            outcome.success = False
            outcome.error = "the orchestrator ran no sub-goal (it never called run_plan)"
        elif outcome.success and failed:
            outcome.success = False
            outcome.error = "sub-goals failed: " + "; ".join(
                f"{c.goal!r}: {c.error}" for c in failed)
        return outcome


@llmos.hookimpl
def llmos_register_dispatch_modes(register) -> None:
    register(OrchestratorMode())


@llmos.hookimpl
def llmos_register_config(register) -> None:
    register("orchestrator", OrchestratorConfig)


@llmos.hookimpl
def llmos_register_tools(register) -> None:
    from llmos.agents.plan import RUN_PLAN

    register(RUN_PLAN)


@llmos.hookimpl
def llmos_pre_tool_use(call: ToolCall, context: CallContext) -> Decision | None:
    if call.tool != "run_plan":
        return None
    if context.extra.get("mode") not in ("ORCHESTRATOR", "FOLLOWER"):
        return Decision.deny("run_plan is the orchestrator's tool; only an ORCHESTRATOR run "
                             "(or the replay of one) may call it", "orchestrator.only")
    return None
