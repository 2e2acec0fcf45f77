"""Main-content extraction from realistic pages, charsets, content types, and web_links."""

from __future__ import annotations

import json

import pytest
from web_site import fixture_page


async def fetch(kernel, url: str, **args):
    result = await kernel.call_tool("web_fetch", {"url": url, **args})
    assert not result.is_error, result.error
    return result.output


async def test_news_article_keeps_the_story_and_drops_nav_ads_and_footer(web_kernel, site):
    site.page("/news/tidal-mill", fixture_page("news_article.html"))
    async with web_kernel() as kernel:
        page = await fetch(kernel, site.url("/news/tidal-mill"))

    text = page["content"]
    assert page["title"] == "Harbour town votes to rebuild its tidal mill"
    assert page["author"] == "Maren Okafor"
    assert page["date"] == "2024-03-14"
    assert page["site_name"] == "The Coastal Courier"
    assert page["description"].startswith("Residents of Port Aldwick backed a plan")
    assert page["canonical_url"] == "https://courier.example/news/2024/03/14/tidal-mill-vote"
    # the story, its subheadings and its quote
    assert "3,107 supported the restoration plan" in text
    assert "## How the tidal turbine will work" in text
    assert "## Objections from the sailing club" in text
    assert "before any permit is issued" in text
    # its in-body link, as Markdown and in the links list
    assert "[regional energy agency](https://energy.example/reports/tidal-mills)" in text
    assert {"text": "regional energy agency",
            "url": "https://energy.example/reports/tidal-mills"} in page["links"]
    # everything around it is gone
    for noise in ("cookies", "Subscribe for 1 euro", "yacht charters", "QuickLend",
                  "Hot singles", "Winter ferry timetable", "Morning Tide newsletter",
                  "All rights reserved", "Terms and conditions", "Politics"):
        assert noise not in text, noise
    assert page["truncated"] is False and page["from_cache"] is False
    assert page["content_type"] == "text/html" and page["charset"] == "utf-8"


async def test_documentation_page_keeps_code_tables_and_warnings(web_kernel, site):
    site.page("/docs/guide/pools.html", fixture_page("docs_page.html"))
    async with web_kernel() as kernel:
        page = await fetch(kernel, site.url("/docs/guide/pools.html"))

    text = page["content"]
    assert page["title"] == "Connection pools"  # the permalink "¶" is not part of it
    assert page["site_name"] == "Ferrydb 3.2 documentation"
    assert "¶" not in text
    assert "## Creating a pool" in text
    assert 'pool = ferrydb.Pool("ferry://db.internal:7420/orders", min_size=2, max_size=20)' in text
    assert "```" in text  # a fenced code block
    assert "| `max_idle_s` | 300 |" in text  # the settings table as a Markdown table
    assert "Never share a pool across a `fork()`" in text
    # a relative link, resolved against the page's URL
    assert f"[PoolTimeout]({site.url('/docs/api/errors.html#PoolTimeout')})" in text
    for noise in ("Skip to content", "Ferrydb 4.0 beta", "Schema migrations", "Search the docs",
                  "Edit this page", "Next: Transactions", "Code of conduct", "Replication"):
        assert noise not in text, noise


async def test_navigation_and_ad_heavy_page_keeps_only_the_recipe(web_kernel, site):
    site.page("/recipes/tomato-soup", fixture_page("nav_heavy.html"),
              content_type="text/html")
    async with web_kernel() as kernel:
        page = await fetch(kernel, site.url("/recipes/tomato-soup"))
        plain = await fetch(kernel, site.url("/recipes/tomato-soup"), format="text")

    text = page["content"]
    assert page["title"] == "Slow-roasted tomato soup"
    assert "two kilos of plum tomatoes" in text
    assert "1. Halve the tomatoes" in text
    assert "freezes well for up to three months" in text
    for noise in ("FREE SHIPPING", "Mega Blender", "Gluten free", "Air fryer", "feta pasta",
                  "Doctors hate", "MealBox", "TaboolaStyle", "solar trick", "Cheap flights",
                  "dinner plans", "Careers", "Pin it", "Jump to recipe"):
        assert noise not in text, noise
    # plain text: the same main content without Markdown syntax
    assert "two kilos of plum tomatoes" in plain["content"]
    assert "Mega Blender" not in plain["content"]
    assert "# Slow-roasted" not in plain["content"]
    assert plain["links"] == []


async def test_html_format_returns_the_page_as_served(web_kernel, site):
    site.page("/a", fixture_page("news_article.html"))
    async with web_kernel() as kernel:
        page = await fetch(kernel, site.url("/a"), format="html")
    assert page["content"] == fixture_page("news_article.html").decode("utf-8")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # the charset only in a <meta> tag
        ('<html><head><meta charset="windows-1252"><title>Menu</title></head><body>'
         "<p>Crème brûlée costs 5 € at the café on the corner of the square.</p></body></html>",
         "text/html"),
        # the charset in the header, with the web's meaning of iso-8859-1 (windows-1252)
        ("<html><head><title>Menu</title></head><body><p>Crème brûlée costs 5 € at the café on "
         "the corner of the square.</p></body></html>", "text/html; charset=ISO-8859-1"),
    ],
)
async def test_legacy_charsets_are_decoded(web_kernel, site, body, content_type):
    site.page("/menu", body.encode("cp1252"), content_type=content_type)
    async with web_kernel() as kernel:
        page = await fetch(kernel, site.url("/menu"), format="text")
    assert page["charset"] == "cp1252"
    assert "Crème brûlée costs 5 € at the café" in page["content"]


async def test_undeclared_charset_is_detected(web_kernel, site):
    czech = "Příliš žluťoučký kůň úpěl ďábelské ódy. " * 20
    russian = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 10
    bodies = {
        "/cz-utf16.txt": (czech, czech.encode("utf-16")),  # a byte-order mark
        "/cz-utf8.txt": (czech, czech.encode("utf-8")),
        "/cz-1250.txt": (czech, czech.encode("cp1250")),  # nothing declared at all
        "/ru-1251.txt": (russian, russian.encode("cp1251")),
    }
    for path, (_, data) in bodies.items():
        site.page(path, data, content_type="text/plain")
    async with web_kernel() as kernel:
        for path, (text, _) in bodies.items():
            page = await fetch(kernel, site.url(path))
            assert page["content"] == text, (path, page["charset"])


async def test_text_json_and_xml_pass_through_unextracted(web_kernel, site):
    site.page("/data.json", json.dumps({"answer": 42}), content_type="application/json")
    site.page("/notes.txt", "line one\nline two\n", content_type="text/plain; charset=utf-8")
    site.page("/feed", "<?xml version='1.0'?><rss><channel><title>T</title></channel></rss>",
              content_type="application/rss+xml")
    async with web_kernel() as kernel:
        data = await fetch(kernel, site.url("/data.json"))
        notes = await fetch(kernel, site.url("/notes.txt"))
        feed = await fetch(kernel, site.url("/feed"))
    assert json.loads(data["content"]) == {"answer": 42}
    assert data["content_type"] == "application/json"
    assert notes["content"] == "line one\nline two\n"
    assert "<rss>" in feed["content"]


async def test_binary_types_are_refused_clearly(web_kernel, site):
    site.page("/report.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 100,
              content_type="application/pdf")
    site.page("/mystery", b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000, content_type="")
    async with web_kernel() as kernel:
        pdf = await kernel.call_tool("web_fetch", {"url": site.url("/report.pdf")})
        png = await kernel.call_tool("web_fetch", {"url": site.url("/mystery")})
    assert pdf.is_error
    assert "application/pdf, a binary type" in pdf.error and "text" in pdf.error
    assert png.is_error and "application/octet-stream (sniffed" in png.error


async def test_web_links_lists_absolute_links_with_their_text(web_kernel, site):
    site.page("/news/tidal-mill", fixture_page("news_article.html"))
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_links", {"url": site.url("/news/tidal-mill")})
        internal = await kernel.call_tool(
            "web_links", {"url": site.url("/news/tidal-mill"), "same_host": True, "max_links": 3}
        )
    assert not result.is_error, result.error
    links = result.output["links"]
    urls = [link["url"] for link in links]
    assert {"text": "Politics", "url": site.url("/politics"), "internal": True} in links
    assert {"text": "regional energy agency", "url": "https://energy.example/reports/tidal-mills",
            "internal": False} in links
    # image links take the image's alt text; mailto: links are not web links
    assert {"text": "Luxury yacht charters from 999 a night",
            "url": "https://ads.example/click?id=991", "internal": False} in links
    assert not any(url.startswith("mailto:") for url in urls)
    assert len(urls) == len(set(urls)) == result.output["count"]

    assert internal.output["count"] == 3 and internal.output["truncated"] is True
    assert all(link["internal"] for link in internal.output["links"])


async def test_web_links_refuses_a_page_that_is_not_html(web_kernel, site):
    site.page("/data.json", "{}", content_type="application/json")
    async with web_kernel() as kernel:
        result = await kernel.call_tool("web_links", {"url": site.url("/data.json")})
    assert result.is_error and "application/json, not an HTML page" in result.error
