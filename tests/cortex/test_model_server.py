"""The scripted Messages-API server, on its own and driving the real bundled Claude Code CLI."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    HookMatcher,
    ResultError,
    ResultMessage,
    create_sdk_mcp_server,
    query,
    tool,
)

from llmos.testing.model_server import (
    EXHAUSTED_TEXT,
    Script,
    ScriptedModelServer,
    Usage,
    text,
    tool_use,
)

# --------------------------------------------------------------------------- helpers


def allow_all() -> dict[str, list[HookMatcher]]:
    async def allow(input_data: dict[str, Any], tool_use_id: str | None, context: Any):
        return {
            "hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}
        }

    return {"PreToolUse": [HookMatcher(hooks=[allow])]}


def options(server: ScriptedModelServer, cwd: Path, **kwargs: Any) -> ClaudeAgentOptions:
    kwargs.setdefault("hooks", allow_all())
    return ClaudeAgentOptions(cwd=str(cwd), env=server.env(), setting_sources=[], **kwargs)


async def run_query(prompt: str, opts: ClaudeAgentOptions) -> tuple[list[Any], Exception | None]:
    """Every message ``query`` yields, and the exception it ended with (if any)."""
    messages: list[Any] = []
    try:
        async for message in query(prompt=prompt, options=opts):
            messages.append(message)
    except Exception as exc:  # the SDK raises ResultError after an error result
        return messages, exc
    return messages, None


def result_of(messages: list[Any]) -> ResultMessage:
    results = [m for m in messages if isinstance(m, ResultMessage)]
    assert len(results) == 1, messages
    return results[0]


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def messages_body(*, tools: bool = True, stream: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-test",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    }
    if tools:
        body["tools"] = [{"name": "Bash", "input_schema": {"type": "object"}}]
    body.update(extra)
    return body


# --------------------------------------------------------------------------- the server alone


def test_script_builder_assigns_ids_and_infers_stop_reasons() -> None:
    script = (
        Script()
        .tool_use("Write", {"file_path": "a", "content": "b"})
        .turn(text("two tools"), tool_use("Read", {"file_path": "a"}), tool_use("Bash", id="mine"))
        .text("done", usage=Usage(7, 3))
        .overloaded()
    )
    assert [t.inferred_stop_reason for t in script] == [
        "tool_use",
        "tool_use",
        "end_turn",
        "end_turn",
    ]
    assert [u.id for u in script[1].tool_uses] == ["toolu_001_0", "mine"]
    assert script[0].tool_uses[0].id == "toolu_000_0"
    assert script[3].error is not None and script[3].error.status == 529
    assert script.usage == Usage(207, 43, 0, 0)  # the error turn reports nothing


def test_streams_a_scripted_turn_as_anthropic_sse() -> None:
    script = Script().turn(
        "let me look",
        tool_use("Bash", {"command": "ls -la " + "x" * 100}),
        usage=Usage(11, 22, 33, 44),
    )
    with ScriptedModelServer(script) as server:
        response = httpx.post(
            f"{server.base_url}/v1/messages?beta=true", json=messages_body(stream=True)
        )
    assert response.headers["content-type"] == "text/event-stream"
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 2
    start = events[0][1]["message"]
    assert start["usage"]["input_tokens"] == 11 and start["usage"]["cache_read_input_tokens"] == 44
    streamed_json = "".join(
        data["delta"]["partial_json"]
        for name, data in events
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(streamed_json) == {"command": "ls -la " + "x" * 100}
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"] == {
        "input_tokens": 11,
        "output_tokens": 22,
        "cache_creation_input_tokens": 33,
        "cache_read_input_tokens": 44,
    }


def test_answers_non_streaming_and_count_tokens_with_plain_json() -> None:
    with ScriptedModelServer(Script().text("hello")) as server:
        counted = httpx.post(f"{server.base_url}/v1/messages/count_tokens", json=messages_body())
        message = httpx.post(f"{server.base_url}/v1/messages", json=messages_body()).json()
        assert counted.json()["input_tokens"] > 0
        assert message["content"] == [{"type": "text", "text": "hello"}]
        assert message["stop_reason"] == "end_turn"
        assert message["model"] == "claude-test"
        assert server.model_request_count == 1  # count_tokens is not a model call
        assert [r.kind for r in server.requests] == ["count_tokens", "conversation"]


def test_scripted_errors_carry_the_anthropic_error_body() -> None:
    script = Script().error(500).overloaded().rate_limited(retry_after=3)
    with ScriptedModelServer(script) as server:
        answers = [
            httpx.post(f"{server.base_url}/v1/messages", json=messages_body()) for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [500, 529, 429]
    assert [a.json()["error"]["type"] for a in answers] == [
        "api_error",
        "overloaded_error",
        "rate_limit_error",
    ]
    assert all(a.json()["type"] == "error" for a in answers)
    assert answers[2].headers["retry-after"] == "3"


def test_side_requests_get_a_canned_answer_and_leave_the_script_alone() -> None:
    with ScriptedModelServer(Script().text("the real turn")) as server:
        url = f"{server.base_url}/v1/messages"
        title = httpx.post(
            url,
            json=messages_body(
                tools=False,
                output_config={
                    "format": {
                        "type": "json_schema",
                        "schema": {
                            "type": "object",
                            "properties": {"title": {"type": "string"}},
                            "required": ["title"],
                        },
                    }
                },
            ),
        ).json()
        labelled = httpx.post(
            url, json=messages_body(), headers={"x-claude-code-request-class": "auxiliary"}
        ).json()
        turn = httpx.post(url, json=messages_body()).json()
        assert json.loads(title["content"][0]["text"]) == {"title": "ok"}
        assert labelled["content"][0]["text"] == "ok"
        assert turn["content"][0]["text"] == "the real turn"
        assert len(server.side_requests) == 2
        assert len(server.conversation_requests) == 1
        assert server.model_request_count == 3
        assert not server.exhausted


def test_exhausted_script_says_so_and_is_recorded() -> None:
    with ScriptedModelServer(Script().text("only turn")) as server:
        url = f"{server.base_url}/v1/messages"
        first = httpx.post(url, json=messages_body()).json()
        assert not server.exhausted
        extra = httpx.post(url, json=messages_body()).json()
        assert first["content"][0]["text"] == "only turn"
        assert extra["content"][0]["text"] == EXHAUSTED_TEXT
        assert server.exhausted and server.exhausted_count == 1
        assert [r.turn_index for r in server.conversation_requests] == [0, None]


def test_recording_drops_secrets_and_finds_tool_results() -> None:
    with ScriptedModelServer(Script().tool_use("Bash", {"command": "ls"}).text("ok")) as server:
        url = f"{server.base_url}/v1/messages"
        httpx.post(url, json=messages_body(), headers={"x-api-key": "sk-secret"})
        body = messages_body()
        body["messages"] += [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_000_0"}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_000_0",
                        "content": [{"type": "text", "text": "file.txt"}],
                        "is_error": False,
                    }
                ],
            },
        ]
        httpx.post(url, json=body, headers={"authorization": "Bearer sk-secret"})
        assert all(
            "x-api-key" not in r.headers and "authorization" not in r.headers
            for r in server.requests
        )
        assert server.tool_result("toolu_000_0").text == "file.txt"
        assert server.tool_results_for_turn(0)[0].is_error is False
        assert server.request_for_turn(1).assistant_turns == 1
        with pytest.raises(LookupError):
            server.tool_result("toolu_nope")


@pytest.mark.parametrize("mid_stream", [False, True])
def test_a_hanging_turn_holds_the_request_until_the_server_stops(mid_stream: bool) -> None:
    outcome: list[object] = []

    def ask(url: str) -> None:
        try:
            response = httpx.post(url, json=messages_body(stream=True), timeout=10)
            outcome.append(response.text)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    with ScriptedModelServer(Script().hang(mid_stream=mid_stream)) as server:
        asker = threading.Thread(target=ask, args=(f"{server.base_url}/v1/messages",))
        asker.start()
        asker.join(timeout=0.5)
        assert asker.is_alive(), outcome  # still waiting for the model
        started = time.monotonic()
    asker.join(timeout=5)
    assert not asker.is_alive() and time.monotonic() - started < 2
    if mid_stream:  # got message_start, then the stream ended without message_stop
        assert isinstance(outcome[0], str) and "message_start" in outcome[0]
        assert "message_stop" not in outcome[0]
    else:
        assert isinstance(outcome[0], httpx.HTTPError)


def test_env_points_the_cli_here_and_isolates_it() -> None:
    with ScriptedModelServer(max_retries=2, api_timeout_ms=1500) as server:
        env = server.env(EXTRA="1")
        config_dir = Path(server.config_dir)
        assert config_dir.is_dir()
        assert env["ANTHROPIC_BASE_URL"] == server.base_url
        assert env["ANTHROPIC_API_KEY"]
        assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
        assert env["ENABLE_TOOL_SEARCH"] == "false"
        assert env["CLAUDE_CODE_MAX_RETRIES"] == "2"
        assert env["API_TIMEOUT_MS"] == "1500"
        assert env["CLAUDE_CONFIG_DIR"].startswith(str(config_dir))
        assert env["EXTRA"] == "1"
    assert not config_dir.exists()


# --------------------------------------------------------------------------- the real CLI

cli = pytest.mark.cli


@cli
async def test_cli_writes_a_file_and_runs_bash(tmp_path: Path) -> None:
    script = (
        Script()
        .tool_use(
            "Write",
            {"file_path": str(tmp_path / "hello.txt"), "content": "hello from the model\n"},
            text="I'll write the file.",
            usage=Usage(1000, 50, cache_creation_input_tokens=200, cache_read_input_tokens=300),
        )
        .tool_use("Bash", {"command": "cat hello.txt && echo bash-ran"}, usage=Usage(1200, 40))
        .text("Done.", usage=Usage(1300, 10))
    )
    with ScriptedModelServer(script) as server:
        messages = []
        async with ClaudeSDKClient(options=options(server, tmp_path)) as client:
            await client.query("Write hello.txt and show it")
            async for message in client.receive_response():
                messages.append(message)

    assert (tmp_path / "hello.txt").read_text() == "hello from the model\n"
    bash_result = server.tool_results_for_turn(1)[0]
    assert not bash_result.is_error
    assert "hello from the model" in bash_result.text and "bash-ran" in bash_result.text

    result = result_of(messages)
    assert not result.is_error and result.result == "Done."
    assert result.num_turns == 3
    assert result.total_cost_usd is not None and result.total_cost_usd > 0
    expected = script.usage
    assert result.usage is not None
    assert result.usage["input_tokens"] == expected.input_tokens == 3500
    assert result.usage["output_tokens"] == expected.output_tokens == 100
    assert result.usage["cache_creation_input_tokens"] == 200
    assert result.usage["cache_read_input_tokens"] == 300

    turns = server.conversation_requests
    assert [r.turn_index for r in turns] == [0, 1, 2]
    assert [r.assistant_turns for r in turns] == [0, 1, 2]
    assert all(r.request_class == "main" for r in turns)
    assert {"Write", "Bash"} <= set(turns[0].tool_names)
    assert "Write hello.txt and show it" in turns[0].user_text()
    assert server.remaining_turns == 0 and not server.exhausted


@cli
async def test_cli_denial_reason_reaches_the_model(tmp_path: Path) -> None:
    target = tmp_path / "secret.txt"

    async def deny_writes(input_data: dict[str, Any], tool_use_id: str | None, context: Any):
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": "llmos policy: writing secret.txt is not allowed",
            }
        }

    script = (
        Script()
        .tool_use("Write", {"file_path": str(target), "content": "leak"})
        .text("Understood, I will not write it.")
    )
    with ScriptedModelServer(script) as server:
        hooks = {"PreToolUse": [HookMatcher(matcher="Write", hooks=[deny_writes])]}
        messages, error = await run_query(
            "write secret.txt", options(server, tmp_path, hooks=hooks)
        )

    assert error is None
    assert not target.exists()
    denial = server.tool_results_for_turn(0)[0]
    assert denial.is_error
    assert "llmos policy: writing secret.txt is not allowed" in denial.text
    result = result_of(messages)
    assert not result.is_error
    assert [d["tool_name"] for d in result.permission_denials] == ["Write"]


@cli
async def test_cli_calls_an_in_process_sdk_mcp_tool(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    @tool("add", "Add two integers", {"a": int, "b": int})
    async def add(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        return {"content": [{"type": "text", "text": f"sum={args['a'] + args['b']}"}]}

    script = Script().tool_use("mcp__llmos__add", {"a": 2, "b": 40}).text("The sum is 42.")
    with ScriptedModelServer(script) as server:
        llmos_tools = create_sdk_mcp_server("llmos", tools=[add])
        opts = options(server, tmp_path, mcp_servers={"llmos": llmos_tools})
        messages, error = await run_query("add 2 and 40", opts)

    assert error is None
    assert calls == [{"a": 2, "b": 40}]
    assert "mcp__llmos__add" in server.request_for_turn(0).tool_names  # offered directly
    assert server.tool_results_for_turn(0)[0].text == "sum=42"
    assert result_of(messages).result == "The sum is 42."


@cli
@pytest.mark.parametrize(
    ("status", "error_kind"), [(500, "server_error"), (529, "server_error"), (429, "rate_limit")]
)
async def test_cli_model_error_ends_the_run_as_failed(
    tmp_path: Path, status: int, error_kind: str
) -> None:
    script = Script().error(status, headers={"retry-after": "0"} if status == 429 else None)
    with ScriptedModelServer(script) as server:  # max_retries=0: fail on the first error
        started = time.monotonic()
        messages, error = await run_query("hi", options(server, tmp_path))
        elapsed = time.monotonic() - started

    # query() yields an error ResultMessage, then raises ResultError (the CLI exits 1).
    result = result_of(messages)
    assert result.is_error and result.api_error_status == status
    assert result.total_cost_usd == 0
    assert isinstance(error, ResultError)
    assert error.api_error_status == status and error.terminal_reason == "api_error"
    assert str(status) in (error.result or "")
    synthetic = [m for m in messages if isinstance(m, AssistantMessage)]
    assert synthetic and synthetic[-1].error == error_kind
    assert len(server.conversation_requests) == 1  # no retries
    assert elapsed < 10


@cli
async def test_cli_error_in_a_client_session_is_a_result_not_an_exception(
    tmp_path: Path,
) -> None:
    with ScriptedModelServer(Script().overloaded()) as server:
        async with ClaudeSDKClient(options=options(server, tmp_path)) as client:
            await client.query("hi")
            messages = [m async for m in client.receive_response()]
    result = result_of(messages)
    assert result.is_error and result.api_error_status == 529


@cli
async def test_cli_retries_when_allowed_and_the_retry_takes_the_next_turn(
    tmp_path: Path,
) -> None:
    script = Script().overloaded().text("recovered")
    with ScriptedModelServer(script, max_retries=1) as server:
        messages, error = await run_query("hi", options(server, tmp_path))
    assert error is None
    assert result_of(messages).result == "recovered"
    assert [r.turn_index for r in server.conversation_requests] == [0, 1]


@cli
async def test_cli_times_out_on_a_hanging_model(tmp_path: Path) -> None:
    with ScriptedModelServer(Script().hang(), api_timeout_ms=1000) as server:
        started = time.monotonic()
        messages, error = await run_query("hi", options(server, tmp_path))
        elapsed = time.monotonic() - started
    assert isinstance(error, ResultError) and error.terminal_reason == "api_error"
    assert "timed out" in (error.result or "")
    assert result_of(messages).is_error
    assert elapsed < 10


@cli
async def test_cli_exhausting_the_script_is_visible(tmp_path: Path) -> None:
    with ScriptedModelServer(Script()) as server:
        messages, error = await run_query("hi", options(server, tmp_path))
    assert error is None
    assert result_of(messages).result == EXHAUSTED_TEXT
    assert server.exhausted


@cli
async def test_cli_side_requests_do_not_consume_the_script(tmp_path: Path) -> None:
    # With nonessential traffic allowed, the CLI also asks a small model for a session title.
    script = Script().text("the answer")
    with ScriptedModelServer(script) as server:
        opts = options(server, tmp_path)
        opts.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = ""
        messages, error = await run_query("name this session", opts)

    assert error is None
    assert result_of(messages).result == "the answer"
    side = server.side_requests
    assert side, [r.path for r in server.requests]
    assert all(r.request_class == "auxiliary" and not r.tools for r in side)
    assert [r.turn_index for r in server.conversation_requests] == [0]
    assert not server.exhausted


def test_measured_usage_follows_the_request_and_models_the_prompt_cache() -> None:
    """``Usage.from_request()``: tokens from what was sent (4 bytes each), and a prefix
    ending at a ``cache_control`` breakpoint sent before is read from the cache."""
    system = [{"type": "text", "text": "s" * 4000, "cache_control": {"type": "ephemeral"}}]
    script = Script().text("a" * 40, usage=Usage.from_request()).text(
        "b", usage=Usage.from_request())
    with ScriptedModelServer(script) as server:
        first = httpx.post(f"{server.base_url}/v1/messages",
                           json=messages_body(system=system)).json()["usage"]
        longer = messages_body(system=system)
        longer["messages"].append({"role": "user", "content": "more " * 200})
        second = httpx.post(f"{server.base_url}/v1/messages", json=longer).json()["usage"]
    assert first["cache_read_input_tokens"] == 0
    assert first["cache_creation_input_tokens"] > 1000  # tools + the 4000-byte system prompt
    assert first["output_tokens"] == 10
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == 0
    assert second["input_tokens"] > first["input_tokens"] + 200  # the longer history
