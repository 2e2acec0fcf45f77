"""Run a Qiskit program in a separate, sandboxed process (never ``exec`` in this one).

Each run gets a fresh directory, which is the only writable place the program sees. The
kernel's sandbox (bubblewrap) gives it no network, a read-only view of the system and the
Python environment, and an environment scrubbed of secrets; ``child/launch.py`` then sets
CPU, memory and file-size limits (the file-size limit caps stdout and stderr too, which are
written to files) and execs ``child/harness.py``, which holds the circuits the program
submits to the ``[quantum]`` limits (or, for a dry run, reports them) around the program
itself. Credentials for IBM hardware are handed to the
launcher on stdin and reach the program only as ``QISKIT_IBM_*`` environment variables.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmos.tools import ToolError

if TYPE_CHECKING:
    from llmos_quantum.config import QuantumConfig

CHILD = Path(__file__).parent / "child"
REDACTED = "[redacted]"


class SandboxMissing(ToolError):
    pass


@dataclass(frozen=True)
class IBMCredentials:
    """IBM Quantum credentials for one run; never printed, never part of a tool input."""

    token: str = field(repr=False)
    channel: str = "ibm_quantum_platform"
    instance: str | None = None
    region: str | None = None

    def env(self) -> dict[str, str]:
        env = {"QISKIT_IBM_TOKEN": self.token, "QISKIT_IBM_CHANNEL": self.channel}
        if self.instance:
            env["QISKIT_IBM_INSTANCE"] = self.instance
        if self.region:
            env["QISKIT_IBM_REGION"] = self.region
        return env


@dataclass
class ProgramResult:
    exit_status: int
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False
    sandbox: str = "bwrap"
    refused: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"exit_status": self.exit_status, "ok": self.exit_status == 0 and not
                self.timed_out, "stdout": self.stdout, "stderr": self.stderr,
                "timed_out": self.timed_out, "truncated": self.truncated,
                "refused": self.refused, "sandbox": self.sandbox}

    def combined(self) -> str:
        """stdout then stderr, as the Qiskit Studio frontend shows a run."""
        text = self.stdout
        if self.stderr:
            text += ("" if not text or text.endswith("\n") else "\n") + self.stderr
        return text


def python_paths() -> list[Path]:
    """What the sandbox must see read-only for this interpreter and its packages to work."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        value = sysconfig.get_paths().get(key)
        if value:
            paths.add(Path(value))
    real = sorted({Path(os.path.realpath(p)) for p in paths if p.exists()})
    # drop paths inside others (bwrap would bind them twice) and the system dirs already bound
    kept = [p for p in real if not any(p != q and p.is_relative_to(q) for q in real)]
    return [p for p in kept if not p.is_relative_to("/usr")]


def run_program(code: str, cfg: QuantumConfig, *, credentials: IBMCredentials | None = None,
                timeout_s: float | None = None, dry_run: bool = False,
                device: str | None = None) -> ProgramResult:
    """Run ``code`` as ``program.py`` in a fresh sandboxed directory; blocking.

    ``child/harness.py`` holds every circuit the program submits to the ``[quantum]``
    limits; with ``dry_run`` it reports them instead (transpiled for ``device``, a fake
    device class name such as ``FakeSherbrooke``) and stops before they run.
    """
    from llmos.security.sandbox import SandboxUnavailable, run_sandboxed

    timeout = min(timeout_s or cfg.exec_timeout_s, cfg.exec_timeout_s)
    run_dir = Path(tempfile.mkdtemp(prefix="llmos-quantum-"))
    try:
        (run_dir / "program.py").write_text(code, encoding="utf-8")
        shutil.copy(CHILD / "launch.py", run_dir / ".launch.py")
        shutil.copy(CHILD / "harness.py", run_dir / ".harness.py")
        harness = {"mode": "dry" if dry_run else "run", "device": device,
                   "limits": {"max_qubits": cfg.max_qubits, "max_shots": cfg.max_shots,
                              "max_depth": cfg.max_depth}}
        argv = ["-u", ".harness.py", json.dumps(harness), "program.py"]
        cap = cfg.exec_output_kb * 1024
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(run_dir),
               "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
               "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(run_dir / ".matplotlib"),
               "OMP_NUM_THREADS": "2", "TMPDIR": str(run_dir)}
        if credentials is not None:
            env.update(credentials.env())
        spec = {"stdout": ".stdout", "stderr": ".stderr", "argv": argv, "env": env,
                "limits": {"cpu_s": cfg.exec_cpu_s, "memory_bytes": cfg.exec_memory_mb * 2**20,
                           "file_bytes": cap}}
        try:
            done = run_sandboxed(
                [sys.executable, "-I", "-S", ".launch.py"], workspace=run_dir, timeout=timeout,
                env={"PATH": env["PATH"], "HOME": str(run_dir), "LANG": "C.UTF-8"},
                ro_paths=python_paths(), allow_network=credentials is not None,
                stdin=json.dumps(spec) + "\n",
            )
        except SandboxUnavailable as exc:
            raise SandboxMissing(
                f"no OS sandbox can run here ({exc}); quantum programs never run unconfined. "
                "Install bubblewrap (apt-get install bubblewrap) and try again"
            ) from None
        out = _read(run_dir / ".stdout", cap)
        err = _read(run_dir / ".stderr", cap)
        launch_err = done.stderr.strip()
        if launch_err and not err[0]:
            err = (launch_err[-4000:], err[1])
        result = ProgramResult(done.returncode, out[0], err[0], timed_out=done.timed_out,
                               truncated=out[1] or err[1], sandbox=done.mechanism)
        if done.timed_out:
            result.stderr += (("\n" if result.stderr else "") +
                              f"[llmos] the program was stopped after {timeout:g} s "
                              "(quantum.exec_timeout_s)")
        elif done.returncode in (-9, 137) or done.returncode == -24 or done.returncode == 152:
            result.stderr += ("\n[llmos] the program was killed: it reached its CPU limit "
                              "(quantum.exec_cpu_s) or memory limit (quantum.exec_memory_mb)")
        if done.returncode == 4 and "[llmos] refused: " in result.stderr:
            result.refused = result.stderr.split("[llmos] refused: ", 1)[1].splitlines()[0]
        if result.truncated:
            result.stderr += (f"\n[llmos] output was cut off at {cfg.exec_output_kb} KiB "
                              "(quantum.exec_output_kb)")
        if credentials is not None:
            result.stdout = result.stdout.replace(credentials.token, REDACTED)
            result.stderr = result.stderr.replace(credentials.token, REDACTED)
        return result
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _read(path: Path, cap: int) -> tuple[str, bool]:
    try:
        data = path.read_bytes()
    except OSError:
        return "", False
    return data[:cap].decode("utf-8", "replace"), len(data) >= cap
