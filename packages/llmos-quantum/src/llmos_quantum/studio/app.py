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
import os
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llmos_quantum import __version__, agents
from llmos_quantum.studio import chat
from llmos_quantum.studio.common import Studio
from llmos_quantum.studio.run import run


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
        Route("/chat", chat.handler(agents.TUTOR), methods=["POST"]),
        Route("/chat/stream", chat.stream, methods=["POST"]),
        Route("/codegen/chat", chat.handler(agents.ARCHITECT), methods=["POST"]),
        Route("/run", run, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    middleware = [Middleware(CORSMiddleware, allow_origins=cors_origins(
        studio.config.cors_allow_origins), allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"], max_age=600)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.studio = studio
    return app
