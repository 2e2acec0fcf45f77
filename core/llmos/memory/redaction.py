"""Secrets out before anything is stored: API keys, tokens, passwords, URL credentials.

``redact_text`` rewrites a string, ``redact_obj`` walks JSON-like data (a value under a
secret-named key is replaced whatever it looks like). Both are idempotent. What is
removed becomes ``[REDACTED]``; a replayed step that still contains the marker cannot be
replayed as is, and ``contains_redaction`` says so.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
_NO_ENV: Mapping[str, str] = {}

# Last words of a key name that say its value is a secret: DB_PASSWORD, apiKey,
# client_secret, AWS_SECRET_ACCESS_KEY, x-auth-token. "token_count" and "max_tokens" are not.
_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "apikey",
        "credential", "credentials", "auth", "authorization", "privatekey", "secretkey",
        "accesskey", "signingkey", "encryptionkey", "masterkey", "sessionid", "cookie",
    }
)
_SECRET_PAIRS = frozenset({"api", "access", "private", "secret", "signing", "encryption",
                           "master", "session", "auth", "client"})

# Well-known token shapes, redacted wherever they appear.
_TOKENS = re.compile(
    r"""
      sk-ant-[A-Za-z0-9_\-]{8,}                      # Anthropic
    | sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}  # OpenAI and look-alikes
    | (?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}    # Stripe
    | gh[pousr]_[A-Za-z0-9]{20,}                     # GitHub
    | github_pat_[A-Za-z0-9_]{20,}
    | glpat-[A-Za-z0-9_\-]{20,}                      # GitLab
    | (?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}  # AWS access key ids
    | AIza[0-9A-Za-z_\-]{35}                         # Google API keys
    | ya29\.[0-9A-Za-z_\-]{20,}                      # Google OAuth
    | xox[abposr]-[A-Za-z0-9\-]{10,}                 # Slack
    | hf_[A-Za-z0-9]{30,}                            # Hugging Face
    | npm_[A-Za-z0-9]{30,}                           # npm
    | eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}  # JWT
    """,
    re.VERBOSE,
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY( BLOCK)?-----"
    r"(?:.*?-----END (?P=kind)PRIVATE KEY( BLOCK)?-----|.*\Z)",
    re.DOTALL,
)
_AUTH_HEADER = re.compile(
    r"(?i)\b(?P<scheme>bearer|basic|token|digest)(?P<sep>\s+)(?P<value>[A-Za-z0-9._~+/\-]{8,}=*)"
)
_URL_CREDENTIALS = re.compile(
    r"(?i)(?P<prefix>\b[a-z][a-z0-9+.\-]*://[^\s:/@?#\"'<>]*:)(?P<value>[^\s@/?#\"'<>]+)(?=@)"
)
# key = value, key: value, "key": "value", --key value, --key=value
_QUOTED_VALUE = r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'"
_VALUE = r"(?P<value>\[REDACTED\]|" + _QUOTED_VALUE + r"|[^\s,;&\"'}\])<>]+)"
_KEY_VALUE = re.compile(
    r"(?P<key>(?<![\w\-.])[A-Za-z_][A-Za-z0-9_.\-]*)(?P<kq>[\"']?)"
    r"(?P<sep>\s*[:=](?!//)\s*)" + _VALUE  # not the "://" of a URL
)
_FLAG = re.compile(r"(?P<key>(?<![\w\-])--?[A-Za-z][A-Za-z0-9_\-]*)(?P<kq>)(?P<sep>=|\s+)" + _VALUE)
_PLACEHOLDER = re.compile(
    r"^(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\$\{\{.*\}\}|<[^>]*>|\*+|x+|null|none|true|false|"
    r"\[REDACTED\].*)$",
    re.IGNORECASE,
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=4096)
def is_secret_key(name: str) -> bool:
    """Whether a key or variable name says its value is a secret (by its last words)."""
    parts = [p for p in re.split(r"[_\-.\s]+", _CAMEL.sub("_", name.strip("-"))) if p]
    if not parts:
        return False
    words = [p.lower() for p in parts]
    last = words[-1]
    if last in _SECRET_WORDS:
        return True
    return len(words) >= 2 and words[-1] == "key" and words[-2] in _SECRET_PAIRS


def _env_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    values = {v for k, v in environ.items() if len(v) >= 8 and is_secret_key(k)}
    return tuple(sorted(values, key=len, reverse=True))


def _kv(match: re.Match[str]) -> str:
    key, sep, value = match.group("key"), match.group("sep"), match.group("value")
    if not is_secret_key(key):
        return match.group()
    quote = value[0] if value[:1] in "\"'" and len(value) >= 2 and value[-1] == value[0] else ""
    inner = value[1:-1] if quote else value
    if not inner or _PLACEHOLDER.match(inner) or inner.lower() in ("bearer", "basic"):
        return match.group()
    return f"{key}{match.group('kq')}{sep}{quote}{REDACTED}{quote}"


def redact_text(text: str, *, extra_secrets: Iterable[str] = (),
                environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret it recognizes replaced by ``[REDACTED]``.

    Recognized: private key blocks, well-known token shapes (Anthropic, OpenAI, GitHub,
    AWS, Google, Slack, Stripe, JWT, ...), Bearer/Basic credentials, passwords in URLs,
    values of secret-named keys (``DB_PASSWORD=...``, ``"api_key": "..."``,
    ``--token ...``), and the values of secret-named environment variables of this
    process (``ANTHROPIC_API_KEY``'s value, wherever it appears).
    """
    if not text:
        return text
    env = os.environ if environ is None else environ
    for secret in (*_env_secrets(env), *extra_secrets):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    text = _PRIVATE_KEY.sub(REDACTED, text)
    text = _TOKENS.sub(REDACTED, text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group('scheme')}{m.group('sep')}{REDACTED}", text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('prefix')}{REDACTED}", text)
    text = _FLAG.sub(_kv, text)
    return _KEY_VALUE.sub(_kv, text)


def redact_obj(value: Any, *, extra_secrets: Iterable[str] = (),
               environ: Mapping[str, str] | None = None) -> Any:
    """JSON-like data with secrets redacted: strings are rewritten, and any non-empty
    string or number under a secret-named key is replaced entirely."""
    env = os.environ if environ is None else environ
    extra = (*_env_secrets(env), *extra_secrets)  # computed once, not per string

    def walk(item: Any, key: str | None = None) -> Any:
        if isinstance(item, Mapping):
            return {k: walk(v, str(k)) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        secret_slot = key is not None and is_secret_key(key)
        if isinstance(item, str):
            if secret_slot and item and not _PLACEHOLDER.match(item):
                return REDACTED
            return redact_text(item, extra_secrets=extra, environ=_NO_ENV)
        if secret_slot and isinstance(item, (int, float)) and not isinstance(item, bool):
            return REDACTED
        return item

    return walk(value)


def contains_redaction(value: Any) -> bool:
    """Whether redaction removed something from this value (so it cannot be replayed as is)."""
    if isinstance(value, str):
        return REDACTED in value
    if isinstance(value, Mapping):
        return any(contains_redaction(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_redaction(v) for v in value)
    return False


__all__ = ["REDACTED", "contains_redaction", "is_secret_key", "redact_obj", "redact_text"]
