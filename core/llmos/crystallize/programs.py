"""The programs a shell command runs, so a crystal cannot run one its source traces never
ran (it may not widen what the traces did; the gate still judges every command)."""

from __future__ import annotations

from collections.abc import Iterable

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

_LANGUAGE = Language(tree_sitter_bash.language())


def programs(command: str) -> set[str] | None:
    """Every command name in ``command`` (``wc``, ``cd``, ``python3``; nested ``$(...)``
    included); None when it does not parse cleanly or a name is not a plain word."""
    tree = Parser(_LANGUAGE).parse(command.encode("utf-8", "surrogateescape"))
    if tree.root_node.has_error:
        return None
    found: set[str] = set()

    def walk(node: Node) -> bool:
        if node.type == "command_name":
            text = (node.text or b"").decode("utf-8", "surrogateescape")
            if not text or any(ch in text for ch in "$`'\"\\(){}*?[]"):
                return False
            found.add(text.rsplit("/", 1)[-1])
        return all(walk(child) for child in node.children)

    return found if walk(tree.root_node) else None


def allowed_programs(commands: Iterable[str]) -> set[str]:
    """The programs the source traces' Bash calls ran."""
    out: set[str] = set()
    for command in commands:
        out |= programs(command) or set()
    return out


def widening(command: str, allowed: set[str]) -> str:
    """Why ``command`` does more than the traces did ('' when it does not)."""
    used = programs(command)
    if used is None:
        return "its command cannot be read as plain programs"
    extra = sorted(used - allowed)
    if extra:
        return (f"it would run {', '.join(extra)}, which the source traces never ran "
                f"(they ran {', '.join(sorted(allowed)) or 'nothing'})")
    return ""
