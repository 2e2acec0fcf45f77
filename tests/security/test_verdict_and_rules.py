"""Verdict combination and the rule registry with its load-time example checks."""

from __future__ import annotations

import pytest

from llmos.security.rules import Rule, RuleExampleError, check_rule_examples, rules
from llmos.security.verdict import Verdict, combine


def test_deny_beats_ask_beats_allow() -> None:
    allow = Verdict.allow("a", "fine")
    ask = Verdict.ask("b", "hmm")
    deny = Verdict.deny("c", "no")
    assert combine([allow, ask]).decision == "ask"
    assert combine([ask, deny, allow]) .rule == "c"
    assert combine([allow, allow]).decision == "allow"


def test_combined_reason_lists_every_objection() -> None:
    verdict = combine([Verdict.ask("x", "first"), Verdict.deny("y", "second"),
                       Verdict.allow("z", "ignored")])
    assert verdict.reason == "rule y: second; rule x: first"


def test_nothing_checked_is_denied() -> None:
    assert combine([]).decision == "deny"
    fallback = Verdict.ask("d", "default")
    assert combine([], default=fallback) is fallback


def test_verdict_rejects_unknown_decisions() -> None:
    with pytest.raises(ValueError):
        Verdict("maybe", "r", "x")  # type: ignore[arg-type]


def test_at_least_only_raises() -> None:
    allowed = Verdict.allow("r", "ok")
    assert allowed.at_least("ask").decision == "ask"
    assert Verdict.deny("r", "no").at_least("ask").decision == "deny"


def test_rule_ids_are_unique_and_every_rule_has_examples() -> None:
    all_rules = rules()
    ids = [rule.id for rule in all_rules]
    assert len(ids) == len(set(ids))
    assert len(all_rules) > 60
    for rule in all_rules:
        assert rule.match, rule.id
        assert rule.description
        assert rule.id.split(".")[0] in ("shell", "path", "url")


def test_every_rule_example_behaves() -> None:
    assert check_rule_examples() > 400


def test_a_rule_whose_examples_misbehave_is_reported() -> None:
    lying = Rule("shell.allowlisted", "claims reading /etc is fine", "allow",
                 match=("cat /etc/hosts",))
    quiet = Rule("shell.unknown_program", "claims ls is unknown", "ask", match=("ls",),
                 not_match=("frobnicate",))
    with pytest.raises(RuleExampleError) as caught:
        check_rule_examples([lying, quiet])
    message = str(caught.value)
    assert "shell.allowlisted: match example 'cat /etc/hosts' is not allowed" in message
    assert "shell.unknown_program: did not fire on match example 'ls'" in message
    assert "fired on not_match example 'frobnicate'" in message
