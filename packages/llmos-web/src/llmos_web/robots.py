"""robots.txt (RFC 9309) with ``urllib.robotparser``, fetched through the same guarded client.

A missing robots.txt (any 4xx) allows everything; one that cannot be fetched (5xx,
network failure) counts as disallowing everything, as the RFC requires. Parsed files
are kept in memory for an hour per kernel.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.robotparser import RobotFileParser

import httpx

from llmos_web.guard import WebError

TTL_S = 3600.0
MAX_ROBOTS_BYTES = 512_000


class RobotsDisallowed(WebError):
    rule = "web.robots"


@dataclass
class _Rules:
    expires: float
    parser: RobotFileParser | None  # None: everything allowed
    unreachable: str | None = None  # why robots.txt could not be read (disallow all)


# (url, max_bytes) -> (status, text); raises WebError
RobotsGetter = Callable[[httpx.URL, int], Awaitable[tuple[int, str]]]


class RobotsCache:
    def __init__(self) -> None:
        self._rules: dict[str, _Rules] = {}

    async def check(self, url: httpx.URL, user_agent: str, get: RobotsGetter) -> None:
        """Raise RobotsDisallowed unless robots.txt lets ``user_agent`` fetch ``url``."""
        origin = str(url.copy_with(path="/", query=None, fragment=None)).rstrip("/")
        rules = self._rules.get(origin)
        if rules is None or rules.expires < time.monotonic():
            rules = await self._load(origin, get)
        if rules.unreachable:
            raise RobotsDisallowed(
                f"{origin}/robots.txt could not be read ({rules.unreachable}), so RFC 9309 "
                "treats the whole site as disallowed; set web.respect_robots = false to "
                "fetch anyway where you are entitled to"
            )
        if rules.parser is not None and not rules.parser.can_fetch(user_agent, str(url)):
            token = user_agent.split("/")[0]
            raise RobotsDisallowed(
                f"{origin}/robots.txt disallows {url.raw_path.decode('ascii', 'replace')} for "
                f"user agent {token!r}; set web.respect_robots = false to fetch anyway "
                "where you are entitled to"
            )

    async def _load(self, origin: str, get: RobotsGetter) -> _Rules:
        robots_url = httpx.URL(origin + "/robots.txt")
        try:
            status, text = await get(robots_url, MAX_ROBOTS_BYTES)
        except WebError as exc:  # timeouts, refused connections, forbidden redirects
            return self._keep(origin, _Rules(0, None, str(exc)), cache=False)
        if 200 <= status < 300:
            parser = RobotFileParser(str(robots_url))
            parser.parse(text.splitlines())
            parser.modified()  # can_fetch refuses everything until it is marked read
            return self._keep(origin, _Rules(0, parser))
        if 400 <= status < 500:
            return self._keep(origin, _Rules(0, None))
        return self._keep(origin, _Rules(0, None, f"HTTP {status}"), cache=False)

    def _keep(self, origin: str, rules: _Rules, cache: bool = True) -> _Rules:
        rules.expires = time.monotonic() + (TTL_S if cache else 0)
        if cache:
            self._rules[origin] = rules
        return rules
