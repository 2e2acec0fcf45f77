"""The agents plugin: ``create_agent``, ``modify_agent`` and ``list_agents`` as tools (so
Claude can grow its own specialists, through the gate), and the gate's part in agents:

- a run made by an agent may call only the tools its file lists (``pre_tool_use``
  denies anything else, whoever calls it: the model or a replay);
- agent files change only through those tools or ``llmos agents``, validated and
  recorded: a file tool writing into an agents folder is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import llmos
from llmos.agents.format import Agent, AgentFileError, AgentSpec, render_agent
from llmos.calls import CallContext, Decision, ToolCall
from llmos.tools import Tool, ToolError, ToolMeta

FILE_WRITE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})


class CreateAgentInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="lowercase name, e.g. 'sql-reviewer' (the file's stem)")
    description: str = Field(description="one line: what the agent is for")
    tools: list[str] = Field(description="the only tools it may call, e.g. ['Read', 'Bash']")
    prompt: str = Field(description="its system prompt")
    model: str | None = Field(None, description="Claude model; omit for the default")
    max_turns: int | None = None
    budget_usd: float | None = None


class ModifyAgentInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the agent to change")
    description: str | None = None
    tools: list[str] | None = None
    prompt: str | None = None
    model: str | None = None
    max_turns: int | None = None
    budget_usd: float | None = None


class ListAgentsInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _actor(context: CallContext) -> str:
    mode = context.extra.get("mode")
    return f"model ({mode} run {context.run_id})" if context.run_id else "llmos"


def _save(context: CallContext, name: str, spec_data: dict[str, Any], prompt: str, *,
          create: bool) -> str:
    from pydantic import ValidationError

    from llmos.agents.changes import AgentChangeError, save_agent

    try:
        spec = AgentSpec.model_validate(spec_data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ToolError(f"invalid agent: {'.'.join(map(str, err['loc']))}: {err['msg']}"
                        ) from None
    try:
        agent, change = save_agent(context.kernel, name, render_agent(spec, prompt),
                                   create=create, actor=_actor(context), run_id=context.run_id)
    except (AgentFileError, AgentChangeError) as exc:
        raise ToolError(str(exc)) from None
    verb = "created" if create else "changed"
    return (f"agent {agent.name!r} {verb} ({change.path}, change #{change.id}); it can be "
            f"used at once, e.g. as the agent of a sub-goal. Tools: {', '.join(agent.spec.tools)}")


async def create_agent(args: CreateAgentInput, context: CallContext) -> str:
    data = args.model_dump(exclude={"prompt"}, exclude_none=True)
    return _save(context, args.name, data, args.prompt, create=True)


async def modify_agent(args: ModifyAgentInput, context: CallContext) -> str:
    from llmos.agents.registry import UnknownAgent, agents_of

    try:
        current = agents_of(context.kernel).get(args.name)
    except UnknownAgent as exc:
        raise ToolError(str(exc)) from None
    data = current.spec.model_dump(exclude_none=True)
    data.update(args.model_dump(exclude={"prompt", "name"}, exclude_none=True))
    return _save(context, args.name, data, args.prompt or current.prompt, create=False)


async def list_agents(args: ListAgentsInput, context: CallContext) -> list[dict[str, Any]]:
    from llmos.agents.registry import agents_of

    return [{"name": a.name, "description": a.spec.description, "tools": a.spec.tools,
             "model": a.spec.model} for a in agents_of(context.kernel).all()]


TOOLS = (
    Tool("create_agent", "Create a specialist agent (a Markdown file in the agents folder): "
         "name, description, the tools it may use, its system prompt. Validated before it is "
         "saved; usable at once.", CreateAgentInput, create_agent,
         ToolMeta(side_effects="mutating", inputs={"prompt": "note", "description": "note"},
                  error_modes=("invalid agent", "agent exists"))),
    Tool("modify_agent", "Change an agent's description, tools, model or prompt; recorded "
         "and reversible.", ModifyAgentInput, modify_agent,
         ToolMeta(side_effects="mutating", inputs={"prompt": "note", "description": "note"},
                  error_modes=("invalid agent", "no such agent"))),
    Tool("list_agents", "List the agents that sub-goals can be given to.", ListAgentsInput,
         list_agents, ToolMeta(side_effects="read-only")),
)


@llmos.hookimpl
def llmos_register_tools(register) -> None:
    for tool in TOOLS:
        register(tool)


def _in_agents_folder(context: CallContext, value: Any) -> bool:
    from llmos.agents.registry import agent_folders

    if not isinstance(value, str) or not value:
        return False
    path = Path(value)
    if not path.is_absolute():
        path = context.workspace / path
    try:
        parent = path.resolve(strict=False).parent
    except (OSError, RuntimeError):
        return True  # cannot tell: fail closed
    return any(parent == folder.resolve() for folder, _ in agent_folders(context.kernel))


@llmos.hookimpl
def llmos_pre_tool_use(call: ToolCall, context: CallContext) -> Decision | None:
    agent: Agent | None = context.extra.get("agent")
    if agent is not None and not agent.allows(call.tool):
        return Decision.deny(
            f"agent {agent.name!r} may use only {', '.join(agent.spec.tools)}; "
            f"{call.tool} is not in its tools (change them with modify_agent)",
            "agent.tools")
    if call.tool in FILE_WRITE_TOOLS and _in_agents_folder(
            context, call.input.get("file_path") or call.input.get("notebook_path")):
        return Decision.deny(
            "agent files change only through create_agent / modify_agent (validated and "
            "recorded, llmos agents history); use those tools", "agent.files")
    return None
