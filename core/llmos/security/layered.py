"""The ``layered`` security backend: the policy library wired into the kernel's gate.

Shell commands go through the Bash grammar analysis (allowed automatically only when made
of allowlisted plain words; code-running commands only inside a sandbox), file tools
through path resolution beneath the workspace, URLs through the host and address checks.
Anything the backend does not understand asks (and is denied when nobody can answer).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import llmos
from llmos.calls import CallContext, Decision, ToolCall, strictest

if TYPE_CHECKING:
    from llmos.kernel import Kernel
    from llmos.security.protected import ProtectedPaths
    from llmos.security.verdict import Verdict
    from llmos.tools import Tool

FILE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "Read", "NotebookEdit", "NotebookRead",
                        "Glob", "Grep", "LS"})
SHELL_TOOLS = frozenset({"Bash"})
URL_TOOLS = frozenset({"WebFetch"})
# Claude Code tools with no effect outside the conversation.
HARMLESS_TOOLS = frozenset({"TodoWrite", "TodoRead", "ToolSearch", "Task", "Agent",
                            "ExitPlanMode", "WebSearch", "BashOutput"})


_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _decision(verdict: Verdict) -> Decision:
    return Decision(verdict.decision, verdict.reason, verdict.rule)


class LayeredPolicy:
    name = "layered"

    def __init__(self, kernel: Kernel) -> None:
        from llmos.security.rules import check_rule_examples_cached

        # every rule's match / not-match examples, once per version of the rules
        check_rule_examples_cached()
        self.kernel = kernel

    def sandboxed(self, call: ToolCall, context: CallContext) -> bool:
        """Whether a shell command from this source will run confined."""
        if call.source == "model":
            return bool(context.extra.get("claude_sandbox"))
        from llmos.security.sandbox import available

        return available().available  # the kernel's Bash tool always runs in it

    def protected(self, context: CallContext) -> ProtectedPaths:
        """llmos's own state in this workspace (config, state, memory, generated code)."""
        from llmos.security.protected import protected_paths

        return protected_paths(context.kernel)

    def decide(self, call: ToolCall, context: CallContext) -> Decision:
        workspace = context.workspace
        if call.tool in SHELL_TOOLS:
            return self._shell(call, context)
        if call.tool in FILE_TOOLS:
            from llmos.security.paths import check_path_tool

            return _decision(check_path_tool(call.tool, call.input, workspace,
                                             self.protected(context)))
        if call.tool in URL_TOOLS or "url" in call.input:
            verdict = self._url(call)
            if verdict.verdict != "allow" or call.tool in URL_TOOLS:
                return verdict
        if call.tool in HARMLESS_TOOLS:
            return Decision.allow(f"{call.tool} has no effect outside the conversation",
                                  "layered.harmless")
        tool = self.kernel.tools.get(call.tool)
        if tool is None and call.tool.startswith("mcp__"):
            return Decision.ask(f"{call.tool} comes from an MCP server llmos does not know",
                                "layered.unknown-mcp")
        if tool is None:
            return Decision.ask(f"llmos does not know what {call.tool} does",
                                "layered.unknown-tool")
        refused = self._declared_inputs(call, context, tool)
        if refused is not None:
            return refused
        return Decision.allow(f"plugin tool ({tool.meta.side_effects}) with checked inputs",
                              "layered.plugin-tool")

    def _declared_inputs(self, call: ToolCall, context: CallContext,
                         tool: Tool) -> Decision | None:
        """Check every path, URL and command field the tool declares (``ToolMeta.inputs``,
        the schema, or the field's name), whatever it is called; the strictest verdict
        that is not allow, or None."""
        from llmos.security.paths import check_path
        from llmos.security.shell import analyze_command

        found: list[Decision] = []
        for name, kind in tool.input_kinds().items():
            raw = call.input.get(name)
            if raw is None or kind == "note":
                continue
            values = raw if isinstance(raw, list) else [raw]
            declared = name in tool.meta.inputs
            for value in values:
                if not isinstance(value, str):
                    if declared:  # an inferred kind (a name like 'target') may be a number
                        found.append(Decision.deny(
                            f"input field {name!r} ({kind}) is not a string",
                            "layered.malformed"))
                    continue
                if kind in ("path", "read_path", "write_path") and _URL_LIKE.match(value):
                    decision = self._url(call, value)  # a 'source' may well be a URL
                elif kind in ("path", "read_path", "write_path"):
                    write = kind == "write_path" or (
                        kind == "path" and tool.meta.side_effects != "read-only")
                    verdict = check_path(context.workspace, value, write=write,
                                         protected=self.protected(context))
                    decision = _decision(verdict)
                elif kind == "url":
                    decision = self._url(call, value)
                else:
                    decision = _decision(analyze_command(
                        value, sandboxed=False, workspace=context.workspace,
                        protected=self.protected(context)))
                if decision.verdict != "allow":
                    found.append(Decision(decision.verdict, f"{name}: {decision.reason}",
                                          decision.rule))
        return strictest(found)

    def _shell(self, call: ToolCall, context: CallContext) -> Decision:
        from llmos.security.shell import analyze_command

        command = call.input.get("command")
        if not isinstance(command, str):
            return Decision.deny("the command is not a string", "layered.malformed")
        sandboxed = self.sandboxed(call, context)
        cwd = context.extra.get("shell_cwd") or ""
        decision = _decision(
            analyze_command(command, sandboxed=sandboxed, workspace=context.workspace,
                            cwd=cwd if isinstance(cwd, str) else "\0",
                            protected=self.protected(context))
        )
        if decision.verdict == "allow" and call.source != "model" and not sandboxed:
            return Decision.ask(
                f"no OS sandbox is available to run it ({decision.reason})", "sandbox.missing"
            )
        return decision

    def _url(self, call: ToolCall, url: str | None = None) -> Decision:
        from llmos.security.urls import check_url

        cfg = self.kernel.config.security
        target = str(call.input.get("url", "")) if url is None else url
        return _decision(check_url(target,
                                   allowed_hosts=cfg.allowed_hosts,
                                   denied_hosts=cfg.denied_hosts))


@llmos.hookimpl
def llmos_register_security_backends(register: Any) -> None:
    register("layered", LayeredPolicy,
             description="Default. Shell grammar analysis, paths beneath the workspace, URL "
                         "checks, OS sandbox for code; what it cannot understand asks.")
