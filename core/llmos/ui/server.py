"""Serving the dashboard: uvicorn on 127.0.0.1, a fresh random token per start."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from llmos.config import ConfigError

if TYPE_CHECKING:
    from llmos.kernel import Kernel

HOST = "127.0.0.1"


def _require_ui_extra() -> None:
    import importlib.util

    missing = [m for m in ("jinja2", "sse_starlette") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"llmos ui needs {', '.join(missing)}: pip install 'llmos[ui]'")


def bind(port: int) -> socket.socket:
    """A listening socket on the loopback address (port 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}; choose "
                          "another --port (0 picks a free one)") from None
    sock.listen(64)
    return sock


def serve(kernel: Kernel, *, port: int = 0, echo: Callable[[str], None] = print) -> None:
    """Run the dashboard until interrupted; prints its URL, token included, first."""
    _require_ui_extra()
    import uvicorn

    from llmos.ui.app import create_app

    token = secrets.token_urlsafe(24)
    sock = bind(port)
    url = f"http://{HOST}:{sock.getsockname()[1]}/?token={token}"
    app = create_app(kernel, token)
    echo(f"llmos dashboard (read-only): {url}")
    echo("Ctrl-C stops it.")
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
