"""Secrets never reach storage; ordinary text stays as it was."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmos.memory.redaction import (
    REDACTED,
    contains_redaction,
    is_secret_key,
    redact_obj,
    redact_text,
)

SECRETS = [
    ("sk-ant-api03-" + "A1b2" * 10, "{}"),
    ("sk-proj-" + "x9" * 20, "OPENAI_KEY={}"),
    ("ghp_" + "a" * 36, "git push https://{}@github.com/o/r"),
    ("github_pat_" + "B" * 30, "{}"),
    ("AKIAIOSFODNN7EXAMPLE", "aws id {}"),
    ("AIza" + "c" * 35, "key {}"),
    ("xoxb-1234567890-abcdefghij", "slack {}"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "jwt {}"),
    ("hunter2hunter2", "curl -H 'Authorization: Bearer {}' x"),
    ("s3cr3tpassw0rd", "postgres://admin:{}@db.internal:5432/app"),
    ("s3cr3tpassw0rd", "DB_PASSWORD={} ./run"),
    ("s3cr3tpassw0rd", "export GITHUB_TOKEN={}"),
    ("s3cr3tpassw0rd", '{{"password": "{}", "user": "bob"}}'),
    ("s3cr3tpassw0rd", "client_secret: {}"),
    ("s3cr3tpassw0rd", "mysql --password {} -u root"),
    ("s3cr3tpassw0rd", "tool --api-key={} --verbose"),
    ("s3cr3tpassw0rd", "https://api.example.com/v1?access_token={}&page=2"),
    ("MIIEpAIBAAKCAQEA", "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----"),
    ("MIIEpAIBAAKCAQEA", "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n(truncated"),
]


@pytest.mark.parametrize(("secret", "template"), SECRETS)
def test_secrets_are_removed(secret: str, template: str) -> None:
    text = template.format(secret)
    redacted = redact_text(text, environ={})
    assert secret not in redacted
    assert REDACTED in redacted
    assert redact_text(redacted, environ={}) == redacted  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=100 input_tokens: 5 token_count=3",
        "password_file=/etc/app/pw secret_name: prod-db",
        "sha256: " + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "Note: run python primes.py; key: value",
        "token: ${TOKEN} password=<your-password> auth=*** secret: $SECRET",
        "the password is weak",
        "def f(password): return check(password)",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact_text(text, environ={}) == text


def test_secret_values_of_this_process_environment_are_removed() -> None:
    env = {"ANTHROPIC_API_KEY": "plainvalue-0123456789", "HOME": "/root"}
    text = "echo plainvalue-0123456789 in /root"
    assert redact_text(text, environ=env) == f"echo {REDACTED} in /root"


def test_structured_values_under_secret_keys() -> None:
    data = {"headers": {"X-Api-Key": "abc", "Accept": "json"},
            "env": {"DB_PASSWORD": 1234, "PORT": 8080, "TOKEN": ""},
            "args": ["--token", "sk-ant-api03-zzzzzzzzzzzzzzzzzz"], "ok": True}
    out = redact_obj(data, environ={})
    assert out == {"headers": {"X-Api-Key": REDACTED, "Accept": "json"},
                   "env": {"DB_PASSWORD": REDACTED, "PORT": 8080, "TOKEN": ""},
                   "args": ["--token", REDACTED], "ok": True}
    assert contains_redaction(out) and not contains_redaction(data["headers"]["Accept"])


@pytest.mark.parametrize(("name", "secret"), [
    ("DB_PASSWORD", True), ("apiKey", True), ("AWS_SECRET_ACCESS_KEY", True),
    ("x-auth-token", True), ("clientSecret", True), ("private_key", True),
    ("max_tokens", False), ("token_count", False), ("password_file", False),
    ("key", False), ("monkey", False), ("author", False),
])
def test_secret_key_names(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret


@given(st.text(max_size=80), st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789",
                                     min_size=24, max_size=40), st.text(max_size=80))
def test_an_anthropic_key_anywhere_is_removed(before: str, body: str, after: str) -> None:
    secret = "sk-ant-" + body
    redacted = redact_text(f"{before} {secret} {after}", environ={})
    assert secret not in redacted
    assert redact_text(redacted, environ={}) == redacted


@given(st.text(max_size=200))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact_text(text, environ={})
    assert redact_text(once, environ={}) == once
