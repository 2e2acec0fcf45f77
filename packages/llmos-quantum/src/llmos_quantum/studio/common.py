"""What the server's handlers share: the llmos side (one kernel) and request parsing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request

from llmos_quantum import agents

MAX_BODY = 2_000_000


class BadRequest(Exception):
    pass


class Studio:
    """The llmos side of the server: one kernel, runs serialized through the router."""

    def __init__(self, workspace: Path | str | None, settings: list[str] | None,
                 budget_usd: float | None) -> None:
        from llmos import LLMOS

        self.llm_os = LLMOS(workspace, budget_usd=budget_usd, settings=settings)
        self.kernel = self.llm_os.kernel
        self.router_lock = asyncio.Lock()

    @property
    def config(self) -> Any:
        return self.kernel.config.section("quantum")

    async def ask(self, agent: str, prompt: str) -> Any:
        async with self.router_lock:
            return await self.llm_os.execute(agents.goal_for(agent, prompt))


async def body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest(f"the request body is larger than {MAX_BODY} bytes")
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON ({exc}); send "
                         '{"prompt": "..."}') from None
    if not isinstance(data, dict):
        raise BadRequest('the request body must be a JSON object such as {"prompt": "..."}')
    return data


def prompt_of(data: dict[str, Any]) -> str:
    prompt = data.get("prompt")
    if prompt is None:
        prompt = data.get("input_value")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest('"prompt" is missing or empty; send {"prompt": "<your question>"}')
    return prompt
