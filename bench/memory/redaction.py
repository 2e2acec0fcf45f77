"""Redaction throughput (MB/s) on 5 MB of mixed text, the old hand-written patterns
against detect-secrets' detectors, both measured in the same run.

Run from the repository root:

    .venv/bin/python bench/memory/redaction.py            # 5 MB, 3 repeats
    .venv/bin/python bench/memory/redaction.py --mb 20 --repeats 5

The text is what llmos redacts: tool results (JSON with escaped newlines), files the model
read (code, .env, YAML, INI), ``env`` dumps, git log and diff output with commit ids and
digests, curl commands, prose and paths, with fabricated secrets planted in about one
line in fifty. Each implementation redacts it whole and in 4 KB pieces (a step's result
text); the table gives MB/s (best of the repeats), how many planted secrets survived, and
how many lines without a secret were altered. The old implementation is kept below,
verbatim, only as the baseline; it is not used anywhere else.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "core"))

OLD_IMPLEMENTATION = r'''
import functools
import os
import re
from collections.abc import Iterable, Mapping

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
'''


def _old_redact_text() -> Callable[[str], str]:
    namespace: dict = {}
    exec(OLD_IMPLEMENTATION, namespace)  # the baseline, verbatim from before detect-secrets
    redact = namespace["redact_text"]
    return lambda text: redact(text, environ={})


def _new_redact_text() -> Callable[[str], str]:
    from llmos.memory.redaction import redact_text

    return lambda text: redact_text(text, environ={})


def _r(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _secret(rng: random.Random) -> tuple[str, str]:
    """A line holding one fabricated secret, and the secret."""
    kind = rng.randrange(10)
    if kind == 0:
        s = "AKIA" + _r(rng, 16, string.ascii_uppercase + string.digits)
        return f"aws_access_key_id = {s}", s
    if kind == 1:
        s = "ghp_" + _r(rng, 36)
        return f"git push https://{s}@github.com/acme/app.git", s
    if kind == 2:
        s = _r(rng, 14)
        return f"DB_PASSWORD={s}", s
    if kind == 3:
        s = "sk-ant-api03-" + _r(rng, 60)
        return f"ANTHROPIC_API_KEY={s}", s
    if kind == 4:
        s = _r(rng, 12)
        return f"    password = {s}", s
    if kind == 5:
        s = _r(rng, 20)
        return f"curl -H 'Authorization: Bearer {s}' https://api.example.com", s
    if kind == 6:
        s = _r(rng, 12)
        return f"postgres://app:{s}@db.internal:5432/app", s
    if kind == 7:
        s = _r(rng, 16)
        return json.dumps({"content": f"loaded\nAPI_TOKEN={s}\ndone"})[1:-1], s
    if kind == 8:
        s = "xoxb-" + _r(rng, 12, string.digits) + "-" + _r(rng, 24, "abcdef0123456789")
        return f"slack: {s}", s
    s = _r(rng, 18)
    return f'{{"api_key": "{s}", "model": "claude"}}', s


def _plain(rng: random.Random) -> str:
    """A line without any secret."""
    kind = rng.randrange(12)
    sha = hashlib.sha1(str(rng.random()).encode()).hexdigest()
    if kind == 0:
        return f"commit {sha}"
    if kind == 1:
        return f"{sha[:7]} Fix token refresh in the session store (#{rng.randrange(999)})"
    if kind == 2:
        return f"PWD=/work/ws{rng.randrange(99)}/workspace"
    if kind == 3:
        n = rng.randrange(999)
        return f"Wrote /work/ws/workspace/src/module_{n}.py ({n * 7} bytes)"
    if kind == 4:
        digest = hashlib.sha256(sha.encode()).hexdigest()
        return f'{{"digest": "sha256:{digest}", "size": {rng.randrange(99999)}}}'
    if kind == 5:
        return "The password policy requires twelve characters; please choose another one."
    if kind == 6:
        return f"    for i in range({rng.randrange(100)}):  total += values[i] * weights[i]"
    if kind == 7:
        return f'{{"usage": {{"input_tokens": {rng.randrange(9999)}, "output_tokens": 35}}}}'
    if kind == 8:
        return base64.b64encode(rng.randbytes(57)).decode()
    if kind == 9:
        return f"request_id: 123e4567-e89b-12d3-a456-{rng.randrange(10**12):012d} status=200"
    if kind == 10:
        return f"HOME=/root SHELL=/bin/bash LANG=C.UTF-8 max_tokens={rng.randrange(4096)}"
    return "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."


def corpus(size: int, seed: int = 11) -> tuple[str, list[str], set[str]]:
    """Mixed text of about ``size`` characters, its planted secrets and its plain lines."""
    rng = random.Random(seed)
    lines: list[str] = []
    secrets: list[str] = []
    total = 0
    while total < size:
        if rng.randrange(50) == 0:
            line, secret = _secret(rng)
            secrets.append(secret)
        else:
            line = _plain(rng)
        lines.append(line)
        total += len(line) + 1
    plain = {line for line in lines if not any(s in line for s in secrets)}
    return "\n".join(lines), secrets, plain


def _pieces(text: str, size: int = 4096) -> list[str]:
    out, start = [], 0
    while start < len(text):
        end = text.rfind("\n", start, start + size)
        end = len(text) if end <= start or start + size >= len(text) else end + 1
        out.append(text[start:end])
        start = end
    return out


def measure(redact: Callable[[str], str], text: str, repeats: int) -> dict[str, float | str]:
    best_whole = best_pieces = float("inf")
    out = ""
    pieces = _pieces(text)
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = redact(text)
        best_whole = min(best_whole, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for piece in pieces:
            redact(piece)
        best_pieces = min(best_pieces, time.perf_counter() - t0)
    mb = len(text.encode()) / 1e6
    return {"whole": mb / best_whole, "pieces": mb / best_pieces, "out": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=5.0, help="size of the text (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args(argv)
    text, secrets, plain = corpus(int(args.mb * 1e6))
    t0 = time.perf_counter()
    new = _new_redact_text()
    new("warm up: password = x")  # the first call imports detect-secrets
    first_call = time.perf_counter() - t0
    rows = []
    for name, redact in (("old (hand-written patterns)", _old_redact_text()),
                         ("new (detect-secrets)", new)):
        result = measure(redact, text, args.repeats)
        out = str(result["out"])
        missed = sum(1 for s in secrets if s in out)
        altered = sum(1 for line in plain if line not in out)
        rows.append((name, result["whole"], result["pieces"], missed, altered))
    print(f"text: {len(text.encode()) / 1e6:.1f} MB, {text.count(chr(10)) + 1} lines, "
          f"{len(secrets)} planted secrets, {len(plain)} distinct lines without one")
    print(f"first call (imports detect-secrets): {first_call * 1000:.0f} ms")
    print(f"{'implementation':30} {'MB/s whole':>11} {'MB/s 4KB':>9} {'missed':>7} "
          f"{'altered':>8}")
    for name, whole, pieces, missed, altered in rows:
        print(f"{name:30} {whole:11.2f} {pieces:9.2f} {missed:7d} {altered:8d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
