"""Secrets out before anything is stored: API keys, tokens, passwords, URL credentials.

``redact_text`` rewrites a string, ``redact_obj`` walks JSON-like data (a value under a
secret-named key is replaced whatever it looks like). Both are idempotent. What is
removed becomes ``[REDACTED]``; a replayed step that still contains the marker cannot be
replayed as is, and ``contains_redaction`` says so. Nothing that is not a secret changes:
``$PWD`` and paths, file names, "password" in prose, ``max_tokens``, commit ids, digests,
UUIDs, base64 data (tests/memory/redaction_corpus.yaml lists what must go and what must
stay, and why).

Detection is detect-secrets' (Yelp), through its plugins:

1. its regex detectors (AWS, Azure, GitHub, GitLab, Slack, Stripe, JWT, npm, PyPI,
   OpenAI, SendGrid, Twilio, private-key headers, basic-auth URLs, ...) run their own
   patterns once over the whole text; those that look for a keyword first (IBM,
   Cloudant, Softlayer) over the lines that name a secret-ish word;
2. its ``KeywordDetector`` on each such line (on a window around each keyword of a
   line longer than 2,000 characters), and its entropy plugins on each quoted value
   assigned to a secret-ish name.

The text is scanned as written and, for its lines with backslash escapes, decoded
(``\\n`` ends a line, ``\\"`` is a quote; twice for JSON inside JSON); each secret is
removed at its original position, and a value found once is removed wherever else it
appears. Findings pass detect-secrets' heuristic filters (sequential strings, UUIDs,
templates, ``$VAR``, indirect references like ``getpass()``, non-alphanumeric values) and
ours, which tune it: a keyword finding counts only when the name it is assigned to is a
secret name (``password_file``, ``secret_name``, ``PWD`` are not: ``is_secret_key``), an
unquoted value is one token, placeholders, type names and prose words are not secrets,
and a high-entropy string counts only as the value of a secret-ish name (so commit ids,
digests and base64 data stay). Our own detectors cover only what detect-secrets has none
for: the values of this process's secret-named environment variables, the body of a
private key block (it flags only the header), Anthropic / OpenAI project / Google /
Hugging Face / npm / Stripe test keys, ``Authorization`` headers, ``curl -u user:pass``,
a password said in prose or in ``.netrc``, and secret-named flags and keys beyond its
keyword list (``--token X``, ``GITHUB_TOKEN=X``, several on one line).

detect-secrets is loaded on the first call, never at ``llmos --version``: its regex
detectors first, its keyword and entropy plugins and filters the first time a line names a
secret-ish word; ``prebuild()`` builds all of it ahead (the command daemon does, before it
forks). It never verifies a finding over the network (that takes a filter that is not
enabled).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

REDACTED = "[REDACTED]"
_NO_ENV: Mapping[str, str] = {}

# ---------------------------------------------------------------------------- key names

# Last words of a key name that say its value is a secret: DB_PASSWORD, apiKey,
# client_secret, AWS_SECRET_ACCESS_KEY, x-auth-token. "token_count" and "max_tokens" are not.
_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "apikey",
        "credential", "credentials", "auth", "authorization", "privatekey", "secretkey",
        "accesskey", "signingkey", "encryptionkey", "masterkey", "sessionid", "cookie",
        "contrasena", "contraseña", "keypass", "dbpass", "apitoken", "authtoken",
        "accesstoken", "refreshtoken", "passcode",
    }
)
_SECRET_PAIRS = frozenset({"api", "access", "private", "secret", "signing", "encryption",
                           "master", "session", "auth", "client", "service", "account", "db",
                           "database", "priv", "app", "consumer", "ssh", "hmac", "jwt",
                           "storage", "shared"})
# Words that make a name a secret-ish context for a high-entropy value ("key", "sig").
_SECRETISH_WORDS = _SECRET_WORDS | {"key", "sig", "signature", "bearer", "session", "hmac"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _words(name: str) -> list[str]:
    return [p.lower() for p in re.split(r"[_\-.\s]+", _CAMEL.sub("_", name.strip("-$@"))) if p]


@functools.lru_cache(maxsize=4096)
def is_secret_key(name: str) -> bool:
    """Whether a key or variable name says its value is a secret (by its last words).

    ``PWD`` alone is the shell's working directory, not a password (``DB_PWD`` is one).
    """
    words = _words(name)
    if not words or words == ["pwd"]:
        return False
    if words[-1] in _SECRET_WORDS:
        return True
    return len(words) >= 2 and words[-1] == "key" and words[-2] in _SECRET_PAIRS


@functools.lru_cache(maxsize=4096)
def _is_secretish_name(name: str) -> bool:
    words = _words(name)
    return words != ["pwd"] and any(w in _SECRETISH_WORDS for w in words)


def _env_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    values = {v for k, v in environ.items() if len(v) >= 8 and is_secret_key(k)}
    return tuple(sorted(values, key=len, reverse=True))


# ---------------------------------------------------------------- our own detectors

# Token shapes detect-secrets has no detector for (its GitHub, GitLab, Slack, Stripe live,
# AWS, JWT-header, npm-in-.npmrc, PyPI and classic OpenAI ones run as they are).
_OWN_TOKENS = [re.compile(p) for p in (  # each starts with a literal, which keeps it fast
    r"sk-ant-[A-Za-z0-9_\-]{8,}",                                   # Anthropic
    r"sk-(?:proj-|svcacct-|admin-)?(?=[A-Za-z0-9_\-]*\d)[A-Za-z0-9_\-]{20,}",  # OpenAI
    r"[sr]k_(?:live|test)_[A-Za-z0-9]{10,}",                         # Stripe, test keys too
    r"github_pat_[A-Za-z0-9_]{20,}",                                 # GitHub fine-grained
    r"AIza[0-9A-Za-z_\-]{35}",                                       # Google API keys
    r"ya29\.[0-9A-Za-z_\-]{20,}",                                    # Google OAuth tokens
    r"hf_[A-Za-z0-9]{30,}",                                          # Hugging Face
    r"npm_[A-Za-z0-9]{36}",                                          # npm, not only .npmrc
    r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT, signed
)]  # each must start a word: the character before is checked in code
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY( BLOCK)?-----"
    r"(?:.*?-----END (?P=kind)PRIVATE KEY( BLOCK)?-----|.*\Z)",
    re.DOTALL,
)
_CRED = r"[A-Za-z0-9._~+/\-]{8,}=*"
_AUTH_HEADER = re.compile(  # on lower-cased text
    r"\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(?:bearer|basic|token|digest|bot|apikey|key|sso-key)[ \t]+)?(?P<value>" + _CRED + ")"
    r"|\bbearer[ \t]+(?P<bearer>(?=[A-Za-z._~+/\-]*[0-9])" + _CRED + ")"
)
_CURL_USER = re.compile(r"-(?:u|-user)(?:[ \t]+|=)[\"']?[^\s:\"']+:(?P<value>[^\s\"']+)")
# "the password is X", "password X" (.netrc): a value with letters and digits, in prose
_SAID = re.compile(  # on lower-cased text
    r"\b(?:(?:password|passwd|passphrase|passcode|secret|token|api[ _-]?key)[ \t]+"
    r"(?:is|was)|password)[ \t]+[\"'`]?"
    r"(?P<value>(?=[^\s\"'`]*\d)(?=[^\s\"'`]*[A-Za-z])[^\s\"'`,;]{6,}?)[.!?)]*(?=[\s\"'`,;]|$)"
)
# key = value, key: value, "key": "value", --key value, --key=value, ?key=value
def _key_value_patterns(quoted: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    value = r"(?P<value>" + quoted + r"|[^\s,;&\"'}\])<>\\]+)"  # an escape ends it
    key_value = re.compile(  # the value is looked at, not consumed: it can hold a pair
        r"(?P<key>(?<![\w\-.$])[A-Za-z_][A-Za-z0-9_.\-]*)[\"']?"
        r"[ \t]*(?::=|=>|[:=])(?!//)[ \t]*(?=" + value + ")"  # not the "://" of a URL
    )
    flag = re.compile(r"(?P<key>(?<![\w\-])--?[A-Za-z][A-Za-z0-9_\-]*)(?:=|[ \t]+)(?!-)" + value)
    return key_value, flag


# In text as written a quoted value may hold escaped quotes ("a\"b"); in decoded text a
# backslash is only a backslash, and the first quote ends the value.
_KEY_VALUE, _FLAG = _key_value_patterns(r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'")
_KEY_VALUE_DECODED, _FLAG_DECODED = _key_value_patterns(r"\"[^\"\n]*\"|'[^'\n]*'")
_NESTED_PAIR = re.compile(r"[A-Za-z_][\w.\-]*=")  # "Cookie: theme=dark": judge theme=dark

# ---------------------------------------------------------------------------- filters

_PLACEHOLDER = re.compile(
    r"^(?:\$[A-Za-z_][A-Za-z0-9_]*|\$\{[^}]*\}?|\$\([^)]*\)?|\$\{\{.*\}\}|\{\{.*\}\}|"
    r"<[^>]*>|%\(?\w*\)?s|\*+|x+|"
    r"\.+|-+|null|nil|none|true|false|undefined|redacted|hidden|masked|string|str|int|"
    r"bytes|bool|any|object|secretstr|optional\[str\]|"
    r"\[REDACTED\].*)$",
    re.IGNORECASE,
)
# Words that follow "password:" in prose ("invalid password: too short"), never a password.
_PROSE = frozenset(
    "a an the is are was be been must should will can may not no yes too and or for of to in "
    "on at by with from required invalid incorrect wrong missing empty expired changed reset "
    "updated set unset ok none field prompt please enter your my our their this that it "
    "protected authentication authorization denied failed accepted correct".split()
)
_NAME_BEFORE = re.compile(
    r"(?P<name>[A-Za-z_$@][\w.\-$]*)[\"'\]]{0,2}[ \t]*(?:\[[0-9]*\])?[ \t]*"
    r"(?:[:=!]=?=?|=>|[ \t]|\(|\.assign\()[ \t]*@?[\"'`]?$"
)


# ``name = get_secret()``, ``name = os.environ["X"]``: the value is read, not written.
_INDIRECT = re.compile(r"^[\w.$]+[(\[]")


def _assigned_name(line: str, start: int) -> str | None:
    """The name a value at ``line[start:]`` is assigned to (``name = value``), if any."""
    m = _NAME_BEFORE.search(line, max(0, start - 80), start)
    return m.group("name") if m else None


def _is_placeholder(value: str) -> bool:
    inner = value.replace(REDACTED, "")
    return not inner.strip(" \"'") or bool(_PLACEHOLDER.match(value.strip("\"'")))


# ------------------------------------------------------------------ JSON-escaped text

_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"  # a surrogate pair
    r"|\\(?:u[0-9a-fA-F]{4}|[\\\"/bfnrt'])"
)
_SIMPLE = {"n": "\n", "r": "\n", "t": "\t", "b": "\b", "f": "\f", "/": "/", "\\": "\\",
           '"': '"', "'": "'"}


def _decode_escape(esc: str) -> str:
    """One character for one escape (a lone surrogate becomes U+FFFD)."""
    if len(esc) == 2:
        return _SIMPLE[esc[1]]
    if len(esc) == 12:
        high, low = int(esc[2:6], 16), int(esc[8:12], 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    code = int(esc[2:], 16)
    return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)


class _Unescaped:
    """``text`` with backslash escapes decoded, and the way back to original positions."""

    def __init__(self, text: str, parent: _Unescaped | _Joined | None = None) -> None:
        self.parent = parent
        found = [(m.start(), m.end() - m.start()) for m in _ESCAPE.finditer(text)]
        # Each escape decodes to one character: the k-th one lands where it started, less
        # what the k-1 before it shrank.
        shrunk = itertools.accumulate((n - 1 for _, n in found), initial=0)
        self.dec = [o - d for (o, _), d in zip(found, shrunk, strict=False)]
        self.orig = found  # (index, length) of each escape in ``text``
        self.text = _ESCAPE.sub(lambda m: _decode_escape(m.group()), text)

    def _start(self, i: int) -> int:
        k = bisect.bisect_right(self.dec, i) - 1
        if k < 0:
            return i
        o, n = self.orig[k]
        return o if self.dec[k] == i else o + n + (i - self.dec[k] - 1)

    def _end(self, i: int) -> int:  # exclusive end of decoded character i
        k = bisect.bisect_right(self.dec, i) - 1
        if k >= 0 and self.dec[k] == i:
            return self.orig[k][0] + self.orig[k][1]
        return self._start(i) + 1

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the outermost text that decodes to ``self.text[start:end]``."""
        s, e = self._start(start), self._end(end - 1)
        return self.parent.span(s, e) if self.parent else (s, e)


# An escaped quote or newline one level down: an odd number of backslashes before it.
_NESTED = re.compile(r"(?<!\\)(?:\\\\)*\\[\"n]")


class _Joined:
    """Some lines of a text joined by newlines, and the way back to their positions."""

    def __init__(self, text: str, lines: list[tuple[int, int]]) -> None:
        self.lines = lines
        self.text = "\n".join(text[s:e] for s, e in lines)
        self.offsets = list(itertools.accumulate((e - s + 1 for s, e in lines), initial=0))

    def span(self, start: int, end: int) -> tuple[int, int]:
        k = bisect.bisect_right(self.offsets, start) - 1
        delta = self.lines[k][0] - self.offsets[k]
        return start + delta, end + delta


def _lines_with(pattern: re.Pattern[str], text: str, folded: str | None = None
                ) -> list[tuple[int, int]]:
    """(start, end) of each line of ``text`` where ``pattern`` matches (in ``folded``)."""
    lines: list[tuple[int, int]] = []
    end = -1
    for m in pattern.finditer(text if folded is None else folded):
        pos = m.start()
        if pos < end:
            continue
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        lines.append((start, end))
    return lines


def _views(text: str) -> Iterator[tuple[str, _Unescaped | None]]:
    """The text as written and, for its lines with escapes, decoded (twice for JSON in
    JSON): a secret is looked for in both, so decoding a backslash that was not an escape
    (``C:\\new``) cannot hide one."""
    yield text, None
    if "\\" not in text:
        return
    lines = _lines_with(_ESCAPE, text)
    if not lines:
        return
    joined = _Joined(text, lines)
    view = _Unescaped(joined.text, joined)
    if _NESTED.search(view.text):
        view = _Unescaped(view.text, view)
    yield view.text, view


# ---------------------------------------------------------------------------- scanner


def _secret_span(m: re.Match[str]) -> tuple[int, int]:
    """The secret inside a detector's match: its last value group that does not start
    the match (a password after ``user:``), else the match without leading/trailing
    delimiters (GitHub's ``(ghp|...)_`` group is a prefix, not the secret)."""
    for g in range(m.re.groups, 0, -1):
        if m.group(g) and m.start(g) > m.start():
            return m.start(g), m.end(g)
    s, e = m.span()
    text = m.string
    while s < e and text[s] in " \t\n=:\"'":
        s += 1
    while e > s and text[e - 1] in " \t\n\"'":
        e -= 1
    return s, e


class _Scanner:
    """detect-secrets' plugins, tuned by its filters and ours (built once per process, on
    first use or by ``prebuild()``).

    What every text needs, the regex detectors' patterns, is built with the scanner; what
    only a line naming a secret-ish word needs (the keyword and entropy plugins, the
    heuristic filters, the detectors that look behind for a keyword) is built the first
    time such a line is scanned, so a text with none (most of what a replay stores) never
    loads or compiles them."""

    def __init__(self) -> None:
        from detect_secrets.plugins.aws import AWSKeyDetector
        from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
        from detect_secrets.plugins.base import RegexBasedDetector
        from detect_secrets.plugins.basic_auth import BasicAuthDetector
        from detect_secrets.plugins.cloudant import CloudantDetector
        from detect_secrets.plugins.discord import DiscordBotTokenDetector
        from detect_secrets.plugins.github_token import GitHubTokenDetector
        from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
        from detect_secrets.plugins.ibm_cloud_iam import IbmCloudIamDetector
        from detect_secrets.plugins.ibm_cos_hmac import IbmCosHmacDetector
        from detect_secrets.plugins.jwt import JwtTokenDetector
        from detect_secrets.plugins.mailchimp import MailchimpDetector
        from detect_secrets.plugins.npm import NpmDetector
        from detect_secrets.plugins.openai import OpenAIDetector
        from detect_secrets.plugins.private_key import PrivateKeyDetector
        from detect_secrets.plugins.pypi_token import PypiTokenDetector
        from detect_secrets.plugins.sendgrid import SendGridDetector
        from detect_secrets.plugins.slack import SlackDetector
        from detect_secrets.plugins.softlayer import SoftlayerDetector
        from detect_secrets.plugins.square_oauth import SquareOAuthDetector
        from detect_secrets.plugins.stripe import StripeDetector
        from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
        from detect_secrets.plugins.twilio import TwilioKeyDetector

        # Not used: ArtifactoryDetector ("AP" + 9 alphanumerics is any capitalized word
        # like APIKeyManager) and IPPublicDetector (an IP address is not a secret).
        regex_plugins: list[type[RegexBasedDetector]] = [
            AWSKeyDetector, AzureStorageKeyDetector, BasicAuthDetector,
            CloudantDetector, DiscordBotTokenDetector, GitHubTokenDetector,
            GitLabTokenDetector, IbmCloudIamDetector, IbmCosHmacDetector,
            JwtTokenDetector, MailchimpDetector, NpmDetector, OpenAIDetector,
            PrivateKeyDetector, PypiTokenDetector, SendGridDetector, SlackDetector,
            SoftlayerDetector, SquareOAuthDetector, StripeDetector,
            TelegramBotTokenDetector, TwilioKeyDetector,
        ]
        # Their own patterns (``^``/``$`` per line). Those that look for a secret-ish word
        # first (IBM, Cloudant, Softlayer) run only on the lines that have one, so they
        # are compiled (``context_patterns``) only when such a line is scanned.
        sources = [(p.pattern, p.flags | re.MULTILINE)
                   for plugin in regex_plugins for p in plugin().denylist]
        self.patterns = [re.compile(p, f) for p, f in sources if "(?<=" not in p]
        self._context_sources = [(p, f) for p, f in sources if "(?<=" in p]

    @functools.cached_property
    def context_patterns(self) -> list[re.Pattern[str]]:
        return [re.compile(p, f) for p, f in self._context_sources]

    @functools.cached_property
    def heuristic(self) -> Any:
        from detect_secrets.filters import heuristic

        return heuristic

    @functools.cached_property
    def keyword(self) -> Any:
        from detect_secrets.plugins.keyword import KeywordDetector

        return KeywordDetector()

    @functools.cached_property
    def entropy(self) -> list[Any]:
        from detect_secrets.plugins.high_entropy_strings import (
            Base64HighEntropyString,
            HexHighEntropyString,
        )

        return [Base64HighEntropyString(), HexHighEntropyString()]

    @functools.cached_property
    def keyword_hit(self) -> re.Pattern[str]:
        """Every word of the keyword detector's list (on lower-cased text)."""
        from detect_secrets.plugins.keyword import DENYLIST_REGEX

        return re.compile(DENYLIST_REGEX)

    @functools.cached_property
    def keyword_trigger(self) -> re.Pattern[str]:
        """Every word of the keyword detector's list (api_?key, db_?pass, pwd, secret,
        ...) contains one of these; a line without one is not given to it."""
        from detect_secrets.plugins.keyword import DENYLIST_REGEX

        trigger = re.compile(r"key|pass|pwd|secret|contrase")
        words = DENYLIST_REGEX.strip("()").split(")")[0].split("|")
        if not all(trigger.search(w.replace("_?", "_")) for w in words):
            return self.keyword_hit  # a newer list: use it as is
        return trigger

    def build_all(self) -> None:
        """Everything, the parts a secret-ish line needs included (``prebuild``)."""
        for part in ("context_patterns", "heuristic", "keyword", "entropy", "keyword_hit",
                     "keyword_trigger"):
            getattr(self, part)

    # -- filters ---------------------------------------------------------------------

    def _ds_filtered(self, secret: str, line: str, plugin: Any) -> bool:
        h = self.heuristic
        return (h.is_sequential_string(secret) or h.is_potential_uuid(secret)
                or h.is_templated_secret(secret) or h.is_prefixed_with_dollar_sign(secret)
                or h.is_likely_id_string(secret, line, plugin))

    def _keyword_value(self, line: str, value: str) -> Iterator[tuple[int, int]]:
        """Where a KeywordDetector finding sits in ``line``, trimmed to one token when it
        is unquoted ("hunter2  # comment" is the password hunter2)."""
        token = re.match(r"[^\s,;\\]*", value.rstrip(")]}:"))
        if not any(self._value_may_be_secret(v) for v in {value, token.group() if token else ""}):
            return
        start = line.find(value)
        while start >= 0:
            end = start + len(value)
            quoted = start > 0 and line[start - 1] in "\"'`"
            if not quoted:  # one token, without the ")" of "password: str)"
                token = re.match(r"[^\s,;\\]+", line[start:end])
                end = start + (len(token.group().rstrip(")]}:")) if token else 0)
            candidate = line[start:end]
            name = _assigned_name(line, start)
            if (end > start and not _is_placeholder(candidate)
                    and candidate.lower() not in _PROSE
                    and (name is None or is_secret_key(name))
                    and not self.heuristic.is_not_alphanumeric_string(candidate)
                    and not self._ds_filtered(candidate, line, self.keyword)):
                yield start, end
            start = line.find(value, start + len(value))

    def _value_may_be_secret(self, value: str) -> bool:
        return bool(value) and not (
            _is_placeholder(value) or value.lower() in _PROSE
            or self.heuristic.is_not_alphanumeric_string(value)
            or self.heuristic.is_sequential_string(value)
            or self.heuristic.is_potential_uuid(value)
            or self.heuristic.is_templated_secret(value)
            or self.heuristic.is_prefixed_with_dollar_sign(value))

    # -- detection -------------------------------------------------------------------

    def _line_spans(self, line: str) -> Iterator[tuple[int, int]]:
        """detect-secrets' line plugins on one line: KeywordDetector on the line (on a
        window around each of its keywords when the line is long), the entropy plugins
        on each quoted value assigned to a secret-ish name."""
        if not line.isascii():  # lone surrogates (undecodable bytes) become "?", same length
            line = line.encode("utf-8", "replace").decode("utf-8")
        lower = _fold(line)
        if len(line) <= _LONG_LINE:
            windows = [(0, len(line))] if self.keyword_trigger.search(lower) else []
        else:  # a window around each keyword whose assigned value could be a secret
            windows = []
            for m in self.keyword_hit.finditer(lower):
                after = _VALUE_AFTER.match(line, m.end())
                if after and self._value_may_be_secret(after.group("value")):
                    windows.append((max(0, m.start() - 40), after.end() + 40))
        for w_start, w_end in windows:
            window = line[w_start:w_end]
            filenames = ["redact.conf"]  # key: value, key = value, quotes optional
            if ":=" in window:
                filenames.append("redact.go")
            if "=>" in window:
                filenames.append("redact.py")
            found = [str(f.secret_value) for name in filenames
                     for f in self.keyword.analyze_line(filename=name, line=window)]
            if found and not self.heuristic.is_indirect_reference(window):
                for value in found:
                    for s, e in self._keyword_value(window, value):
                        yield w_start + s, w_start + e
        for m in _SECRETISH_ASSIGNMENT.finditer(lower):
            value = _QUOTED_AFTER.match(line, m.end())
            # Shannon entropy is at most log2(length): shorter values cannot pass the
            # limits (hex 3.0, base64 4.5), so they are not given to the plugins.
            if value is None or len(value.group("value")) < 8:
                continue
            window = line[m.start():value.end()]
            for plugin in self.entropy:
                for f in plugin.analyze_line(filename="redact.txt", line=window):
                    if str(f.secret_value) != value.group("value"):
                        continue
                    name = _assigned_name(line, value.start("value"))
                    if (name is not None and _is_secretish_name(name)
                            and not self._ds_filtered(str(f.secret_value), window, plugin)):
                        yield value.span("value")

    def _assignments(self, text: str, decoded: bool) -> Iterator[tuple[int, int]]:
        """Values of secret-named keys and flags, ``Authorization`` headers (ours)."""
        for pattern in self.context_patterns:
            for m in pattern.finditer(text):
                s, e = _secret_span(m)
                if e > s and not _is_placeholder(text[s:e]):
                    yield s, e
        folded = _fold(text)
        for m in _AUTH_HEADER.finditer(folded):
            group = "value" if m.group("value") else "bearer"
            if not _is_placeholder(text[m.start(group):m.end(group)]):
                yield m.span(group)
        for m in _SAID.finditer(folded):
            if not _is_placeholder(m.group("value")):
                yield m.span("value")
        for pattern in (_FLAG_DECODED, _KEY_VALUE_DECODED) if decoded else (_FLAG, _KEY_VALUE):
            for m in pattern.finditer(text):
                if not is_secret_key(m.group("key")):
                    continue
                value = m.group("value")
                s, e = m.span("value")
                if value[:1] in "\"'" and len(value) >= 2 and value[-1] == value[0]:
                    s, e, value = s + 1, e - 1, value[1:-1]
                elif _NESTED_PAIR.match(value):
                    continue
                if (value and not _is_placeholder(value) and value.lower() not in _PROSE
                        and value.lower() not in ("bearer", "basic")
                        and not self.heuristic.is_not_alphanumeric_string(value)
                        and not _INDIRECT.search(value) and text[e:e + 1] not in ("(", "[")):
                    yield s, e

    def spans(self, text: str, decoded: bool = False) -> Iterator[tuple[int, int]]:
        """Spans of ``text`` (``decoded``: JSON-unescaped) that hold a secret."""
        for pattern in self.patterns:
            for m in pattern.finditer(text):
                s, e = _secret_span(m)
                if e > s and not _is_placeholder(text[s:e]):
                    yield s, e
        for pattern in _OWN_TOKENS:
            for m in pattern.finditer(text):
                s = m.start()
                if s == 0 or not text[s - 1].isalnum():
                    yield m.span()
        for m in _CURL_USER.finditer(text):
            s = m.start()
            if (s == 0 or text[s - 1].isspace()) and not _is_placeholder(m.group("value")):
                yield m.span("value")
        lines = _lines_with(_TRIGGER, text, _fold(text))
        if not lines:
            return
        joined = _Joined(text, lines)  # the line-level patterns run once over them all
        for s, e in self._assignments(joined.text, decoded):
            yield joined.span(s, e)
        for start, end in lines:
            for s, e in self._line_spans(text[start:end]):
                yield start + s, start + e


_LONG_LINE = 2000
_QUOTED_AFTER = re.compile(r"[ \t]*@?(?P<q>[\"'])(?P<value>[^\"'\n]*)(?P=q)")
# A quoted value assigned to a secret-ish name, the only place a high-entropy string counts.
_SECRETISH_ASSIGNMENT = re.compile(
    r"(?:key|sig|token|secret|pass|pwd|auth|credential|cookie|session|bearer|hmac)"
    r"[\w.\-]*[\"'\]]{0,2}[ \t]*(?::=|=>|={1,3}|[:(])"
)
# A line that can hold a keyword-assigned or high-entropy secret names one of these.
_TRIGGER = re.compile(r"key|pass|pwd|pw|secret|contrase|token|auth|credential|cookie|session"
                      r"|sig|bearer|hmac")


def _fold(text: str) -> str:
    """``text`` lower-cased, every character at the same position ("İ" stays as it is)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return _NON_ASCII.sub(_fold_chars, _ASCII.sub(lambda m: m.group().lower(), text))


def _fold_chars(m: re.Match[str]) -> str:
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in m.group())


_ASCII = re.compile(r"[\x00-\x7f]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


# What follows a keyword in an assignment: ``_hint": "x"``, `` = hunter2``.
_VALUE_AFTER = re.compile(
    r"\w*[\"'\]]{0,2}[ \t]*(?::=|=>|[:=!]=?=?|\(|\.assign\()[ \t]*@?[\"'`]?"
    r"(?P<value>[^\s\"'`,;]*)"
)


@functools.cache
def _scanner() -> _Scanner:
    return _Scanner()


def prebuild() -> None:
    """Build the scanner whole now (detect-secrets' detectors and every compiled pattern;
    a pure function of the code, nothing read from the environment or files), so that
    processes forked from this one (the command daemon's) redact without building it.
    Secret-named environment variables are still read at each redaction."""
    _scanner().build_all()


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _widen_to_marker(text: str, s: int, e: int) -> tuple[int, int]:
    """A span that cuts through a ``[REDACTED]`` marker covers all of it."""
    left = text.rfind("[", max(0, s - len(REDACTED)), s + 1)
    if left >= 0 and text.startswith(REDACTED, left) and left + len(REDACTED) > s:
        s = left
    right = text.find(REDACTED, max(0, e - len(REDACTED) + 1), e + len(REDACTED))
    if 0 <= right < e:
        e = max(e, right + len(REDACTED))
    return s, e


_WORD = re.compile(r"[^\s\"'`,;:=&<>(){}\[\]]+")


def _elsewhere(text: str, values: set[str]) -> list[tuple[int, int]]:
    """Every other place a found value appears: a secret found once is a secret wherever
    else it appears (``-p X ... --password=X``)."""
    values = {v for v in values if REDACTED not in v}
    found: list[tuple[int, int]] = []
    if len(values) <= 64:
        for value in values:
            start = text.find(value)
            while start >= 0:
                found.append((start, start + len(value)))
                start = text.find(value, start + len(value))
    else:  # many secrets: one pass over the words of the text
        found = [m.span() for m in _WORD.finditer(text) if m.group() in values]
    return found


def redact_text(text: str, *, extra_secrets: Iterable[str] = (),
                environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret it recognizes replaced by ``[REDACTED]``.

    Recognized: what detect-secrets' detectors find (cloud keys, tokens, private keys,
    basic-auth URLs, keyword assignments, high-entropy values of secret-ish names), in
    the text as written and JSON-unescaped; the values of secret-named keys and flags
    (``DB_PASSWORD=...``, ``"api_key": "..."``, ``--token ...``); ``Authorization``
    headers; and the values of secret-named environment variables of this process
    (``ANTHROPIC_API_KEY``'s value, wherever it appears). Nothing else changes.
    """
    if not text:
        return text
    env = os.environ if environ is None else environ
    for secret in (*_env_secrets(env), *extra_secrets):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    text = _PRIVATE_KEY.sub(REDACTED, text)
    redacted = _redact_once(text)
    if redacted == text:
        return text
    # A removed secret can make its neighbour readable as an assignment
    # ("AKIA...password=x" -> "[REDACTED]password=x"): the lines with a marker go again
    # until nothing changes (a redaction stays within its line).
    lines = redacted.split("\n")
    for _ in range(2):
        marked = [i for i, line in enumerate(lines) if REDACTED in line]
        before = "\n".join(lines[i] for i in marked)
        after = _redact_once(before)
        if after == before:
            break
        parts = after.split("\n")
        if len(parts) != len(marked):  # not expected; then the whole text goes again
            lines = _redact_once("\n".join(lines)).split("\n")
            continue
        for i, line in zip(marked, parts, strict=True):
            lines[i] = line
    return "\n".join(lines)


def _redact_once(text: str) -> str:
    scanner = _scanner()
    spans: list[tuple[int, int]] = []
    for view_text, view in _views(text):
        for s, e in scanner.spans(view_text, decoded=view is not None):
            spans.append(view.span(s, e) if view is not None else (s, e))
    if not spans:
        return text
    spans += _elsewhere(text, {text[s:e] for s, e in spans if e - s >= 8})
    pieces: list[str] = []
    last = 0
    for s, e in _merge(_widen_to_marker(text, s, e) for s, e in spans):
        if text[s:e] == REDACTED:
            continue
        pieces.append(text[last:s])
        pieces.append(REDACTED)
        last = e
    pieces.append(text[last:])
    return "".join(pieces)


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


__all__ = ["REDACTED", "contains_redaction", "is_secret_key", "prebuild", "redact_obj",
           "redact_text"]
