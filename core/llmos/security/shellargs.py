"""Shared vocabulary of the shell analyzer: the context handlers talk to, and flag parsing.

Program handlers (``shellcmds``, ``shellexec``) receive an ``Invocation`` (the
argument words and where stdin comes from) and a ``Context`` (the analyzer, which
records findings, checks paths and re-parses nested shell text). Flags are parsed
GNU-style by ``parse_flags`` against a ``FlagSpec`` allowlist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from llmos.security.shellwords import Word
from llmos.security.verdict import Verdict

#: What a path argument is used for: read it, write it, delete or re-mode it.
Role = Literal["read", "write", "destroy", "text"]
#: Where a command's standard input comes from.
Stdin = Literal["inherit", "pipe", "heredoc", "herestring", "file"]


class Context(Protocol):
    """What a program handler may ask of the analyzer."""

    workspace: Path
    sandboxed: bool
    depth: int

    def add(self, verdict: Verdict) -> None:
        """Record a finding."""

    def check_path(self, word: Word, role: Role, *, glob_ok: bool = False) -> None:
        """Check a path argument for ``role`` and record what is wrong with it.

        ``glob_ok`` lets an unquoted glob through when every match is a workspace
        path whose name cannot be taken for a flag.
        """

    def analyze_argv(self, argv: list[Word], inv: Invocation, *,
                     escalate_only: bool = False) -> set[str]:
        """Analyze ``argv`` as a simple command run with ``inv``'s stdin (wrapped commands).

        With ``escalate_only`` only deny findings are kept: used for guesses at what a
        wrapper might run, which may make a verdict stricter but never add noise.
        Returns the effective programs run.
        """

    def analyze_source(self, source: str, *, label: str, stdin: Stdin = "inherit") -> None:
        """Parse and analyze shell text one nesting level deeper (bash -c, eval)."""

    def enter_directory(self, word: Word) -> None:
        """Record a ``cd`` into ``word`` so later relative paths are checked from there too."""


@dataclass
class Invocation:
    """One simple command being analyzed."""

    name: str
    args: list[Word]
    stdin: Stdin = "inherit"
    stage: int = 0
    #: Effective programs this invocation runs (after unwrapping), filled by handlers.
    programs: set[str] = field(default_factory=set)

    @property
    def stdin_is_data(self) -> bool:
        """True when stdin carries text produced by this command line (pipe, heredoc, ...)."""
        return self.stdin in ("pipe", "heredoc", "herestring")


@dataclass(frozen=True)
class FlagSpec:
    """The allowlisted flags of one program.

    ``short`` are boolean one-letter flags; ``short_value`` take a value (attached
    or as the next word); ``long`` are boolean, ``long_value`` require a value
    (``--x=v`` or ``--x v``), ``long_optional`` accept ``--x`` or ``--x=v``.
    ``value_roles`` says how a flag's value is used when it is a path.
    """

    short: str = ""
    short_value: str = ""
    long: frozenset[str] = frozenset()
    long_value: frozenset[str] = frozenset()
    long_optional: frozenset[str] = frozenset()
    numeric: bool = False
    value_roles: Mapping[str, Role] = field(default_factory=dict)
    #: Stop option parsing at the first operand (POSIX style; wrappers, find).
    posix: bool = False


def spec(short: str = "", short_value: str = "", long: str = "", long_value: str = "",
         long_optional: str = "", *, numeric: bool = False,
         roles: Mapping[str, Role] | None = None, posix: bool = False) -> FlagSpec:
    """Build a ``FlagSpec`` from space-separated long option names (without dashes)."""
    def names(text: str) -> frozenset[str]:
        return frozenset("--" + name for name in text.split())

    return FlagSpec(
        short=short, short_value=short_value,
        long=names(long), long_value=names(long_value),
        long_optional=names(long_optional), numeric=numeric,
        value_roles=dict(roles or {}), posix=posix,
    )


@dataclass
class ParsedArgs:
    """Flags, operands and problems found by ``parse_flags``."""

    flags: list[tuple[str, Word | None]] = field(default_factory=list)
    operands: list[Word] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    #: Words of unknown value in option position: they might be any flag.
    dynamic_options: list[Word] = field(default_factory=list)

    def has(self, *names: str) -> bool:
        """Whether any of the flags ``names`` (e.g. ``"-r"``, ``"--recursive"``) was given."""
        return any(name in names for name, _ in self.flags)

    def values(self, *names: str) -> list[Word]:
        """The values given to the flags ``names``."""
        return [value for name, value in self.flags if name in names and value is not None]


def parse_flags(flag_spec: FlagSpec, args: list[Word]) -> ParsedArgs:
    """Split ``args`` into allowlisted flags, operands and unknown flags, GNU style."""
    out = ParsedArgs()
    index = 0
    end_of_options = False
    while index < len(args):
        word = args[index]
        index += 1
        if end_of_options:
            out.operands.append(word)
            continue
        if word.text is None:
            out.dynamic_options.append(word)
            out.operands.append(word)
            continue
        text = word.text
        if text == "--":
            end_of_options = True
        elif text.startswith("--"):
            index = _parse_long(flag_spec, args, index, text, out)
        elif text.startswith("-") and len(text) > 1:
            index = _parse_short(flag_spec, args, index, text, out)
        else:
            out.operands.append(word)
            end_of_options = flag_spec.posix
    return out


def _next_value(args: list[Word], index: int, out: ParsedArgs, flag: str) -> tuple[Word, int]:
    if index < len(args):
        return args[index], index + 1
    out.unknown.append(f"{flag} (missing value)")
    return Word.literal(""), index


def _parse_long(flag_spec: FlagSpec, args: list[Word], index: int, text: str,
                out: ParsedArgs) -> int:
    name, eq, value = text.partition("=")
    if name in flag_spec.long and not eq:
        out.flags.append((name, None))
    elif name in flag_spec.long_optional:
        out.flags.append((name, Word.literal(value) if eq else None))
    elif name in flag_spec.long_value:
        if eq:
            out.flags.append((name, Word.literal(value)))
        else:
            val, index = _next_value(args, index, out, name)
            out.flags.append((name, val))
    else:
        out.unknown.append(text)
    return index


def _parse_short(flag_spec: FlagSpec, args: list[Word], index: int, text: str,
                 out: ParsedArgs) -> int:
    if flag_spec.numeric and text[1:].isdigit():
        out.flags.append(("-#", Word.literal(text[1:])))
        return index
    pos = 1
    while pos < len(text):
        letter = text[pos]
        if letter in flag_spec.short:
            out.flags.append(("-" + letter, None))
            pos += 1
        elif letter in flag_spec.short_value:
            rest = text[pos + 1:]
            if rest:
                out.flags.append(("-" + letter, Word.literal(rest)))
            else:
                val, index = _next_value(args, index, out, "-" + letter)
                out.flags.append(("-" + letter, val))
            break
        else:
            out.unknown.append("-" + letter if len(text) > 2 else text)
            break
    return index


def long_prefix_of(text: str, options: tuple[str, ...]) -> str | None:
    """The option in ``options`` that ``text`` names, allowing GNU abbreviations.

    GNU getopt accepts any unambiguous prefix (``--to-com`` for ``--to-command``),
    so every prefix of a dangerous option counts as that option.
    """
    name = text.partition("=")[0]
    if not name.startswith("--") or len(name) < 3:
        return None
    for option in options:
        if option.startswith(name):
            return option
    return None
