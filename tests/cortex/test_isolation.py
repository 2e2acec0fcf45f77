"""What the model's code can see in LEARNER: no credentials, no user secrets, no home
secrets; and Claude Code's transcripts stay in the workspace's ``.llmos/`` under
``cortex.transcripts``, never in the user's ``~/.claude``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from llmos.cortex.learner import claude_sandbox_available
from llmos.testing.model_server import DUMMY_API_KEY

pytestmark = pytest.mark.cli

FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAfakefakefake\n"
USER_SECRETS = {"DB_PASSWORD": "hunter2-db-pass-771", "MY_SERVICE_TOKEN": "tok-3f9a-22c1-9911"}

SPY = """\
import json, os
found = {"env": dict(os.environ), "files": {}}
for path in ("~/.ssh/id_rsa", "{real_home}/.ssh/id_rsa", "{real_home}/.claude.json"):
    full = os.path.expanduser(path)
    try:
        with open(full) as f:
            found["files"][path] = f.read()
    except OSError as exc:
        found["files"][path] = "unreadable: " + type(exc).__name__
print(json.dumps(found))
"""


@pytest.fixture
def funded(llmos_cli):
    assert llmos_cli("budget", "set", "5").exit_code == 0
    return llmos_cli


@pytest.fixture
def real_home(llmos_model_server, monkeypatch):
    """The user's home as llmos sees it: a private key, secrets in the environment."""
    home = Path(llmos_model_server.config_dir)
    (home / ".ssh").mkdir(exist_ok=True)
    (home / ".ssh" / "id_rsa").write_text(FAKE_KEY)
    (home / ".claude.json").write_text('{"oauthAccount": "user@example.com"}')
    for name, value in USER_SECRETS.items():
        monkeypatch.setenv(name, value)
    return home


def spy_run(cli, server, workspace, real_home, *args):
    spy = workspace / "spy.py"
    server.script.tool_use(
        "Write", {"file_path": str(spy), "content": SPY.replace("{real_home}", str(real_home))}
    ).tool_use("Bash", {"command": "python3 spy.py"}).text("looked around")
    result = cli(*args, "run", "--json", "Look around")
    assert result.exit_code == 0, result.output
    seen = server.tool_result("toolu_001_0")
    assert not seen.is_error, seen.text
    return json.loads(result.stdout), json.loads(seen.text)


def test_the_models_code_sees_no_credentials_and_no_home_secrets(
    funded, llmos_model_server, llmos_workspace, real_home
):
    _, found = spy_run(funded, llmos_model_server, llmos_workspace, real_home)
    env = found["env"]
    text = json.dumps(found)
    assert DUMMY_API_KEY not in text  # the real credential never leaves llmos
    for value in USER_SECRETS.values():
        assert value not in text
    assert not set(env) & set(USER_SECRETS)
    if shutil.which("bwrap"):  # Claude Code scrubs even the per-run token
        assert "ANTHROPIC_API_KEY" not in env
    assert env.get("ANTHROPIC_API_KEY", "llmos-run-").startswith("llmos-run-")
    assert "ANTHROPIC_AUTH_TOKEN" not in env or not env["ANTHROPIC_AUTH_TOKEN"]
    # ~ is a per-run home under .llmos/, not the user's
    assert env["HOME"] != str(real_home)
    assert Path(env["HOME"]).is_relative_to(llmos_workspace / ".llmos")
    assert "PRIVATE KEY" not in text and "oauthAccount" not in text
    assert found["files"]["~/.ssh/id_rsa"].startswith("unreadable")
    if claude_sandbox_available():  # Claude Code's sandbox denies the user's home secrets
        assert found["files"][f"{real_home}/.ssh/id_rsa"].startswith("unreadable")


def test_transcripts_never_land_in_the_users_home_and_are_removed(
    funded, llmos_model_server, llmos_workspace, real_home
):
    spy_run(funded, llmos_model_server, llmos_workspace, real_home)
    assert not (real_home / ".claude" / "projects").exists()
    assert not list((llmos_workspace / ".llmos" / "cortex").iterdir())


def test_transcripts_can_be_kept_in_the_workspace(
    funded, llmos_model_server, llmos_workspace, real_home
):
    data, _ = spy_run(funded, llmos_model_server, llmos_workspace, real_home,
                      "--set", "cortex.transcripts=keep")
    kept = list((llmos_workspace / ".llmos" / "cortex" / data["run_id"]).rglob("*.jsonl"))
    assert kept and "Look around" in "".join(p.read_text() for p in kept)
    assert not (real_home / ".claude" / "projects").exists()


def test_redacted_transcripts_keep_no_secret(
    funded, llmos_model_server, llmos_workspace, real_home
):
    secret_file = llmos_workspace / "settings.env"
    secret_file.write_text("DB_PASSWORD=hunter2-db-pass-771\n")
    llmos_model_server.script.tool_use("Bash", {"command": "cat settings.env"}).text("read it")
    result = funded("--set", "cortex.transcripts=redact", "run", "--json", "Read settings.env")
    assert result.exit_code == 0, result.output
    assert "hunter2" in llmos_model_server.tool_result("toolu_000_0").text  # it was read
    run_id = json.loads(result.stdout)["run_id"]
    kept = list((llmos_workspace / ".llmos" / "cortex" / run_id).rglob("*.jsonl"))
    text = "".join(p.read_text() for p in kept)
    assert kept and "settings.env" in text
    assert "hunter2-db-pass-771" not in text


def test_the_environment_llmos_computes_for_the_cli(tmp_path):
    from llmos.cortex.session import Session

    session = Session(tmp_path)
    env = session.environment(
        base_url="http://127.0.0.1:1", token="llmos-run-x", timeout_s=60,
        scrub_subprocesses=True,
        environ={"PATH": "/bin", "ANTHROPIC_API_KEY": "sk-real", "AWS_SECRET_ACCESS_KEY": "a",
                 "CLAUDE_CODE_GATEWAY_HINT_HEADERS": "1", "CLAUDE_CODE_OAUTH_TOKEN": "o",
                 "GITHUB_TOKEN": "g", "EDITOR": "vi", "HOME": "/home/user"},
    )
    assert env["ANTHROPIC_API_KEY"] == "llmos-run-x" and env["PATH"] == "/bin"
    assert env["CLAUDE_CODE_GATEWAY_HINT_HEADERS"] == "1"  # a behaviour flag passes
    for name in ("AWS_SECRET_ACCESS_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "GITHUB_TOKEN", "EDITOR"):
        assert name not in env
    assert env["HOME"] == str(tmp_path / "home") and env["CLAUDE_CODE_MAX_RETRIES"] == "0"
    assert env["CLAUDE_CODE_SUBPROCESS_ENV_SCRUB"] == "1"
    assert "sk-real" not in json.dumps(session.sdk_env(env))
    assert os.environ.get("LLMOS_CLI_ENV") is None
    # without bubblewrap Claude Code refuses to scrub, so it is not asked to
    unscrubbed = session.environment(base_url="http://127.0.0.1:1", token="t", timeout_s=1,
                                     environ={}, scrub_subprocesses=False)
    assert unscrubbed["CLAUDE_CODE_SUBPROCESS_ENV_SCRUB"] == "0"


def test_only_sessions_left_by_dead_runs_are_swept(tmp_path, monkeypatch):
    from llmos.cortex import session as session_module
    from llmos.cortex.session import Session

    monkeypatch.setattr(session_module, "_bundled_cli", lambda: "/bin/true")
    live = Session.create(tmp_path, "live")
    live.pidfile.write_text(str(os.getpid()))
    dead = Session.create(tmp_path, "dead")
    dead.pidfile.write_text("999999999")
    fresh = Session.create(tmp_path, "fresh")
    old = 1_000_000_000
    for session in (live, dead):
        os.utime(session.root, (old, old))
    assert Session.sweep(tmp_path, "keep", grace_s=60) == 0
    assert Session.sweep(tmp_path, "remove", grace_s=60) == 1
    assert live.root.is_dir() and fresh.root.is_dir() and not dead.root.exists()
