"""URL checks: schemes, host lists, and where hosts really point (numeric forms, IPv6)."""

from __future__ import annotations

import pytest

from llmos.security.urls import check_url, parse_ip

DNS = {
    "public.example": ["93.184.215.14"],
    "rebind.example": ["10.0.0.5"],
    "mixed.example": ["93.184.215.14", "127.0.0.1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "v6.example": ["2606:4700::1111"],
    "meta.example": ["169.254.169.254"],
    "intranet.corp": ["192.168.10.4"],
    "localhost": ["127.0.0.1", "::1"],
}


def resolver(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise OSError(f"no such host {host}")
    return DNS[host]


def check(url: str, **kwargs: object):  # type: ignore[no-untyped-def]
    kwargs.setdefault("resolver", resolver)
    return check_url(url, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["https://public.example/x", "http://v6.example:8080/",
                                 "https://93.184.215.14/", "https://[2606:4700::1111]/"])
def test_public_urls_are_allowed(url: str) -> None:
    assert check(url).decision == "allow"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://localhost/", "http://2130706433/", "http://0x7f000001/",
    "http://0177.0.0.1/", "http://0x7f.1/", "http://127.1/", "http://017700000001/",
    "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/", "http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/", "http://0.0.0.0/", "http://0/", "http://10.1.2.3/",
    "http://172.16.0.1/", "http://192.168.0.1/", "http://100.64.1.1/", "http://[fe80::1]/",
    "http://[fc00::1]/", "http://224.0.0.251/", "http://240.0.0.1/",
    "http://255.255.255.255/", "http://rebind.example/", "http://mixed.example/",
    "http://mapped.example/", "http://intranet.corp/", "http://localhost./",
])
def test_private_and_loopback_addresses_are_denied(url: str) -> None:
    verdict = check(url)
    assert (verdict.decision, verdict.rule) == ("deny", "url.private_address"), verdict.reason


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/",
                                 "http://[fd00:ec2::254]/", "http://metadata.google.internal/",
                                 "http://2852039166/", "http://0xa9.0xfe.0xa9.0xfe/",
                                 "http://[::ffff:169.254.169.254]/", "http://meta.example/",
                                 "http://100.100.100.200/"])
def test_metadata_endpoints_are_denied_even_with_allow_private(url: str) -> None:
    verdict = check(url, allow_private=True)
    assert (verdict.decision, verdict.rule) == ("deny", "url.metadata"), verdict.reason


def test_allow_private_opens_private_ranges_only() -> None:
    assert check("http://10.0.0.1/", allow_private=True).decision == "allow"
    assert check("http://rebind.example/", allow_private=True).decision == "allow"


def test_explicitly_allowed_host_may_be_private() -> None:
    assert check("http://127.0.0.1:8000/", allowed_hosts=["127.0.0.1"]).decision == "allow"
    assert check("http://intranet.corp/", allowed_hosts=["*.corp"]).decision == "allow"


def test_allowed_hosts_is_an_allowlist() -> None:
    allowed = ["public.example"]
    assert check("https://api.public.example/", allowed_hosts=allowed).decision == "allow"
    assert check("https://v6.example/", allowed_hosts=allowed).rule == "url.not_allowed"
    assert check("https://evilpublic.example/", allowed_hosts=allowed).rule == "url.not_allowed"


def test_denied_hosts_win() -> None:
    verdict = check("https://api.public.example/", allowed_hosts=["public.example"],
                    denied_hosts=["api.public.example"])
    assert verdict.rule == "url.denied_host"


@pytest.mark.parametrize(("url", "rule"), [
    ("http://public.example@127.0.0.1/", "url.userinfo"),
    ("https://user:pass@public.example/", "url.userinfo"),
    ("http://public.example\\@127.0.0.1/", "url.malformed"),
    ("http://public.example /", "url.malformed"),
    ("http://pub\tlic.example/", "url.malformed"),
    ("http://public.example:99999/", "url.malformed"),
    ("http:///x", "url.malformed"),
    ("file:///etc/passwd", "url.scheme"),
    ("gopher://public.example/", "url.scheme"),
    ("ftp://public.example/", "url.scheme"),
    ("//public.example/", "url.scheme"),
    ("http://unknown.example/", "url.unresolvable"),
    ("http://1.2.3.4.5/", "url.unresolvable"),
    ("http://09.1.1.1/", "url.unresolvable"),
    ("http://pub\u200blic.example/", "url.malformed"),
])
def test_tricky_urls_are_denied(url: str, rule: str) -> None:
    verdict = check(url)
    assert (verdict.decision, verdict.rule) == ("deny", rule), verdict.reason


def test_look_alike_host_asks() -> None:
    verdict = check("https://pub\u0142ic.example/")
    assert (verdict.decision, verdict.rule) == ("ask", "url.idn")


def test_non_string_url_is_denied() -> None:
    assert check(None).decision == "deny"  # type: ignore[arg-type]


def test_numeric_host_forms_parse_like_inet_aton() -> None:
    assert str(parse_ip("2130706433")) == "127.0.0.1"
    assert str(parse_ip("0x7f.0.0.1")) == "127.0.0.1"
    assert str(parse_ip("0177.1")) == "127.0.0.1"
    assert parse_ip("example.com") is None
    with pytest.raises(ValueError):
        parse_ip("1.2.3.4.5")


def test_default_resolver_resolves_localhost() -> None:
    assert check_url("http://localhost:9/").rule == "url.private_address"
