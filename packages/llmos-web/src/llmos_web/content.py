"""Content types, charsets, and turning HTML into its main content, links and metadata."""

from __future__ import annotations

import codecs
import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/ld+json",
        "application/x-ndjson",
        "application/xml",
        "application/xhtml+xml",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/rss+xml",
        "application/atom+xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/x-sh",
        "image/svg+xml",
    }
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

# WHATWG: these labels mean windows-1252 on the web.
_CHARSET_ALIASES = {"iso-8859-1": "cp1252", "latin1": "cp1252", "l1": "cp1252",
                    "us-ascii": "cp1252", "ascii": "cp1252", "iso8859-1": "cp1252"}
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE
)
_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"7z\xbc\xaf")


def parse_content_type(value: str | None) -> tuple[str, str | None]:
    """``text/html; charset=UTF-8`` -> ("text/html", "utf-8")."""
    if not value:
        return "", None
    mime, *params = value.split(";")
    charset = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip("\"'").lower()
    return mime.strip().lower(), charset


def is_textual(mime: str) -> bool:
    return (
        mime.startswith("text/")
        or mime in TEXT_TYPES
        or mime.endswith("+xml")
        or mime.endswith("+json")
    )


def sniff(prefix: bytes) -> str:
    """A content type for a body the server did not label: html, plain text or binary."""
    if any(prefix.startswith(magic) for magic in _MAGIC) or b"\x00" in prefix[:1024]:
        return "application/octet-stream"
    head = prefix[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    return "text/plain"


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = _CHARSET_ALIASES.get(label.lower(), label.lower())
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def choose_charset(body: bytes, mime: str, header_charset: str | None) -> str:
    """BOM, then the header's charset, then an HTML meta tag, then UTF-8 or a detected one."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return name
    codec = _codec(header_charset)
    if codec:
        return codec
    if mime in HTML_TYPES or mime.endswith("+xml") or mime == "application/xml":
        match = _META_CHARSET.search(body[:4096])
        if match and (codec := _codec(match.group(1).decode("ascii", "ignore"))):
            return codec
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(body) - 3:  # only a character cut in half at the end
            return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(body[:65536]).best()
    return _codec(best.encoding if best else None) or "cp1252"


def decode(body: bytes, charset: str, truncated: bool) -> str:
    """Decode; a multi-byte character cut by the size cap is dropped, not mangled."""
    decoder = codecs.getincrementaldecoder(charset)(errors="replace")
    return decoder.decode(body, final=not truncated)


@dataclass
class Extracted:
    content: str
    title: str | None = None
    description: str | None = None
    author: str | None = None
    date: str | None = None
    site_name: str | None = None
    canonical_url: str | None = None
    language: str | None = None
    links: list[dict[str, str]] = field(default_factory=list)


def _tree(html: str, base_url: str) -> Any:
    """Parse, make links absolute, and drop markup that is never content."""
    import lxml.html

    try:
        tree = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return None
    with contextlib.suppress(ValueError):  # a base URL lxml cannot use: keep links as they are
        tree.make_links_absolute(base_url, resolve_base_href=True, handle_failures="discard")
    # Sphinx / MkDocs permalink anchors ("¶") would otherwise end up in titles.
    for anchor in tree.xpath('//a[contains(concat(" ", @class, " "), " headerlink ")]'):
        anchor.drop_tree()
    return tree


_MD_LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\((\S+?)\)")


def extract(html: str, base_url: str, fmt: str) -> Extracted:
    """Main content of an HTML page as Markdown or plain text, with its metadata."""
    import trafilatura

    tree = _tree(html, base_url)
    if tree is None:
        return Extracted(content="")
    lang = (tree.get("lang") or "").strip() or None
    meta = trafilatura.extract_metadata(tree, default_url=base_url)
    output = "markdown" if fmt == "markdown" else "txt"
    content = trafilatura.extract(
        tree,
        url=base_url,
        output_format=output,
        include_links=fmt == "markdown",
        include_tables=True,
        include_formatting=fmt == "markdown",
        include_comments=False,
        with_metadata=False,
    )
    if not content:  # no recognisable main content: fall back to all visible text
        content = trafilatura.html2txt(tree) or ""
    links: list[dict[str, str]] = []
    if fmt == "markdown":
        seen = set()
        for text, url in _MD_LINK.findall(content):
            if url.startswith(("http://", "https://")) and url not in seen:
                seen.add(url)
                links.append({"text": text.strip(), "url": url})
    return Extracted(
        content=content.strip(),
        title=getattr(meta, "title", None) if meta else None,
        description=getattr(meta, "description", None) if meta else None,
        author=getattr(meta, "author", None) if meta else None,
        date=getattr(meta, "date", None) if meta else None,
        site_name=getattr(meta, "sitename", None) if meta else None,
        canonical_url=getattr(meta, "url", None) if meta else None,
        language=(getattr(meta, "language", None) if meta else None) or lang,
        links=links,
    )


def page_links(html: str, base_url: str) -> list[dict[str, str]]:
    """Every distinct http(s) link of a page, absolute, with its anchor text."""
    tree = _tree(html, base_url)
    if tree is None:
        return []
    links: list[dict[str, str]] = []
    seen: set[str] = set()
    for anchor in tree.iter("a", "area"):
        href = (anchor.get("href") or "").strip()
        if not href.startswith(("http://", "https://")):
            continue  # javascript:, mailto:, and links lxml could not resolve
        url = href.split("#", 1)[0] or href
        if url in seen:
            continue
        seen.add(url)
        text = " ".join(anchor.text_content().split()) if anchor.tag == "a" else ""
        if not text:
            img = anchor.find(".//img")
            text = anchor.get("title") or anchor.get("alt") or (
                img.get("alt") if img is not None else ""
            ) or ""
        links.append({"text": text, "url": url})
    return links
