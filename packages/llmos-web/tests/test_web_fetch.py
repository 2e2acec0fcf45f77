"""Fetching: size cap, timeouts, redirects, HTTP errors, robots.txt and the on-disk cache."""

from __future__ import annotations

import gzip
import socket
import time
import zlib

from web_site import Reply

# -- size cap -----------------------------------------------------------------------------


async def test_a_huge_body_is_cut_off_and_flagged(web_kernel, site):
    site.page("/huge.txt", b"x" * 8_000_000, content_type="text/plain")
    # the pack's own cap is measured here, not the kernel's cap on every tool's output
    async with web_kernel("kernel.max_output_bytes=1000000") as kernel:
        result = await kernel.call_tool(
            "web_fetch", {"url": site.url("/huge.txt"), "max_bytes": 100_000}
        )
    page = result.output
    assert not result.is_error, result.error
    assert page["truncated"] is True
    assert page["bytes"] == 100_000 and len(page["content"]) == 100_000
    assert "only the first 100000 bytes of 8000000 were read" in page["note"]


async def test_compressed_bodies_are_decoded_and_a_gzip_bomb_is_capped(web_kernel, site):
    page = "<html><body><p>Squeezed through gzip and back again.</p></body></html>"
    site.page("/gz", gzip.compress(page.encode()), **{"Content-Encoding": "gzip"})
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    site.page("/raw-deflate", raw_deflate.compress(page.encode()) + raw_deflate.flush(),
              **{"Content-Encoding": "deflate"})
    bomb = gzip.compress(b"A" * 200_000_000, compresslevel=9)  # 200 MB in ~200 KB
    site.page("/bomb", bomb, content_type="text/plain", **{"Content-Encoding": "gzip"})
    site.page("/br", b"\x1b\x00", **{"Content-Encoding": "br"})
    async with web_kernel("kernel.max_output_bytes=1000000") as kernel:
        for path in ("/gz", "/raw-deflate"):
            result = await kernel.call_tool("web_fetch", {"url": site.url(path)})
            assert result.output["content"] == "Squeezed through gzip and back again.", path
        capped = (await kernel.call_tool(
            "web_fetch", {"url": site.url("/bomb"), "max_bytes": 100_000}
        )).output
        brotli = await kernel.call_tool("web_fetch", {"url": site.url("/br")})
    assert capped["truncated"] is True and capped["content"] == "A" * 100_000
    assert "only the first 100000 bytes were read" in capped["note"]  # no compressed size
    assert site.request_headers[0]["accept-encoding"] == "gzip, deflate"
    assert brotli.is_error and "unsupported Content-Encoding: br" in brotli.error


async def test_the_default_cap_comes_from_config(web_kernel, site):
    site.page("/big.html", "<html><body>" + "<p>word </p>" * 20_000 + "</body></html>")
    async with web_kernel("web.max_bytes=5000") as kernel:
        page = (await kernel.call_tool("web_fetch", {"url": site.url("/big.html")})).output
    assert page["truncated"] is True and page["bytes"] == 5000
    assert "max_bytes = 5000" in page["note"]


async def test_a_character_cut_in_half_by_the_cap_is_dropped(web_kernel, site):
    site.page("/e.txt", "é" * 10_000, content_type="text/plain; charset=utf-8")
    async with web_kernel() as kernel:
        page = (await kernel.call_tool(
            "web_fetch", {"url": site.url("/e.txt"), "max_bytes": 1001}
        )).output
    assert page["content"] == "é" * 500  # 1000 bytes; the 1001st byte was half an "é"


async def test_max_bytes_is_validated(web_kernel, site):
    async with web_kernel() as kernel:
        import pytest
        from llmos.tools import ToolInputError

        with pytest.raises(ToolInputError, match="max_bytes"):
            await kernel.call_tool("web_fetch", {"url": site.url("/"), "max_bytes": 0})
        with pytest.raises(ToolInputError, match="format"):
            await kernel.call_tool("web_fetch", {"url": site.url("/"), "format": "pdf"})


# -- timeouts -----------------------------------------------------------------------------


async def test_a_slow_server_times_out(web_kernel, site):
    def slow(handler):
        site.release.wait(10)  # answers only when the test is over
        return Reply(200, b"late", {"Content-Type": "text/plain"})

    site.routes["/slow"] = slow
    async with web_kernel("web.timeout_s=0.5") as kernel:
        started = time.monotonic()
        result = await kernel.call_tool("web_fetch", {"url": site.url("/slow")})
        elapsed = time.monotonic() - started
    assert result.is_error
    assert f"fetching {site.url('/slow')} timed out after 0.5 s (web.timeout_s)" in result.error
    assert elapsed < 5


async def test_a_server_that_drips_its_body_hits_the_same_deadline(web_kernel, site):
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):  # one byte every 50 ms: each read is quick, the whole is not
            if site.release.wait(0.05):
                return None
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return None
        return None

    site.routes["/drip"] = drip
    async with web_kernel("web.timeout_s=0.6") as kernel:
        result = await kernel.call_tool("web_fetch", {"url": site.url("/drip")})
    assert result.is_error and "timed out after 0.6 s" in result.error


# -- redirects and statuses ---------------------------------------------------------------


async def test_redirects_are_followed_hop_by_hop(web_kernel, site):
    site.redirect("/old", "/moved", status=301)
    site.redirect("/moved", "final?x=1", status=307)  # relative to /moved
    site.page("/final", "<html><body><p>You made it to the end of the chain.</p></body></html>")
    async with web_kernel() as kernel:
        page = (await kernel.call_tool("web_fetch", {"url": site.url("/old")})).output
    assert page["final_url"] == site.url("/final?x=1")
    assert page["redirects"] == [site.url("/moved"), site.url("/final?x=1")]
    assert page["content"] == "You made it to the end of the chain."


async def test_too_many_redirects(web_kernel, site):
    site.redirect("/loop", "/loop")
    async with web_kernel("web.max_redirects=3") as kernel:
        result = await kernel.call_tool("web_fetch", {"url": site.url("/loop")})
    assert result.is_error
    assert "redirected more than web.max_redirects = 3 times" in result.error
    assert site.hits["/loop"] == 4


async def test_http_errors_are_reported_with_their_status(web_kernel, site):
    site.routes["/gone"] = Reply(410, b"gone", {"Content-Type": "text/plain"})
    async with web_kernel() as kernel:
        missing = await kernel.call_tool("web_fetch", {"url": site.url("/nothing-here")})
        gone = await kernel.call_tool("web_links", {"url": site.url("/gone")})
    assert missing.is_error
    assert f"HTTP 404 Not Found from {site.url('/nothing-here')}" in missing.error
    assert gone.is_error and "HTTP 410 Gone" in gone.error


async def test_a_closed_port_is_a_clear_connection_error(web_kernel):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": f"http://127.0.0.1:{port}/"})
    assert result.is_error and "cannot connect to 127.0.0.1" in result.error


# -- robots.txt ---------------------------------------------------------------------------

ROBOTS = """\
User-agent: llmos-web
Disallow: /private/

User-agent: *
Disallow: /
"""


async def test_robots_txt_is_honoured_and_remembered(web_kernel, site):
    site.page("/robots.txt", ROBOTS, content_type="text/plain")
    site.page("/private/report.html", "<p>secret plans</p>")
    site.page("/public.html", "<p>open to all</p>")
    async with web_kernel() as kernel:
        refused = await kernel.call_tool("web_fetch", {"url": site.url("/private/report.html")})
        allowed = await kernel.call_tool("web_fetch", {"url": site.url("/public.html")})
    assert refused.is_error
    assert "robots.txt disallows /private/report.html for user agent 'llmos-web'" in refused.error
    assert "web.respect_robots = false" in refused.error
    assert site.hits["/private/report.html"] == 0
    assert not allowed.is_error, allowed.error
    assert site.hits["/robots.txt"] == 1  # parsed once per kernel
    assert all("llmos-web/" in h["user-agent"] for h in site.request_headers)


async def test_robots_txt_can_be_ignored_by_config(web_kernel, site):
    site.page("/robots.txt", "User-agent: *\nDisallow: /\n", content_type="text/plain")
    site.page("/page.html", "<p>fetched anyway</p>")
    async with web_kernel("web.respect_robots=false") as kernel:
        result = await kernel.call_tool("web_fetch", {"url": site.url("/page.html")})
    assert not result.is_error and site.hits["/robots.txt"] == 0


async def test_a_robots_txt_that_fails_disallows_the_site(web_kernel, site):
    site.routes["/robots.txt"] = Reply(503, b"down", {"Content-Type": "text/plain"})
    site.page("/page.html", "<p>hi</p>")
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": site.url("/page.html")})
    assert result.is_error and "could not be read (HTTP 503)" in result.error
    assert site.hits["/page.html"] == 0


async def test_robots_of_each_redirect_target_is_checked(web_kernel, site):
    site.page("/robots.txt", "User-agent: *\nDisallow: /members/\n", content_type="text/plain")
    site.redirect("/login-redirect", "/members/area")
    site.page("/members/area", "<p>members only</p>")
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_fetch", {"url": site.url("/login-redirect")})
    assert result.is_error and "disallows /members/area" in result.error
    assert site.hits["/members/area"] == 0


# -- the cache ----------------------------------------------------------------------------


def versioned(site, path: str, body: str, etag: str | None = None, modified: str | None = None):
    """A page that answers 304 when the client's validator matches."""
    state = {"body": body, "etag": etag, "modified": modified}

    def handler(request):
        headers = {"Content-Type": "text/html; charset=utf-8"}
        if state["etag"]:
            headers["ETag"] = state["etag"]
        if state["modified"]:
            headers["Last-Modified"] = state["modified"]
        if (state["etag"] and request.headers.get("If-None-Match") == state["etag"]) or (
            state["modified"] and request.headers.get("If-Modified-Since") == state["modified"]
        ):
            return Reply(304, b"", headers)
        return Reply(200, state["body"].encode(), headers)

    site.routes[path] = handler
    return state


ARTICLE = ("<html><head><title>Cached</title></head><body><article><p>The first version of "
           "this article, long enough to count as the main content of the page.</p></article>"
           "</body></html>")


async def test_the_cache_revalidates_with_etag(web_kernel, site, llmos_workspace):
    state = versioned(site, "/article", ARTICLE, etag='"v1"')
    async with web_kernel() as kernel:
        first = (await kernel.call_tool("web_fetch", {"url": site.url("/article")})).output
        second = (await kernel.call_tool("web_fetch", {"url": site.url("/article")})).output
    assert first["from_cache"] is False and second["from_cache"] is True
    assert second["content"] == first["content"] and "first version" in second["content"]
    assert site.not_modified == 1
    assert site.request_headers[-1]["if-none-match"] == '"v1"'
    assert list((llmos_workspace / ".llmos" / "web-cache").glob("*.entry"))

    # the cache is on disk: a new kernel revalidates too; a changed page replaces it
    state.update(body=ARTICLE.replace("first", "second"), etag='"v2"')
    async with web_kernel() as kernel:
        third = (await kernel.call_tool("web_fetch", {"url": site.url("/article")})).output
        fourth = (await kernel.call_tool("web_fetch", {"url": site.url("/article")})).output
    assert third["from_cache"] is False and "second version" in third["content"]
    assert fourth["from_cache"] is True and "second version" in fourth["content"]
    assert site.not_modified == 2


async def test_the_cache_revalidates_with_last_modified(web_kernel, site):
    versioned(site, "/lm", ARTICLE, modified="Wed, 21 Oct 2015 07:28:00 GMT")
    async with web_kernel() as kernel:
        await kernel.call_tool("web_fetch", {"url": site.url("/lm")})
        again = (await kernel.call_tool("web_fetch", {"url": site.url("/lm")})).output
    assert again["from_cache"] is True and site.not_modified == 1
    assert site.request_headers[-1]["if-modified-since"] == "Wed, 21 Oct 2015 07:28:00 GMT"


async def test_a_cached_page_still_honours_max_bytes(web_kernel, site):
    versioned(site, "/article", ARTICLE, etag='"v1"')
    async with web_kernel() as kernel:
        await kernel.call_tool("web_fetch", {"url": site.url("/article")})
        small = (await kernel.call_tool(
            "web_fetch", {"url": site.url("/article"), "format": "html", "max_bytes": 50}
        )).output
    assert small["from_cache"] is True and small["truncated"] is True
    assert small["content"] == ARTICLE[:50]


async def test_a_truncated_body_is_not_cached(web_kernel, site):
    versioned(site, "/article", ARTICLE, etag='"v1"')
    async with web_kernel() as kernel:
        await kernel.call_tool("web_fetch", {"url": site.url("/article"), "max_bytes": 40})
        whole = (await kernel.call_tool("web_fetch", {"url": site.url("/article")})).output
    assert whole["from_cache"] is False and whole["truncated"] is False
    assert "first version" in whole["content"] and site.not_modified == 0


async def test_the_cache_stays_within_its_size(web_kernel, site, llmos_workspace):
    for n in range(5):
        versioned(site, f"/p{n}", ARTICLE + "<!--" + "x" * 20_000 + "-->", etag=f'"{n}"')
    cache_dir = llmos_workspace / ".llmos" / "web-cache"
    async with web_kernel("web.cache_max_mb=0.05") as kernel:  # 52,428 bytes: two pages
        for n in range(5):
            await kernel.call_tool("web_fetch", {"url": site.url(f"/p{n}")})
        sizes = [p.stat().st_size for p in cache_dir.glob("*.entry")]
        assert len(sizes) == 2 and sum(sizes) <= 52_428
        # the most recent pages survived, the oldest were evicted
        recent = (await kernel.call_tool("web_fetch", {"url": site.url("/p4")})).output
        oldest = (await kernel.call_tool("web_fetch", {"url": site.url("/p0")})).output
    assert recent["from_cache"] is True and oldest["from_cache"] is False


async def test_no_store_and_a_disabled_cache_keep_nothing(web_kernel, site, llmos_workspace):
    site.page("/private", ARTICLE, ETag='"p"', **{"Cache-Control": "private, no-store"})
    versioned(site, "/article", ARTICLE, etag='"v1"')
    async with web_kernel() as kernel:
        for _ in range(2):
            result = await kernel.call_tool("web_fetch", {"url": site.url("/private")})
            assert result.output["from_cache"] is False
    async with web_kernel("web.cache_max_mb=0") as kernel:
        for _ in range(2):
            result = await kernel.call_tool("web_fetch", {"url": site.url("/article")})
            assert result.output["from_cache"] is False
    assert site.not_modified == 0
    assert not any("if-none-match" in h for h in site.request_headers)
    assert not list((llmos_workspace / ".llmos" / "web-cache").glob("*.entry"))
