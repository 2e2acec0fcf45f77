"""Tools: a name, a description, a pydantic input model, an async callable and metadata."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

SideEffects = Literal["read-only", "idempotent", "mutating", "halting"]
"""``halting``: the call only stops work or motion in progress (an emergency stop); a
policy never refuses it for being a change."""
InputKind = Literal["path", "read_path", "write_path", "url", "command", "note"]
"""What a tool's input field holds, for the policy: ``path`` (read or written as the tool's
side effects say), ``read_path``, ``write_path``, ``url``, ``command`` (a shell command the
tool runs), ``note`` (free text that changes nothing, e.g. a description; left out of
"allow for this run" scopes)."""

#: Field names taken for paths or URLs when a tool does not declare its inputs.
_PATH_NAME = re.compile(
    r"^(path|paths|file|files|filename|file_path|notebook_path|dir|dirs|directory|folder|"
    r"dest|destination|target|src|source|output|out|outfile|infile|location|cwd|"
    r".+_(path|paths|file|dir|directory|folder|dest|filename))$", re.IGNORECASE)
_URL_NAME = re.compile(r"^(url|urls|uri|href|endpoint|.+_url)$", re.IGNORECASE)


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
    #: Which top-level input fields are paths, URLs or commands (see ``InputKind``); the
    #: layered policy checks them whatever they are named.
    inputs: Mapping[str, InputKind] = field(default_factory=dict)
    #: The watchdog's deadline for one call, instead of ``kernel.tool_timeout_s``: for a
    #: tool that runs whole goals (the orchestrator's ``run_plan``).
    timeout_s: float | None = None


@functools.cache
def _schema_json(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema())


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
        """The input model's JSON Schema (built once per model and process: the tool
        server and the conversation record both want every tool's; a fresh copy each
        time, so a caller may change it)."""
        return json.loads(_schema_json(self.input_model))

    def validate(self, data: dict[str, Any], *, strict: bool = True) -> BaseModel:
        """Validate raw input, raising ToolInputError with a message naming each problem.

        A field the tool does not take is a problem too: a misspelt option must not be
        dropped silently. Not when the input model accepts extra fields
        (``extra="allow"``), nor, with ``strict=False`` (a replay of recorded calls), when
        it says to ignore them (``extra="ignore"``: the replay tools of Claude Code's own
        tools, whose recorded inputs carry fields Claude Code adds over time)."""
        extra = self.input_model.model_config.get("extra")
        unknown = sorted(set(data) - self.input_fields()) if isinstance(data, dict) else []
        if unknown and extra != "allow" and (strict or extra != "ignore"):
            allowed = ", ".join(sorted(self.input_fields())) or "none"
            raise ToolInputError(
                f"invalid input for tool {self.name!r}: unknown field"
                f"{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                f"the fields it takes: {allowed}")
        try:
            return self.input_model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(input)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ToolInputError(f"invalid input for tool {self.name!r}: {problems}") from None

    def input_fields(self) -> set[str]:
        """The top-level input names the tool takes: each field's name and aliases."""
        names: set[str] = set()
        for name, info in self.input_model.model_fields.items():
            names.add(name)
            if info.alias:
                names.add(info.alias)
            alias = info.validation_alias
            if isinstance(alias, str):
                names.add(alias)
            elif alias is not None and hasattr(alias, "choices"):  # AliasChoices
                names.update(c for c in alias.choices if isinstance(c, str))
        return names

    def input_kinds(self) -> dict[str, InputKind]:
        """Every input field the policy must check, by kind: what ``meta.inputs``
        declares, else what the schema says (``format: path``/``uri``, a pydantic
        ``Path`` or ``AnyUrl``), else what the field's name suggests (``dest``, ``*_path``,
        ``url``...). Declared kinds win."""
        kinds: dict[str, InputKind] = {}
        props = self.input_schema().get("properties", {})
        for name, spec in props.items():
            formats = _formats(spec)
            if "path" in formats or "file-path" in formats or "directory-path" in formats:
                kinds[name] = "path"
            elif "uri" in formats or _URL_NAME.match(name):
                kinds[name] = "url"
            elif _PATH_NAME.match(name):
                kinds[name] = "path"
        kinds.update(self.meta.inputs)
        return kinds

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
            "inputs": self.input_kinds(),
        }


def _formats(spec: Any) -> set[str]:
    """The ``format`` values of a JSON-schema property, through anyOf/items."""
    found: set[str] = set()
    if isinstance(spec, dict):
        if isinstance(spec.get("format"), str):
            found.add(spec["format"])
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in spec.get(key, ()):
                found |= _formats(sub)
        if "items" in spec:
            found |= _formats(spec["items"])
    return found


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

    def remove_plugin(self, plugin: str) -> None:
        """Forget every tool a plugin registered (the plugin failed and is isolated)."""
        self._tools = {name: t for name, t in self._tools.items() if t.plugin != plugin}

    def __iter__(self):
        return iter(sorted(self._tools.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools
