"""Path arguments of shell commands: resolution beneath the workspace, globs, and ``cd``.

A ``PathChecker`` judges each path argument for the way the program uses it
(read, write, destroy), resolving it with ``paths.resolve_beneath`` from every
directory an earlier ``cd`` in the command may have entered (``None`` stands
for "somewhere outside the workspace"). Globs are expanded against the real
workspace when the program is glob-safe; a match whose name starts with ``-``
(wildcard injection) or that leads outside the workspace is refused.
"""

from __future__ import annotations

import glob as globmod
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from llmos.security import shellrules as R
from llmos.security.paths import PathDenied, read_protection, resolve_beneath, write_protection
from llmos.security.protected import ProtectedPaths
from llmos.security.shellargs import Role
from llmos.security.shellwords import Word
from llmos.security.verdict import Verdict

MAX_GLOB_MATCHES = 2000
_DEV_WRITE_OK = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/fd/1", "/dev/fd/2"})
_DEV_READ_OK = frozenset({"/dev/null", "/dev/stdin", "/dev/fd/0"})
#: Devices that produce without end: reading them is an unbounded producer.
_DEV_ENDLESS = frozenset({"/dev/zero", "/dev/urandom", "/dev/random", "/dev/full"})


@dataclass
class AnalysisState:
    """What one analysis of one command shares across its nesting levels."""

    workspace: Path
    sandboxed: bool
    #: llmos's own state in this workspace (None: the entries every workspace has).
    protected: ProtectedPaths | None = None
    findings: list[Verdict] = field(default_factory=list)
    #: Workspace-relative directories the command may be in; None means outside.
    cwds: list[str | None] = field(default_factory=lambda: [""])
    commands: int = 0
    #: While positive, only deny findings are recorded (guesses at wrapped commands).
    escalate: int = 0
    #: Words already checked as paths, by id (the dict keeps them alive).
    checked: dict[int, Word] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.real_workspace: Path | None = Path(os.path.realpath(self.workspace))

    def add(self, verdict: Verdict) -> None:
        """Record a finding once (only denies while guessing at wrapped commands)."""
        if self.escalate and verdict.decision != "deny":
            return
        key = (verdict.rule, verdict.reason)
        if key not in self.seen:
            self.seen.add(key)
            self.findings.append(verdict)


class PathChecker:
    """Checks path arguments and tracks ``cd`` for one analysis."""

    def __init__(self, state: AnalysisState) -> None:
        self.state = state

    # ------------------------------------------------------------------ cd
    def enter_directory(self, word: Word) -> None:
        """``cd word``: later relative paths are checked from the new directory as well."""
        cwds = self.state.cwds
        for cwd in [self._directory_from(cwd, word) for cwd in list(cwds)]:
            if cwd not in cwds:
                cwds.append(cwd)

    def _directory_from(self, cwd: str | None, word: Word) -> str | None:
        text = word.text
        real_ws = self.state.real_workspace
        if cwd is None or text is None or word.glob or word.tilde or real_ws is None:
            return None
        candidate = text if text.startswith("/") else os.path.join(cwd, text)
        try:
            real = resolve_beneath(self.state.workspace, candidate)
        except PathDenied as denied:
            self.state.add(R.READ_OUTSIDE.verdict(f"cd {text}: {denied.reason}"))
            return None
        if not real.is_dir():
            return None
        rel = real.relative_to(real_ws)
        return "" if str(rel) == "." else str(rel)

    # ------------------------------------------------------------------ paths
    def was_checked(self, word: Word) -> bool:
        """Whether ``word`` went through ``check`` (unchecked globs are refused)."""
        return id(word) in self.state.checked

    def check(self, word: Word, role: Role, *, glob_ok: bool = False) -> None:
        """Check a path argument for ``role``; see ``shellargs.Context.check_path``."""
        self.state.checked[id(word)] = word
        if word.glob:
            self._check_glob(word, role, glob_ok)
            return
        if role == "text":
            return
        text = word.text
        if text is None:
            if role != "read":
                self.state.add(R.DYNAMIC_VALUE.verdict(
                    f"{word.raw} is computed at run time and used as a {role} target"))
            return
        if word.brace:
            prefix = text.split("{", 1)[0]
            text = prefix.rsplit("/", 1)[0] if "/" in prefix else "."
        if text in ("-", ""):
            return
        if (role == "read" and text in _DEV_READ_OK) or (role == "write" and
                                                         text in _DEV_WRITE_OK):
            return
        if role == "read" and os.path.normpath(text) in _DEV_ENDLESS:
            self.state.add(R.UNBOUNDED_PRODUCER.verdict(
                f"{text} never ends: its output is unbounded"))
            return
        if word.tilde or text.startswith("~"):
            self._outside(role, f"{text} is in a home directory, outside the workspace",
                          tilde=True)
            return
        for cwd in self.state.cwds:
            self._check_from(cwd, text, role)

    def _outside(self, role: Role, why: str, *, tilde: bool = False) -> None:
        if role == "read":
            self.state.add((R.TILDE if tilde else R.READ_OUTSIDE).verdict(why))
        elif role == "destroy":
            self.state.add(R.DESTROY_OUTSIDE.verdict(why))
        else:
            self.state.add(R.WRITE_OUTSIDE.verdict(why))

    def _check_from(self, cwd: str | None, text: str, role: Role) -> None:
        if cwd is None and not text.startswith("/"):
            self._outside(role, f"{text} is relative to a directory outside the workspace")
            return
        candidate = text if text.startswith("/") or not cwd else os.path.join(cwd, text)
        try:
            real = resolve_beneath(self.state.workspace, candidate, for_write=role != "read")
        except PathDenied as denied:
            self._outside(role, denied.reason)
            return
        assert self.state.real_workspace is not None
        rel = PurePosixPath(real.relative_to(self.state.real_workspace))
        lexical = rel if candidate.startswith("/") else PurePosixPath(os.path.normpath(candidate))
        if role == "read":
            for path in (rel, lexical):
                protection = read_protection(path)
                if protection is not None:
                    self.state.add(R.SECRET_FILE.verdict(protection.reason))
                    return
            return
        for path in (rel, lexical):
            protection = write_protection(path, self.state.protected)
            if protection is not None:
                rule = R.PROTECTED_PATH if protection.decision == "deny" else R.PROTECTED_ASK
                self.state.add(rule.verdict(protection.reason))
                return
        if role == "destroy":
            if str(rel) == ".":
                self.state.add(R.DESTROY_OUTSIDE.verdict(f"{text} is the workspace itself"))
            else:
                self.state.add(R.DESTRUCTIVE.verdict(f"deletes or modifies {rel}"))

    # ------------------------------------------------------------------ globs
    def _check_glob(self, word: Word, role: Role, glob_ok: bool) -> None:
        text = word.text or ""
        parts = text.split("/")
        prefix = re.split(r"[*?\[]", text, maxsplit=1)[0]
        literal_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else "."
        if text.startswith("/") and not literal_dir:
            literal_dir = "/"
        if role != "text" and any(re.match(r"^\.[^/]*[*?\[]", part) for part in parts):
            self._outside(role, f"{text} may match '..' (older Bash globs match dot-dot)")
        outward = text.startswith(("/", "~")) or ".." in parts or "[^" in text
        if not glob_ok or outward or None in self.state.cwds or (
                self.state.real_workspace is None):
            why = "a program that is not glob-safe" if not glob_ok else "paths it cannot verify"
            self.state.add(R.GLOB.verdict(f"{word.raw} is a glob for {why}"))
            if role != "text":
                self._check_glob_directory(literal_dir, text, role)
            return
        for cwd in self.state.cwds:
            assert cwd is not None
            self._expand(word, text, role, cwd)

    def _check_glob_directory(self, directory: str, pattern: str, role: Role) -> None:
        """Check the literal directory a glob that cannot be expanded would search."""
        if directory.startswith(("/", "~")) or ".." in directory.split("/"):
            self.check(Word(text=directory, raw=pattern), role)
            return
        for cwd in self.state.cwds:
            if cwd is None:
                self._outside(role, f"{pattern} is relative to a directory outside the "
                                    "workspace")
            elif role == "destroy" and directory in (".", ""):
                self.state.add(R.DESTRUCTIVE.verdict(f"deletes or modifies {pattern}"))
            else:
                self._check_from(cwd, directory, "write" if role == "destroy" else role)
                if role == "destroy":
                    self.state.add(R.DESTRUCTIVE.verdict(f"deletes or modifies {pattern}"))

    def _expand(self, word: Word, pattern: str, role: Role, cwd: str) -> None:
        assert self.state.real_workspace is not None
        matches: list[str] = []
        for match in globmod.iglob(pattern, root_dir=self.state.real_workspace / cwd):
            matches.append(match)
            if len(matches) > MAX_GLOB_MATCHES:
                self.state.add(R.GLOB.verdict(f"{word.raw} matches too many files"))
                return
        for match in matches:
            if os.path.basename(match).startswith("-") or match.startswith("-"):
                self.state.add(R.GLOB.verdict(f"{word.raw} matches {match!r}, which a program "
                                              "would take for a flag (wildcard injection)"))
                return
            if role != "text":
                self._check_from(cwd, match, role)
