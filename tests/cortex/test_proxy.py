"""The metering proxy on its own: a real proxy, a real ledger and the scripted model
server, driven by an HTTP client (the CLI-driven tests are in test_spend/test_model_faults).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from llmos.cortex.prices import price_for
from llmos.cortex.proxy import MeteringProxy, ProxySettings, Upstream, _fit_thinking, _retry_after
from llmos.economy import TokenEconomy
from llmos.storage import open_database
from llmos.testing.model_server import DUMMY_API_KEY, Script, ScriptedModelServer, Usage

HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01",
           "x-claude-code-request-class": "main"}


def body(max_tokens: int = 1000, stream: bool = True, model: str = "claude-sonnet-4-5") -> dict:
    return {"model": model, "max_tokens": max_tokens, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "t", "input_schema": {"type": "object"}}]}


@pytest.fixture
def economy(tmp_path):
    economy = TokenEconomy(open_database(tmp_path / "ledger.db"))
    economy.set_balance(10)
    return economy


async def post(proxy: MeteringProxy, payload: dict, token: str | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(f"{proxy.base_url}/v1/messages?beta=true",
                                 content=json.dumps(payload),
                                 headers={**HEADERS, "x-api-key": token or proxy.token})


def proxy_for(economy, server, cap_usd=1.0, **settings) -> MeteringProxy:
    return MeteringProxy(economy, Upstream(server.base_url, {"x-api-key": DUMMY_API_KEY}),
                         ProxySettings(run_cap_micro=round(cap_usd * 1e6), **settings),
                         run_id="run-1")


@pytest.mark.parametrize("stream", [True, False])
async def test_a_request_is_reserved_forwarded_with_the_real_key_and_committed(economy, stream):
    with ScriptedModelServer(Script().text("hello", usage=Usage(1000, 200))) as server:
        async with proxy_for(economy, server) as proxy:
            response = await post(proxy, body(stream=stream))
            assert response.status_code == 200
            assert "hello" in response.text
    sent = server.conversation_requests[0]
    assert sent.body["max_tokens"] == 1000
    assert "llmos-run-" not in json.dumps(sent.headers)  # the per-run token stays local
    commits = [e for e in economy.history() if e["kind"] == "commit"]
    # claude-sonnet-4-5: $3 / $15 per million tokens
    assert commits[0]["amount_usd"] == pytest.approx((1000 * 3 + 200 * 15) / 1e6)
    assert (commits[0]["input_tokens"], commits[0]["output_tokens"]) == (1000, 200)
    assert (proxy.requests, proxy.input_tokens, proxy.output_tokens) == (1, 1000, 200)
    assert economy.status()["reserved_micro"] == 0


async def test_anyone_without_the_runs_token_is_refused(economy):
    with ScriptedModelServer(Script().text("never")) as server:
        async with proxy_for(economy, server) as proxy:
            response = await post(proxy, body(), token=DUMMY_API_KEY)
            assert response.status_code == 401
    assert server.model_request_count == 0
    assert [e["kind"] for e in economy.history()] == ["set"]


async def test_max_tokens_is_lowered_to_what_the_cap_pays_for(economy):
    with ScriptedModelServer(Script().text("long", usage=Usage(40, 50_000))) as server:
        async with proxy_for(economy, server, cap_usd=0.05) as proxy:
            response = await post(proxy, body(max_tokens=64_000))
            assert response.status_code == 200
    lowered = server.conversation_requests[0].body["max_tokens"]
    assert 1024 <= lowered < 64_000
    # the whole reservation was within the cap, and so is what the answer cost
    reserved = next(e for e in economy.history() if e["kind"] == "reserve")
    assert reserved["amount_usd"] <= 0.05
    assert proxy.spent_micro <= 50_000 and proxy.output_tokens == lowered


async def test_a_request_that_cannot_fit_is_not_sent(economy):
    economy.set_balance(0.01)
    with ScriptedModelServer(Script().text("never")) as server:
        async with proxy_for(economy, server, cap_usd=1.0) as proxy:
            response = await post(proxy, body(max_tokens=64_000))
            assert response.status_code == 400
            assert response.headers["x-should-retry"] == "false"
            assert "low battery" in response.json()["error"]["message"]
            again = await post(proxy, body(max_tokens=10))  # a stopped run stays stopped
            assert again.status_code == 400
    assert server.model_request_count == 0
    assert proxy.stopped == "battery" and proxy.fault.startswith("low battery")
    assert economy.balance_micro == 10_000


async def test_concurrent_requests_of_several_runs_never_overspend(economy):
    economy.set_balance(0.2)
    script = Script()
    for _ in range(60):
        # the prompt's real size (count_tokens says ~50), and all the output allowed
        script.text("big", usage=Usage(40, 64_000))
    with ScriptedModelServer(script) as server:
        proxies = [proxy_for(economy, server, cap_usd=1.0) for _ in range(3)]
        for proxy in proxies:
            await proxy.start()
        try:
            responses = await asyncio.gather(*(post(proxies[i % 3], body(max_tokens=64_000))
                                               for i in range(30)))
        finally:
            for proxy in proxies:
                await proxy.stop()
    assert {r.status_code for r in responses} <= {200, 400}
    assert 200 in {r.status_code for r in responses}
    assert economy.balance_micro >= 0 and economy.status()["reserved_micro"] == 0
    assert all(e["balance_usd"] >= 0 for e in economy.history(limit=1000))
    spent = sum(p.spent_micro for p in proxies)
    assert economy.balance_micro == 200_000 - spent



async def test_a_runs_fixed_prompt_part_is_counted_once_and_its_growing_part_by_bytes(economy):
    """Claude Code resends the same system prompt and tools on every turn: when the bytes
    bound does not fit, their exact size is asked of the service once per run, and the
    messages are bounded by their bytes; a request still not fitting, or one holding an
    image or document, is counted whole, each time."""
    tools = [{"name": "t", "description": "x" * 40_000, "input_schema": {"type": "object"}}]
    script = Script()
    for _ in range(5):
        script.text("ok", usage=Usage(100, 10))

    def turn(*messages: dict) -> dict:
        return {**body(max_tokens=4000), "tools": tools,
                "messages": [{"role": "user", "content": "hi"}, *messages]}

    answer = {"role": "assistant", "content": "ok"}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgo="}}
    requests = [turn(), turn(answer, {"role": "user", "content": "more"}),
                turn(answer, {"role": "user", "content": "more"}, answer,
                     {"role": "user", "content": "again"}),
                turn({"role": "user", "content": "y" * 20_000}),
                turn({"role": "user", "content": [image]})]
    counted = []
    # at $0.15 the bytes bound (40 kB of tools) does not fit 4000 output tokens
    with ScriptedModelServer(script) as server:
        async with proxy_for(economy, server, cap_usd=0.15) as proxy:
            for payload in requests:
                response = await post(proxy, payload)
                assert response.status_code == 200, response.text
                counted.append(len([r for r in server.requests if r.kind == "count_tokens"]))
    # sized by the fixed part (counted once), then twice whole (20 kB of messages; an image)
    assert counted == [1, 1, 1, 2, 3]
    first = next(r for r in server.requests if r.kind == "count_tokens").body
    assert first["tools"] == tools and first["messages"] == [{"role": "user", "content": "."}]
    # nothing was lowered: every bound fitted the request as asked
    assert [r.body["max_tokens"] for r in server.conversation_requests] == [4000] * 5
    assert economy.status()["reserved_micro"] == 0



async def test_a_request_lowered_anyway_is_counted_whole_once(economy):
    """When even an empty prompt would not let ``max_tokens`` be sent as asked (the cap
    pays for less output), only the exact size matters: one count_tokens per request,
    of the whole prompt, never one of the fixed part besides."""
    tools = [{"name": "t", "description": "x" * 40_000, "input_schema": {"type": "object"}}]
    with ScriptedModelServer(Script().text("a").text("b")) as server:
        async with proxy_for(economy, server, cap_usd=0.07) as proxy:
            for content in ("hi", "more"):  # 5000 output tokens alone cost $0.075
                payload = {**body(max_tokens=5000), "tools": tools,
                           "messages": [{"role": "user", "content": content}]}
                assert (await post(proxy, payload)).status_code == 200
    counts = [r.body for r in server.requests if r.kind == "count_tokens"]
    assert [c["messages"][0]["content"] for c in counts] == ["hi", "more"]
    assert all(1024 <= r.body["max_tokens"] < 5000 for r in server.conversation_requests)


@pytest.mark.parametrize("started", [True, False])
async def test_a_request_in_flight_when_the_proxy_stops_is_charged_what_it_may_cost(
    economy, started
):
    """Before the service said anything: the whole reservation. After ``message_start``
    (the prompt's cost is known): that, plus 1024 output tokens it may have generated."""
    script = Script().hang(mid_stream=started)
    with ScriptedModelServer(script) as server:
        proxy = proxy_for(economy, server, cap_usd=0.5)
        await proxy.start()
        task = asyncio.create_task(post(proxy, body(max_tokens=4000)))
        while not server.conversation_requests:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        reserved = economy.status()["reserved_micro"]
        assert reserved > 0
        await proxy.stop()
        task.cancel()
    assert economy.status()["reserved_micro"] == 0
    # the scripted message_start reports 100 prompt tokens (sonnet: $3 / $15 per million)
    expected = 100 * 3 + 1024 * 15 if started else reserved
    assert economy.run_spent_micro("run-1") == expected


def test_retry_after_forms():
    assert _retry_after(httpx.Headers({"retry-after": "2.5"})) == 2.5
    assert _retry_after(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert _retry_after(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0
    assert _retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert _retry_after(httpx.Headers({})) is None


def test_extended_thinking_stays_below_a_lowered_max_tokens():
    request = {"thinking": {"type": "enabled", "budget_tokens": 16_000}}
    _fit_thinking(request, 4000)
    assert request["thinking"]["budget_tokens"] == 2000
    request = {"thinking": {"type": "enabled", "budget_tokens": 16_000}}
    _fit_thinking(request, 1024)
    assert "thinking" not in request


def test_prices():
    sonnet = price_for("claude-sonnet-4-5-20250929")
    assert (sonnet.input, sonnet.output) == (3.0, 15.0)
    usage = {"input_tokens": 1000, "cache_creation_input_tokens": 1000,
             "cache_read_input_tokens": 1000, "output_tokens": 1000}
    assert sonnet.cost_micro(usage) == 3000 + 3750 + 300 + 15000
    unknown = price_for("some-local-model")
    assert (unknown.input, unknown.output) == (15.0, 75.0)  # the dearest known model
    assert price_for("my-model", {"my-model": (0.1, 0.2)}).output == 0.2
    assert sonnet.worst_case_micro(1000, 1000) == 3750 + 15000
