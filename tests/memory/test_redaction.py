"""Secrets never reach storage; ordinary text stays as it was."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_the_working_directory_is_not_a_secret() -> None:
    """Issue 10 (1): $PWD's value was taken for a password and every path under the
    current directory became ``[REDACTED]/workspace/...``."""
    env = {"PWD": "/work/main", "OLDPWD": "/work", "DB_PWD": "hunter2hunter2"}
    text = "Wrote /work/main/workspace/primes.py; cd /work/main && pwd; pass hunter2hunter2"
    assert redact_text(text, environ=env) == text.replace("hunter2hunter2", REDACTED)
    assert not is_secret_key("PWD") and not is_secret_key("OLDPWD") and is_secret_key("DB_PWD")
    data = {"cwd": "/work/main", "PWD": "/work/main", "file_path": "/work/main/a.py"}
    assert redact_obj(data, environ=env) == data


def test_json_escaped_text_is_redacted_in_place() -> None:
    inner = "ok\nDB_PASSWORD=hunter2\nHOST=db\n"
    once = json.dumps({"content": inner})
    twice = json.dumps({"result": once})
    for text in (once, twice):
        out = redact_text(text, environ={})
        assert "hunter2" not in out and REDACTED in out
        assert out.replace(REDACTED, "hunter2") == text  # only the secret changed
    assert json.loads(json.loads(redact_text(twice, environ={}))["result"])["content"] == (
        f"ok\nDB_PASSWORD={REDACTED}\nHOST=db\n")


def test_a_secret_found_once_is_removed_everywhere() -> None:
    text = "mysql -pXk9mQ2pL7vR4 app; echo done; mysql --password=Xk9mQ2pL7vR4 other"
    assert redact_text(text, environ={}).count(REDACTED) == 2


def test_findings_are_never_verified_over_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """detect-secrets can check a token with its provider; redaction must not."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("redaction opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    text = ("xoxb-176031372159-0109281590139-yjqwx4hh5344tfjgvq4k7bn7 "
            "sk_live_xjSI6bWHtP3fS2qHx6kwXoII ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d")
    assert redact_text(text, environ={}) == " ".join([REDACTED] * 3)


def test_llmos_version_imports_neither_redaction_nor_detect_secrets() -> None:
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted(m for m in sys.modules if m.startswith("
        "('detect_secrets', 'llmos.memory.redaction', 'requests'))), file=sys.stderr))\n"
        "sys.argv = ['llmos', '--version']\n"
        "from llmos.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_redaction_works_without_having_been_imported_before() -> None:
    """The first call imports detect-secrets (lazily) and finds secrets right away."""
    code = ("import sys\n"
            "from llmos.memory.redaction import redact_text\n"
            "assert 'detect_secrets' not in sys.modules\n"
            "print(redact_text('aws AKIAEDT2SYWB3WKH5DNS', environ={}))\n"
            "assert 'detect_secrets' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"aws {REDACTED}"


@given(st.dictionaries(st.sampled_from(["password", "api_key", "note", "path", "token"]),
                       st.text(max_size=40), max_size=5))
def test_json_text_redaction_is_idempotent_and_keeps_it_valid(data: dict) -> None:
    text = json.dumps({"content": json.dumps(data)})
    once = redact_text(text, environ={})
    assert redact_text(once, environ={}) == once
    json.loads(json.loads(once)["content"])  # still valid JSON at both levels


def test_undecodable_bytes_do_not_break_redaction() -> None:
    """Output decoded with surrogateescape, and JSON escapes of surrogates."""
    text = "password = \udcff\udcfehunter2x\n" + json.dumps({"api_key": "0\U00010000x"})
    out = redact_text(text, environ={})
    assert "hunter2x" not in out and out.count(REDACTED) == 2
    assert redact_text(out, environ={}) == out


def test_characters_that_grow_when_lower_cased_do_not_shift_positions() -> None:
    text = "İstanbul İzmir\nAPI_KEY=Xk9mQ2pL7vR4 user=bob\n" + "İ" * 50 + " token: s3cr3tVal9"
    assert redact_text(text, environ={}) == (
        f"İstanbul İzmir\nAPI_KEY={REDACTED} user=bob\n" + "İ" * 50 + f" token: {REDACTED}")


_PIECES = ["password", "=", ":", " ", '"', "'", "\\", "\\n", "\n", "token", "abc123XYZ",
           REDACTED, "--token", "Bearer ", "AKIAEDT2SYWB3WKH5DNS", "://u:", "@h", "{", "}",
           ",", "İ", "secret", "key", "1", "-", "_", "(", ")", "$", '\\"']


@given(st.lists(st.sampled_from(_PIECES), max_size=25).map("".join))
def test_redaction_of_secret_shaped_text_is_idempotent(text: str) -> None:
    """Removing one secret can turn its neighbour into an assignment; the result is
    still a fixed point."""
    once = redact_text(text, environ={})
    assert redact_text(once, environ={}) == once
