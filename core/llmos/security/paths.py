"""File-tool paths: resolved beneath the workspace, never following symlinks out.

Resolution itself lives in ``beneath`` (``openat2`` RESOLVE_BENEATH or an
``O_PATH | O_NOFOLLOW`` walk; no string-prefix checks); this module re-exports
``resolve_beneath``, ``open_beneath`` and ``PathDenied`` and adds the policy.

``~`` and ``$VAR`` are never expanded: a path that starts with either is refused,
because the caller almost certainly expected an expansion that will not happen.

Protected paths are refused for writes even inside the workspace:

* deny: ``.git/**`` (hooks and config run code on every git command; file tools
  have no business editing git's database), shell rc files (``.bashrc``,
  ``.profile``, ``.zshrc``, ...), ``.envrc``, editor and agent configuration
  (``.vscode/``, ``.idea/``, ``.cursor/``, ``.devcontainer/``, ``.claude/``,
  ``.mcp.json``), credential stores (``.ssh/``, ``.aws/``, ``.netrc``, ...) and
  the kernel's own state directory ``.llmos/``.
* ask: agent instruction files (``CLAUDE.md``, ``AGENTS.md``, ``GEMINI.md``,
  ``.cursorrules``), CI workflows (``.github/workflows/``), ``.gitmodules``,
  ``.gitattributes`` and ``.pre-commit-config.yaml``. Editing them is sometimes
  the task, but they steer future agent sessions or run code elsewhere, so a
  human confirms.

Reads are allowed anywhere beneath the workspace except files that usually hold
secrets (``.env``, ``.envrc``, ``.netrc``, private keys, ...), which ask.
Everything outside the workspace is denied to file tools, reads included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from llmos.security.beneath import (
    NAME_MAX,
    PATH_MAX,
    DenialCode,
    PathDenied,
    open_beneath,
    openat2_available,
    resolve_beneath,
)
from llmos.security.protected import STATE_ENTRIES, ProtectedPaths
from llmos.security.rules import Rule, RuleRegistry
from llmos.security.verdict import Verdict

__all__ = [
    "NAME_MAX", "PATH_MAX", "PathDenied", "Protection", "check_path", "check_path_tool",
    "open_beneath", "openat2_available", "read_protection", "resolve_beneath",
    "write_protection",
]

# --------------------------------------------------------------------------- protection

_RC_FILES = frozenset({
    ".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc",
    ".zshenv", ".zprofile", ".zlogin", ".zlogout", ".cshrc", ".tcshrc", ".kshrc", ".mkshrc",
    ".inputrc", ".envrc", ".gitconfig", ".npmrc", ".pypirc", ".netrc", ".git-credentials",
    ".pgpass", ".mcp.json", ".curlrc", ".wgetrc", ".python_history", ".bash_history",
})
_DENY_DIRS = frozenset({
    ".git", ".vscode", ".idea", ".cursor", ".devcontainer", ".claude", ".llmos", ".ssh",
    ".aws", ".gnupg", ".kube", ".docker", ".azure", ".gcloud",
})
_ASK_FILES = frozenset({
    "claude.md", "claude.local.md", "agents.md", "gemini.md", ".cursorrules", ".gitmodules",
    ".pre-commit-config.yaml", ".gitattributes",
})
_SECRET_FILES = frozenset({
    ".env", ".envrc", ".netrc", ".npmrc", ".pypirc", ".git-credentials", ".pgpass",
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "credentials", ".htpasswd",
})
_SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".keystore", ".jks")


@dataclass(frozen=True)
class Protection:
    """Why a workspace path is protected, and how strictly."""

    decision: Literal["ask", "deny"]
    reason: str


_DEFAULT_PROTECTED = ProtectedPaths(Path("."), STATE_ENTRIES)


def write_protection(rel: PurePosixPath,
                     protected: ProtectedPaths | None = None) -> Protection | None:
    """The protection of the workspace-relative path ``rel`` against writes, if any.

    ``protected`` is the workspace's list of llmos's own state
    (``llmos.security.protected``); without it, the entries every workspace has.
    """
    state = protected or _DEFAULT_PROTECTED
    entry = state.find(rel)
    if entry is not None:
        return Protection("deny", state.reason(entry))
    entry = state.holding(rel)
    if entry is not None:
        return Protection("deny", f"{rel} holds {state.reason(entry)}")
    lowered = [p.lower() for p in rel.parts]
    for index, part in enumerate(lowered):
        if part in _DENY_DIRS:
            shown = "/".join(rel.parts[: index + 1])
            return Protection("deny", f"{shown}/ is protected (code or configuration that runs "
                                      "outside the agent's control)")
    if not lowered:
        return None
    name = lowered[-1]
    if name in _RC_FILES:
        return Protection("deny", f"{rel.name} is a protected shell, tool or credential file")
    if name in _ASK_FILES or lowered[:2] == [".github", "workflows"]:
        return Protection("ask", f"{rel} steers agents or CI; a human should confirm the change")
    return None


def read_protection(rel: PurePosixPath) -> Protection | None:
    """The protection of the workspace-relative path ``rel`` against reads, if any."""
    lowered = [p.lower() for p in rel.parts]
    if not lowered:
        return None
    name = lowered[-1]
    if (name in _SECRET_FILES or name.startswith(".env.") or name.startswith("id_rsa")
            or name.endswith(_SECRET_SUFFIXES) or any(p in (".ssh", ".aws", ".gnupg")
                                                      for p in lowered)):
        return Protection("ask", f"{rel} usually holds secrets")
    return None


# --------------------------------------------------------------------------- rules

RULES = RuleRegistry()
_ALLOWED = RULES.add(Rule(
    "path.beneath", "The path resolves beneath the workspace and is not protected.", "allow",
    match=("notes.txt", "src/app.py", "src/new/deep/file.txt", "./README.md"),
    not_match=("../escape.txt",),
))
_INVALID = RULES.add(Rule(
    "path.invalid", "Empty, NUL, control characters, longer than PATH_MAX or NAME_MAX, "
    "or not a string.", "deny",
    match=("a\x00b", "x" * 300, "a\u202eb"), not_match=("ok.txt",),
))
_EXPANSION = RULES.add(Rule(
    "path.expansion", "A leading ~ or $: file tools never expand them.", "deny",
    match=("~/.bashrc", "$HOME/x", "${HOME}/x", "~root/x"), not_match=("src/~backup",),
))
_OUTSIDE = RULES.add(Rule(
    "path.outside", "Absolute paths outside the workspace and '..' escapes.", "deny",
    match=("/etc/passwd", "../x", "src/../../x", "/proc/self/environ"),
    not_match=("src/../README.md",),
))
_SYMLINK = RULES.add(Rule(
    "path.symlink", "A symlink on the way points outside the workspace, loops, or dangles "
    "where a write would create its target.", "deny",
    match=("escape/passwd", "dangling", "loop"), not_match=("README.md", "inner-link"),
))
_HARDLINK = RULES.add(Rule(
    "path.hardlink", "Writing an existing file that has other hard links.", "deny",
    match=("hard.txt",), not_match=("README.md",),
))
_SPECIAL = RULES.add(Rule(
    "path.special", "FIFOs, sockets and devices; directories for writes.", "deny",
    match=("src",), not_match=("src/app.py",),
))
_PROTECTED = RULES.add(Rule(
    "path.protected", "Writes to llmos's own state (llmos.toml, .llmos/, plugins/generated/, "
    "the memory folder), .git/, shell rc files, .envrc, editor and agent config and "
    "credential stores.", "deny",
    match=(".git/hooks/pre-commit", ".git/config", ".bashrc", ".envrc", ".vscode/settings.json",
           ".claude/settings.json", ".mcp.json", ".llmos/state.db", "sub/.zshrc", ".GIT/config",
           "llmos.toml", "./LLMOS.toml", "plugins/generated/evil.py", ".llmos/llmos.db"),
    not_match=("src/git.py", "docs/bashrc.md"),
))
_INSTRUCTIONS = RULES.add(Rule(
    "path.instructions", "Writes to agent instruction files, CI workflows, .gitmodules "
    "and .pre-commit-config.yaml ask.", "ask",
    match=("CLAUDE.md", "AGENTS.md", ".github/workflows/ci.yml", ".gitmodules"),
    not_match=("docs/claude.txt",),
))
_SECRET_READ = RULES.add(Rule(
    "path.secret_read", "Reading files that usually hold secrets (.env, keys) asks.", "ask",
    match=(".env", ".env.local", "deploy/id_rsa", "certs/server.key"),
    not_match=("README.md", "src/env.py"),
    example_tool="Read",
))
_GLOB = RULES.add(Rule(
    "path.glob_pattern", "Glob patterns that are absolute or climb with '..' or start "
    "with '~'.", "deny",
    match=("/etc/*", "../**/*.py", "~/*"), not_match=("**/*.py",),
    example_tool="Glob",
))
_MALFORMED = RULES.add(Rule(
    "path.malformed_input", "A file tool call without a usable path argument.", "deny",
    match=("{}", '{"file_path": 5}', "[]"), not_match=('{"file_path": "README.md"}',),
))

_CODE_RULES: dict[DenialCode, Rule] = {
    "invalid": _INVALID, "expansion": _EXPANSION, "outside": _OUTSIDE, "symlink": _SYMLINK,
    "hardlink": _HARDLINK, "special": _SPECIAL, "workspace": _OUTSIDE,
}

WRITE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})
READ_TOOLS = frozenset({"Read", "Glob", "Grep", "LS", "NotebookRead"})
PATH_KEYS = ("file_path", "notebook_path", "path")


def rule_for_denial(denied: PathDenied) -> Rule:
    """The path rule that reports a ``PathDenied`` of this code."""
    return _CODE_RULES[denied.code]


def check_path(
    workspace: Path, user_path: str, *, write: bool, file_only: bool = False,
    protected: ProtectedPaths | None = None,
) -> Verdict:
    """Verdict for reading or writing ``user_path`` relative to ``workspace``.

    ``file_only`` refuses a directory as the target of a write (file tools write files).
    ``protected`` is llmos's own state in this workspace (default: every workspace's).
    """
    try:
        real = resolve_beneath(workspace, user_path, for_write=write)
    except PathDenied as denied:
        return rule_for_denial(denied).verdict(denied.reason)
    rel = PurePosixPath(real.relative_to(Path(os.path.realpath(workspace))))
    lexical = PurePosixPath(os.path.normpath(user_path)) if not os.path.isabs(user_path) else rel
    if write:
        if file_only and real.is_dir():
            return _SPECIAL.verdict(f"{user_path} is a directory, not a file to write")
        for candidate in (rel, lexical):
            protection = write_protection(candidate, protected)
            if protection is not None:
                rule = _PROTECTED if protection.decision == "deny" else _INSTRUCTIONS
                return rule.verdict(protection.reason)
    else:
        for candidate in (rel, lexical):
            protection = read_protection(candidate)
            if protection is not None:
                return _SECRET_READ.verdict(protection.reason)
    return _ALLOWED.verdict(f"{user_path} resolves to {rel or '.'} inside the workspace")


def _check_glob_pattern(pattern: object) -> Verdict | None:
    if not isinstance(pattern, str):
        return _MALFORMED.verdict("the glob pattern is not a string")
    if "\x00" in pattern:
        return _INVALID.verdict("the glob pattern contains a NUL byte")
    parts = PurePosixPath(pattern).parts
    if pattern.startswith(("/", "~", "$")) or ".." in parts:
        return _GLOB.verdict(f"glob pattern {pattern!r} reaches outside the workspace")
    return None


def check_path_tool(tool_name: str, tool_input: Mapping[str, Any], workspace: Path,
                    protected: ProtectedPaths | None = None) -> Verdict:
    """Verdict for a file tool call (Write/Edit/Read/NotebookEdit/Glob/Grep style input).

    Every path-valued key (``file_path``, ``notebook_path``, ``path``) is checked;
    tools not known to be read-only are treated as writers. Glob patterns may not
    be absolute, start with ``~`` or contain ``..``.
    """
    if not isinstance(tool_input, Mapping):
        return _MALFORMED.verdict("tool input is not an object")
    write = tool_name not in READ_TOOLS
    verdicts: list[Verdict] = []
    if tool_name == "Glob" and "pattern" in tool_input:
        bad = _check_glob_pattern(tool_input["pattern"])
        if bad is not None:
            return bad
    keys = [key for key in PATH_KEYS if key in tool_input and tool_input[key] is not None]
    if not keys:
        if tool_name in ("Glob", "Grep", "LS"):
            return _ALLOWED.verdict("no path given: the search starts at the workspace root")
        return _MALFORMED.verdict(f"{tool_name} call has none of {', '.join(PATH_KEYS)}")
    for key in keys:
        value = tool_input[key]
        if not isinstance(value, str):
            return _MALFORMED.verdict(f"{key} is not a string")
        verdict = check_path(workspace, value, write=write, file_only=tool_name in WRITE_TOOLS,
                             protected=protected)
        if verdict.decision != "allow":
            return verdict
        verdicts.append(verdict)
    return verdicts[0]
