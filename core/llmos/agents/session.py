"""What a run made by an agent gets: its system prompt, its tools, its model, its limits.

``run_extra(agent)`` is the ``CallContext.extra`` of such a run (``runner.execute(...,
extra=...)``): the agent itself (the gate refuses tools outside its list, see
``llmos.agents.plugin``), a change to the Claude Code session (prompt, model, turns, the
built-in tools offered) and the run's cap when the agent has a ``budget_usd``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from llmos.agents.format import MCP_PREFIX, Agent


def agent_prompt(agent: Agent) -> str:
    return (f"You are working as the agent {agent.name!r} ({agent.spec.description}). "
            f"You may use only these tools: {', '.join(agent.spec.tools)}.\n\n{agent.prompt}")


def adjust_for(agent: Agent):
    """A function that changes Claude Code's options for a run made by ``agent``."""

    def adjust(options: Any) -> Any:
        prompt = options.system_prompt
        if isinstance(prompt, dict):
            appended = "\n\n".join(p for p in (prompt.get("append"), agent_prompt(agent)) if p)
            prompt = {**prompt, "append": appended}
        else:
            prompt = "\n\n".join(p for p in (prompt, agent_prompt(agent)) if p)
        # Claude Code's own tools are capitalized (Read, Bash); llmos's are snake_case
        builtin = [t for t in agent.spec.tools
                   if not t.startswith(MCP_PREFIX) and t[:1].isupper()]
        return dataclasses.replace(
            options,
            system_prompt=prompt,
            model=agent.spec.model or options.model,
            max_turns=agent.spec.max_turns or options.max_turns,
            tools=builtin,  # only the built-in tools it may use are offered
        )

    return adjust


def run_extra(agent: Agent | None) -> dict[str, Any]:
    if agent is None:
        return {}
    extra: dict[str, Any] = {"agent": agent, "adjust_options": [adjust_for(agent)]}
    if agent.spec.budget_usd:
        extra["run_cap_usd"] = agent.spec.budget_usd
    return extra
