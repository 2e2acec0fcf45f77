"""The Markdown agent format: YAML front matter describes the agent, the body is its
system prompt::

    ---
    name: researcher
    description: Finds and summarizes information, citing sources.
    tools: [Read, Grep, Glob, WebFetch]
    model: sonnet          # optional; the run's model otherwise
    max_turns: 12          # optional; cortex.max_turns otherwise
    budget_usd: 0.25       # optional; lowers the run's cap (budget.run_cap_usd)
    ---
    You are a careful researcher. ...

``tools`` names the tools the agent may call: Claude Code's own (``Read``, ``Bash``...)
and llmos's (``web_fetch``, or as the model sees it, ``mcp__llmos__web_fetch``); a call
to anything else is refused by the gate. Problems are reported as ``AgentFileError``
with the file and the line they were found on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmos.errors import OperationFailed

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MCP_PREFIX = "mcp__llmos__"
FORMAT_EXAMPLE = "---\nname: NAME\ndescription: WHAT IT DOES\ntools: [Read, Write]\n---\nPROMPT"


class AgentFileError(OperationFailed, ValueError):
    """An agent definition that cannot be used: the file, the line and the problem."""

    def __init__(self, file: str, line: int, problem: str) -> None:
        super().__init__(f"{file}:{line}: {problem}")
        self.file = file
        self.line = line
        self.problem = problem

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "problem": self.problem}


class AgentSpec(BaseModel):
    """The front matter of an agent file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="lowercase letters, digits, '-' and '_'; the file's stem")
    description: str = Field(min_length=1, description="one line: what the agent is for")
    tools: list[str] = Field(min_length=1, description="the only tools the agent may call")
    model: str | None = Field(None, description="Claude model for the agent's runs")
    max_turns: int | None = Field(None, ge=1, le=200)
    budget_usd: float | None = Field(None, gt=0, description="at most this much per run")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("use 1-64 lowercase letters, digits, '-' or '_', starting with "
                             "a letter or digit (e.g. data-analyst)")
        return value

    @field_validator("tools", mode="before")
    @classmethod
    def _tool_string(cls, value: Any) -> Any:
        if isinstance(value, str):  # "tools: Read, Write" as well as a YAML list
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[str]) -> list[str]:
        for item in value:
            if not isinstance(item, str) or not re.match(r"^[A-Za-z_][\w-]*$", item):
                raise ValueError(f"{item!r} is not a tool name (e.g. Read, Bash, web_fetch)")
        return list(dict.fromkeys(value))


@dataclass(frozen=True)
class Agent:
    """A loaded agent: its spec, its system prompt, and where it came from."""

    spec: AgentSpec
    prompt: str
    source: str  # a file path, or "plugin:<name>" for a definition registered in code
    origin: str  # "workspace", "project", or the registering plugin's name

    @property
    def name(self) -> str:
        return self.spec.name

    def allows(self, tool: str) -> bool:
        """Whether the agent may call ``tool`` (llmos tools under either of their names)."""
        allowed = set(self.spec.tools)
        bare = tool[len(MCP_PREFIX):] if tool.startswith(MCP_PREFIX) else tool
        return tool in allowed or bare in allowed or f"{MCP_PREFIX}{bare}" in allowed

    def claude_tools(self) -> list[str]:
        """The tool names as Claude Code knows them (llmos tools get the MCP prefix)."""
        return list(self.spec.tools)

    def as_dict(self) -> dict[str, Any]:
        return {**self.spec.model_dump(), "prompt": self.prompt, "source": self.source,
                "origin": self.origin}


def _lines(text: str) -> list[str]:
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def parse_agent(text: str, source: str, *, origin: str = "workspace",
                expected_name: str | None = None) -> Agent:
    """Read an agent file's text; ``AgentFileError`` (file:line) when it is not valid."""
    lines = _lines(text)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise AgentFileError(source, 1, f"the file is empty; an agent file reads:\n"
                             f"{FORMAT_EXAMPLE}")
    if lines[first].strip() != "---":
        raise AgentFileError(source, first + 1, "an agent file starts with YAML front matter "
                             f"between '---' lines:\n{FORMAT_EXAMPLE}")
    end = next((i for i in range(first + 1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        raise AgentFileError(source, first + 1, "the front matter is not closed by a '---' line")
    offset = first + 2  # the file line of the front matter's first line
    block = "\n".join(lines[first + 1:end]) + "\n"
    import yaml  # only where agent files are read or written (start-up stays cheap)

    try:
        node = yaml.compose(block, Loader=yaml.SafeLoader)
        front = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = offset + (mark.line if mark is not None else 0)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AgentFileError(source, line, f"front matter is not valid YAML: {reason}") from None
    if not isinstance(front, dict):
        raise AgentFileError(source, offset, "the front matter must be a mapping of keys "
                             "(name, description, tools, ...)")
    key_lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            key_lines.setdefault(str(key.value), offset + key.start_mark.line)
    try:
        spec = AgentSpec.model_validate(front)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        line = key_lines.get(key, first + 1)
        if err["type"] == "missing":
            problem = f"missing required key {key!r}"
        elif err["type"] == "extra_forbidden":
            allowed = ", ".join(AgentSpec.model_fields)
            problem = f"unknown key {key!r}; allowed keys: {allowed}"
        else:
            problem = f"{key}: {err['msg']}"
        raise AgentFileError(source, line, problem) from None
    if expected_name is not None and spec.name != expected_name:
        raise AgentFileError(source, key_lines.get("name", offset),
                             f"name {spec.name!r} differs from the file name "
                             f"{expected_name}.md; rename one of them")
    prompt = "\n".join(lines[end + 1:]).strip()
    if not prompt:
        raise AgentFileError(source, end + 2, "the agent has no system prompt: write it "
                             "below the front matter")
    return Agent(spec, prompt, source, origin)


def read_agent_file(path: Path, *, origin: str = "workspace") -> Agent:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentFileError(str(path), 1, f"cannot read the file: {exc}") from None
    return parse_agent(text, str(path), origin=origin, expected_name=path.stem)


def render_agent(spec: AgentSpec, prompt: str) -> str:
    """The file text of an agent (the inverse of ``parse_agent``)."""
    import yaml

    front = spec.model_dump(exclude_none=True)
    dumped = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=None)
    return f"---\n{dumped}---\n{prompt.strip()}\n"


def agent_from_definition(item: Any, plugin: str) -> Agent:
    """An agent registered in code: ``{"name": ..., "description": ..., "tools": [...],
    "prompt": "..."}`` or an ``Agent``."""
    if isinstance(item, Agent):
        return item
    if not isinstance(item, dict):
        raise AgentFileError(f"plugin:{plugin}", 1, f"registered {type(item).__name__}; "
                             "register a directory, a .md file, or a dict with name, "
                             "description, tools and prompt")
    data = dict(item)
    prompt = str(data.pop("prompt", "") or "").strip()
    source = f"plugin:{plugin}"
    try:
        spec = AgentSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise AgentFileError(source, 1, f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
                             ) from None
    if not prompt:
        raise AgentFileError(source, 1, f"agent {spec.name!r} has no prompt")
    return Agent(spec, prompt, source, plugin)
