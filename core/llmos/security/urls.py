"""Check URLs for network tools: scheme, host lists, and where the host really points.

Only ``http`` and ``https`` are allowed. URLs with userinfo (``http://good@evil/``),
backslashes, whitespace or control characters are refused: parsers disagree on
them and they are the classic way to make a URL look like another host.

Host lists match a host exactly or any of its subdomains (``example.com`` covers
``api.example.com``); an entry may also be written ``*.example.com``. A denied
host always loses. When ``allowed_hosts`` is not empty it is an allowlist: other
hosts are denied. An explicitly allowed host may point anywhere, private
addresses included; every other host is resolved with ``getaddrinfo`` and refused
if any address is private, loopback, link-local, multicast, reserved, unspecified,
shared (CGNAT) or a cloud metadata endpoint, unless ``allow_private`` is set
(metadata endpoints stay refused even then). IPv4 written in decimal, octal, hex
or short form, and IPv4 embedded in IPv6 (mapped, 6to4, NAT64), are normalised
before the check.

DNS can change between this check and the request (rebinding); a caller that
wants to close that gap connects to the addresses ``resolve_host`` returned.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from llmos.security.rules import Rule, RuleRegistry
from llmos.security.verdict import Verdict

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

METADATA_HOSTS = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.internal",
})
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$")

RULES = RuleRegistry()
_ALLOWED = RULES.add(Rule(
    "url.allowed", "An http(s) URL whose host resolves only to public addresses, or is "
    "explicitly allowed.", "allow",
    match=("https://93.184.215.14/", "http://8.8.8.8:8080/path?q=1",
           '{"url": "http://127.0.0.1:8000/", "allowed_hosts": ["127.0.0.1"]}'),
    not_match=("http://127.0.0.1/",),
))
_MALFORMED = RULES.add(Rule(
    "url.malformed", "Not a string, unparsable, control characters, whitespace, backslashes "
    "or a bad port.", "deny",
    match=("http://exa mple.com/", "http://a\\b@c/", "http://1.1.1.1:99999/", "not a url",
           "http://\u200b1.1.1.1/"),
    not_match=("https://1.1.1.1/",),
))
_SCHEME = RULES.add(Rule(
    "url.scheme", "Only http and https.", "deny",
    match=("file:///etc/passwd", "gopher://1.1.1.1/", "ftp://1.1.1.1/", "javascript:alert(1)"),
    not_match=("https://1.1.1.1/",),
))
_USERINFO = RULES.add(Rule(
    "url.userinfo", "URLs carrying user:password@ are refused (host confusion, leaked "
    "credentials).", "deny",
    match=("http://good.example@1.1.1.1/", "https://user:pw@1.1.1.1/"),
    not_match=("https://1.1.1.1/?email=a@b",),
))
_DENIED_HOST = RULES.add(Rule(
    "url.denied_host", "The host, or a parent domain, is in denied_hosts.", "deny",
    match=("https://denied.example/", "https://api.denied.example/x"),
    not_match=("https://1.1.1.1/",),
))
_NOT_ALLOWED = RULES.add(Rule(
    "url.not_allowed", "allowed_hosts is set and the host is not in it.", "deny",
    match=('{"url": "https://1.1.1.1/", "allowed_hosts": ["example.com"]}',
           '{"url": "https://evil-example.com/", "allowed_hosts": ["example.com"]}'),
    not_match=("https://1.1.1.1/",
               '{"url": "https://api.example.com/", "allowed_hosts": ["example.com"]}'),
))
_PRIVATE = RULES.add(Rule(
    "url.private_address", "The host is or resolves to a private, loopback, link-local, "
    "multicast, reserved, unspecified or shared address.", "deny",
    match=("http://127.0.0.1/", "http://localhost:8000/", "http://2130706433/",
           "http://0177.0.0.1/", "http://0x7f.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
           "http://10.0.0.1/", "http://192.168.1.1/", "http://0.0.0.0/", "http://[fe80::1]/",
           "http://224.0.0.1/", "http://100.64.0.1/", "http://127.1/", "http://[::]/"),
    not_match=("https://8.8.8.8/",),
))
_METADATA = RULES.add(Rule(
    "url.metadata", "Cloud metadata endpoints (169.254.169.254, fd00:ec2::254, "
    "metadata.google.internal, ...).", "deny",
    match=("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
           "http://metadata.google.internal/", "http://0xa9fea9fe/",
           "http://[::ffff:169.254.169.254]/"),
    not_match=("http://1.1.1.1/",),
))
_UNRESOLVABLE = RULES.add(Rule(
    "url.unresolvable", "The host name does not resolve or looks numeric but is not a valid "
    "address.", "deny",
    match=("http://1.2.3.4.5/", "http://08.1.1.1/", "http://1.2.3.256/"), not_match=("http://1.1.1.1/",),
))
_IDN = RULES.add(Rule(
    "url.idn", "Non-ASCII host names (possible look-alikes) ask.", "ask",
    match=("https://ex\u0430mple.com/",), not_match=("https://1.1.1.1/",),
))


def _default_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address, accepting every form ``inet_aton`` accepts; else None.

    Raises ``ValueError`` for hosts that look numeric but are not a valid address,
    because resolvers and HTTP clients disagree about such strings.
    """
    try:
        return ipaddress.ip_address(host.split("%", 1)[0] if ":" in host else host)
    except ValueError:
        pass
    if ":" in host:
        raise ValueError(f"invalid IPv6 address {host!r}")
    if _NUMERIC_HOST.match(host) or (re.fullmatch(r"[0-9a-fx.]+", host) and host[0].isdigit()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError as exc:
            raise ValueError(f"{host!r} looks like an IP address but is not one") from exc
    return None


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried inside an IPv6 one (mapped, compatible, 6to4, NAT64, Teredo)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def address_problem(ip: IPAddress) -> tuple[Rule, str] | None:
    """Why ``ip`` may not be contacted, or None for a public unicast address."""
    candidates: list[IPAddress] = [ip]
    inner = embedded_ipv4(ip)
    if inner is not None:
        candidates.append(inner)
    for addr in candidates:
        if addr in METADATA_ADDRESSES:
            return _METADATA, f"{addr} is a cloud metadata endpoint"
    for addr in candidates:
        for label in ("loopback", "private", "link_local", "multicast", "reserved",
                      "unspecified"):
            if getattr(addr, f"is_{label}"):
                return _PRIVATE, f"{addr} is a {label.replace('_', '-')} address"
        if not addr.is_global:
            return _PRIVATE, f"{addr} is not a globally routable address"
    return None


def _host_in(host: str, entries: Iterable[str]) -> bool:
    for entry in entries:
        entry = entry.strip().lower().rstrip(".")
        if entry.startswith("*."):
            entry = entry[2:]
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def _split(url: str) -> tuple[str, str, int] | Verdict:
    """Scheme, host and port of ``url``, or the verdict refusing it."""
    for ch in url:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            return _MALFORMED.verdict(f"URL contains whitespace or control character "
                                      f"U+{ord(ch):04X}")
    if "\\" in url:
        return _MALFORMED.verdict("URL contains a backslash (parsers disagree on it)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return _MALFORMED.verdict(f"URL cannot be parsed: {exc}")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return _SCHEME.verdict(f"scheme {scheme or '(none)'!r} is not http or https")
    if "@" in parts.netloc:
        return _USERINFO.verdict("URL carries userinfo before '@'; the real host is after it")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return _MALFORMED.verdict("URL has no host")
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80)


def check_url(
    url: str,
    *,
    allowed_hosts: Iterable[str] = (),
    denied_hosts: Iterable[str] = (),
    allow_private: bool = False,
    resolver: Resolver | None = None,
) -> Verdict:
    """Verdict for fetching ``url``; see the module docstring for the rules.

    ``resolver(host, port)`` returns address strings; it defaults to ``getaddrinfo``.
    """
    if not isinstance(url, str) or not url:
        return _MALFORMED.verdict("URL is not a non-empty string")
    split = _split(url)
    if isinstance(split, Verdict):
        return split
    _scheme, host, port = split
    allowed = tuple(allowed_hosts)
    if not host.isascii():
        return _IDN.verdict(f"host {host!r} is not ASCII; it may imitate another name")
    if _host_in(host, denied_hosts):
        return _DENIED_HOST.verdict(f"{host} is in denied_hosts")
    explicitly_allowed = _host_in(host, allowed)
    if allowed and not explicitly_allowed:
        return _NOT_ALLOWED.verdict(f"{host} is not in allowed_hosts")
    if explicitly_allowed:
        return _ALLOWED.verdict(f"{host} is explicitly in allowed_hosts")
    return _check_addresses(host, port, allow_private, resolver or _default_resolver)


def _check_addresses(host: str, port: int, allow_private: bool, resolver: Resolver) -> Verdict:
    if host in METADATA_HOSTS:
        return _METADATA.verdict(f"{host} is a cloud metadata host name")
    try:
        literal = parse_ip(host)
    except ValueError as exc:
        return _UNRESOLVABLE.verdict(str(exc))
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            addresses = [parse_ip(a) or ipaddress.ip_address(a) for a in resolver(host, port)]
        except (OSError, ValueError, UnicodeError) as exc:
            return _UNRESOLVABLE.verdict(f"{host} does not resolve ({exc})")
        if not addresses:
            return _UNRESOLVABLE.verdict(f"{host} resolves to no address")
    for address in addresses:
        problem = address_problem(address)
        if problem is None:
            continue
        rule, why = problem
        if rule is _PRIVATE and allow_private:
            continue
        return rule.verdict(f"{host} -> {why}")
    shown = ", ".join(str(a) for a in addresses[:4])
    return _ALLOWED.verdict(f"{host} resolves to public addresses only ({shown})")


def resolve_host(host: str, port: int = 443, resolver: Resolver | None = None) -> list[str]:
    """The addresses ``host`` resolves to, for callers that pin the connection to them."""
    return (resolver or _default_resolver)(host, port)
