"""End-to-end sandbox tests: assert on the real file system and on a real socket."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmos.security import sandbox
from llmos.security.sandbox import SandboxStatus, SandboxUnavailable, run_sandboxed

STATUS = sandbox.available()


def _mechanisms() -> list[pytest.param]:
    landlock_ok = STATUS.landlock_reason.startswith(f"Landlock ABI {STATUS.landlock_abi} works")
    return [
        pytest.param("bwrap", marks=pytest.mark.skipif(
            STATUS.mechanism != "bwrap", reason=f"bubblewrap cannot run here: "
                                                f"{STATUS.bwrap_reason}")),
        pytest.param("landlock", marks=pytest.mark.skipif(
            not landlock_ok, reason=f"Landlock cannot run here: {STATUS.landlock_reason}")),
    ]


@pytest.fixture(params=_mechanisms())
def mechanism(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (tmp_path / "outside").mkdir()
    return workspace


class _Listener:
    """A TCP server on 127.0.0.1 that records whether anyone connected."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    self.received += conn.recv(1024)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[_Listener]:
    server = _Listener()
    yield server
    server.close()


def test_status_reports_every_mechanism() -> None:
    described = STATUS.as_dict()
    assert described["mechanism"] in ("bwrap", "landlock", "none")
    assert described["bwrap"]["reason"]  # type: ignore[index]
    assert described["landlock"]["reason"]  # type: ignore[index]
    if STATUS.mechanism == "none":
        pytest.skip(f"no sandbox can run here: {STATUS.reason}")


def test_can_write_inside_the_workspace(ws: Path, mechanism: str) -> None:
    # Landlock can only grant: the workspace root holds llmos.toml and .llmos/, so new
    # entries are made in its subdirectories (bwrap binds the protected entries instead).
    (ws / "work").mkdir()
    base = ws if mechanism == "bwrap" else ws / "work"
    result = run_sandboxed("echo hello > inside.txt && mkdir -p d && echo x > d/y",
                           workspace=ws, cwd=base, mechanism=mechanism,  # type: ignore[arg-type]
                           timeout=30)
    assert result.returncode == 0, result.stderr
    assert (base / "inside.txt").read_text() == "hello\n"
    assert (base / "d" / "y").exists()


def test_cannot_write_outside_the_workspace(ws: Path, mechanism: str) -> None:
    outside = ws.parent / "outside" / "pwned.txt"
    host_tmp = Path("/tmp") / f"llmos-sandbox-{uuid.uuid4().hex}"
    parent_file = ws.parent / "pwned-parent.txt"
    script = (f"echo pwned > {outside}; echo pwned > {host_tmp}; echo pwned > ../pwned-parent.txt;"
              f" touch /usr/llmos-pwned; ln -s /etc {ws}/../evil-link; true")
    result = run_sandboxed(script, workspace=ws, mechanism=mechanism,  # type: ignore[arg-type]
                           timeout=30)
    assert result.returncode == 0
    assert not outside.exists()
    assert not host_tmp.exists()
    assert not parent_file.exists()
    assert not Path("/usr/llmos-pwned").exists()
    assert not (ws.parent / "evil-link").exists()


def test_cannot_open_a_connection(ws: Path, mechanism: str, listener: _Listener) -> None:
    probe = f"echo leaked > /dev/tcp/127.0.0.1/{listener.port}"
    blocked = run_sandboxed(probe, workspace=ws, mechanism=mechanism,  # type: ignore[arg-type]
                            timeout=30)
    assert blocked.returncode != 0
    assert listener.connections == 0
    assert b"leaked" not in listener.received


def test_network_can_be_allowed_explicitly(ws: Path, mechanism: str,
                                           listener: _Listener) -> None:
    probe = f"echo hello > /dev/tcp/127.0.0.1/{listener.port}"
    allowed = run_sandboxed(probe, workspace=ws, mechanism=mechanism,  # type: ignore[arg-type]
                            allow_network=True, timeout=30)
    assert allowed.returncode == 0, allowed.stderr
    for _ in range(50):
        if listener.connections:
            break
        threading.Event().wait(0.05)
    assert listener.connections == 1


def test_secrets_are_scrubbed_from_the_environment(ws: Path, mechanism: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(ws),
           "ANTHROPIC_API_KEY": "sk-ant-secret", "GITHUB_TOKEN": "ghp_secret",
           "AWS_SECRET_ACCESS_KEY": "aws-secret", "DB_PASSWORD": "hunter2",
           "OPENAI_API_KEY": "sk-secret", "MY_SERVICE_TOKEN": "tok-secret",
           "BASH_FUNC_x%%": "() { id; }"}
    result = run_sandboxed("env", workspace=ws, env=env, mechanism=mechanism,  # type: ignore[arg-type]
                           timeout=30)
    assert result.returncode == 0, result.stderr
    for secret in ("sk-ant-secret", "ghp_secret", "aws-secret", "hunter2", "sk-secret",
                   "tok-secret", "BASH_FUNC"):
        assert secret not in result.stdout
    assert "PATH=/usr/bin:/bin" in result.stdout
    assert "LANG=C.UTF-8" in result.stdout


def test_home_directory_credentials_are_invisible(tmp_path: Path, ws: Path,
                                                   mechanism: str) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("PRIVATE KEY\n")
    result = run_sandboxed("cat $HOME/.ssh/id_rsa", workspace=ws, mechanism=mechanism,  # type: ignore[arg-type]
                           env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, timeout=30)
    assert result.returncode != 0
    assert "PRIVATE KEY" not in result.stdout


def test_other_processes_secrets_are_invisible(ws: Path, mechanism: str) -> None:
    holder = subprocess.Popen(["sleep", "30"], env={"PATH": "/usr/bin:/bin",
                                                    "HOLDER_SECRET": "s3cr3t-value"})
    try:
        result = run_sandboxed(f"cat /proc/{holder.pid}/environ",
                               workspace=ws, mechanism=mechanism, timeout=30)  # type: ignore[arg-type]
    finally:
        holder.kill()
        holder.wait()
    assert "s3cr3t-value" not in result.stdout
    assert result.returncode != 0, "another process's /proc entry was readable"


def test_timeout_kills_the_command(ws: Path, mechanism: str) -> None:
    result = run_sandboxed("sleep 30", workspace=ws, mechanism=mechanism,  # type: ignore[arg-type]
                           timeout=1)
    assert result.timed_out
    assert result.returncode != 0


def test_argv_form_and_stdin(ws: Path, mechanism: str) -> None:
    result = run_sandboxed(["/bin/cat"], workspace=ws, stdin="piped\n",
                           mechanism=mechanism, timeout=30)  # type: ignore[arg-type]
    assert result.stdout == "piped\n"


def test_workspace_code_runs_with_a_read_only_toolchain(ws: Path, mechanism: str) -> None:
    (ws / "out").mkdir()  # Landlock: new files go in subdirectories (see above)
    (ws / "prog.py").write_text("import sys\nprint('ran', sys.version_info[0])\n"
                                "open('out/made.txt', 'w').write('x')\n")
    toolchain = [Path(sys.prefix), Path(sys.base_prefix)]
    result = run_sandboxed([sys.executable, "prog.py"], workspace=ws, ro_paths=toolchain,
                           mechanism=mechanism, timeout=60)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ran 3\n"
    assert (ws / "out" / "made.txt").exists()


def test_claude_code_settings_mirror_the_policy() -> None:
    settings = sandbox.claude_code_sandbox_settings(allowed_hosts=["pypi.org"],
                                                    denied_hosts=["evil.example"])
    assert settings["enabled"] is True
    assert settings["allowUnsandboxedCommands"] is False
    assert settings["autoAllowBashIfSandboxed"] is False
    assert settings["network"] == {"allowedDomains": ["pypi.org"],
                                   "deniedDomains": ["evil.example"],
                                   "allowLocalBinding": False, "allowAllUnixSockets": False,
                                   "allowUnixSockets": []}


def test_no_sandbox_means_no_run(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nothing = SandboxStatus("none", "no sandbox: test", None, "bwrap missing", 0,
                            "Landlock missing")
    monkeypatch.setattr(sandbox, "_status", lambda: nothing)
    with pytest.raises(SandboxUnavailable) as refused:
        run_sandboxed("touch ran.txt", workspace=ws)
    assert refused.value.status.available is False
    assert not (ws / "ran.txt").exists()
