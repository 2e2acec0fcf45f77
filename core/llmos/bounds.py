"""Bounds on data that comes from outside: text that is valid Unicode, values of bounded
size and nesting, finite numbers.

A goal, a tool input (from the command line, the model or a replayed trace) or an
imported record is checked once where it enters, so that nothing later (SQLite, JSON,
the terminal, the SDK) meets a lone surrogate, a RecursionError or a 469 MB row::

    >>> check_text("héllo", "the goal")
    'héllo'
    >>> check_value({"a": [1, 2.5, "x"]}, "tool input")
"""

from __future__ import annotations

import math
from typing import Any

from llmos.errors import BadInput

MAX_DEPTH = 64
"""How deeply lists and objects may nest in a tool input or an imported record."""
MAX_BYTES = 8 * 1024 * 1024
"""The most a tool input may hold (its strings and keys, UTF-8 encoded): 8 MiB."""

UTF8_FIX = ("pass text as UTF-8 (check the terminal's, the shell's or the file's "
            "encoding, e.g. LANG=C.UTF-8)")


def bad_character(text: str) -> tuple[int, str] | None:
    """The first character that cannot be encoded as UTF-8 (a lone surrogate, as Python
    decodes a non-UTF-8 byte in argv or a file name) and its description, or None."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        char = text[exc.start]
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte that was not UTF-8
            return exc.start, f"the byte 0x{code - 0xDC00:02x} (not UTF-8)"
        return exc.start, f"U+{code:04X} (a lone surrogate, not valid Unicode)"


def check_text(text: str, what: str) -> str:
    """``text`` if it is valid Unicode, else BadInput naming the position and the fix."""
    found = bad_character(text)
    if found is not None:
        position, char = found
        raise BadInput(f"{what} has {char} at character {position + 1}; {UTF8_FIX}")
    return text


def check_value(data: Any, what: str, *, max_depth: int = MAX_DEPTH,
                max_bytes: int = MAX_BYTES) -> None:
    """Raise BadInput when ``data`` (JSON-like: dicts, lists, strings, numbers) nests
    deeper than ``max_depth``, holds more than ``max_bytes``, has a string or key that is
    not valid Unicode, or a number that is not finite. Iterative: any depth is safe."""
    size = 0
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        where = what + (path if len(path) <= 80 else path[:79] + "…")
        if isinstance(value, str):
            size += len(value)  # characters: a lower bound of the bytes, exact for ASCII
            found = bad_character(value)
            if found is not None:
                position, char = found
                raise BadInput(f"{where} has {char} at character {position + 1}; {UTF8_FIX}")
        elif isinstance(value, bool) or value is None:
            size += 4
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise BadInput(f"{where} is {value}, not a finite number; give a number")
            size += 8
        elif isinstance(value, int):
            size += 8
        elif isinstance(value, (dict, list, tuple)):
            if depth >= max_depth:
                raise BadInput(f"{where} nests deeper than {max_depth} levels; flatten it "
                               f"(at most {max_depth} levels of lists and objects)")
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise BadInput(f"{where} has a key that is not a string ({key!r})")
                    found = bad_character(key)
                    if found is not None:
                        raise BadInput(f"{where} has a key with {found[1]} at character "
                                       f"{found[0] + 1}; {UTF8_FIX}")
                    size += len(key)
                    stack.append((item, f"{path}.{key}"[:100], depth + 1))
            else:
                stack.extend((item, f"{path}[{i}]"[:100], depth + 1)
                             for i, item in enumerate(value))
        if size > max_bytes:
            raise BadInput(f"{what} is larger than {max_bytes // (1024 * 1024)} MiB; "
                           "pass large content in a file instead")


__all__ = ["MAX_BYTES", "MAX_DEPTH", "bad_character", "check_text", "check_value"]
