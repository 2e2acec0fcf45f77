"""Where a LEARNER run's Claude Code lives, and the environment it gets.

Each run gets ``.llmos/cortex/<run id>/`` in the workspace: ``home/`` is the CLI's
``HOME`` (so ``~/.ssh`` and the user's other home secrets are not there to read) and
``home/.claude/`` its ``CLAUDE_CONFIG_DIR`` (transcripts, session state). Nothing is
written to the user's ``~/.claude``. After the run the directory is removed, or its
transcripts are redacted and kept, as ``cortex.transcripts`` says.

The CLI starts under the reaper (``reaper.py``) with exactly the environment computed
here: the user's variables only from a short list of harmless names, never a
credential (the CLI gets the metering proxy's address and a per-run token instead),
and Claude Code asked to scrub credentials from its own subprocesses too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from llmos.security.secrets import SAFE_ENV_NAMES, scrub_env

REAPER = Path(__file__).with_name("reaper.py")
# Claude Code behaviour flags a user may set and that hold no secret.
CLI_FLAGS_PREFIXES = ("CLAUDE_CODE_", "DISABLE_", "MAX_THINKING_TOKENS", "MAX_MCP_OUTPUT")
_CREDENTIAL_WORDS = re.compile(r"TOKEN(?!S$)|KEY|SECRET|PASS|AUTH|CRED|COOKIE|SESSION|CERT",
                               re.IGNORECASE)


@dataclass
class Session:
    """The per-run directory of one Claude Code session."""

    root: Path

    @classmethod
    def sweep(cls, state_dir: Path, transcripts: str, *, grace_s: float = 60.0) -> int:
        """Finish the sessions of runs whose llmos died (kill -9: nothing ran after it):
        a session whose reaper is gone and that has not changed for ``grace_s``."""
        swept = 0
        parent = state_dir / "cortex"
        if transcripts == "keep" or not parent.is_dir():
            return 0
        for root in parent.iterdir():
            session = cls(root)
            try:
                idle = time.time() - root.stat().st_mtime
            except OSError:
                continue
            if not root.is_dir() or idle < grace_s or not session.cli_path.exists():
                continue  # starting, or already finished (redacted and kept)
            pid = session.reaper_pid()
            if pid is not None and _alive(pid):
                continue
            session.finish(transcripts)
            swept += 1
        return swept

    @classmethod
    def create(cls, state_dir: Path, run_id: str) -> Session:
        root = state_dir / "cortex" / run_id
        (root / "home" / ".claude").mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        session = cls(root)
        session.cli_path.write_text(
            "#!/bin/sh\n"
            f"exec {shlex.quote(sys.executable)} -I -S {shlex.quote(str(REAPER))} "
            f"{shlex.quote(_bundled_cli())} \"$@\"\n",
            encoding="utf-8",
        )
        session.cli_path.chmod(0o700)
        return session

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def config_dir(self) -> Path:
        return self.home / ".claude"

    @property
    def cli_path(self) -> Path:
        return self.root / "claude"

    @property
    def pidfile(self) -> Path:
        return self.root / "reaper.pid"

    def environment(self, *, base_url: str, token: str, timeout_s: float,
                    environ: Mapping[str, str] | None = None,
                    scrub_subprocesses: bool | None = None) -> dict[str, str]:
        """What the CLI runs with (given to the reaper as ``LLMOS_CLI_ENV``).

        ``scrub_subprocesses`` asks Claude Code to keep even the per-run token out of its
        subprocesses; it needs bubblewrap (default: when ``bwrap`` is on PATH)."""
        if scrub_subprocesses is None:
            scrub_subprocesses = shutil.which("bwrap") is not None
        environ = os.environ if environ is None else environ
        env = scrub_env(environ, keep=SAFE_ENV_NAMES)
        for name, value in environ.items():
            if (name.startswith(CLI_FLAGS_PREFIXES) and name not in env
                    and not _CREDENTIAL_WORDS.search(name)):
                env[name] = value
        env.update({
            "HOME": str(self.home),
            "CLAUDE_CONFIG_DIR": str(self.config_dir),
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": token,
            "CLAUDE_CODE_USE_BEDROCK": "",
            "CLAUDE_CODE_USE_VERTEX": "",
            "CLAUDE_CODE_USE_FOUNDRY": "",
            # llmos retries (and reports each retry); the CLI must not retry again
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
            "API_TIMEOUT_MS": str(int(timeout_s * 1000)),
            # no credential in the environment of the model's commands either
            "CLAUDE_CODE_SUBPROCESS_ENV_SCRUB": "1" if scrub_subprocesses else "0",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            # offer plugin tools directly instead of behind the CLI's ToolSearch tool
            "ENABLE_TOOL_SEARCH": "false",
            # an agent's process: its llmos commands never use the command daemon
            "LLMOS_AGENT_PROCESS": "1",
        })
        return env

    def sdk_env(self, cli_env: Mapping[str, str]) -> dict[str, str]:
        """``ClaudeAgentOptions.env``: the SDK adds these to its own environment, which
        the reaper then replaces with ``cli_env``."""
        return {
            "LLMOS_CLI_ENV": json.dumps(dict(cli_env)),
            "LLMOS_REAPER_PIDFILE": str(self.pidfile),
        }

    def reaper_pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text(encoding="ascii"))
        except (OSError, ValueError):
            return None

    def kill(self, grace_s: float = 0.5) -> None:
        """Stop the CLI and everything it started, now (the reaper does the killing)."""
        pid = self.reaper_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def finish(self, transcripts: str, secrets: tuple[str, ...] = ()) -> None:
        """Remove the session, or redact its transcripts and keep them."""
        if transcripts == "keep":
            return
        if transcripts == "remove":
            shutil.rmtree(self.root, ignore_errors=True)
            return
        from llmos.memory.redaction import redact_text

        for path in self.config_dir.rglob("*.jsonl"):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                text = path.read_text(encoding="utf-8")
                path.write_text(redact_text(text, extra_secrets=secrets), encoding="utf-8")
        for leftover in (self.cli_path, self.pidfile):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _bundled_cli() -> str:
    """The CLI the SDK would start (its bundled binary, else ``claude`` on PATH)."""
    import claude_agent_sdk

    bundled = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    if bundled.is_file():
        return str(bundled)
    found = shutil.which("claude")
    if found:
        return found
    from llmos.errors import OperationFailed

    raise OperationFailed("Claude Code's CLI was not found: reinstall claude-agent-sdk "
                          "(it bundles the CLI) or put `claude` on PATH")
