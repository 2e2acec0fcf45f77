"""A scripted Anthropic Messages-API server on 127.0.0.1 for driving the real Claude Code CLI.

Tests replace only the remote model: the real ``claude-agent-sdk`` and its bundled CLI run,
their real tools and hooks fire, and every model turn comes from a script::

    script = (
        Script()
        .tool_use("Write", {"file_path": "hello.txt", "content": "hi\\n"})
        .tool_use("Bash", {"command": "cat hello.txt"})
        .text("done")
    )
    with ScriptedModelServer(script) as server:
        options = ClaudeAgentOptions(cwd=tmp_path, env=server.env(), setting_sources=[])
        ...  # run the SDK
        assert server.tool_result(script.turns[1].tool_uses[0].id).text == "hi"

Each *main-conversation* request (``POST /v1/messages``) takes the next scripted turn.
As with the real service, the output tokens reported never exceed the request's
``max_tokens`` (a turn scripted with more is reported capped, ``stop_reason`` ``max_tokens``).
The CLI's side requests (session titles, summaries, compaction, quota checks...) get a
canned answer and leave the script alone. ``env()`` asks the CLI to label every request
with ``x-claude-code-request-class`` (``CLAUDE_CODE_GATEWAY_HINT_HEADERS=1``), which is how
the two are told apart (``main`` / ``subagent`` / ``workflow`` requests are turns,
``auxiliary`` / ``compaction`` / ``side_reply`` are not); requests without the label fall back
to a heuristic (a request offering no tools is a side request). Subagent requests take
turns too, in the order they arrive.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "EXHAUSTED_TEXT",
    "SIDE_TEXT",
    "ApiError",
    "RecordedRequest",
    "Script",
    "ScriptedModelServer",
    "Text",
    "ToolResult",
    "ToolUse",
    "Turn",
    "Usage",
    "default_is_side_request",
    "measured_usage",
    "text",
    "tool_use",
]

EXHAUSTED_TEXT = "(script exhausted)"
"""What the model says once every scripted turn has been used."""

SIDE_TEXT = "ok"
"""What the model says to side requests (titles, summaries, quota checks)."""

DUMMY_API_KEY = "sk-ant-api03-scripted-model-server-dummy-key"

# Values of the CLI's ``x-claude-code-request-class`` header (CLAUDE_CODE_GATEWAY_HINT_HEADERS=1).
CONVERSATION_CLASSES = frozenset({"main", "subagent", "workflow"})
SIDE_CLASSES = frozenset({"compaction", "auxiliary", "side_reply"})

_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "cookie", "proxy-authorization"})


# --------------------------------------------------------------------------- script


@dataclass(frozen=True)
class Usage:
    """Token usage the model reports for one turn; the CLI prices the run from it.

    ``Usage.from_request()`` reports what the request and the answer actually hold instead of
    fixed counts (see :func:`measured_usage`): benchmarks use it so that a cost follows the
    real context Claude Code sends (system prompt, tool definitions, history, guidance).
    """

    input_tokens: int = 100
    output_tokens: int = 20
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    measured: bool = False

    @classmethod
    def from_request(cls) -> Usage:
        return cls(0, 0, measured=True)

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )


@dataclass(frozen=True)
class Text:
    """A text block of an assistant turn."""

    text: str


@dataclass(frozen=True)
class ToolUse:
    """A tool_use block. ``id`` is assigned when the turn joins a :class:`Script`."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


Block = Text | ToolUse


def text(value: str) -> Text:
    """A text block, for :meth:`Script.turn`."""
    return Text(value)


def tool_use(
    name: str, input: Mapping[str, Any] | None = None, *, id: str | None = None
) -> ToolUse:
    """A tool_use block, for :meth:`Script.turn`."""
    return ToolUse(name, dict(input or {}), id)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES = {429: "Number of requests has exceeded your rate limit", 529: "Overloaded"}


@dataclass(frozen=True)
class ApiError:
    """An HTTP error answered instead of a model turn, with Anthropic's error JSON body."""

    status: int = 500
    type: str | None = None
    message: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def error_type(self) -> str:
        return self.type or _ERROR_TYPES.get(self.status, "api_error")

    def body(self, request_id: str) -> dict[str, Any]:
        message = self.message or _ERROR_MESSAGES.get(self.status, "Internal server error")
        return {
            "type": "error",
            "error": {"type": self.error_type, "message": message},
            "request_id": request_id,
        }


@dataclass
class Turn:
    """One scripted model response.

    ``blocks`` is what the model says. ``error`` answers with an HTTP error instead.
    ``delay`` waits that many seconds before answering; ``hang`` never answers (until
    the server stops) — after the response headers and ``message_start`` when
    ``hang="mid_stream"``, before anything when ``hang="before_headers"``.
    ``stop_reason`` is inferred: ``tool_use`` if any block is a tool use, else ``end_turn``.
    Faults: ``malformed`` answers 200 with a body (or, streaming, an event) that is not
    JSON; ``truncated`` closes the connection partway through the answer (after
    ``message_start`` and the first block when streaming); ``event_delay`` is a pause
    before each streamed event (a slow model).
    """

    blocks: list[Block] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: ApiError | None = None
    delay: float = 0.0
    hang: Literal["before_headers", "mid_stream"] | None = None
    stop_reason: str | None = None
    malformed: bool = False
    truncated: bool = False
    event_delay: float = 0.0

    @property
    def tool_uses(self) -> list[ToolUse]:
        return [b for b in self.blocks if isinstance(b, ToolUse)]

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.blocks if isinstance(b, Text))

    @property
    def inferred_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if self.tool_uses else "end_turn"


class Script:
    """An ordered list of model turns. Every builder call appends one turn and returns self."""

    def __init__(self, turns: Iterable[Turn] = ()) -> None:
        self.turns: list[Turn] = []
        for t in turns:
            self.add(t)

    # -- building -----------------------------------------------------------------

    def add(self, turn: Turn) -> Self:
        """Append a :class:`Turn`, giving its tool uses stable ids (``toolu_<turn>_<n>``)."""
        index = len(self.turns)
        blocks: list[Block] = []
        n = 0
        for block in turn.blocks:
            if isinstance(block, ToolUse):
                if block.id is None:
                    block = ToolUse(block.name, dict(block.input), f"toolu_{index:03d}_{n}")
                n += 1
            blocks.append(block)
        self.turns.append(replace(turn, blocks=blocks))
        return self

    def turn(
        self,
        *blocks: Block | str,
        usage: Usage | None = None,
        delay: float = 0.0,
        stop_reason: str | None = None,
    ) -> Self:
        """One turn of several blocks; a plain ``str`` is a text block."""
        parts = [Text(b) if isinstance(b, str) else b for b in blocks]
        return self.add(Turn(parts, usage=usage or Usage(), delay=delay, stop_reason=stop_reason))

    def text(self, value: str, *, usage: Usage | None = None, delay: float = 0.0) -> Self:
        """A turn that only says ``value`` (stop_reason ``end_turn``)."""
        return self.turn(Text(value), usage=usage, delay=delay)

    def tool_use(
        self,
        name: str,
        input: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        text: str | None = None,
        usage: Usage | None = None,
        delay: float = 0.0,
    ) -> Self:
        """A turn that calls one tool, optionally saying ``text`` first."""
        blocks: list[Block] = [Text(text)] if text else []
        blocks.append(ToolUse(name, dict(input or {}), id))
        return self.turn(*blocks, usage=usage, delay=delay)

    def error(
        self,
        status: int = 500,
        *,
        type: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Self:
        """A turn answered with HTTP ``status`` and Anthropic's error body."""
        return self.add(Turn(error=ApiError(status, type, message, dict(headers or {}))))

    def overloaded(self) -> Self:
        """HTTP 529 ``overloaded_error``."""
        return self.error(529)

    def rate_limited(self, retry_after: float = 0) -> Self:
        """HTTP 429 ``rate_limit_error`` with a ``retry-after`` header (seconds)."""
        return self.error(429, headers={"retry-after": f"{retry_after:g}"})

    def hang(self, *, mid_stream: bool = False) -> Self:
        """A turn that never answers, for timeout tests."""
        return self.add(Turn(hang="mid_stream" if mid_stream else "before_headers"))

    def malformed(self) -> Self:
        """A turn answered 200 with something that is not the Messages API's JSON."""
        return self.add(Turn([Text("never seen")], malformed=True))

    def truncated(self, value: str = "this answer is cut o") -> Self:
        """A turn whose answer stops partway (the connection closes)."""
        return self.add(Turn([Text(value)], truncated=True))

    def slow(self, value: str, *, event_delay: float, usage: Usage | None = None) -> Self:
        """A text turn that streams one event every ``event_delay`` seconds."""
        return self.add(Turn([Text(value)], usage=usage or Usage(), event_delay=event_delay))

    # -- reading ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.turns)

    def __getitem__(self, index: int) -> Turn:
        return self.turns[index]

    def __iter__(self) -> Iterator[Turn]:
        return iter(self.turns)

    @property
    def usage(self) -> Usage:
        """Sum of the usage of every turn that answers with a message."""
        total = Usage(0, 0, 0, 0)
        for t in self.turns:
            if t.error is None and t.hang is None:
                total = total + t.usage
        return total


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class ToolResult:
    """A ``tool_result`` block the CLI sent back to the model."""

    tool_use_id: str
    content: Any
    is_error: bool

    @property
    def text(self) -> str:
        """The result's text, with content blocks joined by newlines."""
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "\n".join(
                b.get("text", "") for b in self.content if isinstance(b, dict) and "text" in b
            )
        return "" if self.content is None else str(self.content)


Kind = Literal["conversation", "side", "count_tokens", "other"]


@dataclass
class RecordedRequest:
    """One HTTP request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    kind: Kind = "other"
    turn_index: int | None = None
    """Index of the scripted turn that answered it (conversation requests only)."""
    exhausted: bool = False
    received_at: float = field(default_factory=time.monotonic)

    @property
    def request_class(self) -> str | None:
        return self.headers.get("x-claude-code-request-class")

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def stream(self) -> bool:
        return bool(isinstance(self.body, dict) and self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or []) if isinstance(self.body, dict) else []

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools") or []) if isinstance(self.body, dict) else []

    @property
    def tool_names(self) -> list[str]:
        return [t.get("name", "") for t in self.tools]

    @property
    def system_text(self) -> str:
        system = self.body.get("system") if isinstance(self.body, dict) else None
        if isinstance(system, list):
            return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
        return system or ""

    @property
    def assistant_turns(self) -> int:
        """How many assistant messages the conversation already holds."""
        return sum(1 for m in self.messages if m.get("role") == "assistant")

    def tool_results(self) -> list[ToolResult]:
        """Every tool_result block in the request's messages, oldest first."""
        found = []
        for message in self.messages:
            content = message.get("content")
            if message.get("role") != "user" or not isinstance(content, list):
                continue
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    found.append(
                        ToolResult(
                            block.get("tool_use_id", ""),
                            block.get("content"),
                            bool(block.get("is_error", False)),
                        )
                    )
        return found

    def user_text(self) -> str:
        """All text the user role said in this request (prompt, reminders, hook context)."""
        parts = []
        for message in self.messages:
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(
                    b.get("text", "") for b in content if isinstance(b, dict) and "text" in b
                )
        return "\n".join(parts)


def default_is_side_request(request: RecordedRequest) -> bool:
    """Whether a ``/v1/messages`` request is a CLI side request rather than a model turn."""
    request_class = request.request_class
    if request_class in CONVERSATION_CLASSES:
        return False
    if request_class in SIDE_CLASSES:
        return True
    return not request.tools


# --------------------------------------------------------------------------- server


class ScriptedModelServer:
    """An Anthropic Messages-API stand-in on 127.0.0.1, answering from a :class:`Script`.

    Use as a context manager; ``base_url`` and ``env()`` point the CLI at it.
    """

    def __init__(
        self,
        script: Script | Iterable[Turn] | None = None,
        *,
        model: str | None = None,
        side_text: str = SIDE_TEXT,
        is_side_request: Callable[[RecordedRequest], bool] = default_is_side_request,
        max_retries: int = 0,
        api_timeout_ms: int = 10_000,
        config_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.script = script if isinstance(script, Script) else Script(script or ())
        self.model = model
        self.side_text = side_text
        self.is_side_request = is_side_request
        self.max_retries = max_retries
        self.api_timeout_ms = api_timeout_ms
        self.requests: list[RecordedRequest] = []
        self.exhausted_count = 0
        self._given_config_dir = None if config_dir is None else os.fspath(config_dir)
        self._config_dir: str | None = None
        self._owns_config_dir = False
        self._next_turn = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._cached_prefixes: set[str] = set()

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="scripted-model-server",
            daemon=True,
        )
        self._thread.start()
        if self._given_config_dir is None:
            self._config_dir = tempfile.mkdtemp(prefix="llmos-claude-")
            self._owns_config_dir = True
        else:
            self._config_dir = self._given_config_dir
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging turns
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._owns_config_dir and self._config_dir:
            shutil.rmtree(self._config_dir, ignore_errors=True)
            self._owns_config_dir = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("ScriptedModelServer is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_dir(self) -> str:
        """The throwaway HOME / CLAUDE_CONFIG_DIR root given to the CLI."""
        if self._config_dir is None:
            raise RuntimeError("ScriptedModelServer is not running")
        return self._config_dir

    def env(self, **overrides: str) -> dict[str, str]:
        """Environment for the CLI (``ClaudeAgentOptions(env=...)``): offline, fast, isolated."""
        home = self.config_dir
        env = {
            "ANTHROPIC_BASE_URL": self.base_url,
            "ANTHROPIC_API_KEY": DUMMY_API_KEY,
            # Credentials or providers inherited from the caller's shell must not win.
            "ANTHROPIC_AUTH_TOKEN": "",
            "CLAUDE_CODE_OAUTH_TOKEN": "",
            "CLAUDE_CODE_USE_BEDROCK": "",
            "CLAUDE_CODE_USE_VERTEX": "",
            "CLAUDE_CODE_USE_FOUNDRY": "",
            # No connectivity checks, telemetry, error reports, update checks.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            # MCP tools offered directly in `tools`, not behind ToolSearch.
            "ENABLE_TOOL_SEARCH": "false",
            # Label each request main / subagent / auxiliary / compaction.
            "CLAUDE_CODE_GATEWAY_HINT_HEADERS": "1",
            # Errors surface at once instead of after minutes of backoff.
            "CLAUDE_CODE_MAX_RETRIES": str(self.max_retries),
            "API_TIMEOUT_MS": str(self.api_timeout_ms),
            # Keep the user's own Claude Code settings, sessions and memory out.
            "HOME": home,
            "CLAUDE_CONFIG_DIR": f"{home}/.claude",
        }
        env.update(overrides)
        return env

    # -- scripting state ----------------------------------------------------------

    @property
    def turns_used(self) -> int:
        """How many scripted turns have been answered."""
        return min(self._next_turn, len(self.script))

    @property
    def remaining_turns(self) -> int:
        return max(0, len(self.script) - self._next_turn)

    @property
    def exhausted(self) -> bool:
        """True once the model was asked for a turn beyond the end of the script."""
        return self.exhausted_count > 0

    # -- recordings ---------------------------------------------------------------

    def _of_kind(self, kind: Kind) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == kind]

    @property
    def conversation_requests(self) -> list[RecordedRequest]:
        """Requests that were model turns (they took a scripted turn or hit exhaustion)."""
        return self._of_kind("conversation")

    @property
    def side_requests(self) -> list[RecordedRequest]:
        return self._of_kind("side")

    @property
    def model_request_count(self) -> int:
        """Every ``POST /v1/messages`` (turns and side requests; not count_tokens)."""
        with self._lock:
            return sum(1 for r in self.requests if r.kind in ("conversation", "side"))

    def request_for_turn(self, index: int) -> RecordedRequest:
        """The (last) conversation request answered by scripted turn ``index``."""
        matches = [r for r in self.conversation_requests if r.turn_index == index]
        if not matches:
            raise LookupError(f"scripted turn {index} was never requested")
        return matches[-1]

    def tool_results(self) -> list[ToolResult]:
        """Every distinct tool_result the CLI sent back, in conversation order."""
        seen: dict[str, ToolResult] = {}
        for request in self.conversation_requests:
            for result in request.tool_results():
                seen.setdefault(result.tool_use_id, result)
        return list(seen.values())

    def tool_result(self, tool_use_id: str) -> ToolResult:
        """The tool_result the CLI sent back for ``tool_use_id``."""
        for result in self.tool_results():
            if result.tool_use_id == tool_use_id:
                return result
        seen = [r.tool_use_id for r in self.tool_results()]
        raise LookupError(f"no tool_result for {tool_use_id!r}; seen: {seen}")

    def tool_results_for_turn(self, index: int) -> list[ToolResult]:
        """The tool_results answering each tool use of scripted turn ``index``, in order."""
        return [self.tool_result(t.id or "") for t in self.script[index].tool_uses]

    # -- answering ----------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _take_turn(self, request: RecordedRequest) -> Turn | None:
        """Classify a /v1/messages request and pick its answer (None = canned side answer)."""
        with self._lock:
            if self.is_side_request(request):
                request.kind = "side"
                self.requests.append(request)
                return None
            request.kind = "conversation"
            if self._next_turn < len(self.script):
                request.turn_index = self._next_turn
                turn = self.script[self._next_turn]
                self._next_turn += 1
            else:
                request.exhausted = True
                self.exhausted_count += 1
                turn = Turn([Text(EXHAUSTED_TEXT)])
            self.requests.append(request)
            return turn

    def _message_id(self) -> str:
        return f"msg_scripted_{next(self._ids):04d}"

    def _measure(self, body: Any, blocks: list[Block]) -> Usage:
        with self._lock:
            return measured_usage(body, blocks, self._cached_prefixes)


def _tokens(size: int) -> int:
    return (size + 3) // 4


def measured_usage(body: Any, blocks: Iterable[Block], cached: set[str]) -> Usage:
    """The usage of one answer from what was sent and said, with prompt caching modelled.

    Tokens are estimated as 4 bytes of JSON each, the rule the ``count_tokens`` route uses
    (there is no Claude tokenizer offline; the ratio is close for English and code). The
    prompt is the request's ``tools``, then ``system``, then ``messages`` blocks, in that
    order, as the service caches them: the longest prefix ending at a ``cache_control``
    breakpoint that an earlier request already sent is read from the cache
    (``cache_read_input_tokens``), the rest up to the last breakpoint is written to it
    (``cache_creation_input_tokens``) and what follows the last breakpoint is plain
    ``input_tokens``. ``cached`` holds the digests of the prefixes seen (updated here).
    Output tokens are the answer's blocks, measured the same way.
    """
    import hashlib

    units: list[tuple[str, bool]] = []
    if isinstance(body, dict):
        system = body.get("system")
        parts: list[Any] = list(body.get("tools") or [])
        parts += [system] if isinstance(system, str) else list(system or [])
        for message in body.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else message
            parts += [content] if isinstance(content, str) else list(content or [])
        for part in parts:
            marked = isinstance(part, dict) and "cache_control" in part
            units.append((json.dumps(part, sort_keys=True), marked))
    digest = hashlib.sha256()
    size = read = last_mark = 0
    keys: list[str] = []
    for text, marked in units:
        digest.update(text.encode())
        size += len(text.encode())
        if marked:
            key = digest.copy().hexdigest()
            keys.append(key)
            last_mark = size
            if key in cached:
                read = size
    cached.update(keys)
    output = sum(
        len((b.text if isinstance(b, Text) else json.dumps(dict(b.input))).encode())
        for b in blocks
    )
    return Usage(
        input_tokens=_tokens(size - last_mark),
        output_tokens=max(1, _tokens(output)),
        cache_creation_input_tokens=_tokens(last_mark - read),
        cache_read_input_tokens=_tokens(read),
    )


def _side_turn(request: RecordedRequest, side_text: str) -> Turn:
    """The canned answer to a side request; JSON matching the schema when one is asked for."""
    body = request.body if isinstance(request.body, dict) else {}
    output_format = (body.get("output_config") or {}).get("format") or {}
    if output_format.get("type") == "json_schema":
        side_text = json.dumps(_schema_instance(output_format.get("schema") or {}, side_text))
    return Turn([Text(side_text)], usage=Usage(10, 1))


def _schema_instance(schema: Mapping[str, Any], side_text: str) -> Any:
    """A small value satisfying a JSON schema (session titles ask for ``{"title": str}``)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {
            name: _schema_instance(props.get(name) or {}, side_text)
            for name in schema.get("required", list(props))
        }
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return side_text


def _make_handler(server: ScriptedModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedModelServer
    protocol_version = "HTTP/1.1"
    server_version = "ScriptedModelServer/1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    # -- plumbing -------------------------------------------------------------------

    def _read_request(self) -> RecordedRequest:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        parts = urlsplit(self.path)
        headers = {
            k.lower(): v for k, v in self.headers.items() if k.lower() not in _SECRET_HEADERS
        }
        return RecordedRequest(self.command, parts.path, parse_qs(parts.query), headers, body)

    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_scripted_{uuid.uuid4().hex[:16]}")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    _event_delay = 0.0

    def _sse(self, event: str, data: Mapping[str, Any]) -> None:
        if self._event_delay and self.owner._stopping.wait(self._event_delay):
            raise BrokenPipeError("the server is stopping")
        self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    # -- routes ---------------------------------------------------------------------

    def do_POST(self) -> None:
        request = self._read_request()
        if request.path == "/v1/messages/count_tokens":
            request.kind = "count_tokens"
            self.owner._record(request)
            tokens = max(1, len(json.dumps(request.body)) // 4)
            self._send_json(200, {"input_tokens": tokens})
        elif request.path == "/v1/messages":
            turn = self.owner._take_turn(request)
            self._answer(request, turn or _side_turn(request, self.owner.side_text))
        else:
            self.owner._record(request)
            self._not_found()

    def do_GET(self) -> None:
        request = self._read_request()
        self.owner._record(request)
        if request.path in ("/", "/api/hello"):
            self._send_json(200, {"ok": True})
        elif request.path == "/v1/models":
            model = self.owner.model or "claude-scripted"
            self._send_json(
                200,
                {
                    "data": [{"type": "model", "id": model, "display_name": model}],
                    "has_more": False,
                    "first_id": model,
                    "last_id": model,
                },
            )
        else:
            self._not_found()

    do_HEAD = do_GET

    def _not_found(self) -> None:
        self._send_json(
            404,
            {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}},
        )

    def _answer(self, request: RecordedRequest, turn: Turn) -> None:
        stopping = self.owner._stopping
        if turn.hang == "before_headers" or (turn.hang and not request.stream):
            stopping.wait()
            self.close_connection = True
            return
        if turn.delay and stopping.wait(turn.delay):
            self.close_connection = True
            return
        if turn.error is not None:
            self._send_json(
                turn.error.status,
                turn.error.body(f"req_scripted_{uuid.uuid4().hex[:16]}"),
                {"x-should-retry": "true", **turn.error.headers},
            )
            return
        model = request.model or self.owner.model or "claude-scripted"
        message_id = self.owner._message_id()
        if turn.usage.measured:
            turn = replace(turn, usage=self.owner._measure(request.body, turn.blocks))
        limit = request.body.get("max_tokens") if isinstance(request.body, dict) else None
        if isinstance(limit, int) and 0 < limit < turn.usage.output_tokens:
            # like the real service: never more output than max_tokens
            turn = replace(turn, usage=replace(turn.usage, output_tokens=limit),
                           stop_reason="max_tokens")
        if request.stream:
            self._stream(turn, model, message_id)
        elif turn.malformed or turn.truncated:
            whole = json.dumps(_message(turn, model, message_id)).encode()
            data = b"<html>502 Bad Gateway</html>" if turn.malformed else whole[: len(whole) // 2]
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(whole) if turn.truncated else len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
        else:
            self._send_json(200, _message(turn, model, message_id))

    def _stream(self, turn: Turn, model: str, message_id: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.send_header("request-id", f"req_scripted_{uuid.uuid4().hex[:16]}")
        self.end_headers()
        self.close_connection = True
        usage = turn.usage.as_dict()
        start = _message(turn, model, message_id)
        start.update(content=[], stop_reason=None, stop_sequence=None)
        start["usage"] = {**usage, "output_tokens": 1}
        self._event_delay = turn.event_delay
        try:
            self._sse("message_start", {"type": "message_start", "message": start})
            if turn.hang == "mid_stream":
                self.owner._stopping.wait()
                return
            if turn.malformed:
                self.wfile.write(b"event: content_block_start\ndata: {not json\n\n")
                self.wfile.flush()
                return
            for index, block in enumerate(turn.blocks):
                self._stream_block(index, block)
                if turn.truncated:
                    return
            self._sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": turn.inferred_stop_reason, "stop_sequence": None},
                    "usage": usage,
                },
            )
            self._sse("message_stop", {"type": "message_stop"})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test, cancelled run)

    def _stream_block(self, index: int, block: Block) -> None:
        if isinstance(block, Text):
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": chunk} for chunk in _chunks(block.text)]
        else:
            start = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
            payload = json.dumps(dict(block.input))
            deltas = [
                {"type": "input_json_delta", "partial_json": chunk} for chunk in _chunks(payload)
            ]
        self._sse(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        for delta in deltas:
            self._sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        self._sse("content_block_stop", {"type": "content_block_stop", "index": index})


def _chunks(value: str, size: int = 64) -> list[str]:
    """Split streamed text / JSON into a few deltas, as the real API does."""
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def _message(turn: Turn, model: str, message_id: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in turn.blocks:
        if isinstance(block, Text):
            content.append({"type": "text", "text": block.text})
        else:
            content.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": dict(block.input)}
            )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": turn.inferred_stop_reason,
        "stop_sequence": None,
        "usage": turn.usage.as_dict(),
    }
