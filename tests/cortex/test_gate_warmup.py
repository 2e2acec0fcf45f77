"""The policy gate is made ready while Claude Code boots (issue 12): the security backend
is built on the event loop's thread before the prompt is sent, once, and the shell policy
is imported in a thread; a backend that cannot be built still fails closed at the gate.
The conversation is saved (once) while the CLI exits."""

from __future__ import annotations

import json
import sys
import threading

import pytest

import llmos
from llmos.kernel import Kernel
from llmos.runner import execute


class Recording:
    """A security backend that notes when and on which thread it was built, and every
    call it decided (the layered policy decides them)."""

    def __init__(self, requests_so_far) -> None:
        self.requests_so_far = requests_so_far
        self.events: list[str] = []
        self.threads: list[int] = []
        self.requests_before: list[int] = []

    @llmos.hookimpl
    def llmos_register_security_backends(self, register):
        def build(kernel):
            from llmos.security.layered import LayeredPolicy

            self.events.append("built")
            self.threads.append(threading.get_ident())
            self.requests_before.append(self.requests_so_far())
            layered = LayeredPolicy(kernel)
            outer = self

            class Backend:
                name = "recording"

                def decide(self, call, context):
                    outer.events.append(f"decide {call.tool}")
                    return layered.decide(call, context)

            return Backend()

        register("recording", build, description="the layered policy, recorded")


class Unbuildable:
    def __init__(self) -> None:
        self.attempts = 0

    @llmos.hookimpl
    def llmos_register_security_backends(self, register):
        def build(kernel):
            self.attempts += 1
            raise RuntimeError("this backend cannot be built")

        register("unbuildable", build, description="always fails")


def kernel(workspace, backend: str, plugin) -> Kernel:
    return Kernel(workspace, flags=[f"security.backend={backend}"],
                  plugins={"backend": plugin}, load_entry_points=False, interactive=False)


async def test_the_backend_is_built_once_on_the_loop_thread_before_the_first_call(
    llmos_model_server, llmos_workspace
):
    target = llmos_workspace / "hello.txt"
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(target), "content": "hello\n"}
    ).tool_use("Bash", {"command": "cat hello.txt"}).tool_use(
        "Bash", {"command": "rm -rf /"}
    ).text("Done.")
    plugin = Recording(lambda: len(llmos_model_server.conversation_requests))
    async with kernel(llmos_workspace, "recording", plugin) as k:
        k.economy.set_balance(5)
        result = await execute(k, "Write hello.txt and show it")
        from llmos.export.store import ConversationStore

        kept = ConversationStore(k.db).for_run(result.run_id)
    assert result.success, result.error
    # saved once, whole, while the CLI exited (the last message is the final answer)
    assert len(kept) == 1
    assert "Done." in json.dumps(kept[0]["messages"][-1])
    assert plugin.events == ["built", "decide Write", "decide Bash", "decide Bash"]
    assert plugin.threads == [threading.get_ident()]  # the loop's, not the warm-up thread's
    assert plugin.requests_before == [0]  # before the prompt was sent, not at the first call
    assert "hello" in llmos_model_server.tool_result("toolu_001_0").text
    refused = llmos_model_server.tool_result("toolu_002_0")  # its verdicts still apply
    assert refused.is_error and "shell.destroy_outside" in refused.text
    assert "llmos.security.shell" in sys.modules  # imported while the CLI booted


async def test_a_backend_that_cannot_be_built_still_denies_every_call(
    llmos_model_server, llmos_workspace
):
    target = llmos_workspace / "hello.txt"
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(target), "content": "hello\n"}
    ).tool_use("Bash", {"command": "echo hi > hi.txt"}).text("Could not.")
    plugin = Unbuildable()
    async with kernel(llmos_workspace, "unbuildable", plugin) as k:
        k.economy.set_balance(5)
        result = await execute(k, "Write hello.txt")
        decisions = [(row["tool"], row["decision"], row["rule"])
                     for row in k.audit.entries(run_id=result.run_id)]
    assert not target.exists() and not (llmos_workspace / "hi.txt").exists()
    for tool_use in ("toolu_000_0", "toolu_001_0"):
        seen = llmos_model_server.tool_result(tool_use)
        assert seen.is_error and "security backend failed" in seen.text, seen.text
    # the warm-up tried once and failed quietly; each call tried again and was denied
    assert plugin.attempts == 3
    assert sorted(decisions) == [("Bash", "deny", "security.error"),
                                 ("Write", "deny", "security.error")]


def test_the_warm_up_leaves_an_unbuildable_backend_to_the_gate(llmos_workspace):
    from llmos.cortex.learner import _build_security

    plugin = Unbuildable()
    k = kernel(llmos_workspace, "unbuildable", plugin)
    _build_security(k)  # no exception: the gate reports it
    assert plugin.attempts == 1
    with pytest.raises(RuntimeError, match="cannot be built"):
        k.security  # noqa: B018 - not cached: built (and failing) again
    assert plugin.attempts == 2
