"""Where a stopped run picks up: the run log's completed steps and the saved Claude session.

Nothing here imports the durable engine: a plain ``llmos run`` records everything a
later ``llmos runs resume`` needs as it goes (each tool call in the run log, the Claude
Code session under a session id chosen from the run id, its transcript under the run's
``CLAUDE_CONFIG_DIR``), so the cheap paths stay cheap.

On resume (``ResumePoint.of``):

* the run record keeps its id and goes back to ``running`` (``reopen``);
* a replay skips the recorded steps it already completed (``completed_replay_steps``)
  and continues with the next one;
* a LEARNER session is resumed with ``resume=<session id>``: the model sees the turns
  already paid for and is not asked them again, and the tool calls it already made are
  not made again;
* what the ledger already charged the run stays charged and counts toward its cap.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmos.calls import CallContext
    from llmos.kernel import Kernel
    from llmos.memory.models import RunRecord, Step

_SESSION_NAMESPACE = uuid.UUID("8f7d2b1e-4c1a-4e55-9a0b-6c2f0d5e9a17")

RESUME_PROMPT = """{prompt}

(llmos: this session was interrupted and has been resumed. The conversation above is
what was already done; look at the workspace as it is now and finish the goal without
repeating work that is already done.)"""


class NothingToResume(LookupError):
    """The run cannot be resumed (it finished, or it is still running)."""


def session_id_for(run_id: str) -> str:
    """The Claude Code session id of ``run_id``'s LEARNER session (chosen before it starts,
    so a killed run's session can be found again)."""
    return str(uuid.uuid5(_SESSION_NAMESPACE, run_id))


@dataclass
class ResumePoint:
    """What a resumed run starts from."""

    run: RunRecord
    steps: list[Step] = field(default_factory=list)
    spent_usd: float = 0.0

    @classmethod
    def of(cls, kernel: Kernel, run_id: str, *, recovering: bool = False) -> ResumePoint:
        """The resume point of ``run_id``; ``NothingToResume`` when it finished or its
        process is still running it. ``recovering``: the durable engine hands over the
        run of an executor it knows is gone (on another host, whose pid says nothing)."""
        from llmos.economy import MICRO

        run = kernel.memory.get_run(run_id)  # RunNotFound names the id
        if run.status == "running" and not recovering:
            owner = f" (pid {run.owner.pid} on {run.owner.host})" if run.owner else ""
            raise NothingToResume(f"run {run_id} is still running{owner}; stop it first "
                                  "or wait for it")
        if run.status not in ("interrupted", "running"):
            raise NothingToResume(f"run {run_id} already finished ({run.status}); nothing to "
                                  f"resume (llmos runs show {run_id})")
        spent = max(kernel.economy.run_spent_micro(run_id) / MICRO, run.cost_usd)
        return cls(run=run, steps=kernel.memory.run_steps(run_id), spent_usd=spent)

    def reopen(self, kernel: Kernel) -> None:
        """The run record goes back to ``running``, owned by this process, same id."""
        from llmos.memory.owner import current_owner

        memory = kernel.memory
        stored = memory._load_run(self.run.id)
        memory._update_run(stored.model_copy(update={
            "status": "running", "success": False, "finished_at": None, "error": None,
            "owner": current_owner(), "cost_usd": self.spent_usd,
        }))

    def completed_replay_steps(self) -> list[Step]:
        """The replayed steps that completed (ran and were recorded), in order."""
        return [s for s in self.steps if s.source == "replay" and not s.outcome.refused]


def resume_point(context: CallContext) -> ResumePoint | None:
    point = context.extra.get("resume")
    return point if isinstance(point, ResumePoint) else None


def skip_completed(plan: Any, point: ResumePoint | None) -> Any:
    """``plan`` without the leading steps the interrupted run already replayed (each must
    be the same tool with the same input); the plan itself when nothing matches."""
    if point is None:
        return plan
    done = point.completed_replay_steps()
    count = 0
    for planned, recorded in zip(plan.steps, done, strict=False):
        if planned.tool != recorded.tool or any(
                recorded.input.get(k) != v for k, v in planned.input.items()):
            break
        count += 1
    if not count:
        return plan
    from dataclasses import replace

    return replace(plan, steps=plan.steps[count:])


class TranscriptMirror:
    """A ``claude_agent_sdk`` session store that keeps a redacted copy of a run's Claude Code
    transcript under ``.llmos/sessions/<run id>/`` as the CLI writes it (eager flush), so
    a run killed with -9 can be resumed even after its session directory was swept.

    ``load`` answers "never written": llmos puts the copy back into the run's own
    ``CLAUDE_CONFIG_DIR`` itself (``restore``) rather than letting the SDK point the CLI
    at a temporary config directory of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: Any) -> Path:
        name = f"{key['session_id']}.jsonl"
        sub = key.get("subpath")
        base = self.root / key["project_key"]
        return base / key["session_id"] / sub / name if sub else base / name

    async def append(self, key: Any, entries: list[Any]) -> None:
        # redacted and synced in a thread: the event loop meanwhile answers the CLI's hooks
        # (the SDK awaits each append before the next, so the order is kept)
        import asyncio

        await asyncio.to_thread(self._append, key, entries)

    def _append(self, key: Any, entries: list[Any]) -> None:
        import json

        from llmos.memory.redaction import redact_obj

        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            for entry in entries:
                out.write(json.dumps(redact_obj(entry), ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())

    async def load(self, key: Any) -> None:
        return None

    def restore(self, config_dir: Path, session_id: str) -> bool:
        """Put the kept transcript of ``session_id`` back under ``config_dir`` when the CLI's
        own copy is gone; whether a transcript is there to resume."""
        import shutil

        if not self.root.is_dir():
            return False
        found = False
        for kept in self.root.glob(f"*/{session_id}.jsonl"):
            target = config_dir / "projects" / kept.parent.name / kept.name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(kept, target)
            found = True
        return found

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)


def mirror_for(context: CallContext) -> TranscriptMirror:
    return TranscriptMirror(context.kernel.workspace.state_dir / "sessions" / context.run_id)


def session_options(options: Any, context: CallContext, config_dir: Path) -> Any:
    """The session id of the run (``session_id=``), mirrored as it is written; or ``resume=``
    it when the run is a resumed one whose transcript was kept."""
    from dataclasses import replace

    run_id = context.run_id
    if not run_id:
        return options
    session = session_id_for(run_id)
    mirror = mirror_for(context)
    # the SDK mirrors only lines under the config directory it knows of: the CLI's own
    options = replace(options, session_store=mirror, session_store_flush="eager",
                      env={**options.env, "CLAUDE_CONFIG_DIR": str(config_dir)})
    if resume_point(context) is not None and (
            mirror.restore(config_dir, session)
            or any((config_dir / "projects").glob(f"*/{session}.jsonl"))):
        context.extra["resumed_session"] = session
        return replace(options, resume=session)
    return replace(options, session_id=session)


def session_done(context: CallContext, *, finished: bool) -> None:
    """A session that ended (done or failed, not stopped midway) needs no copy for a
    resume: ``cortex.transcripts`` decides what is kept of it."""
    if finished and context.run_id:
        mirror_for(context).remove()


def resume_prompt(prompt: str, context: CallContext) -> str:
    return RESUME_PROMPT.format(prompt=prompt) if context.extra.get("resumed_session") \
        else prompt
