"""The tools: ``web_fetch`` and ``web_links``."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any, Literal

import llmos
from pydantic import BaseModel, ConfigDict, Field

from llmos_web.content import extract, page_links
from llmos_web.guard import WebError
from llmos_web.hosts import normalize_host

if TYPE_CHECKING:
    from llmos_web.config import WebConfig
    from llmos_web.fetcher import Session
    from llmos_web.robots import RobotsCache

# httpx, the fetcher and robots.txt handling are imported on first use, so that loading
# the pack (every llmos command) does not pay for them.

MAX_BYTES_LIMIT = 50_000_000
ERROR_MODES = (
    "bad-url: not an absolute http(s) URL",
    "blocked: scheme, denied host, or private/loopback/link-local/metadata address",
    "robots: robots.txt disallows the URL",
    "timeout: the server took longer than web.timeout_s",
    "too-many-redirects",
    "binary: the response is not text (PDF, image, archive...)",
    "http-status: the server answered 4xx or 5xx",
    "dns / connect: the host cannot be resolved or reached",
)

# Robots rules are remembered per kernel, for as long as the kernel lives.
_ROBOTS: weakref.WeakKeyDictionary[Any, RobotsCache] = weakref.WeakKeyDictionary()


class FetchInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Absolute http:// or https:// URL of the page.")
    format: Literal["markdown", "text", "html"] = Field(
        "markdown",
        description="markdown: the main content (navigation, ads and boilerplate removed) as "
        "Markdown with links; text: the main content as plain text; html: the page as served.",
    )
    max_bytes: int | None = Field(
        None,
        ge=1,
        le=MAX_BYTES_LIMIT,
        description="Most bytes of the body to read (default: web.max_bytes); a longer body "
        "is cut off and the result says truncated: true.",
    )


class LinksInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Absolute http:// or https:// URL of an HTML page.")
    same_host: bool = Field(False, description="Only links to the page's own host.")
    max_links: int = Field(500, ge=1, le=10_000, description="Most links to return.")


def _config(context: llmos.CallContext) -> WebConfig:
    return context.kernel.config.section("web")


def _session(context: llmos.CallContext) -> Session:
    from llmos_web.cache import DiskCache
    from llmos_web.fetcher import Session
    from llmos_web.robots import RobotsCache

    cfg = _config(context)
    kernel = context.kernel
    cache = DiskCache(kernel.workspace.state_dir / "web-cache", int(cfg.cache_max_mb * 1024**2))
    robots = _ROBOTS.get(kernel)
    if robots is None:
        robots = _ROBOTS[kernel] = RobotsCache()
    return Session(cfg, cache, robots)


async def web_fetch(args: FetchInput, context: llmos.CallContext) -> dict[str, Any]:
    """Fetch a page and return its main content with title, links and metadata."""
    max_bytes = args.max_bytes or _config(context).max_bytes
    async with _session(context) as session:
        page = await session.fetch(args.url, max_bytes)
    text = page.text
    result: dict[str, Any] = {
        "url": page.url,
        "final_url": page.final_url,
        "status": page.status,
        "content_type": page.mime,
        "charset": page.charset,
        "format": args.format,
        "title": None,
    }
    if page.is_html and args.format != "html":
        found = await asyncio.to_thread(extract, text, page.final_url, args.format)
        result.update(
            title=found.title,
            description=found.description,
            author=found.author,
            date=found.date,
            site_name=found.site_name,
            canonical_url=found.canonical_url,
            content=found.content,
            links=found.links,
        )
    else:
        result["content"] = text
    result.update(
        bytes=len(page.body),
        truncated=page.truncated,
        from_cache=page.from_cache,
        redirects=page.redirects,
    )
    if page.truncated:
        total = f" of {page.content_length}" if page.content_length else ""
        result["note"] = (
            f"truncated: only the first {len(page.body)} bytes{total} were read "
            f"(max_bytes = {max_bytes}); the content above is incomplete"
        )
    return result


async def web_links(args: LinksInput, context: llmos.CallContext) -> dict[str, Any]:
    """List the distinct http(s) links of an HTML page, absolute, with their text."""
    async with _session(context) as session:
        page = await session.fetch(args.url, _config(context).max_bytes)
    if not page.is_html:
        raise WebError(
            f"{page.final_url} is {page.mime}, not an HTML page; it has no links to list"
        )
    links = await asyncio.to_thread(page_links, page.text, page.final_url)
    import httpx

    host = normalize_host(httpx.URL(page.final_url).host)
    for link in links:
        link["internal"] = normalize_host(httpx.URL(link["url"]).host) == host
    if args.same_host:
        links = [link for link in links if link["internal"]]
    return {
        "url": page.url,
        "final_url": page.final_url,
        "count": min(len(links), args.max_links),
        "links": links[: args.max_links],
        "truncated": len(links) > args.max_links or page.truncated,
        "from_cache": page.from_cache,
        "redirects": page.redirects,
    }


def tools() -> list[llmos.Tool]:
    return [
        llmos.Tool(
            "web_fetch",
            "Fetch a public web page over http(s) and return its main content as Markdown "
            "(or plain text, or the raw HTML) with title, links and metadata. Respects "
            "robots.txt; refuses private and internal addresses; caps the size.",
            FetchInput,
            web_fetch,
            llmos.ToolMeta(
                side_effects="read-only",
                cost_hint_usd=0.0,
                latency_hint_s=2.0,
                error_modes=ERROR_MODES,
            ),
        ),
        llmos.Tool(
            "web_links",
            "List the links of a web page (absolute URLs with their anchor text, marked "
            "internal or external), for deciding what to fetch next.",
            LinksInput,
            web_links,
            llmos.ToolMeta(
                side_effects="read-only",
                cost_hint_usd=0.0,
                latency_hint_s=2.0,
                error_modes=ERROR_MODES,
            ),
        ),
    ]
