"""A crystal version as a tool: a pydantic input model built from the goal's slots, and a
function that runs the checked code with every call going through the kernel's gate."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, create_model

from llmos.crystallize.check import Checked, check_source
from llmos.crystallize.runtime import Caller, CrystalFailed, execute
from llmos.tools import Tool, ToolError, ToolMeta

if TYPE_CHECKING:
    from llmos.calls import CallContext
    from llmos.crystallize.store import Version
    from llmos.goals import Slot
    from llmos.kernel import Kernel

_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_KIND_INPUT = {"file": "path", "path": "path", "url": "url"}
_TYPES: dict[str, type] = {"int": int, "float": float, "str": str}


class Unbound(ValueError):
    """The goal's slots do not fit the crystal's parameters."""


def param_specs(instances: Sequence[Sequence[Slot]]) -> list[dict[str, Any]]:
    """One parameter per slot position, named by kind and position (``file1``, ``num1``),
    typed by what every instance held (int, float or str), with the examples seen."""
    first = instances[0]
    counts: dict[str, int] = {}
    specs = []
    for i, slot in enumerate(first):
        counts[slot.kind] = counts.get(slot.kind, 0) + 1
        values = [slots[i].value for slots in instances]
        kind = "str"
        if slot.kind == "num":
            if all(_INT.fullmatch(v) for v in values):
                kind = "int"
            elif all(_FLOAT.fullmatch(v) for v in values):
                kind = "float"
        specs.append({"name": f"{slot.kind}{counts[slot.kind]}", "slot": i,
                      "slot_kind": slot.kind, "type": kind, "extension": slot.extension,
                      "examples": list(dict.fromkeys(values))})
    return specs


def bind(specs: list[dict[str, Any]], slots: Sequence[Slot]) -> dict[str, Any]:
    """The parameters for a goal with ``slots``; Unbound when they do not fit."""
    if len(slots) != len(specs):
        raise Unbound(f"the goal has {len(slots)} values, the crystal takes {len(specs)}")
    out: dict[str, Any] = {}
    for spec, slot in zip(specs, slots, strict=True):
        if slot.kind != spec["slot_kind"] or slot.extension != spec.get("extension", ""):
            raise Unbound(f"{spec['name']} is a {spec['slot_kind']}, the goal has "
                          f"{slot.value!r} ({slot.kind})")
        if spec["type"] == "int" and not _INT.fullmatch(slot.value):
            raise Unbound(f"{spec['name']} is an integer, the goal has {slot.value!r}")
        if spec["type"] == "float" and not _FLOAT.fullmatch(slot.value):
            raise Unbound(f"{spec['name']} is a number, the goal has {slot.value!r}")
        out[spec["name"]] = _TYPES[spec["type"]](slot.value)
    return out


def input_model(name: str, specs: list[dict[str, Any]]) -> Any:
    fields: dict[str, Any] = {
        spec["name"]: (_TYPES[spec["type"]], Field(
            description=f"slot {spec['slot'] + 1} ({spec['slot_kind']}"
            + (f", .{spec['extension']}" if spec.get("extension") not in ("", "/", None)
               else "") + f"), e.g. {', '.join(map(str, spec['examples'][:3]))}"))
        for spec in specs
    }
    return create_model(f"{name}_input", __config__=ConfigDict(extra="forbid"), **fields)


def gateway_caller(context: CallContext) -> Caller:
    """Each call through the kernel's gate, like any replayed call; the shell's working
    directory carries from one Bash call to the next."""
    from llmos.calls import ToolCall, ToolResult
    from llmos.gateway import UnknownTool
    from llmos.learning.replay import carry_shell_cwd
    from llmos.tools import ToolInputError

    context.extra["shell_cwd"] = ""

    async def call(tool: str, data: dict[str, Any]) -> Any:
        try:
            result = await context.kernel.gateway.call(ToolCall(tool, data, source="replay"),
                                                       context)
        except (ToolInputError, UnknownTool) as exc:
            return ToolResult(is_error=True, error=str(exc))
        carry_shell_cwd(tool, result, context)
        return result

    return call


def text_of(kernel: Kernel):
    from llmos.learning.observe import observed_text

    return lambda tool, output: observed_text(tool, output, kernel.tools)


def source_programs(cassettes: list[dict[str, Any]]) -> set[str]:
    """The programs the source traces' Bash calls ran (a crystal may run no other)."""
    from llmos.crystallize.programs import allowed_programs

    return allowed_programs(str(call["input"].get("command", "")) for case in cassettes
                            for call in case.get("calls", []) if call.get("tool") == "Bash")


class Crystal:
    """A loaded version: its checked code, parameters and the tools it may call."""

    def __init__(self, version: Version, source: str) -> None:
        prov = version.provenance
        self.version = version
        self.specs: list[dict[str, Any]] = prov.get("params", [])
        self.allowed = set(prov.get("allowed_tools", []))
        self.programs = source_programs(prov.get("cassettes", []))
        self.checked: Checked = check_source(source, self.allowed)

    @property
    def name(self) -> str:
        return self.version.name

    async def run(self, params: dict[str, Any], caller: Caller, kernel: Kernel) -> str:
        return await execute(self.checked, self.version.version, params, caller,
                             text_of(kernel), self.allowed, self.programs)

    def tool(self) -> Tool:
        version = self.version
        model = input_model(self.name, self.specs)

        async def func(args: Any, context: CallContext) -> str:
            try:
                return await self.run(args.model_dump(), gateway_caller(context),
                                      context.kernel)
            except CrystalFailed as exc:
                raise ToolError(f"{self.name} could not do it: {exc}") from None
            finally:
                context.extra.pop("shell_cwd", None)

        from llmos.tools import CLAUDE_READ_ONLY_TOOLS

        read_only = bool(self.allowed) and self.allowed <= CLAUDE_READ_ONLY_TOOLS
        return Tool(
            self.name,
            f"Crystallized from {len(version.provenance.get('source_traces', []))} runs of "
            f"'{version.normalized_goal}' (version {version.version}, {version.status}); "
            f"calls {', '.join(sorted(self.allowed))} through the gate.",
            model, func,
            ToolMeta("read-only" if read_only else "mutating", offer_to_model=False,
                     error_modes=("crystal failed: the goal falls back to the normal path",),
                     inputs={s["name"]: _KIND_INPUT[s["slot_kind"]] for s in self.specs
                             if s["slot_kind"] in _KIND_INPUT}),
        )
