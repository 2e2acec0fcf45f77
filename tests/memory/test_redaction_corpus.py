"""The redaction corpus: every must-redact secret is removed, every must-keep text is
left exactly as written (tests/memory/redaction_corpus.yaml says why for each)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmos.memory.redaction import REDACTED, redact_text

CORPUS = yaml.safe_load((Path(__file__).parent / "redaction_corpus.yaml").read_text())


def _id(case: dict) -> str:
    return case["why"][:60]


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS["must_redact"]) >= 60
    assert len(CORPUS["must_keep"]) >= 60
    assert all(case.get("why") for group in CORPUS.values() for case in group)


@pytest.mark.parametrize("case", CORPUS["must_redact"], ids=_id)
def test_secrets_are_removed(case: dict) -> None:
    out = redact_text(case["text"], environ={})
    assert case["secrets"], "a must-redact case names its secrets"
    for secret in case["secrets"]:
        assert secret not in out, f"{secret!r} survived in {out!r}"
    assert REDACTED in out
    for kept in case.get("keep", []):
        assert kept in out, f"{kept!r} (not a secret) was altered: {out!r}"
    assert redact_text(out, environ={}) == out


@pytest.mark.parametrize("case", CORPUS["must_keep"], ids=_id)
def test_non_secrets_are_kept(case: dict) -> None:
    assert redact_text(case["text"], environ={}) == case["text"]
