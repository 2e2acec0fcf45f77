"""The emergency stop: durable state in the workspace's ``.llmos/robo/estop.json``.

Engaging it is always allowed (from a tool, the HTTP API or a driver); releasing it is the
human-only reset path (``llmos robo reset`` or ``POST /reset`` with the operator token).
It survives restarts of llmos: every check reads the file, never a flag in one process.
A file that cannot be read counts as engaged (fail closed).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class EStop:
    def __init__(self, path: Path) -> None:
        self.path = path

    def state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"engaged": False}
        except (OSError, ValueError) as exc:
            return {"engaged": True, "reason": f"the e-stop file {self.path} is unreadable "
                    f"({exc}); treated as engaged", "by": "llmos"}
        if not isinstance(data, dict) or not isinstance(data.get("engaged"), bool):
            return {"engaged": True, "reason": f"the e-stop file {self.path} is malformed; "
                    "treated as engaged", "by": "llmos"}
        return data

    @property
    def engaged(self) -> bool:
        return bool(self.state()["engaged"])

    def engage(self, by: str, reason: str = "") -> dict[str, Any]:
        state = self.state()
        if state.get("engaged"):
            return state
        return self._write({"engaged": True, "since": _now(), "by": by,
                            "reason": reason or "emergency stop"})

    def release(self, by: str) -> dict[str, Any]:
        """Release it. Only the human-only reset path calls this."""
        previous = self.state()
        return self._write({"engaged": False, "released_at": _now(), "released_by": by,
                            "previous": {k: previous.get(k) for k in ("since", "by", "reason")}})

    def _write(self, data: dict[str, Any]) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".estop-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        return data


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
