"""The ``strict`` and ``trusted`` security backends (``layered`` lives in llmos.security)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import llmos
from llmos.calls import CallContext, Decision, ToolCall
from llmos.tools import is_read_only

if TYPE_CHECKING:
    from llmos.kernel import Kernel

class StrictPolicy:
    """Everything that is not read-only (or only halting, like an emergency stop) asks a
    human (and is denied when nobody is there)."""

    name = "strict"

    def decide(self, call: ToolCall, context: CallContext) -> Decision:
        if is_read_only(call.tool, context.kernel.tools):
            return Decision.allow("read-only tool", "strict.read-only")
        tool = context.kernel.tools.get(call.tool)
        if tool is not None and tool.meta.side_effects == "halting":
            return Decision.allow("it only stops what is in progress", "strict.halting")
        return Decision.ask(f"{call.tool} may change things; strict policy asks", "strict.ask")


class TrustedPolicy:
    """Allows everything and leaves only the audit trail. For sandboxes you throw away."""

    name = "trusted"

    def decide(self, call: ToolCall, context: CallContext) -> Decision:
        return Decision.allow(
            "TRUSTED POLICY: every call is allowed without checks", "trusted.allow-all"
        )


@llmos.hookimpl
def llmos_register_security_backends(register) -> None:
    def strict(kernel: Kernel) -> StrictPolicy:
        return StrictPolicy()

    def trusted(kernel: Kernel) -> TrustedPolicy:
        return TrustedPolicy()

    register("strict", strict, description="Everything that is not read-only asks.")
    register(
        "trusted",
        trusted,
        description="UNSAFE: allows every call, only audits. For throwaway sandboxes.",
    )
