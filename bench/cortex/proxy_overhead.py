"""The metering proxy's latency overhead per model request.

Run from the repository root:

    /work/venv/bin/python bench/cortex/proxy_overhead.py              # 200 requests
    /work/venv/bin/python bench/cortex/proxy_overhead.py --requests 500 --prompt-kb 100

The scripted model server answers streaming ``POST /v1/messages`` requests shaped like
Claude Code's (a system prompt, tool definitions and messages adding up to
``--prompt-kb``). The same requests are sent straight to it and through llmos's
metering proxy (reservation in a real SQLite ledger, forwarding, usage read from the
stream, commit). The table gives the time to the last byte of the answer (median, p90,
p99) both ways and the difference, which is what llmos adds to every model request.
``--estimate count_tokens`` makes each request too large for the bytes bound, so the
proxy also asks count_tokens (one more round trip).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "core"))

import httpx

from llmos.cortex.proxy import MeteringProxy, ProxySettings, Upstream
from llmos.economy import TokenEconomy
from llmos.storage import open_database
from llmos.testing.model_server import DUMMY_API_KEY, Script, ScriptedModelServer


def request_body(prompt_kb: int) -> dict:
    filler = "x" * 1000
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 8000,
        "stream": True,
        "system": [{"type": "text", "text": filler * (prompt_kb // 2)}],
        "tools": [{"name": f"tool{i}", "description": filler, "input_schema": {"type": "object"}}
                  for i in range(max(1, prompt_kb // 2))],
        "messages": [{"role": "user", "content": "hello"}],
    }


async def timed(client: httpx.AsyncClient, url: str, key: str, body: bytes) -> float:
    started = time.perf_counter()
    async with client.stream("POST", f"{url}/v1/messages", content=body, headers={
        "x-api-key": key, "content-type": "application/json",
        "anthropic-version": "2023-06-01", "x-claude-code-request-class": "main",
    }) as response:
        async for _ in response.aiter_bytes():
            pass
        assert response.status_code == 200, response.status_code
    return time.perf_counter() - started


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"median_ms": statistics.median(ordered) * 1000, "p90_ms": pick(0.9) * 1000,
            "p99_ms": pick(0.99) * 1000}


async def main(requests: int, prompt_kb: int, estimate: str) -> None:
    script = Script()
    for _ in range(requests * 2 + 20):
        script.text("ok, " * 50)
    body = json.dumps(request_body(prompt_kb)).encode()
    with ScriptedModelServer(script) as server, tempfile.TemporaryDirectory() as tmp:
        economy = TokenEconomy(open_database(Path(tmp) / "ledger.db"))
        economy.set_balance(1_000_000)
        # count_tokens: the bytes bound ($0.39) does not fit in $0.30, the exact size ($0.21) does
        cap = 10**12 if estimate == "bytes" else 300_000
        settings = ProxySettings(run_cap_micro=cap, prompt_estimate=estimate)
        upstream = Upstream(server.base_url, {"x-api-key": DUMMY_API_KEY})
        async with MeteringProxy(economy, upstream, settings, run_id="bench") as proxy, \
                httpx.AsyncClient(timeout=30) as client:
            for _ in range(10):  # warm up both paths
                await timed(client, server.base_url, DUMMY_API_KEY, body)
                await timed(client, proxy.base_url, proxy.token, body)
            direct, proxied = [], []
            for _ in range(requests):  # interleaved, so both see the same machine load
                direct.append(await timed(client, server.base_url, DUMMY_API_KEY, body))
                proxied.append(await timed(client, proxy.base_url, proxy.token, body))
                proxy.spent_micro = 0  # keep the run's cap from running out
            assert proxy.fault is None, proxy.fault
    d, p = summary(direct), summary(proxied)
    print(f"{requests} streaming requests of {len(body) / 1024:.0f} KB, estimate={estimate}")
    print(f"{'':10} {'median':>10} {'p90':>10} {'p99':>10}")
    for name, row in (("direct", d), ("proxied", p)):
        print(f"{name:10} {row['median_ms']:>8.2f}ms {row['p90_ms']:>8.2f}ms "
              f"{row['p99_ms']:>8.2f}ms")
    print(f"{'overhead':10} {p['median_ms'] - d['median_ms']:>8.2f}ms "
          f"{p['p90_ms'] - d['p90_ms']:>8.2f}ms {p['p99_ms'] - d['p99_ms']:>8.2f}ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--prompt-kb", type=int, default=100)
    parser.add_argument("--estimate", choices=["bytes", "count_tokens"], default="bytes")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.prompt_kb, args.estimate))
