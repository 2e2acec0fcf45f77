"""One tool call's HTTP session: guarded hops, manual redirects, size cap, cache, robots."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import httpx

from llmos_web import guard
from llmos_web.cache import CacheEntry, DiskCache, cacheable
from llmos_web.content import choose_charset, decode, is_textual, parse_content_type, sniff
from llmos_web.guard import Blocked, Target, WebError
from llmos_web.inflate import ACCEPT_ENCODING, Inflater
from llmos_web.transport import PinnedTransport

if TYPE_CHECKING:
    from llmos_web.config import WebConfig
    from llmos_web.robots import RobotsCache

REDIRECTS = frozenset({301, 302, 303, 307, 308})
ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,text/plain;q=0.8,"
    "application/json;q=0.8,*/*;q=0.5"
)
# Response headers kept with cached bodies.
KEPT_HEADERS = ("content-type", "etag", "last-modified", "cache-control")
ERROR_BODY_LIMIT = 65_536  # of a 4xx/5xx answer, only the start is read


class BinaryContent(WebError):
    rule = "web.binary"


class HTTPStatusError(WebError):
    rule = "web.http-status"


class FetchTimeout(WebError):
    rule = "web.timeout"


@dataclass
class Fetched:
    """A response after redirects: its body (possibly cut at the size cap) and provenance."""

    url: str
    final_url: str
    status: int
    reason: str
    mime: str
    header_charset: str | None
    body: bytes
    truncated: bool = False
    content_length: int | None = None
    from_cache: bool = False
    redirects: list[str] = field(default_factory=list)

    @cached_property
    def charset(self) -> str:
        return choose_charset(self.body, self.mime, self.header_charset)

    @property
    def text(self) -> str:
        return decode(self.body, self.charset, self.truncated)

    @property
    def is_html(self) -> bool:
        return self.mime in ("text/html", "application/xhtml+xml")


def _ssl_context(cfg: WebConfig) -> ssl.SSLContext:
    if cfg.ca_bundle:
        return ssl.create_default_context(cafile=cfg.ca_bundle)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _refused_hop(exc: WebError, origin: httpx.URL, location: str) -> WebError:
    """The same failure, told as a refused redirect."""
    message = f"{origin} redirected to {location}, which was refused: {exc}"
    if isinstance(exc, Blocked):
        return Blocked(message, exc.rule)
    return type(exc)(message)


class Session:
    """Use as ``async with Session(cfg, cache, robots) as s: await s.fetch(url, max_bytes)``.

    Every host is vetted by the guard once per session and its connection pinned to the
    vetted address; redirects are followed here, hop by hop, so each one is vetted too.
    """

    def __init__(self, cfg: WebConfig, cache: DiskCache | None, robots: RobotsCache | None):
        self.cfg = cfg
        self.cache = cache if cache is not None and cache.enabled else None
        self.robots = robots if cfg.respect_robots else None
        self.transport = PinnedTransport(_ssl_context(cfg))
        self.client = httpx.AsyncClient(
            transport=self.transport,
            follow_redirects=False,
            trust_env=False,  # a proxy would defeat the address pinning
            timeout=httpx.Timeout(cfg.timeout_s),
            headers={
                "User-Agent": cfg.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
        )

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.transport.aclose()

    async def target(self, url: httpx.URL) -> Target:
        """The vetted, pinned target for ``url``'s host (resolved once per session)."""
        host = guard.normalize_host(url.host)
        port = url.port or guard.DEFAULT_PORTS[url.scheme]
        pinned = self.transport.pinned(host, port)
        if pinned is not None:
            return pinned
        target = await guard.vet(url, self.cfg)
        self.transport.pin(target)
        return target

    async def fetch(
        self, raw_url: str, max_bytes: int, *, check_robots: bool = True, raise_status: bool = True
    ) -> Fetched:
        url = guard.parse_url(raw_url)
        redirects: list[str] = []
        for _ in range(self.cfg.max_redirects + 1):
            await self.target(url)
            if check_robots and self.robots is not None:
                await self.robots.check(url, self.cfg.user_agent, self._get_robots)
            fetched, location = await self._hop(url, max_bytes)
            if location is None:
                assert fetched is not None
                fetched.url, fetched.redirects = raw_url, redirects
                if raise_status and fetched.status >= 400:
                    raise HTTPStatusError(
                        f"HTTP {fetched.status} {fetched.reason} from {fetched.final_url}"
                    )
                return fetched
            try:
                next_url = guard.parse_url(url.join(location))
                await self.target(next_url)
            except WebError as exc:
                raise _refused_hop(exc, url, location) from None
            redirects.append(str(next_url))
            url = next_url
        raise WebError(
            f"{raw_url} redirected more than web.max_redirects = {self.cfg.max_redirects} "
            f"times: {' -> '.join(redirects)}"
        )

    async def _get_robots(self, url: httpx.URL, max_bytes: int) -> tuple[int, str]:
        fetched = await self.fetch(str(url), max_bytes, check_robots=False, raise_status=False)
        return fetched.status, fetched.text if fetched.status < 300 else ""

    async def _hop(self, url: httpx.URL, max_bytes: int) -> tuple[Fetched | None, str | None]:
        """One request. Returns (response, None) or (None, redirect location)."""
        key = str(url)
        cached = self.cache.get(key) if self.cache else None
        headers = cached.validators() if cached else {}
        try:
            async with asyncio.timeout(self.cfg.timeout_s):
                return await self._request(url, key, headers, cached, max_bytes)
        except (TimeoutError, httpx.TimeoutException):
            raise FetchTimeout(
                f"fetching {url} timed out after {self.cfg.timeout_s:g} s (web.timeout_s)"
            ) from None
        except httpx.ConnectError as exc:
            reason = str(exc) or type(exc).__name__
            raise WebError(f"cannot connect to {url.host}: {reason}") from None
        except httpx.DecodingError as exc:
            raise WebError(f"{url} sent a body that cannot be decoded: {exc}") from None
        except httpx.HTTPError as exc:
            raise WebError(f"HTTP request to {url} failed: {type(exc).__name__}: {exc}") from None

    async def _request(
        self,
        url: httpx.URL,
        key: str,
        headers: dict[str, str],
        cached: CacheEntry | None,
        max_bytes: int,
    ) -> tuple[Fetched | None, str | None]:
        async with self.client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status in REDIRECTS and response.headers.get("location"):
                return None, response.headers["location"]
            if status == 304 and cached is not None:
                return self._from_cache(url, cached, max_bytes), None
            if status == 304:
                raise WebError(f"{url} answered 304 Not Modified to an unconditional request")
            mime, charset = parse_content_type(response.headers.get("content-type"))
            if mime and not is_textual(mime) and status < 300:
                raise BinaryContent(
                    f"{url} is {mime}, a binary type; web tools read text, HTML, XML and JSON only"
                )
            if status >= 400:
                max_bytes = min(max_bytes, ERROR_BODY_LIMIT)
            inflater = Inflater(response.headers.get("content-encoding"))
            chunks: list[bytes] = []
            size, truncated = 0, False
            async for raw in response.aiter_raw():
                piece, truncated = inflater.feed(raw, max_bytes - size)
                if not mime and piece:
                    mime = sniff(piece)
                    if not is_textual(mime) and status < 300:
                        raise BinaryContent(
                            f"{url} is {mime} (sniffed: the server sent no Content-Type), a "
                            "binary type; web tools read text, HTML, XML and JSON only"
                        )
                chunks.append(piece)
                size += len(piece)
                if truncated:
                    break
            body = b"".join(chunks)
            length = None if inflater.encoding else response.headers.get("content-length")
            fetched = Fetched(
                url=key,
                final_url=key,
                status=status,
                reason=response.reason_phrase,
                mime=mime or "text/plain",
                header_charset=charset,
                body=body,
                truncated=truncated,
                content_length=int(length) if length and length.isdigit() else None,
            )
            kept = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
            if self.cache is not None and not truncated and cacheable(status, kept):
                await asyncio.to_thread(self.cache.put, CacheEntry(key, status, kept, body))
            return fetched, None

    def _from_cache(self, url: httpx.URL, entry: CacheEntry, max_bytes: int) -> Fetched:
        assert self.cache is not None
        self.cache.touch(entry.url)
        mime, charset = parse_content_type(entry.headers.get("content-type"))
        truncated = len(entry.body) > max_bytes
        return Fetched(
            url=str(url),
            final_url=str(url),
            status=200,
            reason="OK (revalidated)",
            mime=mime or sniff(entry.body[:1024]),
            header_charset=charset,
            body=entry.body[:max_bytes],
            truncated=truncated,
            content_length=len(entry.body),
            from_cache=True,
        )
