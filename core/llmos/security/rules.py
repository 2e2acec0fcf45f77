"""Policy rules as data: an id, what it means, its decision, and examples that prove it.

Every rule carries ``match`` examples (inputs the rule must fire on) and
``not_match`` examples (inputs it must stay quiet on). ``check_rule_examples``
runs them through the real checkers; the policy runs them when it loads, through
``check_rule_examples_cached``, which remembers a passing verdict by a hash of the
security package's sources and of the Bash grammar it parses with
(``rules_fingerprint``), so a rule whose description and behaviour drift apart is
still caught at startup, but each version of the rules is checked once, not in every
process. The test suite checks every example too.

Examples are plain strings: a shell command for ``shell.*`` rules, a file path
(or a whole JSON tool input when it starts with ``{`` or ``[``) given to the
``example_tool`` for ``path.*`` rules, a URL for ``url.*`` rules. They are
evaluated in a scratch workspace holding ``README.md``, ``src/app.py``,
``.git/config``, ``.git/hooks/``, a hard-linked ``hard.txt``, and symlinks
``escape -> /etc``, ``dangling``, ``loop`` and ``inner-link -> README.md``.
URL examples may also be JSON objects with ``url``, ``allowed_hosts``,
``denied_hosts`` (default ``["denied.example"]``) and ``allow_private``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from llmos.security.verdict import SEVERITY, Decision, Verdict, combine


@dataclass(frozen=True)
class Rule:
    """One policy rule: stable id, human description, decision and checked examples."""

    id: str
    description: str
    decision: Decision
    match: tuple[str, ...] = ()
    not_match: tuple[str, ...] = ()
    #: Shell examples are evaluated as if the command would run inside the OS sandbox.
    sandboxed: bool = False
    #: Path examples are checked as inputs of this file tool.
    example_tool: str = "Write"

    def verdict(self, detail: str) -> Verdict:
        """A verdict carrying this rule's decision and id, with ``detail`` as the reason."""
        return Verdict(self.decision, self.id, f"rule {self.id}: {detail}")


class RuleRegistry:
    """An ordered, id-unique collection of rules owned by one checker module."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}

    def add(self, rule: Rule) -> Rule:
        """Register ``rule``; ids are unique across the registry."""
        if rule.id in self._rules:
            raise ValueError(f"duplicate policy rule id {rule.id!r}")
        self._rules[rule.id] = rule
        return rule

    def __getitem__(self, rule_id: str) -> Rule:
        return self._rules[rule_id]

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)


class RuleExampleError(AssertionError):
    """A rule's examples disagree with what the checker actually decides."""


def rules() -> tuple[Rule, ...]:
    """Every policy rule of the security package, shell first, then paths and URLs."""
    from llmos.security import paths, shellrules, urls

    return (*shellrules.RULES, *paths.RULES, *urls.RULES)


def _scratch_workspace(root: Path) -> Path:
    workspace = root / "workspace"
    (workspace / "src").mkdir(parents=True)
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    (workspace / "README.md").write_text("# example\n")
    (workspace / "src" / "app.py").write_text("print('hi')\n")
    (workspace / "hard.txt").write_text("two names\n")
    os.link(workspace / "hard.txt", workspace / "hard-copy.txt")
    (workspace / "escape").symlink_to("/etc")
    (workspace / "dangling").symlink_to("nowhere/file.txt")
    (workspace / "loop").symlink_to("loop")
    (workspace / "inner-link").symlink_to("README.md")
    return workspace


def _findings_for(rule: Rule, example: str, workspace: Path) -> tuple[Verdict, list[str]]:
    """The combined verdict for ``example`` and the ids of every rule that fired."""
    from llmos.security import paths, shell, urls

    if rule.id.startswith("shell."):
        findings = shell.explain_command(example, workspace=workspace, sandboxed=rule.sandboxed)
        return combine(findings), [f.rule for f in findings]
    if rule.id.startswith("path."):
        key = "pattern" if rule.example_tool == "Glob" else "file_path"
        tool_input = json.loads(example) if example[:1] in "{[" else {key: example}
        verdict = paths.check_path_tool(rule.example_tool, tool_input, workspace)
        return verdict, [verdict.rule]
    if rule.id.startswith("url."):
        spec = json.loads(example) if example.startswith("{") else {"url": example}
        verdict = urls.check_url(
            spec["url"],
            allowed_hosts=spec.get("allowed_hosts", ()),
            denied_hosts=spec.get("denied_hosts", ("denied.example",)),
            allow_private=spec.get("allow_private", False),
        )
        return verdict, [verdict.rule]
    raise RuleExampleError(f"rule {rule.id!r} has no example checker (unknown prefix)")


def check_rule_examples(selected: Iterable[Rule] | None = None) -> int:
    """Run every rule's examples; raise ``RuleExampleError`` listing each misbehaving one.

    A ``match`` example must make the rule fire and end no more permissive than the
    rule's decision (for an allow rule: end allowed). A ``not_match`` example must
    not make the rule fire. Returns the number of examples checked.
    """
    problems: list[str] = []
    checked = 0
    chosen = tuple(rules() if selected is None else selected)
    with tempfile.TemporaryDirectory(prefix="llmos-rules-") as tmp:
        workspace = _scratch_workspace(Path(tmp))
        for rule in chosen:
            if not rule.match:
                problems.append(f"{rule.id}: has no match example")
            for example in rule.match:
                checked += 1
                final, fired = _findings_for(rule, example, workspace)
                if rule.id not in fired:
                    problems.append(f"{rule.id}: did not fire on match example {example!r} "
                                    f"(got {final.decision} by {final.rule})")
                elif rule.decision == "allow" and final.decision != "allow":
                    problems.append(f"{rule.id}: match example {example!r} is not allowed "
                                    f"({final.reason})")
                elif SEVERITY[final.decision] < SEVERITY[rule.decision]:
                    problems.append(f"{rule.id}: match example {example!r} ended "
                                    f"{final.decision}, weaker than {rule.decision}")
            for example in rule.not_match:
                checked += 1
                final, fired = _findings_for(rule, example, workspace)
                if rule.id in fired:
                    problems.append(f"{rule.id}: fired on not_match example {example!r}")
    if problems:
        raise RuleExampleError("policy rule examples misbehave:\n  " + "\n  ".join(problems))
    return checked


PARSER_PACKAGES = ("tree_sitter", "tree_sitter_bash")


def rules_fingerprint(package_dir: Path | None = None) -> str:
    """A hash of everything the examples' verdicts depend on: every source file of the
    security package (``package_dir``, default this one), the Bash grammar's installed
    files, and the Python version."""
    import importlib.util

    from llmos.security import probecache

    parts = (probecache.code_parts() if package_dir is None
             else probecache.tree_parts(package_dir))
    for name in PARSER_PACKAGES:
        spec = importlib.util.find_spec(name)
        origin = getattr(spec, "origin", None)
        folder = Path(origin).parent if origin else None
        files = sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []
        parts += [name, *(probecache.file_identity(f) for f in files if f.is_file())]
    return probecache.digest(parts)


def check_rule_examples_cached() -> int:
    """``check_rule_examples()`` for every rule, unless this very code already passed it
    (see ``rules_fingerprint``); a failure raises every time and is never remembered."""
    from llmos.security import probecache

    checked, _ = probecache.remembered("rule-examples", rules_fingerprint(),
                                       lambda: {"checked": check_rule_examples()})
    return int(checked["checked"])
