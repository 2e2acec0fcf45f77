"""An httpx transport that connects only to addresses the guard vetted.

Each request's URL host is swapped for the pinned IP address; the ``Host`` header keeps
the name, and TLS uses it for SNI and certificate checks (httpcore's ``sni_hostname``).
A request for a host nobody vetted is refused before any socket is opened.
"""

from __future__ import annotations

import ssl

import httpx

from llmos_web.guard import DEFAULT_PORTS, Target
from llmos_web.hosts import normalize_host


class UnvettedHost(httpx.TransportError):
    """A request reached the transport for a host the guard never checked."""


class PinnedTransport(httpx.AsyncBaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl = ssl_context
        self._pins: dict[tuple[str, int], Target] = {}
        # One connection pool per host name: a TLS connection verified for one name
        # must never be reused for another name that happens to share its address.
        self._pools: dict[str, httpx.AsyncHTTPTransport] = {}

    def pin(self, target: Target) -> None:
        self._pins[(target.host, target.port)] = target

    def pinned(self, host: str, port: int) -> Target | None:
        return self._pins.get((host, port))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = normalize_host(request.url.host)
        port = request.url.port or DEFAULT_PORTS.get(request.url.scheme, 0)
        target = self._pins.get((host, port))
        if target is None:
            raise UnvettedHost(f"refusing to connect to {host}:{port}: not vetted", request=request)
        pool = self._pools.get(host)
        if pool is None:
            pool = self._pools[host] = httpx.AsyncHTTPTransport(verify=self._ssl, retries=0)
        request.url = request.url.copy_with(host=str(target.address))
        request.extensions = {**request.extensions, "sni_hostname": host}
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()
