"""A real HTTP server on 127.0.0.1 for the pack's tests: routes, hit counts, 304 counts."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PAGES = Path(__file__).parent / "pages"


def fixture_page(name: str) -> bytes:
    """A realistic page kept in tests/pages/."""
    return (PAGES / name).read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[BaseHTTPRequestHandler], "Reply | None"]


class Site:
    """Routes path -> Reply or handler; counts hits and conditional answers."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Handler] = {}
        self.hits: Counter[str] = Counter()
        self.not_modified = 0
        self.request_headers: list[dict[str, str]] = []
        self.release = threading.Event()  # set at teardown: wakes sleeping handlers
        handler = type("H", (_Handler,), {"site": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def page(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8",
             **headers: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Reply(200, data, {"Content-Type": content_type, **headers})

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = Reply(status, b"", {"Location": location})

    def start(self) -> Site:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    site: Site
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.site.hits[path] += 1
        self.site.request_headers.append({k.lower(): v for k, v in self.headers.items()})
        route = self.site.routes.get(path)
        reply = route(self) if callable(route) else route
        if reply is None and callable(route):
            return  # the handler wrote its own response
        if reply is None:
            reply = Reply(404, b"not found", {"Content-Type": "text/plain"})
        if reply.status == 304:
            self.site.not_modified += 1
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        if reply.status != 304:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if reply.status != 304:
                self.wfile.write(reply.body)
