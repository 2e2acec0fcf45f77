"""``llmos export training``: choose runs, turn their conversations into a dataset.

Each model session kept for a run (LEARNER, MIXED, an ORCHESTRATOR's planning and its
sub-goals' own runs, SIMULATION, the model's part of a diverged replay) is one example.
Runs without a kept conversation (a verified replay, a compiled tool: no model spoke)
are left out, as are runs still going; every run left out is counted in the report with
the reason. Everything written passes redaction once more on the way out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmos.config import ConfigError
from llmos.export.formats import CONVERTERS, FORMATS, Example
from llmos.memory.redaction import redact_obj

if TYPE_CHECKING:
    from llmos.kernel import Kernel
    from llmos.memory.models import RunRecord

_RELATIVE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``7d``, ``12h``, ``30m``, ``2w`` ago, or an ISO date/time (UTC when naive)."""
    now = now or datetime.now(UTC)
    text = value.strip()
    m = _RELATIVE.match(text)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since {value!r} is neither a duration (7d, 12h, 30m, 2w) nor "
                          "an ISO date (2026-01-31 or 2026-01-31T12:00)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass
class ExportReport:
    """What was written and what was left out, and why (``--json`` prints it)."""

    format: str
    out: str
    examples: int = 0
    runs: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    zero_weight_turns: int = 0
    redacted: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "out": self.out, "examples": self.examples,
                "runs": self.runs, "skipped": self.skipped, "dropped": self.dropped,
                "zero_weight_turns": self.zero_weight_turns,
                "redacted_strings": self.redacted}


def _skip_reason(run: RunRecord, since: datetime | None, successful_only: bool) -> str | None:
    if since is not None and run.started_at < since:
        return "older than --since"
    if run.status in ("running", "interrupted"):
        return f"run {run.status}"
    if successful_only and not run.success:
        return "failed (--successful-only)"
    return None


def examples(kernel: Kernel, report: ExportReport, *, since: datetime | None = None,
             successful_only: bool = False) -> list[Example]:
    from llmos.export.store import ConversationStore

    store = ConversationStore(kernel.db)
    out: list[Example] = []
    for run in reversed(kernel.memory.list_runs(limit=None)):
        reason = _skip_reason(run, since, successful_only)
        sessions = store.for_run(run.id) if reason is None else []
        if reason is None and not sessions:
            reason = f"no model conversation ({run.mode}: nothing the model said to learn from)"
        if reason is not None:
            report.skip(reason)
            continue
        for n, session in enumerate(sessions):
            out.append(Example(
                run_id=run.id, system=session["system"], messages=session["messages"],
                tools=session["tools"], success=bool(run.success),
                metadata={"run_id": run.id, "session": n, "goal": run.goal, "mode": run.mode,
                          "success": bool(run.success), "simulated": session["simulated"],
                          "parent_run": run.parent_run, "cost_usd": run.cost_usd,
                          "started_at": run.started_at.isoformat()}))
        report.runs.append(run.id)
    return out


def _count_redactions(before: Any, after: Any) -> int:
    if isinstance(before, dict) and isinstance(after, dict):
        return sum(_count_redactions(v, after.get(k)) for k, v in before.items())
    if isinstance(before, list) and isinstance(after, list):
        return sum(_count_redactions(b, a) for b, a in zip(before, after, strict=False))
    return int(before != after)


def export_training(kernel: Kernel, fmt: str, out: Path, *, since: datetime | None = None,
                    successful_only: bool = False) -> ExportReport:
    """Write the dataset (JSON Lines, one example a line) and return the report."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    report = ExportReport(fmt, str(out))
    chosen = examples(kernel, report, since=since, successful_only=successful_only)
    lines = []
    for example in chosen:
        line = CONVERTERS[fmt](example)
        clean = redact_obj(line)
        report.redacted += _count_redactions(line, clean)
        for what, n in example.dropped.items():
            report.dropped[what] = report.dropped.get(what, 0) + n
        report.zero_weight_turns += sum(1 for m in clean.get("messages", ())
                                        if m.get("weight") == 0)
        lines.append(json.dumps(clean, ensure_ascii=False))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}; choose another --out"
                          ) from None
    report.examples = len(lines)
    return report
