"""Selecting the postgres backend: where the DSN comes from, and clear errors (exit 2, no
traceback, no password) when it is missing or the server cannot be reached."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmos.cli import cli
from llmos.memory.postgres import mask_dsn


def llmos(workspace: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["--workspace", str(workspace), *args], env=env)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_a_missing_dsn_names_the_key_and_the_variable(llmos_workspace: Path) -> None:
    result = llmos(llmos_workspace, "--set", "memory.backend=postgres", "traces", "list")
    assert result.exit_code == 2, result.output
    assert "memory.dsn" in result.output and "LLMOS_DATABASE_URL" in result.output
    assert "pip install" not in result.output
    assert "Traceback" not in result.output


def test_a_server_that_is_down_is_a_clear_error_without_the_password(
        llmos_workspace: Path) -> None:
    dsn = f"postgresql://llmos:hunter2secret@127.0.0.1:{_closed_port()}/llmos"
    result = llmos(llmos_workspace, "--set", "memory.backend=postgres", "--set",
                   f"memory.dsn={dsn}", "traces", "list")
    assert result.exit_code == 2, result.output
    assert "cannot use the PostgreSQL database" in result.output
    assert "start the server" in result.output
    assert "--set memory.dsn" in result.output  # where the DSN came from
    assert "hunter2secret" not in result.output
    assert "Traceback" not in result.output


def test_a_malformed_dsn_is_a_clear_error(llmos_workspace: Path) -> None:
    result = llmos(llmos_workspace, "--set", "memory.backend=postgres", "traces", "list",
                   env={"LLMOS_DATABASE_URL": "host=x password=topsecret9 port=notaport"})
    assert result.exit_code == 2, result.output
    assert "LLMOS_DATABASE_URL" in result.output
    assert "topsecret9" not in result.output


def test_the_dsn_comes_from_config_before_the_environment(
        llmos_workspace: Path, llmos_postgres) -> None:
    good = llmos_postgres.new_database()
    bad = f"postgresql://nobody@127.0.0.1:{_closed_port()}/none"
    (llmos_workspace / "llmos.toml").write_text(
        f'[memory]\nbackend = "postgres"\ndsn = "{good}"\n')
    result = llmos(llmos_workspace, "traces", "list", "--json",
                   env={"LLMOS_DATABASE_URL": bad})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == []
    # with no dsn in the config, LLMOS_DATABASE_URL is used
    (llmos_workspace / "llmos.toml").write_text('[memory]\nbackend = "postgres"\n')
    result = llmos(llmos_workspace, "traces", "list", env={"LLMOS_DATABASE_URL": bad})
    assert result.exit_code == 2 and "LLMOS_DATABASE_URL" in result.output
    result = llmos(llmos_workspace, "traces", "list", "--json",
                   env={"LLMOS_DATABASE_URL": good})
    assert result.exit_code == 0, result.output


def test_config_show_masks_the_password(llmos_workspace: Path) -> None:
    dsn = "postgresql://llmos:hunter2secret@db.example:5432/llmos"
    for args in ((), ("--json",)):
        result = llmos(llmos_workspace, "--set", f"memory.dsn={dsn}", "config", "show", *args)
        assert result.exit_code == 0, result.output
        assert "hunter2secret" not in result.output
        assert "postgresql://llmos:***@db.example:5432/llmos" in result.output


@pytest.mark.parametrize(("dsn", "shown"), [
    ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("host=h password=pw user=u", "host=h password=*** user=u"),
    ("postgresql://h/db?password=pw&sslmode=require",
     "postgresql://h/db?password=***&sslmode=require"),
])
def test_mask_dsn(dsn: str, shown: str) -> None:
    assert mask_dsn(dsn) == shown


def test_the_database_url_is_kept_from_the_models_commands() -> None:
    from llmos.security.secrets import is_secret_name, scrub_env

    assert is_secret_name("LLMOS_DATABASE_URL") and is_secret_name("LLMOS_MEMORY__DSN")
    assert is_secret_name("PGPASSWORD")
    env = {"LLMOS_DATABASE_URL": "postgresql://u:pw@h/db", "PATH": "/bin"}
    assert scrub_env(env, passthrough=True) == {"PATH": "/bin"}
