"""Shared by the durable tests: real ``llmos`` processes on a workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LLMOS = str(Path(sys.executable).parent / "llmos")


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "LLMOS_KERNEL__INTERACTIVE": "never", **extra}


def llmos(workspace: Path, *args: str, check: bool = True, timeout: float = 180,
          **extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([LLMOS, "-w", str(workspace), *args], env=env(**extra),
                          capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"llmos {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


def llmos_json(workspace: Path, *args: str, **kwargs: Any) -> Any:
    return json.loads(llmos(workspace, *args, "--json", **kwargs).stdout)


def start(workspace: Path, *args: str, log: Path | None = None,
          **extra: str) -> subprocess.Popen[str]:
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([LLMOS, "-w", str(workspace), *args], env=env(**extra),
                            stdout=out, stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, seconds: float = 90.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
