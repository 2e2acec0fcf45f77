"""The tool gateway: validation, deny-wins policy, ask, watchdog, post hooks and events."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, Field

import llmos
from llmos import Decision, Tool, ToolMeta
from llmos.gateway import UnknownTool
from llmos.kernel import Kernel
from llmos.tools import ToolError, ToolInputError


class AddInput(BaseModel):
    a: int
    b: int = Field(0, description="second addend")


class SleepInput(BaseModel):
    seconds: float


class Recorder:
    """A throwaway plugin: tools, a pre_tool_use verdict chosen per test, and a post log."""

    def __init__(self, verdict: Decision | None = None) -> None:
        self.verdict = verdict
        self.ran: list[dict] = []
        self.post: list[tuple[str, bool]] = []

    @llmos.hookimpl
    def llmos_register_tools(self, register):
        async def add(args: AddInput, context):
            self.ran.append(args.model_dump())
            return args.a + args.b

        async def fail(args: AddInput, context):
            raise ToolError("the adder is broken")

        async def crash(args: AddInput, context):
            return 1 / 0

        async def sleep(args: SleepInput, context):
            await asyncio.sleep(args.seconds)
            return "woke"

        register(Tool("add", "Add two integers", AddInput, add, ToolMeta("read-only")))
        register(Tool("fail", "Always fails", AddInput, fail))
        register(Tool("crash", "Has a bug", AddInput, crash))
        register(Tool("sleep", "Sleeps", SleepInput, sleep))

    @llmos.hookimpl
    def llmos_pre_tool_use(self, call, context):
        return self.verdict

    @llmos.hookimpl
    def llmos_post_tool_use(self, call, result, context):
        self.post.append((call.tool, result.is_error))


class AsyncAllow:
    @llmos.hookimpl
    async def llmos_pre_tool_use(self, call, context):
        await asyncio.sleep(0)
        return Decision.allow("async hooks are awaited", "async.allow")


def make_kernel(workspace, *plugins, backend="trusted", flags=(), interactive=False) -> Kernel:
    return Kernel(
        workspace,
        flags=[f"security.backend={backend}", *flags],
        plugins={f"p{i}": p for i, p in enumerate(plugins)},
        load_entry_points=False,
        interactive=interactive,
    )


async def test_a_call_runs_and_the_post_hooks_and_events_see_it(llmos_workspace):
    plugin = Recorder()
    async with make_kernel(llmos_workspace, plugin) as kernel:
        events = kernel.bus.subscribe("*")
        result = await kernel.call_tool("add", {"a": 2, "b": 3})
        assert (result.output, result.is_error) == (5, False)
        assert plugin.post == [("add", False)]
        topics = [events.queue.get_nowait().topic for _ in range(events.queue.qsize())]
        assert topics == ["policy.decision", "tool.started", "tool.finished"]


async def test_invalid_input_is_refused_before_the_tool_runs(llmos_workspace):
    plugin = Recorder()
    async with make_kernel(llmos_workspace, plugin) as kernel:
        with pytest.raises(ToolInputError) as caught:
            await kernel.call_tool("add", {"a": "two"})
        assert "invalid input for tool 'add': a: Input should be a valid integer" in str(
            caught.value
        )
        assert plugin.ran == [] and plugin.post == []


async def test_unknown_tools_name_the_registered_ones(llmos_workspace):
    async with make_kernel(llmos_workspace, Recorder()) as kernel:
        with pytest.raises(UnknownTool, match=r"no tool named 'ad'; registered tools: .*add, cr"):
            await kernel.call_tool("ad", {})


async def test_deny_wins_over_allow(llmos_workspace):
    plugin = Recorder(Decision.deny("robots must not leave the table", "robo.bounds"))
    async with make_kernel(llmos_workspace, plugin, AsyncAllow()) as kernel:
        result = await kernel.call_tool("add", {"a": 1})
    assert result.is_error and plugin.ran == []
    assert result.decision.verdict == "deny"
    assert result.error == "refused by policy (robo.bounds): robots must not leave the table"
    assert plugin.post == [("add", True)]


async def test_ask_is_denied_when_nobody_can_answer(llmos_workspace):
    plugin = Recorder(Decision.ask("this costs money", "budget.ask"))
    async with make_kernel(llmos_workspace, plugin) as kernel:
        result = await kernel.call_tool("add", {"a": 1})
    assert result.decision.verdict == "deny"
    assert "nobody is there to approve it" in result.error and plugin.ran == []


async def test_ask_allow_for_this_run_covers_the_same_input_only(llmos_workspace):
    plugin = Recorder(Decision.ask("mutating", "strict.ask"))
    answers = iter(["run", "deny"])
    asked = []
    async with make_kernel(llmos_workspace, plugin, interactive=True) as kernel:
        kernel.gateway.asker = lambda call, decision: asked.append(call.input) or next(answers)
        context = kernel.context(run_id="r1")
        first = await kernel.call_tool("add", {"a": 1}, context=context)
        again = await kernel.call_tool("add", {"a": "1"}, context=context)  # same, once valid
        other_input = await kernel.call_tool("add", {"a": 2}, context=context)
        kernel.gateway.asker = lambda call, decision: "deny"
        other_run = await kernel.call_tool("add", {"a": 1}, context=kernel.context(run_id="r2"))
    assert (first.output, again.output) == (1, 1)
    assert asked == [{"a": 1, "b": 0}, {"a": 2, "b": 0}]
    assert other_input.decision.verdict == "deny" and "refused by the user" in other_input.error
    assert other_run.decision.verdict == "deny" and "refused by the user" in other_run.error


async def test_hooks_see_the_validated_converted_input(llmos_workspace):
    seen = []

    class Peek:
        @llmos.hookimpl
        def llmos_pre_tool_use(self, call, context):
            seen.append(call.input)

    async with make_kernel(llmos_workspace, Recorder(), Peek()) as kernel:
        result = await kernel.call_tool("add", {"a": "7", "b": "2"})
        defaulted = await kernel.call_tool("add", {"a": "7"})
    assert (result.output, defaulted.output) == (9, 7)
    assert seen == [{"a": 7, "b": 2}, {"a": 7, "b": 0}]  # defaults are what runs too


async def test_every_tool_output_is_capped_with_a_marker(llmos_workspace):
    class Loud:
        @llmos.hookimpl
        def llmos_register_tools(self, register):
            async def shout(args: AddInput, context):
                return {"text": "x" * 50_000 + "END", "n": args.a}

            register(Tool("shout", "Prints a lot", AddInput, shout, ToolMeta("read-only")))

    async with make_kernel(llmos_workspace, Loud(), flags=["kernel.max_output_bytes=2000"]
                           ) as kernel:
        result = await kernel.call_tool("shout", {"a": 1})
    text = result.output["text"]
    assert len(text) < 2500 and text.endswith("END") and result.output["n"] == 1
    assert "[... truncated" in text and result.metadata["truncated_bytes"] > 45_000


async def test_strict_backend_allows_read_only_and_asks_for_the_rest(llmos_workspace):
    async with make_kernel(llmos_workspace, Recorder(), backend="strict") as kernel:
        ok = await kernel.call_tool("add", {"a": 1})
        refused = await kernel.call_tool("fail", {"a": 1})
    assert ok.output == 1
    assert refused.decision.rule == "strict.ask" and refused.decision.verdict == "deny"


async def test_a_failing_policy_fails_closed(llmos_workspace):
    class Broken:
        @llmos.hookimpl
        def llmos_pre_tool_use(self, call, context):
            raise RuntimeError("policy bug")

    plugin = Recorder()
    async with make_kernel(llmos_workspace, plugin, Broken()) as kernel:
        result = await kernel.call_tool("add", {"a": 1})
    assert result.decision.verdict == "deny" and "policy bug" in result.error
    assert plugin.ran == []


async def test_tool_errors_and_crashes_are_results_not_exceptions(llmos_workspace):
    async with make_kernel(llmos_workspace, Recorder()) as kernel:
        failed = await kernel.call_tool("fail", {"a": 1})
        crashed = await kernel.call_tool("crash", {"a": 1})
    assert failed.error == "the adder is broken"
    assert crashed.error == "tool crash crashed: ZeroDivisionError: division by zero"


async def test_the_watchdog_stops_a_tool_that_overruns(llmos_workspace):
    async with make_kernel(
        llmos_workspace, Recorder(), flags=["kernel.tool_timeout_s=0.2"]
    ) as kernel:
        result = await kernel.call_tool("sleep", {"seconds": 5})
    assert result.is_error
    assert result.error == "tool sleep did not finish within 0.2 s (watchdog deadline)"
    assert result.duration_s < 2


async def test_startup_and_shutdown_hooks_fire(llmos_workspace):
    seen = []

    class Lifecycle:
        @llmos.hookimpl
        def llmos_startup(self, kernel):
            seen.append(("up", kernel.workspace.root.name))

        @llmos.hookimpl
        def llmos_shutdown(self, kernel):
            seen.append(("down", kernel.workspace.root.name))

    async with make_kernel(llmos_workspace, Lifecycle()):
        assert seen == [("up", "workspace")]
    assert seen == [("up", "workspace"), ("down", "workspace")]


def test_a_tool_name_collision_names_both_plugins(llmos_workspace):
    class Twin(Recorder):
        pass

    kernel = make_kernel(llmos_workspace, Recorder(), Twin())
    assert kernel.tools.get("add").plugin == "p0"
    warning = " ".join(kernel.plugins["p1"].warnings)
    assert "tool name 'add' is registered by both plugin 'p0' and plugin 'p1'" in warning


def test_tools_expose_their_schema_and_metadata(llmos_workspace):
    kernel = make_kernel(llmos_workspace, Recorder())
    described = kernel.tools.get("add").describe()
    assert described["side_effects"] == "read-only"
    assert described["input_schema"]["required"] == ["a"]
    assert described["input_schema"]["properties"]["b"]["description"] == "second addend"


async def test_allow_for_this_run_of_a_claude_command_covers_that_command(llmos_workspace):
    from llmos.calls import ToolCall

    answers = []
    async with make_kernel(llmos_workspace, Recorder(Decision.ask("runs code", "x.ask")),
                           interactive=True) as kernel:
        kernel.gateway.asker = lambda call, decision: answers.append(call.input) or "run"
        context = kernel.context(run_id="r1")
        calls = [{"command": "make test", "description": "run the tests"},
                 {"command": " make test ", "description": "again"},
                 {"command": "make deploy", "description": "run the tests"}]
        verdicts = [(await kernel.gateway.resolve(ToolCall("Bash", c, source="model"),
                                                  context)).verdict for c in calls]
    assert verdicts == ["allow", "allow", "allow"]
    assert [a["command"] for a in answers] == ["make test", "make deploy"]


async def test_a_claude_tool_result_is_capped_before_the_hooks_see_it(llmos_workspace):
    from llmos.calls import ToolCall, ToolResult

    seen = []

    class Post:
        @llmos.hookimpl
        def llmos_post_tool_use(self, call, result, context):
            seen.append(result.output)

    async with make_kernel(llmos_workspace, Post(), flags=["kernel.max_output_bytes=1000"]
                           ) as kernel:
        result = ToolResult(output={"stdout": "y" * 100_000 + "TAIL", "stderr": ""})
        await kernel.gateway.observe(ToolCall("Bash", {"command": "yes"}, source="model"),
                                     result, kernel.context())
    assert len(seen[0]["stdout"]) < 1500 and seen[0]["stdout"].endswith("TAIL")
    assert result.metadata["truncated_bytes"] > 98_000
