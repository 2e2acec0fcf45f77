"""The records memory keeps: runs (L2), their steps, execution traces (L3) and facts (L4).

Plain pydantic models, shared by every backend, so that a record written by one driver
reads the same from another (and round-trips through the Markdown format).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from llmos.goals import Slot

RunStatus = Literal["running", "succeeded", "failed", "interrupted"]
TraceOutcome = Literal["success", "diverged", "failed", "refused"]
"""What happened when a trace was used again: it verified (``success``); it correctly
spotted a world other than the one it was recorded in and handed off (``diverged``, no
fault of the trace); its replay went wrong (``failed``); the policy refused to replay it
(``refused``: demoted at once)."""
TRACE_OUTCOMES = ("success", "diverged", "failed", "refused")

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""Record ids are safe as file names in every driver."""

EXCERPT_CHARS = 2000
DEMOTE_MIN_FAILURES = 2
DEMOTE_BELOW = 0.5


def utcnow() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTCDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A datetime in UTC (a naive one is taken to be UTC already)."""


def iso(value: datetime) -> str:
    """A fixed-width UTC timestamp that sorts as text: 2025-01-31T12:00:00.000000Z."""
    return f"{_as_utc(value):%Y-%m-%dT%H:%M:%S.%fZ}"


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def check_id(value: str, what: str = "id") -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ValueError(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def digest_text(text: str) -> str:
    """The digest recorded for a step's result text (sha256, hex)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Head and tail of a long text, with what was cut said in the middle."""
    if len(text) <= limit:
        return text
    head = limit * 3 // 4
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - limit} characters omitted ...]\n{text[-tail:]}"


class _Model(BaseModel):
    # every float a record carries is finite: NaN or infinity (``success_rating: .nan``
    # in an imported trace) is rejected where the record is validated
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FileDigest(_Model):
    """A file as it was after a step: path (workspace-relative when inside it) and hash."""

    path: str
    sha256: str
    size: int | None = None


class StepOutcome(_Model):
    """What a tool call was observed to do."""

    is_error: bool = False
    refused: bool = Field(False, description="The policy gate refused the call; it never ran.")
    digest: str = Field("", description="sha256 of the (redacted) result text.")
    excerpt: str = Field("", description="The start and end of the (redacted) result text.")
    exit_code: int | None = None
    files: list[FileDigest] = Field(default_factory=list)
    observation: str = Field(
        "", description="sha256 of what the model read from the result, normalized, with "
        "the goal's slot values abstracted (llmos.learning.observe); a replay that observes "
        "otherwise may be stale."
    )
    file_existed: bool | None = Field(
        None, description="For a Write: whether the file existed before the call (Claude "
        "Code's 'update') or was created; a replay must find the same.")


class Step(_Model):
    """One tool call of a run, in order. ``index`` is assigned when the step is recorded."""

    index: int | None = None
    tool: str
    input: dict[str, Any] = Field(default_factory=dict)
    outcome: StepOutcome = Field(default_factory=StepOutcome)
    duration_s: float = 0.0
    source: str = "model"
    call_id: str | None = None


class RunOwner(_Model):
    """The process that runs a run: a run whose owner is gone reads as interrupted."""

    pid: int
    host: str
    started: str | None = Field(None, description="The process's start time, against pid reuse.")


class RunRecord(_Model):
    """L2: one run of a goal, written as it goes (start, each step, finish)."""

    id: str
    goal: str
    mode: str
    status: RunStatus = "running"
    success: bool | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    duration_s: float | None = None
    started_at: UTCDatetime
    finished_at: UTCDatetime | None = None
    error: str | None = None
    output: str | None = None
    trace_id: str | None = None
    owner: RunOwner | None = None
    step_count: int = 0
    parent_run: str | None = Field(None, description="The run this one is a sub-goal of "
                                   "(an ORCHESTRATOR run), if any.")


class Trace(_Model):
    """L3: how a goal was achieved, as ordered tool calls with their observed outcomes."""

    id: str = Field(default_factory=new_id)
    goal_text: str
    normalized_goal: str
    goal_signature: str
    slots: list[Slot] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    success_rating: float = 1.0
    usage_count: int = 1
    success_count: int = 1
    failure_count: int = 0
    last_used: UTCDatetime | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)
    estimated_cost_usd: float = 0.0
    estimated_time_secs: float = 0.0
    mode: str = "learner"
    tools_used: list[str] = Field(default_factory=list)
    demoted: bool = False
    source_run: str | None = None
    answer: str = Field("", description="The final answer of the run the trace was learned "
                        "from (redacted); a replay whose observations all match returns it.")
    divergence_count: int = Field(0, description="Replays that spotted another world and "
                                  "handed off: evidence about the world, not a fault.")
    demoted_reason: str | None = None


class Fact(_Model):
    """L4: something worth remembering, with tags and the run it came from."""

    id: str = Field(default_factory=new_id)
    text: str
    tags: list[str] = Field(default_factory=list)
    source_run: str | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)


def apply_outcome(trace: Trace, outcome: TraceOutcome, at: datetime | None = None, *,
                  reason: str | None = None) -> Trace:
    """The trace's statistics after one more use. Every backend uses this rule.

    ``success_rating`` is successes / (successes + failures) (the run the trace was learned
    from counts as its first success). A divergence counts as a use but is no failure: the
    replay did its job by noticing another world. A trace is demoted once it has failed at
    least ``DEMOTE_MIN_FAILURES`` times and its rating is below ``DEMOTE_BELOW``, or at once
    when the policy refused to replay it; ``demoted_reason`` says why. Demotion sticks until
    someone promotes the trace (``llmos traces promote``).
    """
    if outcome not in TRACE_OUTCOMES:
        raise ValueError(f"unknown trace outcome {outcome!r}; use {', '.join(TRACE_OUTCOMES)}")
    success = trace.success_count + (outcome == "success")
    failure = trace.failure_count + (outcome in ("failed", "refused"))
    usage = trace.usage_count + 1
    judged = success + failure
    rating = success / judged if judged else 0.0
    demoted, why = trace.demoted, trace.demoted_reason
    if not demoted and outcome == "refused":
        demoted, why = True, reason or "the policy refused to replay it"
    elif not demoted and failure >= DEMOTE_MIN_FAILURES and rating < DEMOTE_BELOW:
        demoted = True
        why = (f"{failure} failed replays, rating {rating:.2f} < {DEMOTE_BELOW}"
               + (f"; last: {reason}" if reason else ""))
    return trace.model_copy(
        update={
            "usage_count": usage,
            "success_count": success,
            "failure_count": failure,
            "divergence_count": trace.divergence_count + (outcome == "diverged"),
            "success_rating": round(rating, 6),
            "demoted": demoted,
            "demoted_reason": why,
            "last_used": at or utcnow(),
        }
    )
