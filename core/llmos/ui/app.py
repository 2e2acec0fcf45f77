"""The dashboard as a Starlette application: Jinja2 pages, JSON for the charts, and an
event stream for live updates. Read-only: every route is a GET.

Every request must carry the access token (``?token=`` in the URL printed at start; the
first page sets it as a same-site cookie so assets and the event stream carry it too):
401 without it, 403 with a wrong one. Only the loopback host names are served (a page
elsewhere cannot reach it through DNS rebinding).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from llmos.ui import data

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from llmos.kernel import Kernel

HERE = Path(__file__).parent
COOKIE = "llmos_ui_token"
POLL_S = 1.0


# No framing, no other origins, no referrer (the URL holds the token), nothing cached.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self' "
     b"'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class TokenGate:
    """ASGI middleware: no token, 401; a wrong one, 403; the right one, through. Every
    response carries ``SECURITY_HEADERS``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        outer = send

        async def send(message: dict[str, Any]) -> None:  # type: ignore[no-redef]
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()),
                                                  *SECURITY_HEADERS]}
            await outer(message)

        request = Request(scope)
        given = request.query_params.get("token") or request.cookies.get(COOKIE)
        if not given:
            response: Response = PlainTextResponse(
                "llmos ui: this dashboard needs its access token: open the URL llmos ui "
                "printed (it ends in ?token=...)", status_code=401)
        elif not hmac.compare_digest(given.encode(), self.token.encode()):
            response = PlainTextResponse("llmos ui: wrong access token; open the URL llmos "
                                         "ui printed", status_code=403)
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def create_app(kernel: Kernel, token: str, *, poll_s: float = POLL_S) -> Starlette:
    """The dashboard over ``kernel``'s stores, behind ``token``."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["token"] = token

    def page(request: Request, name: str, **context: Any) -> Response:
        response = templates.TemplateResponse(request, name, {"active": name, **context})
        if request.query_params.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    async def index(request: Request) -> Response:
        return page(request, "runs.html", runs=data.runs(kernel))

    async def run(request: Request) -> Response:
        from llmos.memory.base import RunNotFound

        try:
            detail = data.run_detail(kernel, request.path_params["run_id"])
        except RunNotFound:
            return PlainTextResponse("no such run", status_code=404)
        return page(request, "run.html", **detail)

    async def traces(request: Request) -> Response:
        return page(request, "traces.html", traces=data.traces(kernel))

    async def trace(request: Request) -> Response:
        from llmos.memory.base import TraceNotFound

        try:
            detail = data.trace_detail(kernel, request.path_params["trace_id"])
        except TraceNotFound:
            return PlainTextResponse("no such trace", status_code=404)
        return page(request, "trace.html", **detail)

    async def charts(request: Request) -> Response:
        return page(request, "charts.html")

    async def policy(request: Request) -> Response:
        return page(request, "policy.html", decisions=data.decisions(kernel))

    async def run_rows(request: Request) -> Response:
        return templates.TemplateResponse(request, "_run_rows.html", {"runs": data.runs(kernel)})

    async def api_runs(request: Request) -> Response:
        return JSONResponse(data.runs(kernel))

    async def api_series(request: Request) -> Response:
        return JSONResponse({"budget": data.budget_series(kernel),
                             "savings": data.savings_series(kernel)})

    async def events(request: Request) -> Response:
        from sse_starlette.sse import EventSourceResponse

        async def changes() -> AsyncIterator[dict[str, str]]:
            seen = None
            while not await request.is_disconnected():
                now = data.version(kernel)
                if now != seen:
                    seen = now
                    yield {"event": "change", "data": now}
                await asyncio.sleep(poll_s)

        return EventSourceResponse(changes(), ping=15)

    routes = [
        Route("/", index), Route("/runs/{run_id}", run), Route("/traces", traces),
        Route("/traces/{trace_id}", trace), Route("/charts", charts), Route("/policy", policy),
        Route("/fragments/runs", run_rows), Route("/api/runs", api_runs),
        Route("/api/series", api_series), Route("/events", events),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"]),
        Middleware(TokenGate, token=token),
    ]
    return Starlette(routes=routes, middleware=middleware)
