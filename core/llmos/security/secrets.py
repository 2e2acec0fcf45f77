"""What counts as a secret: environment variable names and file locations.

Shared by the shell policy (which refuses to read or expand them) and the
sandbox (which scrubs them from the environment of every sandboxed process).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: Variables always passed through to tool processes (unless they look secret).
SAFE_ENV_NAMES = frozenset({
    "PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "LC_COLLATE",
    "LC_NUMERIC", "LC_TIME", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "TMPDIR", "PWD",
    "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "PYTHONHASHSEED", "CI", "SOURCE_DATE_EPOCH",
})

_SECRET_NAME = re.compile(
    r"""(
        (^|_)KEYS?$ | _KEY_ | ^KEY_ | APIKEY | ACCESSKEY | TOKEN | SECRET | PASSW(OR)?D
        | PASSPHRASE | CREDENTIAL | _AUTH | ^AUTH | COOKIE | SESSION | PRIVATE | _PAT$ | ^PAT_
        | SIGNING | _DSN$ | _DATABASE_URL$ | WEBHOOK
        | ^(AWS|ANTHROPIC|CLAUDE|OPENAI|GITHUB|GH|GITLAB|AZURE|GOOGLE|GCP|GCLOUD|HF|HUGGINGFACE
            |SLACK|STRIPE|TWILIO|SENDGRID|NPM|PYPI|TWINE|DOCKER|HEROKU|DIGITALOCEAN|CLOUDFLARE
            |DATABASE|POSTGRES|PG|MYSQL|REDIS|MONGO|VAULT|SSH|GPG|KUBE|SENTRY|DATADOG|DD
            |CODECOV|COHERE|MISTRAL|GROQ|REPLICATE|PINECONE|SUPABASE|FIREBASE|OKTA)_
        | ^(DATABASE_URL|SSH_AUTH_SOCK|KUBECONFIG|NETRC|GIT_ASKPASS|SSH_ASKPASS)$
    )""",
    re.VERBOSE,
)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable of this name probably holds a credential."""
    return bool(_SECRET_NAME.search(name.upper()))


def scrub_env(env: Mapping[str, str], *, keep: frozenset[str] = SAFE_ENV_NAMES,
              passthrough: bool = False) -> dict[str, str]:
    """A copy of ``env`` without secret-looking variables.

    Only names in ``keep`` survive unless ``passthrough`` is set, in which case
    every variable that does not look secret survives. A name in ``keep`` that
    looks secret is still dropped.
    """
    out: dict[str, str] = {}
    for name, value in env.items():
        if is_secret_name(name) or name.startswith("BASH_FUNC_"):
            continue
        if passthrough or name in keep:
            out[name] = value
    return out


_SECRET_PATHS = tuple(re.compile(p) for p in (
    r"(^|/|~)\.ssh(/|$)",
    r"/id_(rsa|dsa|ecdsa|ed25519|ecdsa_sk|ed25519_sk)\b",
    r"(^|/|~)\.aws(/|$)",
    r"(^|/|~)\.gnupg(/|$)",
    r"(^|/|~)\.kube/config",
    r"(^|/|~)\.docker/config\.json",
    r"(^|/|~)\.config/(gh|gcloud|hub)(/|$)",
    r"(^|/|~)\.azure(/|$)",
    r"[/~]\.(netrc|git-credentials|pgpass|npmrc|pypirc|my\.cnf)$",
    r"[/~]\.(bash|zsh|python|psql|mysql|node_repl)_history$",
    r"\.credentials\.json$",
    r"^/etc/(shadow|gshadow|sudoers|ssh/ssh_host_)",
    r"^/proc(/|$)",
    r"^/dev/(mem|kmem|port|sd[a-z]|hd[a-z]|nvme|vd[a-z]|xvd[a-z]|disk/)",
    r"^/run/secrets(/|$)",
    r"^/var/run/(secrets|docker\.sock)",
))


def is_secret_path(text: str) -> bool:
    """Whether a path-like string names a credential store, process secrets or a raw disk."""
    return any(pattern.search(text) for pattern in _SECRET_PATHS)
