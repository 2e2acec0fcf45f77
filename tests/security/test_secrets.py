"""Which variables and paths count as secrets, and how environments are scrubbed."""

from __future__ import annotations

import pytest

from llmos.security.secrets import is_secret_name, is_secret_path, scrub_env


@pytest.mark.parametrize("name", [
    "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "GH_TOKEN", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "DB_PASSWORD", "MYSQL_PWD", "API_KEY",
    "STRIPE_SECRET", "SLACK_WEBHOOK_URL", "NPM_TOKEN", "DATABASE_URL", "SSH_AUTH_SOCK",
    "PRIVATE_KEY", "SENTRY_DSN", "CLAUDE_CODE_OAUTH_TOKEN", "HF_TOKEN", "KUBECONFIG",
])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["PATH", "HOME", "LANG", "TERM", "USER", "MONKEY", "KEYBOARD",
                                  "PYTHONPATH", "EDITOR", "SHELL"])
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_scrub_keeps_only_safe_variables() -> None:
    env = {"PATH": "/usr/bin", "HOME": "/home/u", "LANG": "C", "ANTHROPIC_API_KEY": "sk",
           "FOO": "bar", "LD_PRELOAD": "x.so", "BASH_FUNC_f%%": "() { id; }"}
    assert scrub_env(env) == {"PATH": "/usr/bin", "HOME": "/home/u", "LANG": "C"}
    passthrough = scrub_env(env, passthrough=True)
    assert "FOO" in passthrough and "ANTHROPIC_API_KEY" not in passthrough
    assert "BASH_FUNC_f%%" not in passthrough


@pytest.mark.parametrize("path", ["~/.ssh/id_rsa", "/root/.ssh/authorized_keys",
                                  "$HOME/.aws/credentials", "/home/u/.netrc", "~/.gnupg",
                                  "/proc/self/environ", "/proc/1/cmdline", "/etc/shadow",
                                  "/dev/sda", "~/.docker/config.json", "/run/secrets/db",
                                  "deploy/keys/id_ed25519"])
def test_secret_paths(path: str) -> None:
    assert is_secret_path(path)


@pytest.mark.parametrize("path", ["README.md", "src/ssh.py", "id_rsa_notes.md", "/etc/passwd",
                                  "docs/.sshrc.md", "/procedures"])
def test_ordinary_paths(path: str) -> None:
    assert not is_secret_path(path)
