"""The metering proxy: Claude Code reaches the model service only through llmos.

For each LEARNER run llmos serves the Messages API on 127.0.0.1 and gives the CLI its
address (``ANTHROPIC_BASE_URL``) and a random per-run token as its API key. The real
credentials never leave llmos's process; they are added to the requests it forwards.

Each ``POST /v1/messages``, in order:

1. the caller's token is checked (anything else on the machine gets HTTP 401);
2. the request's worst case is priced: every prompt token at the dearest input price
   plus ``max_tokens`` of output. The prompt is sized by its length in bytes (a token
   is at least one byte) and, when that does not fit, by the service's free
   ``count_tokens`` endpoint;
3. the worst case must fit in what is left of the run's cap (``budget.run_cap_usd``)
   and is reserved in the ledger (``LowBatteryError`` semantics): when either does
   not fit the request is not sent, the CLI is answered with an error it does not
   retry, and the run ends "stopped on its cap" (or "low battery");
4. the request is forwarded. 429, 5xx, 529 and timeouts are retried by llmos (the CLI's
   own retries are off), each retry reported as it happens, within ``cortex.retry_max_s``
   in total; ``retry-after`` is honoured when it fits in that bound. 401/403 and other
   refusals fail at once with what to fix;
5. the response is streamed back while its ``usage`` is read; the reservation is
   committed with the real cost. A response that is malformed, cut off or interrupted
   is charged what it may have cost (``_Metered.cut_off_micro``: the whole reservation
   until the service has said what the prompt cost) and the run fails with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llmos.cortex.prices import Price, price_for
from llmos.economy import MICRO, LowBatteryError, Reservation, TokenEconomy

CUT_OFF_ALLOWANCE = 1024
"""Output tokens an answer cut off midway is assumed to have generated beyond what
reached llmos (the service stops generating when it notices the client has gone)."""
MIN_OUTPUT_TOKENS = 1024
"""A request is lowered to no fewer output tokens than this; below, it is not sent."""
DEFAULT_MAX_TOKENS = 128_000
RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_HOP_HEADERS = frozenset({
    "host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade",
    "te", "trailer", "proxy-authorization", "proxy-authenticate", "x-api-key",
    "authorization", "accept-encoding", "content-encoding", "cookie",
})
_COUNTED_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")
_STATUS_NAMES = {429: "rate limited", 529: "overloaded", 500: "internal error",
                 502: "bad gateway", 503: "unavailable", 504: "gateway timeout",
                 408: "request timeout", 409: "conflict"}

# After these, nothing more is sent: Claude Code would retry on its own (it does after a
# cut-off stream even with its retries off), outside llmos's bound and unseen.
_FINAL_FAULTS = ("the model service sent a malformed", "the model service's response was cut")
Notify = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Upstream:
    """Where the model service is and how llmos authenticates to it."""

    base_url: str
    headers: dict[str, str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Upstream:
        base = (environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com").rstrip("/")
        headers: dict[str, str] = {}
        if environ.get("ANTHROPIC_API_KEY"):
            headers["x-api-key"] = environ["ANTHROPIC_API_KEY"]
        elif environ.get("ANTHROPIC_AUTH_TOKEN"):
            headers["authorization"] = f"Bearer {environ['ANTHROPIC_AUTH_TOKEN']}"
        elif environ.get("CLAUDE_CODE_OAUTH_TOKEN"):
            headers["authorization"] = f"Bearer {environ['CLAUDE_CODE_OAUTH_TOKEN']}"
            headers["anthropic-beta"] = "oauth-2025-04-20"
        return cls(base, headers)


@dataclass(frozen=True)
class ProxySettings:
    run_cap_micro: int
    retry_max_s: float = 60.0
    request_timeout_s: float = 120.0
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    prompt_estimate: str = "count_tokens"


class _GaveUp(Exception):
    """No usable answer within the retry bound."""

    def __init__(self, message: str, maybe_billed: bool) -> None:
        super().__init__(message)
        self.maybe_billed = maybe_billed


@dataclass
class _Metered:
    """One paid request in flight."""

    reservation: Reservation
    price: Price
    max_tokens: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    complete: bool = False
    problem: str | None = None
    stream: _SseUsage | None = None

    def cut_off_micro(self) -> int:
        """What an answer cut off midway may have cost. Once the service has said what
        the prompt cost (``message_start``), that plus the output streamed so far (a
        token is at least a byte) and ``CUT_OFF_ALLOWANCE`` tokens it may have generated
        before it noticed; otherwise the whole reservation."""
        if self.stream is None or not self.stream.started:
            return self.reservation.amount_micro
        output = min(self.max_tokens, self.stream.output_bytes + CUT_OFF_ALLOWANCE)
        cost = self.price.cost_micro({**self.stream.usage, "output_tokens": output})
        return min(cost, self.reservation.amount_micro)


class MeteringProxy:
    """A loopback Messages-API proxy that meters one run against the ledger."""

    def __init__(self, economy: TokenEconomy, upstream: Upstream, settings: ProxySettings, *,
                 run_id: str | None = None, notify: Notify | None = None) -> None:
        self.economy = economy
        self.upstream = upstream
        self.settings = settings
        self.run_id = run_id
        self.notify = notify or (lambda kind, data: None)
        self.token = "llmos-run-" + secrets.token_urlsafe(24)
        # what this run did, for the run record
        self.requests = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.spent_micro = 0
        self.retries = 0
        self.stopped: str | None = None
        """Why paid work was refused ("cap" or "battery"), with ``fault`` the message."""
        self.fault: str | None = None
        """The first thing that made the run fail here (what to tell the user)."""
        self._open: dict[str, _Metered] = {}
        self._sizing_problem: str | None = None
        self._fixed_sizes: dict[bytes, int] = {}
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._socket is None:
            raise RuntimeError("the metering proxy is not running")
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def bind(self) -> str:
        """Take the proxy's port on 127.0.0.1, listening already (connections wait there
        until ``start`` serves them), so the CLI can be started with ``base_url`` while
        the proxy starts; the base URL."""
        if self._socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                # streamed events are small: send each at once (accepted sockets inherit it)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.bind(("127.0.0.1", 0))
                sock.listen(128)
            except OSError:
                sock.close()
                raise
            self._socket = sock
        return self.base_url

    async def start(self) -> MeteringProxy:
        self.bind()
        timeout = httpx.Timeout(self.settings.request_timeout_s, connect=10.0)
        # Every request goes to a path of the upstream's base URL. A plain-http upstream (a
        # local model server) needs no TLS context: building httpx's default one loads the
        # whole CA bundle (50-400 ms of CPU per run); an https upstream gets it, verified.
        plain = httpx.URL(self.upstream.base_url).scheme == "http"
        self._client = httpx.AsyncClient(base_url=self.upstream.base_url, timeout=timeout,
                                         headers={"accept-encoding": "identity"},
                                         **({"verify": False} if plain else {}))
        app = Starlette(routes=[
            Route("/v1/messages", self._messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self._passthrough, methods=["POST"]),
            Route("/{path:path}", self._other, methods=["GET", "HEAD", "POST", "PUT",
                                                        "DELETE", "PATCH"]),
        ])
        config = uvicorn.Config(app, log_level="critical", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=1)
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the metering proxy did not start")
            await asyncio.sleep(0.005)
        return self

    async def stop(self) -> None:
        """Stop serving; whatever is still in flight is charged its reservation."""
        if self._server is not None:
            self._server.exit_now()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self._task), 2)
            if not self._task.done():
                self._task.cancel()
        if self._client is not None:
            await self._client.aclose()
        if self._socket is not None:
            self._socket.close()
        self.settle_open("cut off before the response ended: charged what it may have cost")
        self._server = self._task = self._client = None

    async def __aenter__(self) -> MeteringProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def settle_open(self, description: str) -> None:
        """Charge every request still in flight its whole reservation."""
        for metered in list(self._open.values()):
            self._settle(metered, description=description, charge_all=True)

    # -- accounting --------------------------------------------------------------------

    @property
    def spent_usd(self) -> float:
        return self.spent_micro / MICRO

    @property
    def open_micro(self) -> int:
        return sum(m.reservation.amount_micro for m in self._open.values())

    def _fail(self, message: str) -> None:
        if self.fault is None:
            self.fault = message

    def _reserve(self, body: dict[str, Any], tokens: int) -> _Metered | str:
        """Reserve the worst case of a request whose prompt has at most ``tokens``
        tokens, or say why it may not be sent. When ``max_tokens`` of output would not
        fit in what is left (of the run's cap and of the balance), the request's
        ``max_tokens`` is lowered to what does fit, down to ``MIN_OUTPUT_TOKENS``."""
        price = price_for(body.get("model"), self.settings.prices)
        asked = body.get("max_tokens")
        asked = asked if isinstance(asked, int) and asked > 0 else DEFAULT_MAX_TOKENS
        floor = min(asked, MIN_OUTPUT_TOKENS)
        for _ in range(3):  # another process may take the balance between look and reserve
            cap_left = self.settings.run_cap_micro - self.spent_micro - self.open_micro
            left = min(cap_left, self.economy.available_micro)
            max_tokens = min(asked, price.output_tokens_for(left - price.input_worst_micro(
                tokens)))
            if max_tokens < floor:
                what = "the run's cap" if cap_left <= self.economy.available_micro else \
                    "the balance"
                return self._refusal(price, tokens, floor, cap_left, what)
            worst = price.worst_case_micro(tokens, max_tokens)
            try:
                reservation = self.economy.reserve_micro(worst, run_id=self.run_id,
                                                         what="model request")
            except LowBatteryError:
                continue
            if max_tokens < asked:
                body["max_tokens"] = max_tokens
                _fit_thinking(body, max_tokens)
            metered = _Metered(reservation, price, max_tokens)
            self._open[reservation.id] = metered
            return metered
        return self._refusal(price, tokens, floor, 0, "the balance")

    def _refusal(self, price: Price, tokens: int, floor: int, cap_left: int, what: str
                 ) -> str:
        needed = price.worst_case_micro(tokens, floor) / MICRO
        if what == "the balance":
            return (f"low battery: the next model request needs up to ${needed:.4f} "
                    f"({tokens} prompt tokens, {floor} output tokens at {price.model} prices) "
                    f"but only ${max(self.economy.available_micro, 0) / MICRO:.4f} is "
                    "available; raise it with `llmos budget set USD`")
        return (f"stopped on its cap: the next model request needs up to ${needed:.4f} "
                f"({tokens} prompt tokens, {floor} output tokens at {price.model} prices) but "
                f"only ${max(cap_left, 0) / MICRO:.4f} of this run's cap (budget.run_cap_usd"
                f" = ${self.settings.run_cap_micro / MICRO:.4f}) is left; raise it with "
                "--set budget.run_cap_usd=USD")

    def _release(self, metered: _Metered) -> None:
        if self._open.pop(metered.reservation.id, None) is not None:
            self.economy.release(metered.reservation, "re-sized")

    def _settle(self, metered: _Metered, *, description: str = "model request",
                charge_all: bool = False) -> None:
        if self._open.pop(metered.reservation.id, None) is None:
            return
        usage = metered.usage
        inputs = sum(usage.get(k, 0) for k in ("input_tokens", "cache_creation_input_tokens",
                                               "cache_read_input_tokens"))
        outputs = usage.get("output_tokens", 0)
        if charge_all or not metered.complete:
            cost = metered.cut_off_micro()
            if not charge_all:
                description = f"{metered.problem or 'incomplete response'}: charged what it " \
                              "may have cost"
        else:
            cost = metered.price.cost_micro(usage)
        self.economy.commit_micro(metered.reservation, cost, description=description,
                                  input_tokens=inputs, output_tokens=outputs)
        self.spent_micro += cost
        self.input_tokens += inputs
        self.output_tokens += outputs

    # -- routes ------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("x-api-key") or ""
        bearer = request.headers.get("authorization") or ""
        if bearer.lower().startswith("bearer "):
            given = given or bearer[7:]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _forward_headers(self, request: Request) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        for key, value in self.upstream.headers.items():
            if key == "anthropic-beta" and headers.get("anthropic-beta"):
                headers[key] = f"{headers['anthropic-beta']},{value}"
            else:
                headers[key] = value
        return headers

    async def _messages(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "authentication_error", "llmos: this proxy serves one run only")
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "invalid_request_error", "llmos: the request is not a JSON object")
        if self.stopped or (self.fault and self.fault.startswith(_FINAL_FAULTS)):
            return _error(400, "invalid_request_error", f"llmos: {self.fault}")
        headers = self._forward_headers(request)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        asked = body.get("max_tokens")
        metered = self._reserve(body, len(raw))
        if self.settings.prompt_estimate == "count_tokens":
            metered = await self._resize(body, headers, asked, len(raw), metered)
        if isinstance(metered, str):
            if self.fault is None:  # a budget stop after a fault is not the news
                self.stopped = "cap" if metered.startswith("stopped on its cap") else "battery"
                self.fault = metered
            return _error(400, "invalid_request_error", f"llmos: {metered}")
        if body.get("max_tokens") != asked:
            raw = json.dumps(body).encode()
        try:
            response = await self._send("POST", path, headers, raw, count=True)
        except _GaveUp as exc:
            # a request that reached the service may be billed even if no answer came
            metered.problem = "no answer from the model service"
            metered.complete = not exc.maybe_billed
            self._settle(metered, description="no answer: never reached the service")
            return _error(504, "api_error", f"llmos: {exc}")
        except BaseException:
            metered.problem = "cut off"
            self._settle(metered)
            raise
        if response.status_code >= 400:
            await self._refused(response)
            metered.complete = True  # an error answer is not billed
            self._settle(metered, description=f"refused: HTTP {response.status_code}")
            return _relay(response, await response.aread())
        if body.get("stream"):
            return StreamingResponse(self._stream(response, metered),
                                     status_code=response.status_code,
                                     headers=_response_headers(response))
        return await self._whole(response, metered)

    async def _whole(self, response: httpx.Response, metered: _Metered) -> Response:
        try:
            data = await response.aread()
            message = json.loads(data)
            usage = message["usage"]
            if not isinstance(message.get("content"), list) or not isinstance(usage, dict):
                raise ValueError("no content or usage")
        except (ValueError, KeyError, TypeError, httpx.HTTPError) as exc:
            metered.problem = "malformed response"
            self._fail(f"the model service sent a malformed response ({_brief(exc)}); "
                       "check ANTHROPIC_BASE_URL points at an Anthropic Messages API")
            self._settle(metered)
            return _error(502, "api_error", f"llmos: {self.fault}")
        finally:
            await response.aclose()
        metered.usage = _ints(usage)
        metered.complete = True
        self._settle(metered)
        return Response(data, status_code=response.status_code,
                        headers=_response_headers(response))

    async def _stream(self, response: httpx.Response, metered: _Metered
                      ) -> AsyncIterator[bytes]:
        parser = metered.stream = _SseUsage()
        metered.usage = parser.usage
        try:
            async for chunk in response.aiter_bytes():
                problem = parser.feed(chunk)
                if problem:
                    metered.problem = "malformed response"
                    self._fail(f"the model service sent a malformed stream ({problem})")
                    return
                yield chunk
                if parser.error:
                    self._fail(f"the model service failed mid-response: {parser.error}")
            problem = parser.finish()
            if problem:
                metered.problem = "response cut off"
                self._fail(f"the model service's response was cut off ({problem})")
        except httpx.HTTPError as exc:
            metered.problem = "response cut off"
            self._fail(f"the model service's response was cut off ({_brief(exc)}, after "
                       f"{self.settings.request_timeout_s:g} s without data at most; "
                       "cortex.request_timeout_s)")
        finally:
            metered.complete = parser.complete and metered.problem is None
            self._settle(metered)
            await response.aclose()

    async def _passthrough(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "authentication_error", "llmos: this proxy serves one run only")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            response = await self._send(request.method, path, self._forward_headers(request),
                                        await request.body())
        except _GaveUp as exc:
            return _error(504, "api_error", f"llmos: {exc}")
        return _relay(response, await response.aread())

    async def _other(self, request: Request) -> Response:
        if request.method in ("GET", "HEAD") and request.url.path.startswith("/v1/models"):
            return await self._passthrough(request)
        return _error(404, "not_found_error", f"llmos: {request.url.path} is not served")

    async def _resize(self, body: dict[str, Any], headers: dict[str, str], asked: Any,
                      bound: int, metered: _Metered | str) -> _Metered | str:
        """A request whose bytes bound made it lowered or refused, sized more tightly
        before lowering or refusing it. When a bound made of its fixed part's exact size
        (model, system prompt, tools: the same on every turn, asked of the service once
        per run) and its messages' bytes lets it be sent as asked, that bound; otherwise
        its own exact size, as the service counts it (each such request asks)."""
        if not isinstance(metered, str) and body.get("max_tokens") == asked:
            return metered
        count = await self._fixed_part_bound(body, headers)
        if count is None or count >= bound or not self._fits(body, count):
            count = await self._count_tokens(body, headers)
        if count is not None and count < bound:
            if not isinstance(metered, str):
                self._release(metered)
                body["max_tokens"] = asked
            return self._reserve(body, count)
        if count is None and isinstance(metered, str) and self._sizing_problem:
            metered += f" ({self._sizing_problem})"
        return metered

    def _fits(self, body: dict[str, Any], tokens: int) -> bool:
        """Whether a prompt of ``tokens`` with the ``max_tokens`` asked fits in what is left
        (of the run's cap and of the balance)."""
        price = price_for(body.get("model"), self.settings.prices)
        asked = body.get("max_tokens")
        asked = asked if isinstance(asked, int) and asked > 0 else DEFAULT_MAX_TOKENS
        left = min(self.settings.run_cap_micro - self.spent_micro - self.open_micro,
                   self.economy.available_micro)
        return price.worst_case_micro(tokens, asked) <= left

    async def _fixed_part_bound(self, body: dict[str, Any], headers: dict[str, str]
                                ) -> int | None:
        """At most how many tokens the prompt has: its fixed part's exact size (with
        ``_count_tokens``' margin) plus its messages' size in bytes (the bytes bound of
        the part that grows). None when the messages hold an image or a document (whose
        tokens are not bounded by their bytes in every case), or when the fixed part is
        not counted yet and even its messages alone would not let the request be sent
        as asked (then only the exact size helps: asking twice would be waste)."""
        messages = body.get("messages")
        if not isinstance(messages, list) or _has_media(messages):
            return None
        grows = len(json.dumps(messages).encode())
        fixed = {k: body[k] for k in _COUNTED_FIELDS if k in body and k != "messages"}
        key = hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).digest()
        if key not in self._fixed_sizes:
            if not self._fits(body, grows):
                return None
            count = await self._count_tokens(
                {**fixed, "messages": [{"role": "user", "content": "."}]}, headers)
            if count is None:
                return None
            self._fixed_sizes[key] = count
        return self._fixed_sizes[key] + grows

    async def _count_tokens(self, body: dict[str, Any], headers: dict[str, str]) -> int | None:
        """The prompt's exact size from the service (free), with a small margin."""
        payload = {k: body[k] for k in _COUNTED_FIELDS if k in body}
        assert self._client is not None
        try:
            response = await self._client.post("/v1/messages/count_tokens", json=payload,
                                               headers={**headers, "content-type":
                                                        "application/json"})
            count = response.json().get("input_tokens") if response.status_code == 200 else None
            why = f"HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            count, why = None, _brief(exc)
        if isinstance(count, int) and count >= 0:
            return int(count * 1.02) + 16
        self._sizing_problem = f"the prompt was sized by its bytes: count_tokens failed ({why})"
        return None

    async def _refused(self, response: httpx.Response) -> None:
        status = response.status_code
        detail = _error_detail(await response.aread())
        if status in (401, 403):
            self._fail(
                f"the model service refused llmos's credentials (HTTP {status}{detail}): "
                "check ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN) and ANTHROPIC_BASE_URL"
            )
        elif status in RETRYABLE:
            pass  # _send already said why it gave up
        else:
            self._fail(f"the model service refused the request (HTTP {status}{detail})")

    # -- forwarding with llmos's retry policy ------------------------------------------

    async def _send(self, method: str, path: str, headers: dict[str, str], content: bytes,
                    *, count: bool = False) -> httpx.Response:
        """The first answer that is not worth retrying, or the last one when the retry
        bound is spent; ``_GaveUp`` when there never was an answer. With ``count``, each
        attempt that reached the service is one of the run's ``requests`` (a retry is
        a request made; one refused before it was sent, or never connected, is not)."""
        assert self._client is not None
        bound = self.settings.retry_max_s
        started = time.monotonic()
        attempt = 0
        reached = False
        while True:
            attempt += 1
            response: httpx.Response | None = None
            retry_after: float | None = None
            try:
                request = self._client.build_request(method, path, headers=headers,
                                                     content=content)
                response = await self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                problem = f"no answer ({_brief(exc)})"
                connected = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                reached = reached or connected
                self.requests += int(count and connected)
            else:
                self.requests += int(count)
                if response.status_code not in RETRYABLE:
                    return response
                retry_after = _retry_after(response.headers)
                status = response.status_code
                problem = f"HTTP {status} ({_STATUS_NAMES.get(status, 'error')})"
                await response.aread()
                await response.aclose()
            elapsed = time.monotonic() - started
            wait = retry_after if retry_after is not None else _backoff(attempt)
            if elapsed + wait > bound:
                if retry_after is not None and retry_after > bound - elapsed:
                    why = (f"the model service answered {problem} and asked to wait "
                           f"{retry_after:g} s, more than the {max(bound - elapsed, 0):.1f} s "
                           f"left of cortex.retry_max_s = {bound:g}")
                else:
                    why = (f"the model service answered {problem} on {attempt} "
                           f"attempt{'s' if attempt > 1 else ''} over {elapsed:.1f} s; gave "
                           f"up (cortex.retry_max_s = {bound:g})")
                self._fail(why)
                if response is None:
                    raise _GaveUp(why, reached)
                return response
            self.retries += 1
            self.notify("retry", {"problem": problem, "attempt": attempt + 1,
                                  "wait_s": round(wait, 2), "bound_s": bound})
            await asyncio.sleep(wait)


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers (llmos's own handlers stop the run), stopping as
    soon as ``exit_now`` is called: uvicorn itself looks at its exit flag every 0.1 s and
    then waits 0.1 s more before closing, up to 0.2 s added to the end of every run."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield

    def exit_now(self) -> None:
        """Stop serving; requests in flight are cut (what ``stop`` then charges)."""
        self.should_exit = self.force_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):  # the Date header, once a second
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await asyncio.sleep(0)  # (uvicorn waits 0.1 s here, for nothing once forced)
        for server in self.servers:
            await server.wait_closed()


class _SseUsage:
    """Reads ``usage`` out of a Messages-API event stream as it passes through."""

    def __init__(self) -> None:
        self._buffer = b""
        self.usage: dict[str, int] = {}
        self.complete = False
        self.started = False
        self.error: str | None = None
        self.output_bytes = 0

    def feed(self, chunk: bytes) -> str | None:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            problem = self._line(line.rstrip(b"\r"))
            if problem:
                return problem
        return None

    def _line(self, line: bytes) -> str | None:
        if not line.startswith(b"data:"):
            return None
        try:
            event = json.loads(line[5:])
        except ValueError:
            return f"an event's data is not JSON: {line[5:85]!r}"
        if not isinstance(event, dict):
            return "an event is not a JSON object"
        kind = event.get("type")
        if kind == "message_start":
            self.started = True
            self.usage.update(_ints((event.get("message") or {}).get("usage") or {}))
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            for key in ("text", "partial_json", "thinking"):
                if isinstance(delta.get(key), str):
                    self.output_bytes += len(delta[key].encode())
        elif kind == "message_delta":
            self.usage.update(_ints(event.get("usage") or {}))
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.error = _error_detail(json.dumps(event).encode()).strip(" :") or "error event"
        return None

    def finish(self) -> str | None:
        if self._buffer.strip():
            problem = self._line(self._buffer.strip())
            if problem:
                return problem
        if self.error:
            return None
        if not self.started:
            return "the stream ended before message_start"
        if not self.complete:
            return "the stream ended before message_stop"
        return None


def _fit_thinking(body: dict[str, Any], max_tokens: int) -> None:
    """Extended thinking's budget must stay below ``max_tokens``."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if isinstance(budget, int) and budget >= max_tokens:
        if max_tokens > 1024:
            thinking["budget_tokens"] = max(1024, max_tokens // 2)
        else:
            body.pop("thinking")


def _has_media(value: Any) -> bool:
    """Whether an image or document block is anywhere in ``value`` (messages)."""
    if isinstance(value, list):
        return any(_has_media(item) for item in value)
    if isinstance(value, dict):
        return value.get("type") in ("image", "document") or any(
            _has_media(item) for item in value.values() if isinstance(item, (list, dict)))
    return False


def _ints(usage: Mapping[str, Any]) -> dict[str, int]:
    return {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}


def _retry_after(headers: httpx.Headers) -> float | None:
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        with contextlib.suppress(ValueError):
            return max(0.0, float(raw_ms) / 1000)
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _backoff(attempt: int) -> float:
    """0.5 s, 1 s, 2 s, ... up to 8 s, with jitter."""
    return min(8.0, 0.5 * 2 ** (attempt - 1)) * (0.75 + random.random() * 0.5)


def _brief(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _error_detail(data: bytes) -> str:
    try:
        error = json.loads(data).get("error") or {}
        kind, message = error.get("type"), error.get("message")
    except (ValueError, AttributeError):
        return ""
    parts = [str(p)[:200] for p in (kind, message) if p]
    return f" {': '.join(parts)}" if parts else ""


def _response_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}


def _relay(response: httpx.Response, data: bytes) -> Response:
    headers = _response_headers(response)
    headers["x-should-retry"] = "false"
    return Response(data, status_code=response.status_code, headers=headers)


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}},
                        status_code=status, headers={"x-should-retry": "false"})
