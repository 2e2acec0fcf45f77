"""Tools: a name, a description, a pydantic input model, an async callable and metadata."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

SideEffects = Literal["read-only", "idempotent", "mutating"]


class ToolError(Exception):
    """Raised by a tool to report a failure meant for the caller (no traceback shown)."""


class ToolInputError(ToolError):
    """The input did not match the tool's input model; the tool did not run."""


class ToolNameCollision(Exception):
    """Two plugins registered a tool with the same name."""


@dataclass(frozen=True)
class ToolMeta:
    """What a caller should know before calling a tool."""

    side_effects: SideEffects = "mutating"
    cost_hint_usd: float = 0.0
    latency_hint_s: float = 0.0
    error_modes: tuple[str, ...] = ()
    offer_to_model: bool = True


@dataclass(frozen=True)
class Tool:
    """A callable capability. ``func`` receives the validated input model instance."""

    name: str
    description: str
    input_model: type[BaseModel]
    func: Callable[..., Awaitable[Any]]
    meta: ToolMeta = field(default_factory=ToolMeta)
    plugin: str = ""

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def validate(self, data: dict[str, Any]) -> BaseModel:
        """Validate raw input, raising ToolInputError with a message naming each problem."""
        try:
            return self.input_model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(input)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ToolInputError(f"invalid input for tool {self.name!r}: {problems}") from None

    def describe(self) -> dict[str, Any]:
        """The stable JSON shape of ``llmos tools --json``."""
        return {
            "name": self.name,
            "plugin": self.plugin,
            "description": self.description,
            "input_schema": self.input_schema(),
            "side_effects": self.meta.side_effects,
            "cost_hint_usd": self.meta.cost_hint_usd,
            "latency_hint_s": self.meta.latency_hint_s,
            "error_modes": list(self.meta.error_modes),
        }


# Claude Code's own tools that only read or inform (no effect on the world).
CLAUDE_READ_ONLY_TOOLS = frozenset({
    "Read", "Glob", "Grep", "LS", "NotebookRead", "TodoWrite", "TodoRead", "WebFetch",
    "WebSearch", "ToolSearch", "BashOutput", "ListMcpResourcesTool", "ReadMcpResourceTool",
})


def is_read_only(name: str, tools: ToolRegistry) -> bool:
    """Whether calling ``name`` only reads: a registered tool's metadata says, else
    Claude Code's own read-only tools."""
    tool = tools.get(name)
    if tool is not None:
        return tool.meta.side_effects == "read-only"
    return name in CLAUDE_READ_ONLY_TOOLS


class ToolRegistry:
    """All tools the plugins registered, by unique name."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def add(self, tool: Tool, plugin: str) -> None:
        if not isinstance(tool, Tool):
            raise TypeError(f"plugin {plugin!r} registered {tool!r}, which is not an llmos.Tool")
        existing = self._tools.get(tool.name)
        if existing is not None:
            raise ToolNameCollision(
                f"tool name {tool.name!r} is registered by both plugin {existing.plugin!r} "
                f"and plugin {plugin!r}; disable one with LLMOS_DISABLE_PLUGINS"
            )
        self._tools[tool.name] = Tool(
            tool.name, tool.description, tool.input_model, tool.func, tool.meta, plugin
        )

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __iter__(self):
        return iter(sorted(self._tools.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools
