"""The SSRF guard: parse a URL, resolve its host once, and refuse what must not be reached.

Used twice: by the pack's ``llmos_pre_tool_use`` hook (a policy verdict before the call
runs) and by the fetcher on every hop, whose connection is then pinned to the address
vetted here (see ``transport``), so a second DNS answer can never redirect it.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmos.tools import ToolError

from llmos_web.hosts import (
    METADATA_ADDRESSES,
    METADATA_NAMES,
    IPAddress,
    address_class,
    is_hostname,
    normalize_host,
    parse_ip,
)

if TYPE_CHECKING:
    import httpx

    from llmos_web.config import WebConfig

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}


class WebError(ToolError):
    """A web tool failure meant for the caller; ``rule`` names the check that failed."""

    rule = "web.error"


class BadURL(WebError):
    rule = "web.bad-url"


class Blocked(WebError):
    """The target is not allowed (scheme, denied host, non-public address)."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


class ResolveError(WebError):
    rule = "web.dns"


@dataclass(frozen=True)
class Target:
    """A vetted URL and the one address its connection is pinned to."""

    url: httpx.URL
    host: str
    port: int
    address: IPAddress


# Schemes recognised as such even without "//" (so "file:/x" is refused, not misread).
KNOWN_SCHEMES = frozenset({"file", "ftp", "ftps", "sftp", "ssh", "gopher", "mailto", "data",
                           "javascript", "dict", "ldap", "smb", "tel", "ws", "wss", "about"})


def parse_url(raw: str | httpx.URL) -> httpx.URL:
    """An absolute http(s) URL with a host, or BadURL / Blocked saying what is wrong."""
    import httpx  # on first use: loading the pack stays cheap

    if isinstance(raw, httpx.URL):
        url, text = raw, str(raw)
    else:
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            raise BadURL("the URL is empty; give an absolute http:// or https:// URL")
        try:
            url = httpx.URL(text)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise BadURL(f"{text!r} is not a valid URL: {exc}") from None
        if "\\" in text:
            raise BadURL(
                f"{text!r} contains a backslash, which URL parsers read differently; "
                "write the URL with forward slashes"
            )
        if not url.scheme or ("://" not in text and url.scheme not in KNOWN_SCHEMES | {*SCHEMES}):
            raise BadURL(
                f"{text!r} is not an absolute URL; write it as https://host/path (or http://)"
            )
    if url.scheme not in SCHEMES:
        raise Blocked(
            f"{text!r} uses the {url.scheme}: scheme; web tools fetch only http and https URLs",
            "web.scheme",
        )
    if not url.host:
        raise BadURL(f"{text!r} has no host; write it as {url.scheme}://host/path")
    if url.port is not None and not 0 < url.port < 65536:
        raise BadURL(f"{text!r} has an invalid port {url.port}")
    if url.userinfo:
        raise BadURL(
            f"{url.copy_with(userinfo=b'')} carries credentials (user:password@); "
            "web tools do not send credentials embedded in URLs"
        )
    host = normalize_host(url.host)
    if parse_ip(host) is None and not is_hostname(host):
        raise BadURL(f"{text!r} has an invalid host name {url.host!r}")
    return url


def check_name(host: str, cfg: WebConfig) -> None:
    """Checks that need only the name: denied hosts and cloud-metadata names."""
    for rule in cfg.denied_rules():
        if rule.matches_name(host):
            raise Blocked(f"host {host} is denied by web.denied_hosts ({rule.text})",
                          "web.denied-host")
    if host in METADATA_NAMES and not any(r.name == host for r in cfg.allowed_rules()):
        raise Blocked(
            f"host {host} is a cloud-metadata service; it is never fetched unless "
            f"web.allowed_hosts names it exactly",
            "web.metadata",
        )


def check_address(host: str, address: IPAddress, cfg: WebConfig) -> None:
    """Refuse a resolved address that is denied, or non-public and not allowed."""
    where = host if host == str(address) else f"{host} ({address})"
    for rule in cfg.denied_rules():
        if rule.matches_address(address):
            raise Blocked(f"{where} is denied by web.denied_hosts ({rule.text})",
                          "web.denied-host")
    allowed = cfg.allowed_rules()
    if address in METADATA_ADDRESSES:
        if any(rule.names_exactly(host, address) for rule in allowed):
            return
        raise Blocked(
            f"{where} is a cloud-metadata address; it is never fetched unless "
            "web.allowed_hosts names that host or address exactly",
            "web.metadata",
        )
    is_allowed = any(r.matches_name(host) or r.matches_address(address) for r in allowed)
    reason = address_class(address)
    if reason is None:
        if cfg.allow_public_hosts or is_allowed:
            return
        raise Blocked(
            f"{where} is not in web.allowed_hosts, and web.allow_public_hosts is false",
            "web.not-allowed",
        )
    if not is_allowed:
        raise Blocked(
            f"{where} is {reason}; web tools fetch only public addresses unless "
            f"web.allowed_hosts lists it, e.g. --set web.allowed_hosts='[\"{host}\"]'",
            "web.private-address",
        )


async def resolve_host(host: str, port: int, timeout_s: float) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise ResolveError(f"resolving host {host} timed out after {timeout_s:g} s") from None
    except OSError as exc:
        raise ResolveError(f"cannot resolve host {host}: {exc.strerror or exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = parse_ip(str(info[4][0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ResolveError(f"host {host} has no IP address")
    return addresses


async def vet(url: httpx.URL, cfg: WebConfig) -> Target:
    """Resolve ``url``'s host once and check every address it resolves to.

    A host with any forbidden address is refused as a whole: a name that answers with
    both a public and a private address is exactly what a rebinding attack looks like.
    """
    host = normalize_host(url.host)
    port = url.port or DEFAULT_PORTS[url.scheme]
    check_name(host, cfg)
    addresses = await resolve_host(host, port, cfg.timeout_s)
    for address in addresses:
        check_address(host, address, cfg)
    return Target(url, host, port, addresses[0])
