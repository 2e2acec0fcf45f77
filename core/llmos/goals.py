"""Goals as the learning loop sees them: slots lifted out, normalized text, a stable signature.

``extract_slots`` finds the values a goal is parameterized by (quoted strings, URLs, paths,
file names, identifiers, numbers), ``normalize_goal`` replaces each with a typed
placeholder and folds case, punctuation and whitespace, and ``goal_signature`` hashes the
result. Two goals that differ only in slot values share a signature::

    >>> normalize_goal("Create primes.py printing the first 10 primes")
    'create <file> printing the first <num> primes'
    >>> goal_signature("Create primes.py printing the first 10 primes") == goal_signature(
    ...     "create primes.py printing the first 20 primes!")
    True

Precision comes first: every word that is not a slot value stays in the normalized goal,
so "Create primes.py" and "Delete primes.py" never share a signature.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict

NORMALIZATION_VERSION = 2
"""Bumped whenever normalization changes, so old signatures never collide with new ones.

2: a file's extension is part of its placeholder (``<file.py>``), one-word folder names
are slots, synonymous verbs (create/write/make) share a word, articles and politeness
are dropped."""

SlotKind = Literal["str", "url", "path", "file", "ident", "num"]

# Extensions that make ``name.ext`` a file name rather than a dotted identifier.
FILE_EXTENSIONS = frozenset(
    """
    py pyi pyx ipynb txt md markdown rst org tex csv tsv json jsonl ndjson yaml yml toml ini
    cfg conf env lock log html htm css scss sass less js mjs cjs ts tsx jsx vue svelte sh bash
    zsh fish ps1 bat cmd c h cc cpp cxx hpp hh rs go java kt kts scala swift m mm rb php pl
    pm lua r jl dart ex exs erl hs ml clj sql db sqlite sqlite3 parquet feather arrow avro xml
    xsd xsl svg png jpg jpeg gif bmp webp ico tif tiff pdf doc docx xls xlsx ppt pptx odt ods
    zip tar gz tgz bz2 xz zst 7z rar whl egg jar war so dll dylib exe bin dat pkl pickle npy
    npz pt pth onnx h5 hdf5 ckpt safetensors mp3 mp4 wav ogg flac mov avi mkv webm qasm urdf
    sdf stl obj gltf glb proto graphql tf tfvars mk cmake gradle pom dockerfile patch diff
    """.split()
)
EXTENSIONLESS_FILES = frozenset(
    """
    Makefile Dockerfile Containerfile Jenkinsfile Vagrantfile Procfile Gemfile Rakefile
    Pipfile Brewfile Justfile README LICENSE CHANGELOG CONTRIBUTING NOTICE AUTHORS
    """.split()
)
# Top-level domains that make ``example.com`` a URL rather than a dotted identifier.
DOMAIN_TLDS = frozenset(
    """
    com org net io dev ai app edu gov mil int co uk de fr es it nl be ch at se no dk fi pl cz
    ru cn jp kr in au nz ca us br mx ar info biz xyz tech cloud site online page
    """.split()
)

_EXT = "|".join(sorted(FILE_EXTENSIONS, key=len, reverse=True))
_TLD = "|".join(sorted(DOMAIN_TLDS, key=len, reverse=True))
_TRAIL = ".,;:!?)]}>'\""  # punctuation that ends a sentence, not a URL or a path

_QUOTED = re.compile(
    r'"(?P<a>[^"\n]*)"'
    r"|\u201c(?P<b>[^\u201d\n]*)\u201d"
    r"|`(?P<c>[^`\n]*)`"
    r"|(?<![\w'])'(?P<d>[^'\n]*)'(?![\w])"
    r"|\u2018(?P<e>[^\u2019\n]*)\u2019"
)
_URL = re.compile(r"(?i)(?<![\w@])(?:[a-z][a-z0-9+.\-]*://|www\.)[^\s<>\"'`]+")
_PATH = re.compile(
    r"(?<![\w/.~\-:])(?:"
    r"(?:~|\.{1,2})?/[\w.\-+@%=,]+(?:/[\w.\-+@%=,]+)*/?"  # /abs, ./rel, ../rel, ~/home
    r"|[\w.\-+@%=,]+(?:/[\w.\-+@%=,]+)+/?"  # a/b/c, src/main.py, docs/
    r"|[\w.\-+@%=,]+/(?![\w.\-+@%=,/])"  # inbox/
    r"|[A-Za-z]:\\[\w.\-+@ \\]*[\w.\-+@\\]"  # C:\Users\me
    r")"
)
_FILE = re.compile(
    rf"(?i)(?<![\w/.\-+@])(?:[\w\-+@]+(?:\.[\w\-+@]+)*\.(?:{_EXT})|\.[a-z][\w\-]*"
    rf"|(?-i:{'|'.join(sorted(EXTENSIONLESS_FILES))}))(?![\w\-+@/]|\.\w)"
)
_DOMAIN = re.compile(
    rf"(?i)(?<![\w.@/\-])(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?:{_TLD})(?![\w\-]|\.\w)"
    r"(?:/[^\s<>\"'`]*)?"
)
_HOST = re.compile(rf"(?i)(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?:{_TLD})")
_IDENT = re.compile(
    r"(?<![\w.\-])(?:"
    r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+"  # dotted.name
    r"|_*[A-Za-z][A-Za-z0-9]*(?:_+[A-Za-z0-9]+)+_*"  # snake_case, SCREAMING_CASE, x86_64
    r"|_+[A-Za-z][A-Za-z0-9_]*"  # _private, __init__
    r"|[A-Za-z]*[a-z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*"  # camelCase, CamelCase, iPhone
    r"|[A-Z]{2,}[a-z]{2,}[A-Za-z0-9]*"  # HTTPServer, XMLParser
    r")(?![\w\-]|\.\w)"
)
# One-word folder names, said as such: "the inbox folder", "directory logs".
_NOT_A_NAME = frozenset(
    """
    the a an this that these those same new each every my your our its their current
    parent home root working target source destination temp tmp empty another other any
    whole entire one sub some which what given output input
    """.split()
)
STOP_FOLDER_WORDS = frozenset({"folder", "directory", "dir", "in", "into", "to", "from", "of",
                               "and", "or", "with", "named", "called"})
_FOLDERS = (
    re.compile(r"(?i)\b(?:folder|directory|dir)\s+(?:named\s+|called\s+)?"
               r"(?P<name>[A-Za-z0-9_][\w\-]*)"),
    re.compile(r"(?i)\b(?P<name>[A-Za-z0-9_][\w\-]*)\s+(?:folder|directory|dir)\b"),
)
_NUM = re.compile(
    r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)*(?:[eE][-+]?\d+)?(?![\w]|\.\d)"
)


class Slot(BaseModel):
    """A value lifted from a goal: its kind, the value itself and where it stood.

    ``span`` is the ``(start, end)`` slice of the original goal text, quotes included for
    quoted strings; ``value`` is the text without the quotes.
    """

    model_config = ConfigDict(frozen=True)

    kind: SlotKind
    value: str
    span: tuple[int, int]

    @property
    def extension(self) -> str:
        """The file kind a file or path names (``py``, ``tar.gz``; '' for none, ``/`` for a
        folder): part of the goal's meaning, since another extension is another language
        or format."""
        return extension_of(self.value) if self.kind in ("file", "path") else ""

    @property
    def placeholder(self) -> str:
        ext = self.extension
        if ext == "/":
            return f"<{self.kind}/>"
        return f"<{self.kind}.{ext}>" if ext else f"<{self.kind}>"


class Goal(BaseModel):
    """A goal analyzed once: the text, its normalized form, signature and slots."""

    model_config = ConfigDict(frozen=True)

    text: str
    normalized: str
    signature: str
    slots: tuple[Slot, ...]


def extension_of(value: str) -> str:
    """``archive.tar.gz`` -> ``tar.gz``, ``src/Main.PY`` -> ``py``, ``.env`` -> ``env``,
    ``docs/`` -> ``/``; '' when the name has no known extension."""
    if value.endswith(("/", "\\")):
        return "/"
    name = re.split(r"[/\\]", value)[-1].lower()
    if name.startswith(".") and name.count(".") == 1:
        return name[1:]
    parts = name.split(".")[1:]
    known: list[str] = []
    for part in reversed(parts):
        if part not in FILE_EXTENSIONS:
            break
        known.insert(0, part)
    return ".".join(known)


def _strip_trailing(value: str, start: int) -> tuple[str, int]:
    stripped = value.rstrip(_TRAIL)
    # Keep a closing bracket that closes one opened inside the value: (a/b) or f(x).
    while len(stripped) < len(value) and value[len(stripped)] in ")]}" and (
        stripped.count("(") > stripped.count(")") or stripped.count("[") > stripped.count("]")
    ):
        stripped = value[: len(stripped) + 1]
    return stripped, start + len(stripped)


def _is_plausible_path(value: str) -> bool:
    if not re.search(r"[A-Za-z]", value):
        return False  # 24/7, 1/2/3, 2024/01/02
    if re.match(r"[A-Za-z]:\\", value) or value.startswith(("/", "~/", "./", "../")):
        return len(value.strip("/~.")) > 0
    if _HOST.fullmatch(value.split("/", 1)[0]):
        return False  # docs.python.org/3/ is a URL
    if value.endswith("/") or value.count("/") >= 2:
        return True
    last = value.rsplit("/", 1)[-1]
    return "." in last and last.rsplit(".", 1)[-1].lower() in FILE_EXTENSIONS  # src/main.py


def _candidates(text: str) -> Iterator[tuple[SlotKind, str, int, int]]:
    """Every possible slot, in priority order (earlier kinds win overlaps)."""
    for m in _QUOTED.finditer(text):
        value = next(g for g in m.groups() if g is not None)
        yield "str", value, m.start(), m.end()
    for m in _URL.finditer(text):
        value, end = _strip_trailing(m.group(), m.start())
        if len(value) > len(m.group().split("://")[0]) + 3 or value.lower().startswith("www."):
            yield "url", value, m.start(), end
    for m in _PATH.finditer(text):
        value, end = _strip_trailing(m.group(), m.start())
        if _is_plausible_path(value):
            yield "path", value, m.start(), end
    for m in _FILE.finditer(text):
        yield "file", m.group(), m.start(), m.end()
    for pattern in _FOLDERS:
        for m in pattern.finditer(text):
            value = m.group("name")
            if value.lower() not in _NOT_A_NAME and value.lower() not in STOP_FOLDER_WORDS:
                yield "path", value, m.start("name"), m.end("name")
    for m in _DOMAIN.finditer(text):
        value, end = _strip_trailing(m.group(), m.start())
        yield "url", value, m.start(), end
    for m in _IDENT.finditer(text):
        value = m.group()
        if "." in value and all(len(part) < 2 for part in value.split(".")):
            continue  # e.g, i.e
        yield "ident", value, m.start(), m.end()
    for m in _NUM.finditer(text):
        yield "num", m.group(), m.start(), m.end()


def extract_slots(text: str) -> list[Slot]:
    """The slot values of a goal, in the order they appear."""
    taken: list[tuple[int, int]] = []
    slots: list[Slot] = []
    for kind, value, start, end in _candidates(text):
        if end <= start or any(start < e and s < end for s, e in taken):
            continue
        taken.append((start, end))
        slots.append(Slot(kind=kind, value=value, span=(start, end)))
    slots.sort(key=lambda s: s.span[0])
    return slots


def _fold(segment: str) -> str:
    segment = unicodedata.normalize("NFKC", segment).casefold()
    segment = re.sub(r"(?<=\w)['\u2019](?=\w)", "", segment)  # don't -> dont
    return re.sub(r"[\W_]+", " ", segment)


# Conservative paraphrase folding: only words that never change what is asked for.
SYNONYMS = {
    "write": "create", "make": "create", "generate": "create", "produce": "create",
    "remove": "delete", "erase": "delete",
}
ARTICLES = frozenset({"a", "an", "the"})
_POLITE_HEAD = (
    ("please",), ("kindly",), ("can", "you"), ("could", "you"), ("would", "you"),
    ("will", "you"), ("i", "want", "you", "to"), ("i", "need", "you", "to"),
    ("i", "would", "like", "you", "to"), ("id", "like", "you", "to"), ("go", "ahead", "and"),
)
_POLITE_TAIL = (("please",), ("for", "me"), ("thanks",), ("thank", "you"))


def _fold_words(words: list[str]) -> list[str]:
    changed = True
    while changed:
        changed = False
        for head in _POLITE_HEAD:
            if len(words) > len(head) and tuple(words[: len(head)]) == head:
                words, changed = words[len(head):], True
        for tail in _POLITE_TAIL:
            if len(words) > len(tail) and tuple(words[-len(tail):]) == tail:
                words, changed = words[: -len(tail)], True
    out: list[str] = []
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in ARTICLES:
            continue
        if w in ("called", "named") and nxt.startswith("<"):
            if out and out[-1] == "file":
                out.pop()  # "a file called notes.txt" is "notes.txt"
            continue
        if w == "then" and out and out[-1] == "and":
            continue  # "and then" is "and"
        out.append("and" if w == "then" and out else SYNONYMS.get(w, w))
    return out


def _normalize(text: str, slots: list[Slot]) -> str:
    parts: list[str] = []
    pos = 0
    for slot in slots:
        start, end = slot.span
        parts.append(_fold(text[pos:start]))
        parts.append(f" {slot.placeholder} ")
        pos = end
    parts.append(_fold(text[pos:]))
    return " ".join(_fold_words("".join(parts).split()))


def normalize_goal(text: str) -> str:
    """Slot values replaced by typed placeholders, then case, punctuation and whitespace
    folded: ``"Create 'a b' in ./out, 3 times"`` -> ``"create <str> in <path> <num> times"``."""
    return _normalize(text, extract_slots(text))


def _signature(normalized: str) -> str:
    blob = f"llmos-goal/{NORMALIZATION_VERSION}\x00{normalized}".encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def goal_signature(text: str) -> str:
    """A stable 16-hex-digit hash of the normalized goal."""
    return _signature(normalize_goal(text))


def analyze_goal(text: str) -> Goal:
    """Slots, normalized text and signature, computed once."""
    slots = extract_slots(text)
    normalized = _normalize(text, slots)
    return Goal(text=text, normalized=normalized, signature=_signature(normalized),
                slots=tuple(slots))


__all__ = [
    "NORMALIZATION_VERSION",
    "Goal",
    "Slot",
    "SlotKind",
    "analyze_goal",
    "extension_of",
    "extract_slots",
    "goal_signature",
    "normalize_goal",
]
