"""Chat and code generation: goals run through the llmos router, answered in the shape the
Qiskit Studio frontend parses (``JSON.parse(response).final_prompt``, or one ``llm_step``
event for the stream)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from llmos_quantum import agents
from llmos_quantum.studio import programs
from llmos_quantum.studio.common import BadRequest, Studio, body, prompt_of


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _reply(result: Any, agent: str, answer: str) -> dict[str, Any]:
    inner = {"final_prompt": answer, "agent": agent, "mode": result.mode,
             "cost_usd": result.cost_usd, "run_id": result.run_id,
             "model_requests": result.model_requests}
    return {"response": json.dumps(inner, ensure_ascii=False), "workflow_name": agent,
            "timestamp": _now()}


async def _answer(studio: Studio, agent: str, data: dict[str, Any]
                  ) -> tuple[Any, str, str]:
    from llmos.config import ConfigError
    from llmos.economy import LowBatteryError

    prompt = prompt_of(data)
    if programs.is_parameter_update(prompt):
        # the frontend sends these to the chat URL when no code-generation URL is set
        agent = agents.ARCHITECT
    try:
        result = await studio.ask(agent, prompt)
    except LowBatteryError as exc:
        raise Refused(402, str(exc)) from None
    except ConfigError as exc:  # no model credentials, an invalid setting
        raise Refused(503, str(exc)) from None
    if not result.success:
        raise Refused(502, f"the {agent} run failed: {result.error}")
    answer = result.output
    if agent == agents.ARCHITECT:
        answer = programs.code_only(answer)
    return result, agent, answer


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "output": message}, status_code=status)


def handler(agent: str):
    async def handle(request: Request) -> Response:
        studio: Studio = request.app.state.studio
        try:
            result, served_by, answer = await _answer(studio, agent, await body(request))
        except BadRequest as exc:
            return _error(400, str(exc))
        except Refused as exc:
            return _error(exc.status, str(exc))
        return JSONResponse(_reply(result, served_by, answer))

    return handle


def _event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def stream(request: Request) -> Response:
    studio: Studio = request.app.state.studio
    try:
        data = await body(request)
        prompt_of(data)
    except BadRequest as exc:
        return _error(400, str(exc))

    async def events() -> AsyncIterator[bytes]:
        try:
            result, agent, answer = await _answer(studio, agents.TUTOR, data)
        except Refused as exc:
            yield _event({"step_name": "llm_step", "step_result": f"llmos: {exc}",
                          "agent_name": agents.TUTOR, "step_complete": True, "error": True})
            yield _event({"error": str(exc), "workflow_complete": True})
            return
        yield _event({"step_name": "llm_step", "step_result": answer,
                      "agent_name": agent, "step_complete": True})
        yield _event({**_reply(result, agent, answer), "workflow_complete": True})

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
