"""The ASGI app: Qiskit Studio's chat, code generation and code execution in one process.

    POST /chat, /codegen/chat   {"prompt": ...} -> {"response": "<JSON with final_prompt>", ...}
    POST /chat/stream           one ``llm_step`` event with the whole answer, then the response
    POST /run                   {"input_value": program, "ibm_token"?, ...} -> {"output": text}
    GET  /health

Chat and code generation are goals run through the llmos router (``LLMOS.execute``): a
repeated request is replayed at $0, every run is recorded, budgeted and gated. Programs run
through the gate as ``quantum_execute_code`` calls, in the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llmos_quantum import __version__, agents, ibm_budget
from llmos_quantum.studio import programs

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


async def _body(request: Request) -> dict[str, Any]:
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


def _prompt(data: dict[str, Any]) -> str:
    prompt = data.get("prompt")
    if prompt is None:
        prompt = data.get("input_value")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest('"prompt" is missing or empty; send {"prompt": "<your question>"}')
    return prompt


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

    prompt = _prompt(data)
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


def _handler(agent: str):
    async def handle(request: Request) -> Response:
        studio: Studio = request.app.state.studio
        try:
            result, served_by, answer = await _answer(studio, agent, await _body(request))
        except BadRequest as exc:
            return _error(400, str(exc))
        except Refused as exc:
            return _error(exc.status, str(exc))
        return JSONResponse(_reply(result, served_by, answer))

    return handle


def _event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def chat_stream(request: Request) -> Response:
    studio: Studio = request.app.state.studio
    try:
        data = await _body(request)
        _prompt(data)
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


async def run(request: Request) -> Response:
    """Always 200 with ``{"output": text}``: the frontend shows errors as program output."""
    from llmos_quantum.execute import IBMCredentials
    from llmos_quantum.tools import CREDENTIALS

    studio: Studio = request.app.state.studio
    try:
        data = await _body(request)
    except BadRequest as exc:
        return JSONResponse({"output": f"error: {exc}"})
    code = data.get("input_value")
    if not isinstance(code, str) or not code.strip():
        return JSONResponse({"output": 'error: "input_value" must hold the program to run'})
    notes: list[str] = []
    credentials = None
    token = data.get("ibm_token")
    cfg = studio.config
    if isinstance(token, str) and token.strip():
        refused = ibm_budget.take(studio.kernel, cfg)
        if refused is None:
            credentials = IBMCredentials(
                token.strip(), str(data.get("channel") or cfg.ibm_channel),
                str(data["instance"]) if data.get("instance") else cfg.ibm_instance,
                str(data["region"]) if data.get("region") else None)
        else:
            notes.append(f"[llmos] IBM Quantum hardware {refused}; running on the local "
                         "simulator instead")
    if credentials is None:
        code = programs.localize(code)
    context = studio.kernel.context(**({CREDENTIALS: credentials} if credentials else {}))
    result = await studio.kernel.call_tool("quantum_execute_code", {"code": code},
                                           context=context, source="tool")
    if result.is_error:
        notes.append(f"[llmos] the program was not run: {result.error}")
        return JSONResponse({"output": "\n".join(notes)})
    out = result.output
    text = "\n".join([*notes, programs_output(out)]) if notes else programs_output(out)
    return JSONResponse({"output": text})


def programs_output(out: dict[str, Any]) -> str:
    text = out["stdout"]
    if out["stderr"]:
        text += ("" if not text or text.endswith("\n") else "\n") + out["stderr"]
    if out["exit_status"] != 0 and not out["timed_out"]:
        text += ("" if not text or text.endswith("\n") else "\n") + (
            f"[llmos] the program exited with status {out['exit_status']}")
    return text


async def health(request: Request) -> Response:
    studio: Studio = request.app.state.studio
    from llmos.security.sandbox import available

    status = await asyncio.to_thread(available)
    return JSONResponse({"status": "ok", "service": "llmos-quantum", "version": __version__,
                         "sandbox": status.mechanism,
                         "workspace": str(studio.kernel.workspace.root)})


def cors_origins(configured: list[str]) -> list[str]:
    raw = os.environ.get("CORS_ALLOW_ORIGINS")
    if raw is None:
        return configured
    return [origin.strip() for origin in raw.split(",") if origin.strip()]


def create_app(workspace: Path | str | None = None, *, settings: list[str] | None = None,
               budget_usd: float | None = None) -> Starlette:
    """The app for ``llmos quantum serve`` (config errors are raised here, before serving)."""
    studio = Studio(workspace, settings, budget_usd)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with studio.llm_os:
            yield

    routes = [
        Route("/chat", _handler(agents.TUTOR), methods=["POST"]),
        Route("/chat/stream", chat_stream, methods=["POST"]),
        Route("/codegen/chat", _handler(agents.ARCHITECT), methods=["POST"]),
        Route("/run", run, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    middleware = [Middleware(CORSMiddleware, allow_origins=cors_origins(
        studio.config.cors_allow_origins), allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"], max_age=600)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.studio = studio
    return app
