"""``POST /run``: a program through the gate as a ``quantum_execute_code`` call, in the
sandbox; always 200 with ``{"output": text}``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmos_quantum import ibm_budget
from llmos_quantum.studio import programs
from llmos_quantum.studio.common import BadRequest, Studio, body


async def run(request: Request) -> Response:
    """Always 200 with ``{"output": text}``: the frontend shows errors as program output."""
    from llmos_quantum.execute import IBMCredentials
    from llmos_quantum.tools import CREDENTIALS

    studio: Studio = request.app.state.studio
    try:
        data = await body(request)
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
