"""SSRF protection: the pack's pre_tool_use hook, per-hop checks, pinning, and bad URLs.

Nothing here ever reaches a non-loopback address: the conftest audit hook makes such a
connection fail, and the tests assert on the addresses actually connected to.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import llmos
import pytest
from llmos.config import ConfigError

from llmos_web import guard
from llmos_web.config import WebConfig
from llmos_web.hosts import HostRule, address_class

ip = ipaddress.ip_address


def only_loopback(addresses: list[str]) -> bool:
    return all(ip(a).is_loopback for a in addresses)


# -- address classes and rules ----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private-network"),
        ("172.16.5.4", "private-network"),
        ("192.168.1.1", "private-network"),
        ("fc00::1", "private-network"),
        ("169.254.169.254", "cloud-metadata"),
        ("fd00:ec2::254", "cloud-metadata"),
        ("100.100.100.200", "cloud-metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("64:ff9b::a00:1", "private-network"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::", "private-network"),  # 6to4 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "tunnelled"),  # Teredo client 10.0.0.1
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classes(address, expected):
    reason = address_class(ip(address))
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


@pytest.mark.parametrize("entry", ["http://example.com/", "example.com/path", "exa mple.com",
                                   "", "10.0.0.0/33", "*."])
def test_bad_host_entries_are_rejected(entry):
    with pytest.raises(ValueError):
        HostRule.parse(entry)


def test_config_names_the_bad_key(llmos_workspace):
    with pytest.raises(ConfigError) as info:
        llmos.Kernel(llmos_workspace, flags=['web.allowed_hosts=["http://intranet/"]'])
    message = str(info.value)
    assert "web.allowed_hosts" in message and "is not a host" in message


def test_allowing_a_network_does_not_open_the_metadata_address():
    cfg = WebConfig(allowed_hosts=["169.254.0.0/16"])
    guard.check_address("169.254.1.1", ip("169.254.1.1"), cfg)  # allowed by the network
    with pytest.raises(guard.Blocked, match="cloud-metadata"):
        guard.check_address("169.254.169.254", ip("169.254.169.254"), cfg)
    exact = WebConfig(allowed_hosts=["169.254.169.254"])
    guard.check_address("169.254.169.254", ip("169.254.169.254"), exact)


# -- the pre_tool_use hook, through the kernel's real gate ------------------------------------


@pytest.mark.parametrize(
    ("url", "rule", "words"),
    [
        ("http://10.0.0.1/admin", "web.private-address", "private-network address"),
        ("http://169.254.169.254/latest/meta-data/", "web.metadata", "cloud-metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "web.metadata", "cloud-metadata"),
        ("http://[::1]:8080/", "web.private-address", "loopback"),
        ("http://192.168.0.1/", "web.private-address", "private-network"),
        ("file:///etc/passwd", "web.scheme", "only http and https"),
        ("ftp://ftp.example.com/pub/file.txt", "web.scheme", "only http and https"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "web.scheme", "only http and https"),
    ],
)
async def test_hook_denies_through_the_gate(web_kernel, connects, url, rule, words):
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": url})
    assert result.decision is not None and result.decision.verdict == "deny"
    assert result.decision.rule == rule
    assert result.is_error and words in result.error
    assert connects() == []


@pytest.mark.parametrize("url", ["http://localhost:9/", "http://2130706433:9/",
                                 "http://0x7f000001:9/", "http://127.1:9/"])
async def test_names_and_numeric_forms_are_judged_by_the_address_they_resolve_to(
    web_kernel, connects, url
):
    async with web_kernel("web.allowed_hosts=[]") as kernel:
        result = await kernel.call_tool("web_links", {"url": url})
    assert result.decision.verdict == "deny", result
    assert "loopback" in result.error
    assert connects() == []


async def test_denied_hosts_win_over_allowed_hosts(web_kernel, site, connects):
    site.page("/", "<p>hi</p>")
    async with web_kernel('web.denied_hosts=["127.0.0.0/8", "*.evil.test"]') as kernel:
        by_address = await kernel.call_tool("web_fetch", {"url": site.url("/")})
        by_name = await kernel.call_tool("web_fetch", {"url": "http://www.evil.test/"})
    assert by_address.decision.verdict == "deny" and by_address.decision.rule == "web.denied-host"
    assert by_name.decision.verdict == "deny" and "*.evil.test" in by_name.error
    assert connects() == [] and site.hits.total() == 0


async def test_public_hosts_can_be_switched_off(web_kernel, connects):
    async with web_kernel("web.allow_public_hosts=false") as kernel:
        result = await kernel.call_tool("web_fetch", {"url": "http://93.184.216.34/"})
    assert result.decision.verdict == "deny" and result.decision.rule == "web.not-allowed"
    assert connects() == []


async def test_hook_guards_claude_codes_own_webfetch(web_kernel):
    async with web_kernel() as kernel:
        call = llmos.ToolCall("WebFetch", {"url": "http://169.254.169.254/", "prompt": "x"})
        decision = await kernel.gateway.decide(call, kernel.context())
        other = llmos.ToolCall("Read", {"file_path": "http://169.254.169.254/"})
        unrelated = await kernel.gateway.decide(other, kernel.context())
    assert decision.verdict == "deny" and decision.rule == "web.metadata"
    assert unrelated.verdict == "allow"  # not a web tool: the hook abstains


async def test_allowed_loopback_passes_the_hook(web_kernel, site):
    site.page("/", "<p>hello</p>")
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": site.url("/"), "format": "text"})
    assert result.decision.verdict == "allow" and not result.is_error
    assert result.output["content"] == "hello"


# -- every redirect hop is checked before connecting ------------------------------------------


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("http://10.0.0.1/internal", "private-network address"),
        ("http://169.254.169.254/latest/meta-data/iam/", "cloud-metadata"),
        ("http://[fd00:ec2::254]/latest/", "cloud-metadata"),
        ("file:///etc/shadow", "only http and https"),
    ],
)
async def test_redirect_to_a_forbidden_place_is_refused_without_connecting(
    web_kernel, site, connects, location, words
):
    site.redirect("/go", location)
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": site.url("/go")})
    assert result.decision.verdict == "allow"  # the first hop was fine...
    assert result.is_error  # ...the second was refused by the tool itself
    assert f"redirected to {location}, which was refused" in result.error
    assert words in result.error
    assert site.hits["/go"] == 1
    assert connects() and only_loopback(connects())


# -- resolve once, pin the connection ---------------------------------------------------------


async def test_the_transport_refuses_a_host_nobody_vetted(connects):
    import httpx

    from llmos_web.transport import PinnedTransport, UnvettedHost

    transport = PinnedTransport(ssl.create_default_context())
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(UnvettedHost, match="not vetted"):
            await client.get("http://127.0.0.1:9/")
    await transport.aclose()
    assert connects() == []


async def test_proxy_variables_cannot_bypass_the_pinning(web_kernel, site, connects,
                                                         monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://10.9.9.9:3128")
    site.page("/", "<p>direct</p>")
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": site.url("/")})
    assert not result.is_error, result.error
    assert connects() and only_loopback(connects())



@pytest.fixture
def fake_dns(monkeypatch):
    """Name -> list of answers (one per lookup; the last one repeats). Records lookups."""
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []
    real = guard.resolve_host

    async def resolve(host, port, timeout_s):
        if host not in answers:
            return await real(host, port, timeout_s)
        lookups.append(host)
        queue = answers[host]
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        return [ip(a) for a in current]

    monkeypatch.setattr(guard, "resolve_host", resolve)
    resolve.answers, resolve.lookups = answers, lookups
    return resolve


async def test_name_is_resolved_once_and_the_connection_pinned(web_kernel, site, fake_dns,
                                                               connects):
    # a rebinding name: loopback (allowed) first, then a private address
    fake_dns.answers["rebind.test"] = [["127.0.0.1"], ["127.0.0.1"], ["10.0.0.1"]]
    base = f"http://rebind.test:{site.port}"
    site.redirect("/start", f"{base}/end")
    site.page("/end", "<html><body><article><p>Pinned content that arrived safely over the "
                      "loopback interface.</p></article></body></html>")
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": f"{base}/start"})
    assert not result.is_error, result.error
    assert "Pinned content" in result.output["content"]
    assert result.output["redirects"] == [f"{base}/end"]
    # one lookup for the hook, one for the tool; the redirect and robots.txt reuse the pin
    assert fake_dns.lookups == ["rebind.test", "rebind.test"]
    assert site.hits["/robots.txt"] == 1 and site.hits["/end"] == 1
    assert {h["host"] for h in site.request_headers} == {f"rebind.test:{site.port}"}
    assert connects() and only_loopback(connects())


async def test_a_changed_answer_after_the_hook_is_still_refused(web_kernel, fake_dns, connects):
    fake_dns.answers["rebind.test"] = [["127.0.0.1"], ["10.0.0.1"]]
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": "http://rebind.test/"})
    assert result.decision.verdict == "allow" and result.is_error
    assert "10.0.0.1" in result.error and "private-network" in result.error
    assert connects() == []


async def test_a_name_with_any_private_answer_is_refused(web_kernel, fake_dns, connects):
    fake_dns.answers["mixed.test"] = [["93.184.216.34", "10.0.0.1"]]
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": "http://mixed.test/"})
    assert result.decision.verdict == "deny" and "10.0.0.1" in result.error
    assert connects() == []


@pytest.fixture
def tls_site(tmp_path):
    """An HTTPS server on 127.0.0.1 whose certificate names only pinned.test."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("pinned.test").configure_cert(context)
    server_names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            hosts.append(self.headers["Host"])
            body = b"User-agent: *\nAllow: /\n" if self.path == "/robots.txt" else (
                b"<html><body><p>Served over TLS to the right name.</p></body></html>")
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server.server_address[1], ca_file, server_names, hosts
    server.shutdown()
    server.server_close()


async def test_tls_uses_the_name_for_sni_and_certificate_checks(web_kernel, tls_site, fake_dns):
    port, ca_file, server_names, hosts = tls_site
    fake_dns.answers["pinned.test"] = [["127.0.0.1"]]
    fake_dns.answers["other.test"] = [["127.0.0.1"]]
    settings = ('web.allowed_hosts=["pinned.test", "other.test"]', f"web.ca_bundle={ca_file}")
    async with web_kernel(*settings) as kernel:
        good = await kernel.call_tool("web_fetch", {"url": f"https://pinned.test:{port}/"})
        wrong = await kernel.call_tool("web_fetch", {"url": f"https://other.test:{port}/"})
    assert not good.is_error, good.error
    assert good.output["content"] == "Served over TLS to the right name."
    assert "pinned.test" in server_names and f"pinned.test:{port}" in hosts
    # same address, but the certificate does not name other.test: refused
    assert wrong.is_error and "certificate" in wrong.error.lower()
    assert f"other.test:{port}" not in hosts


# -- bad URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("garbage", "is not an absolute URL"),
        ("example.com/page", "is not an absolute URL"),
        ("http://", "has no host"),
        ("https:///path-only", "has no host"),
        ("", "the URL is empty"),
        ("   ", "the URL is empty"),
        ("http://exa mple.com/", "invalid host name"),
        ("http://[::1/", "is not a valid URL"),
        ("http://user:secret@127.0.0.1/", "carries credentials"),
        ("http://127.0.0.1\\@evil.example/", "contains a backslash"),
        ("http://127.0.0.1:99999/", "invalid port 99999"),
    ],
)
async def test_bad_urls_get_clear_errors(web_kernel, connects, url, words):
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": url})
    assert result.is_error and words in result.error, result.error
    assert "secret" not in result.error
    assert connects() == []
