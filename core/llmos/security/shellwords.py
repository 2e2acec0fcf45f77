"""Turn tree-sitter-bash word nodes into the values Bash would give them, when it can know.

A ``Word`` records its static value (``None`` when an expansion makes it
unknowable), whether any quoting was involved, and which expansions Bash would
still perform on it (globs, braces, tilde). Variable expansions and command
substitutions are reported to the caller, which may *fold* them into a value:
``$(echo x)`` and ``$X`` after ``X=x`` in the same command are known to be ``x``.
Folding exists so that hiding a literal in a substitution never makes a
command look safer than the literal itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from tree_sitter import Node

from llmos.security import shellrules as R
from llmos.security.verdict import Verdict

_GLOB_CHARS = frozenset("*?[")
_SPECIAL_VARIABLES = frozenset("@*#?$!-0123456789_")


@dataclass(frozen=True)
class Word:
    """One shell word after quote removal, as far as it can be known statically."""

    text: str | None
    raw: str
    quoted: bool = False
    glob: bool = False
    brace: bool = False
    tilde: bool = False
    folded: bool = False
    ansi_c: bool = False

    @property
    def dynamic(self) -> bool:
        """True when the value depends on something the analyzer cannot see."""
        return self.text is None

    @property
    def plain(self) -> bool:
        """Unquoted literal text with no expansion of any kind."""
        return (self.text is not None and not self.quoted and not self.glob and not self.brace
                and not self.tilde and not self.folded and not self.ansi_c)

    @property
    def scan_text(self) -> str:
        """The value, or the raw source when the value is unknown (for secret scans)."""
        return self.text if self.text is not None else self.raw

    @classmethod
    def literal(cls, text: str) -> Word:
        """A word with a known plain value (used for synthetic arguments)."""
        return cls(text=text, raw=text)

    @classmethod
    def unknown(cls, raw: str) -> Word:
        """A word whose value cannot be known (e.g. an argument xargs will append)."""
        return cls(text=None, raw=raw)


@dataclass
class _Segment:
    text: str | None
    quoted: bool
    folded: bool = False


class WordBuilder:
    """Evaluates word nodes, reporting expansions through ``report``.

    ``fold_substitution(node)`` analyzes the commands inside ``$(...)``/backticks
    and returns their folded output or None; ``lookup(name)`` returns the known
    static value of a variable or None.
    """

    def __init__(
        self,
        report: Callable[[Verdict], None],
        fold_substitution: Callable[[Node], str | None],
        lookup: Callable[[str], str | None],
    ) -> None:
        self._report = report
        self._fold_substitution = fold_substitution
        self._lookup = lookup

    # -- public -------------------------------------------------------------------
    def words(self, node: Node) -> list[Word]:
        """The words an argument node becomes, applying word splitting to folded values.

        An unquoted expansion whose folded value holds blanks splits into several
        words, as Bash would split it; an empty one disappears.
        """
        segments = self._segments(node)
        if len(segments) == 1 and segments[0].folded and not segments[0].quoted:
            value = segments[0].text or ""
            raw = _text(node)
            return [
                Word(text=part, raw=raw, folded=True, glob=any(c in _GLOB_CHARS for c in part),
                     tilde=part.startswith("~"))
                for part in value.split()
            ]
        return [self._from_segments(node, segments)]

    def word(self, node: Node) -> Word:
        """The ``Word`` for an argument-like node (word, string, concatenation, ...)."""
        return self._from_segments(node, self._segments(node))

    def _from_segments(self, node: Node, segments: list[_Segment]) -> Word:
        raw = _text(node)
        folded = any(seg.folded for seg in segments)
        if any(seg.text is None for seg in segments):
            return Word(text=None, raw=raw, quoted=True)
        text = "".join(seg.text or "" for seg in segments)
        unquoted = [(seg.text or "") if not seg.quoted else "" for seg in segments]
        glob = any(ch in _GLOB_CHARS for chunk in unquoted for ch in chunk)
        brace = _has_brace_expansion(segments)
        tilde = _has_tilde(segments) or (folded and text.startswith("~"))
        quoted = any(seg.quoted for seg in segments)
        ansi_c = node.type == "ansi_c_string" or any(
            child.type == "ansi_c_string" for child in node.children)
        return Word(text=text, raw=raw, quoted=quoted, glob=glob, brace=brace, tilde=tilde,
                    folded=folded, ansi_c=ansi_c)

    # -- segments -----------------------------------------------------------------
    def _segments(self, node: Node) -> list[_Segment]:
        kind = node.type
        if kind == "word":
            return _unescape_word(_text(node))
        if kind in ("number", "brace_expression"):
            return [_Segment(_text(node), False)]
        if kind == "raw_string":
            return [_Segment(_text(node)[1:-1], True)]
        if kind == "string":
            return self._string(node)
        if kind == "ansi_c_string":
            self._report(R.ANSI_C_STRING.verdict(f"ANSI-C string {_text(node)} decodes escapes; "
                                                 "write the plain text instead"))
            decoded = decode_ansi_c(_text(node)[2:-1])
            if decoded is None:
                return [_Segment(None, True)]
            hidden = [ch for ch in decoded if ch not in "\t\n" and unicodedata.category(ch) in
                      ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp")]
            if hidden:
                self._report(R.CONTROL_CHAR.verdict(
                    f"ANSI-C string {_short(node)} decodes to the control character "
                    f"U+{ord(hidden[0]):04X}"))
            return [_Segment(decoded, True)]
        if kind == "concatenation":
            out: list[_Segment] = []
            for child in node.children:
                out.extend(self._segments(child))
            return out
        if kind in ("simple_expansion", "expansion"):
            return [self._expansion(node)]
        if kind == "command_substitution":
            return [self._substitution(node)]
        if kind == "process_substitution":
            self._report(R.PROCESS_SUBSTITUTION.verdict(
                f"process substitution {_short(node)} runs a command and passes a file name"))
            self._fold_substitution(node)
            return [_Segment(None, True)]
        if kind == "arithmetic_expansion":
            self._report(R.COMPLEX_EXPANSION.verdict(
                f"arithmetic expansion {_short(node)} is not allowed"))
            return [_Segment(None, True)]
        self._report(R.UNKNOWN_SYNTAX.verdict(f"unsupported word syntax {kind} in "
                                              f"{_short(node)}"))
        return [_Segment(None, True)]

    def _string(self, node: Node) -> list[_Segment]:
        out: list[_Segment] = []
        for child in node.children:
            if child.type == '"':
                continue
            if child.type == "string_content":
                out.append(_Segment(_unescape_double(_text(child)), True))
            elif child.type in ("simple_expansion", "expansion", "command_substitution",
                                "arithmetic_expansion"):
                seg = self._segments(child)
                for s in seg:
                    s.quoted = True
                out.extend(seg)
            else:
                self._report(R.UNKNOWN_SYNTAX.verdict(
                    f"unsupported syntax {child.type} inside a double-quoted string"))
                out.append(_Segment(None, True))
        if not out:
            out.append(_Segment("", True))
        return out

    def _expansion(self, node: Node) -> _Segment:
        name = simple_variable_name(node)
        if name is None:
            self._report(R.COMPLEX_EXPANSION.verdict(
                f"parameter expansion {_short(node)} computes a value; not allowed"))
            return _Segment(None, False)
        self._report(R.VARIABLE_EXPANSION.verdict(f"variable expansion {_short(node)}"))
        value = self._lookup(name)
        if value is None:
            return _Segment(None, False)
        return _Segment(value, False, folded=True)

    def _substitution(self, node: Node) -> _Segment:
        self._report(R.COMMAND_SUBSTITUTION.verdict(
            f"command substitution {_short(node)} is not allowed; run the inner command on "
            "its own first"))
        value = self._fold_substitution(node)
        if value is None:
            return _Segment(None, False)
        return _Segment(value, False, folded=True)


def simple_variable_name(node: Node) -> str | None:
    """``x`` for ``$x`` or ``${x}``; None for any expansion with operators."""
    named = [c for c in node.children if c.is_named]
    anon = [c.type for c in node.children if not c.is_named]
    if len(named) != 1 or named[0].type not in ("variable_name", "special_variable_name"):
        return None
    if node.type == "expansion" and anon != ["${", "}"]:
        return None
    return _text(named[0])


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "surrogateescape")


def _short(node: Node, limit: int = 60) -> str:
    text = _text(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unescape_word(raw: str) -> list[_Segment]:
    """Split an unquoted word into plain and backslash-escaped segments."""
    out: list[_Segment] = []
    buf: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            if buf:
                out.append(_Segment("".join(buf), False))
                buf = []
            out.append(_Segment(raw[i + 1], True))
            i += 2
            continue
        buf.append(ch)
        i += 1
    if buf or not out:
        out.append(_Segment("".join(buf), False))
    return out


def _unescape_double(raw: str) -> str:
    return re.sub(r'\\([$`"\\\n])', r"\1", raw)


def _has_brace_expansion(segments: list[_Segment]) -> bool:
    """Bash expands an unquoted {...} holding an unquoted ',' or '..'."""
    stream: list[tuple[str, bool]] = []
    for seg in segments:
        for ch in seg.text or "":
            stream.append((ch, seg.quoted))
    depth_start: list[int] = []
    for index, (ch, quoted) in enumerate(stream):
        if quoted:
            continue
        if ch == "{":
            depth_start.append(index)
        elif ch == "}" and depth_start:
            start = depth_start.pop()
            inner = "".join(c if not q else "\0" for c, q in stream[start + 1:index])
            if "," in inner or ".." in inner:
                return True
    return False


def _has_tilde(segments: list[_Segment]) -> bool:
    """An unquoted ~ at the start, or after an unquoted '=' or ':' (assignment-like words)."""
    if segments and not segments[0].quoted and (segments[0].text or "").startswith("~"):
        return True
    for seg in segments:
        if seg.quoted or not seg.text:
            continue
        if re.search(r"[=:]~", seg.text):
            return True
    return False


_ANSI_SIMPLE = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n",
                "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


def decode_ansi_c(body: str) -> str | None:
    """Decode the inside of ``$'...'`` the way Bash does; None if it cannot be decoded."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 >= len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ANSI_SIMPLE:
            out.append(_ANSI_SIMPLE[nxt])
            i += 2
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            assert m is not None
            out.append(chr(int(m.group(0), 8) & 0xFF))
            i += 1 + len(m.group(0))
        elif nxt == "x":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
            if m is None:
                out.append("\\x")
                i += 2
            else:
                out.append(chr(int(m.group(0), 16)))
                i += 2 + len(m.group(0))
        elif nxt in "uU":
            width = 4 if nxt == "u" else 8
            m = re.match(rf"[0-9a-fA-F]{{1,{width}}}", body[i + 2:])
            if m is None:
                out.append("\\" + nxt)
                i += 2
            else:
                code = int(m.group(0), 16)
                if code > 0x10FFFF:
                    return None
                out.append(chr(code))
                i += 2 + len(m.group(0))
        elif nxt == "c" and i + 2 < len(body):
            out.append(chr(ord(body[i + 2]) & 0x1F))
            i += 3
        else:
            out.append("\\" + nxt)
            i += 2
    return "".join(out)
