"""What a command imports, asserted on ``sys.modules`` in a fresh process: `--version`,
`plugins` and a FOLLOWER replay load neither the Claude Agent SDK nor the packs' heavy
dependencies (issue 12). No timing here: the figures live in bench/startup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Modules a replay, `--version` or `plugins` must not import (the SDK and its MCP and
#: HTTP stack, the web pack's HTTP client and extractors, the quantum and robot
#: simulators, the dashboard, data frames, durable runs' DBOS with SQLAlchemy, the
#: PostgreSQL driver, the metering proxy's server).
HEAVY = ("claude_agent_sdk", "mcp", "httpx", "anyio", "trafilatura", "lxml", "qiskit",
         "qiskit_aer", "pybullet", "numpy", "pandas", "starlette", "jinja2", "matplotlib",
         "dbos", "sqlalchemy", "psycopg", "psycopg_pool", "uvicorn", "requests", "urllib3")

PROBE = """
import atexit, json, sys
atexit.register(lambda: print("MODULES=" + json.dumps(sorted(sys.modules)), file=sys.stderr))
from llmos.cli import main
main(sys.argv[1:])
"""


def imported_by(args: list[str], env: dict[str, str], cwd: Path) -> tuple[set[str], str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES="))), proc.stdout


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


@pytest.fixture
def env(llmos_env: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def test_version_imports_almost_nothing(env, tmp_path: Path) -> None:
    modules, out = imported_by(["--version"], env, tmp_path)
    assert "0." in out
    assert heavy_in(modules) == []
    # --version does not even build the kernel or load the packs
    assert not any(m.startswith(("llmos_", "pydantic", "sqlite_utils")) for m in modules)


def test_plugins_loads_every_pack_but_not_their_heavy_modules(env, tmp_path: Path) -> None:
    from importlib.metadata import entry_points

    if not any(ep.dist is not None and ep.dist.name != "llmos"
               for ep in entry_points(group="llmos")):
        pytest.skip("no pack is installed here (the kernel's tox env has none): "
                    "pip install -e packages/llmos-web to check them")
    modules, out = imported_by(["--workspace", str(tmp_path / "ws"), "plugins", "--json"],
                               env, tmp_path)
    loaded = {p["name"] for p in json.loads(out)}
    packs = {m.split(".")[0] for m in modules if m.startswith("llmos_")}
    assert packs, "no pack was loaded: the test would prove nothing"
    assert {"web"} <= loaded or "llmos_web" not in packs
    assert heavy_in(modules) == []


def test_a_follower_replay_imports_no_sdk_and_no_heavy_pack_module(env, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    setup = subprocess.run([sys.executable, str(ROOT / "bench" / "startup" /
                                                 "replay_workspace.py"), str(workspace)],
                           env=env, capture_output=True, text=True, timeout=300, check=True)
    goal = setup.stdout.strip()
    modules, out = imported_by(["--workspace", str(workspace), "run", goal, "--json"], env,
                               tmp_path)
    ran = json.loads(out)
    assert ran["mode"] == "FOLLOWER" and ran["success"] is True, ran
    assert (workspace / "primes.py").read_text() == "print([2, 3, 5, 7])\n"
    assert heavy_in(modules) == []
    assert "llmos.cortex.learner" not in modules
    # with --json nothing is drawn, and no agent file is read: neither rich nor PyYAML
    assert not {"rich", "yaml"} & {m.split(".")[0] for m in modules}


def test_sqlite_utils_is_imported_without_data_frames_which_still_import_later(env, tmp_path):
    code = ("import sys, llmos.cli, sqlite_utils, sqlite_utils.db as db; "
            "print(db.pd is None, db.np is None, 'pandas' in sys.modules, 'numpy' in sys.modules)"
            "; import importlib.util as u; "
            "print(u.find_spec('pandas') is None or __import__('pandas').__name__ == 'pandas')")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.split() == ["True", "True", "False", "False", "True"], proc.stdout


def test_the_secret_scanner_loads_only_the_detectors_and_filters_it_uses(env, tmp_path):
    """detect-secrets' package code (its whole scanning machinery) runs on first use of
    one of its names, not for the redaction's plugins; it still works when used."""
    code = """
import sys, llmos.cli
from llmos.memory.redaction import redact_text
print(redact_text("aws AKIAEDT2SYWB3WKH5DNS and password=hunter2xyz"))
print(sorted(m for m in ("multiprocessing", "detect_secrets.core.secrets_collection",
                         "detect_secrets.filters.gibberish") if m in sys.modules))
import detect_secrets, detect_secrets.filters
print(detect_secrets.SecretsCollection.__name__, detect_secrets.filters.gibberish.__name__)
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.splitlines() == [
        "aws [REDACTED] and password=[REDACTED]", "[]",
        "SecretsCollection detect_secrets.filters.gibberish"], proc.stdout


def test_the_secret_scanner_loads_requests_only_when_something_uses_it(env, tmp_path):
    code = """
import sys, llmos.cli
from llmos.memory.redaction import redact_text
print(redact_text("TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789 ok"))
print("requests" in sys.modules, "urllib3" in sys.modules)
import detect_secrets.plugins.base as base
import requests  # anyone else gets the real module, and detect-secrets' use works
print(base.requests.exceptions.RequestException is requests.exceptions.RequestException)
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.splitlines() == ["TOKEN=[REDACTED] ok", "False False", "True"], proc.stdout


def test_sqlite_utils_plugins_still_load_when_one_is_installed(env, tmp_path: Path) -> None:
    """The command line skips sqlite-utils' own entry-point scan only when the shared scan
    holds no sqlite_utils plugin: an installed one is loaded and used as before."""
    site = tmp_path / "site"
    info = site / "fake_sqlite_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-sqlite-plugin\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text("[sqlite_utils]\nfake = fake_sqlite_plugin\n")
    (site / "fake_sqlite_plugin.py").write_text(
        "import sqlite_utils\n\n@sqlite_utils.hookimpl\ndef prepare_connection(conn):\n"
        "    conn.create_function('fake_hello', 0, lambda: 'hi from the plugin')\n")
    code = ("import llmos.cli, sqlite_utils\n"
            "db = sqlite_utils.Database(memory=True)\n"
            "print(db.execute('select fake_hello()').fetchone()[0])\n")
    with_plugin = {**env, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [env.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-c", code], env=with_plugin, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.stdout.strip() == "hi from the plugin", proc.stderr[-2000:]
    without = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=300, check=False)
    assert without.returncode != 0 and "fake_hello" in without.stderr
