"""Content-Encoding decoding that never inflates more than the caller will keep.

httpx would decompress each network chunk whole, so a small gzip "bomb" could expand to
gigabytes before the size cap is checked; here every chunk is inflated with a bound.
"""

from __future__ import annotations

import zlib

from llmos_web.guard import WebError

ACCEPT_ENCODING = "gzip, deflate"


class Inflater:
    """Feed raw chunks, get at most ``limit`` decoded bytes back per call."""

    def __init__(self, encoding: str | None) -> None:
        names = [e.strip().lower() for e in (encoding or "").split(",") if e.strip()]
        names = [e for e in names if e != "identity"]
        if len(names) > 1 or (names and names[0] not in ("gzip", "x-gzip", "deflate")):
            raise WebError(f"the server used an unsupported Content-Encoding: {encoding}")
        self.encoding = names[0] if names else None
        self._zlib: zlib._Decompress | None = None
        if self.encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding == "deflate":
            self._zlib = zlib.decompressobj()
        self._started = False

    def feed(self, chunk: bytes, limit: int) -> tuple[bytes, bool]:
        """(decoded bytes, at most ``limit`` of them; whether more output was pending)."""
        if self._zlib is None:
            return chunk[:limit], len(chunk) > limit
        try:
            out = self._decompress(chunk, limit + 1)
        except zlib.error as exc:
            raise WebError(f"the body is not valid {self.encoding} data: {exc}") from None
        return out[:limit], len(out) > limit

    def _decompress(self, chunk: bytes, max_length: int) -> bytes:
        assert self._zlib is not None
        if self._started or self.encoding != "deflate":
            self._started = True
            return self._zlib.decompress(chunk, max_length)
        self._started = True
        try:  # "deflate" is meant to be zlib-wrapped; some servers send it raw
            return self._zlib.decompress(chunk, max_length)
        except zlib.error:
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._zlib.decompress(chunk, max_length)
