"""``llmos robo serve``: an HTTP + WebSocket API over the same gate as the tools.

Every endpoint that acts or observes calls a robot tool through the kernel's gateway
(security backend, the pack's safety hook, watchdog, audit), exactly as the model does.
``POST /reset`` needs the operator token printed when the server starts (a human
releases the e-stop; the model's sandbox has no token). ``POST /emergency`` is always
honoured: if a policy were to refuse the e-stop tool, the e-stop is engaged anyway.

Status codes: 200 done, 400 bad request, 403 refused by policy (with the decision),
409 the tool ran and failed (e.g. a move halted by the e-stop), 401 missing token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

TOKEN_HEADER = "x-llmos-operator-token"


def _decision(result) -> dict[str, Any] | None:
    d = result.decision
    return None if d is None else {"verdict": d.verdict, "rule": d.rule, "reason": d.reason}


def _respond(result) -> JSONResponse:
    body = {"ok": not result.is_error, "output": result.output, "error": result.error or None,
            "decision": _decision(result)}
    if result.decision is not None and result.decision.verdict != "allow":
        return JSONResponse(body, status_code=403)
    return JSONResponse(body, status_code=409 if result.is_error else 200)


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest('the request body must be a JSON object, e.g. {"x": 0.5}')
    return data


class BadRequest(Exception):
    pass


async def _until_closed(socket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it disconnects."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return


def build_app(workspace: Path | None, settings: list[str], token: str) -> Starlette:
    from llmos.kernel import Kernel

    state: dict[str, Any] = {}

    async def call(name: str, data: dict[str, Any]):
        from llmos.tools import ToolInputError

        kernel: Kernel = state["kernel"]
        try:
            return await kernel.call_tool(name, data, source="cli")
        except ToolInputError as exc:
            raise BadRequest(str(exc)) from None

    async def tool_endpoint(name: str, data: dict[str, Any]) -> Response:
        try:
            return _respond(await call(name, data))
        except BadRequest as exc:
            return _bad(str(exc))

    async def get_state(request: Request) -> Response:
        return await tool_endpoint("robot_status", {})

    async def get_safety(request: Request) -> Response:
        from llmos_robo.runtime import estop_for

        kernel = state["kernel"]
        cfg = kernel.config.section("robo")
        return JSONResponse({
            "estop": estop_for(kernel).state(),
            "workspace": cfg.workspace.model_dump(),
            "forbidden_zones": [z.model_dump() for z in cfg.forbidden_zones],
            "zone_margin_m": cfg.zone_margin_m, "max_step_m": cfg.max_step_m,
            "max_speed_m_s": cfg.max_speed_m_s, "home": list(cfg.home),
            "allowed_tools": cfg.allowed_tools, "driver": cfg.driver,
        })

    async def post_move(request: Request) -> Response:
        try:
            data = await _json_body(request)
        except BadRequest as exc:
            return _bad(str(exc))
        relative = {"dx", "dy", "dz", "dyaw"} & set(data)
        return await tool_endpoint("robot_move_relative" if relative else "robot_move_to", data)

    async def post_gripper(request: Request) -> Response:
        try:
            data = await _json_body(request)
        except BadRequest as exc:
            return _bad(str(exc))
        return await tool_endpoint("robot_gripper", data)

    async def post_emergency(request: Request) -> Response:
        from llmos_robo.runtime import robot_for

        try:
            data = await _json_body(request)
        except BadRequest:
            data = {}
        reason = str(data.get("reason") or "POST /emergency")[:500]
        result = await call("robot_emergency_stop", {"reason": reason})
        if result.is_error:  # stopping is never unsafe: engage it whatever the policy said
            robot_for(state["kernel"]).emergency_stop("POST /emergency (direct)", reason)
        return _respond(result)

    async def post_reset(request: Request) -> Response:
        given = request.headers.get(TOKEN_HEADER, "")
        if not secrets.compare_digest(given, token):
            return _bad(f"releasing the e-stop needs the operator token in the {TOKEN_HEADER} "
                        "header (printed by `llmos robo serve` when it started)", 401)
        try:
            data = await _json_body(request)
        except BadRequest as exc:
            return _bad(str(exc))
        return await tool_endpoint("robot_reset", data)

    async def get_camera(request: Request) -> Response:
        view = request.path_params["view"]
        try:
            result = await call("robot_camera", {"view": view})
        except BadRequest as exc:
            return _bad(str(exc))
        if result.is_error:
            return _respond(result)
        return Response(Path(result.output["path"]).read_bytes(), media_type="image/png",
                        headers={"x-sha256": result.output["sha256"]})

    async def post_command(request: Request) -> Response:
        from llmos.runner import execute

        try:
            data = await _json_body(request)
        except BadRequest as exc:
            return _bad(str(exc))
        goal = data.get("goal")
        if not isinstance(goal, str) or not goal.strip():
            return _bad('POST /command needs {"goal": "<what the robot should do>"}')
        result = await execute(state["kernel"], goal)
        return JSONResponse(result.as_dict(), status_code=200 if result.success else 409)

    async def ws(socket: WebSocket) -> None:
        from llmos_robo.runtime import robot_for

        await socket.accept()
        robot = robot_for(state["kernel"])
        queue = robot.subscribe()
        closed = asyncio.ensure_future(_until_closed(socket))
        last = None
        try:
            while not closed.done():
                result = await call("robot_status", {})
                message = json.dumps({"type": "state", "ok": not result.is_error,
                                      "state": result.output, "error": result.error or None})
                if message != last:
                    await socket.send_text(message)
                    last = message
                changed = asyncio.ensure_future(queue.get())
                await asyncio.wait({changed, closed}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                await asyncio.sleep(0.05)  # at most ~20 messages a second
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            closed.cancel()
            robot.unsubscribe(queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        kernel = Kernel(workspace, flags=settings, interactive=False)
        await kernel.start()
        state["kernel"] = kernel
        from llmos_robo.runtime import robot_for

        await asyncio.to_thread(robot_for(kernel).driver)  # connect before the first request
        try:
            yield
        finally:
            await kernel.aclose()

    routes = [
        Route("/state", get_state, methods=["GET"]),
        Route("/safety", get_safety, methods=["GET"]),
        Route("/command", post_command, methods=["POST"]),
        Route("/move", post_move, methods=["POST"]),
        Route("/gripper", post_gripper, methods=["POST"]),
        Route("/emergency", post_emergency, methods=["POST"]),
        Route("/reset", post_reset, methods=["POST"]),
        Route("/camera/{view}.png", get_camera, methods=["GET"]),
        WebSocketRoute("/ws", ws),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
