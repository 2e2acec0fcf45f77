"""A LEARNER session: one claude-agent-sdk client per run, the kernel in control.

The SDK does the agent loop, the tools, streaming and cost accounting; this module sets
its options from config, bridges its hooks to the kernel's gate, and turns what comes
back into an outcome with the real cost and token usage.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from llmos.calls import CallContext
from llmos.config import ConfigError
from llmos.cortex.bridge import MCP_SERVER, HookBridge, Progress, mcp_server
from llmos.cortex.session import Session
from llmos.economy import LowBatteryError, to_micro
from llmos.runner import ModeOutcome

if TYPE_CHECKING:
    from llmos.cortex.proxy import MeteringProxy

CREDENTIAL_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
)

# The user's home secrets, denied to Claude Code's Read tool and its Bash sandbox.
HOME_SECRETS = (".ssh", ".aws", ".gnupg", ".config/gh", ".config/gcloud", ".azure", ".kube",
                ".docker", ".netrc", ".git-credentials", ".pgpass", ".npmrc", ".pypirc",
                ".claude", ".claude.json")

SYSTEM_PROMPT = (
    "You are running inside llmos, an operating system for agents. Your working directory "
    "is the user's workspace; keep every file you create inside it. Every tool call passes "
    "llmos's policy gate: when a call is refused, read the reason and choose another way. "
    "Finish with a short summary of what you did."
)


def claude_sandbox_available() -> bool:
    """Whether Claude Code's own Bash sandbox can run here: it needs bubblewrap and socat
    on PATH, and without them it runs commands unsandboxed (with only a warning), so the
    kernel must know before it trusts a command to be confined."""
    import shutil

    if not (shutil.which("bwrap") and shutil.which("socat")):
        return False
    from llmos.security.sandbox import available

    return available().mechanism == "bwrap"


class CredentialsMissing(ConfigError):
    """No way to reach a model was configured."""


def check_credentials(environ: dict[str, str] | os._Environ[str] | None = None) -> None:
    environ = os.environ if environ is None else environ
    if not any(environ.get(name) for name in CREDENTIAL_VARS):
        raise CredentialsMissing(
            "no model credentials: set ANTHROPIC_API_KEY (export ANTHROPIC_API_KEY=sk-ant-...), "
            "or ANTHROPIC_BASE_URL to use any Anthropic-compatible endpoint such as a local "
            "model server (with ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN if it needs one)"
        )


def _home_secrets(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """The user's real home secrets (the CLI's HOME is elsewhere, but an absolute path
    still names them)."""
    home = environ.get("HOME")
    if not home or not os.path.isabs(home) or home == "/":
        return []
    return [f"{home.rstrip('/')}/{name}" for name in HOME_SECRETS]


def _sandbox_settings(kernel: Any, home_secrets: list[str]) -> dict[str, Any]:
    """The security library's settings for Claude Code's sandbox, plus reads denied of
    the user's home secrets."""
    from llmos.security.protected import protected_paths
    from llmos.security.sandbox import claude_code_sandbox_settings

    settings = claude_code_sandbox_settings(
        allowed_hosts=kernel.config.security.allowed_hosts,
        denied_hosts=kernel.config.security.denied_hosts,
        protected=protected_paths(kernel),
    )
    filesystem = settings.setdefault("filesystem", {})
    filesystem["denyRead"] = [*filesystem.get("denyRead", []), *home_secrets]
    return settings


def build_options(
    context: CallContext, bridge: HookBridge, budget_usd: float, stderr: deque[str],
    session: Session, proxy: MeteringProxy,
) -> Any:
    from claude_agent_sdk import ClaudeAgentOptions

    kernel = context.kernel
    cfg = kernel.config.cortex
    append = SYSTEM_PROMPT + (f"\n\n{cfg.system_prompt}" if cfg.system_prompt else "")
    server = mcp_server(context)
    sandboxed = claude_sandbox_available()
    context.extra["claude_sandbox"] = sandboxed
    home_secrets = _home_secrets(os.environ)
    cli_env = session.environment(base_url=proxy.base_url, token=proxy.token,
                                  timeout_s=cfg.timeout_s)
    return ClaudeAgentOptions(
        cwd=str(kernel.workspace.root),
        cli_path=str(session.cli_path),
        model=cfg.model,
        fallback_model=cfg.fallback_model,
        max_turns=cfg.max_turns,
        max_budget_usd=budget_usd if budget_usd > 0 else None,
        system_prompt={"type": "preset", "preset": "claude_code", "append": append},
        setting_sources=["user", "project", "local"] if cfg.load_user_settings else [],
        hooks=bridge.sdk_hooks(),
        mcp_servers={MCP_SERVER: server} if server is not None else {},
        include_partial_messages=True,
        disallowed_tools=[rule for path in home_secrets
                          for rule in (f"Read(/{path})", f"Read(/{path}/**)")],
        env=session.sdk_env(cli_env),
        stderr=stderr.append,
        # Claude Code's own Bash sandbox: the workspace is the only writable place but
        # llmos's own state (config, .llmos/, memory, generated plugins, git hooks), no
        # network but the allowed hosts, and no way to opt a command out of it.
        sandbox=_sandbox_settings(kernel, home_secrets) if sandboxed else None,
    )


def _metering_proxy(context: CallContext, cap_usd: float, progress: Progress | None
                    ) -> MeteringProxy:
    from llmos.cortex.proxy import MeteringProxy, ProxySettings, Upstream

    kernel = context.kernel
    cfg = kernel.config.cortex

    def notify(kind: str, data: dict[str, Any]) -> None:
        kernel.bus.publish(f"model.{kind}", run_id=context.run_id, **data)
        if progress is not None:
            progress(kind, data)

    settings = ProxySettings(
        run_cap_micro=to_micro(cap_usd),
        retry_max_s=cfg.retry_max_s,
        request_timeout_s=cfg.request_timeout_s,
        prices=dict(cfg.prices),
        prompt_estimate=cfg.prompt_estimate,
    )
    return MeteringProxy(kernel.economy, Upstream.from_environ(os.environ), settings,
                         run_id=context.run_id, notify=notify)


async def learn(
    context: CallContext,
    prompt: str,
    *,
    budget_usd: float,
    progress: Progress | None = None,
) -> ModeOutcome:
    """Carry out ``prompt`` with Claude Code; every tool call passes the kernel's gate and
    every model request passes the metering proxy (``budget_usd`` is the run's cap)."""
    check_credentials()
    kernel = context.kernel
    state = kernel.workspace.state_dir
    try:
        Session.sweep(state, kernel.config.cortex.transcripts)
        session = Session.create(state, context.run_id or uuid.uuid4().hex)
    except OSError as exc:
        from llmos.errors import OperationFailed

        raise OperationFailed(
            f"cannot prepare Claude Code's session under {state / 'cortex'}: {exc}; the "
            "workspace's .llmos/ directory must be writable by llmos"
        ) from None
    proxy = _metering_proxy(context, budget_usd, progress)
    outcome = ModeOutcome(success=False)
    try:
        proxy.bind()
        await _converse(context, prompt, budget_usd, progress, session, proxy, outcome)
    finally:
        session.kill()
        await proxy.stop()
        outcome.cost_usd = proxy.spent_usd
        outcome.input_tokens, outcome.output_tokens = proxy.input_tokens, proxy.output_tokens
        outcome.model_requests = proxy.requests
        outcome.details.update(model_retries=proxy.retries)
        context.extra.setdefault("charged_usd", []).append(proxy.spent_usd)
        context.extra.setdefault("tokens", []).append((proxy.input_tokens,
                                                       proxy.output_tokens))
        secrets = tuple(v for v in (proxy.token, *(os.environ.get(n) for n in
                                                    CREDENTIAL_VARS[:3])) if v)
        session.finish(kernel.config.cortex.transcripts, secrets)
        from llmos.durable.resume import session_done

        session_done(context, finished=sys.exc_info()[0] is None)
    if proxy.stopped or (proxy.fault and not outcome.success):
        # the proxy knows why better than the CLI's "API Error: ..."
        outcome.success = False
        outcome.error = proxy.fault
        if proxy.stopped:
            outcome.details["stopped"] = proxy.stopped
    elif proxy.fault:  # Claude Code recovered (e.g. compacted a prompt that was too long)
        outcome.details["model_fault"] = proxy.fault
    return outcome


async def _converse(context: CallContext, prompt: str, budget_usd: float,
                    progress: Progress | None, session: Session, proxy: MeteringProxy,
                    outcome: ModeOutcome) -> None:
    from claude_agent_sdk import (
        AssistantMessage,
        ClaudeSDKClient,
        ClaudeSDKError,
        ResultMessage,
        StreamEvent,
        TextBlock,
    )

    bridge = HookBridge(context, progress)
    stderr: deque[str] = deque(maxlen=40)
    options = build_options(context, bridge, budget_usd, stderr, session, proxy)
    # a mode's changes to the session (an agent's prompt, tools and model; the
    # orchestrator's tool-less planning session): callables taking and returning options
    for adjust in context.extra.get("adjust_options", ()):
        options = adjust(options)
    from llmos.durable.resume import resume_prompt, session_options

    # the session id comes from the run id, so `llmos runs resume` can continue it
    options = session_options(options, context, session.config_dir)
    prompt = resume_prompt(prompt, context)
    from llmos.export.recorder import ConversationRecorder

    recorder = ConversationRecorder(context, prompt, options)  # kept for training data
    texts: list[str] = []
    api_errors: list[str] = []
    # Claude Code boots for a few hundred ms before its first model request: meanwhile
    # the proxy starts (the CLI's connections wait in its listen backlog) and the policy
    # backend is built (the gate's first use), and, in a thread, the redaction's scanner
    # is built (the transcript mirror's first use) and the shell policy imported
    starting = asyncio.ensure_future(_start_while_cli_boots(proxy, session, context.kernel))
    saving: asyncio.Future[None] | None = None
    warming = asyncio.ensure_future(asyncio.to_thread(_warm_up))
    try:
        async with ClaudeSDKClient(options=options) as client:
            try:
                await starting  # its failure is the run's, before the prompt is sent
                await client.query(prompt)
                async for message in client.receive_response():
                    recorder.observe(message)
                    if isinstance(message, StreamEvent):
                        event = message.event
                        delta = event.get("delta") or {}
                        if event.get("type") == "content_block_delta" and delta.get("text"):
                            bridge.progress("text", {"text": delta["text"]})
                    elif isinstance(message, AssistantMessage):
                        if message.error:
                            api_errors.append(str(message.error))
                        texts.extend(b.text for b in message.content
                                     if isinstance(b, TextBlock))
                    elif isinstance(message, ResultMessage):
                        _apply_result(outcome, message, texts, api_errors)
            except BaseException:
                session.kill()  # at once: the SDK's own close waits for the CLI
                raise
            # the conversation is over: it is saved while the SDK's disconnect waits for
            # the CLI to exit (it flushes its session file once its stdin closes)
            saving = asyncio.ensure_future(_save_while_cli_exits(recorder))
    except ClaudeSDKError as exc:
        outcome.success = False
        outcome.error = _describe_sdk_error(exc, stderr)
    finally:
        for task in (starting, warming):  # done unless Claude Code did not start
            if not task.done():
                task.cancel()
        await asyncio.gather(starting, warming, return_exceptions=True)
        if saving is not None:
            await saving
    if saving is None:  # the conversation failed: what it recorded so far
        recorder.save()
    outcome.tool_calls = bridge.tool_calls
    if not outcome.output:
        outcome.output = "\n".join(texts).strip()


async def _start_while_cli_boots(proxy: MeteringProxy, session: Session,
                                 kernel: Any) -> None:
    """``proxy.start()`` once the CLI's process exists (its reaper has written its pid):
    the proxy's imports and set-up then run while the CLI boots, not before it starts.
    Then the kernel's security backend is built, on this thread (a backend may keep
    thread-bound state): the gate's first call would build it otherwise."""
    deadline = time.monotonic() + 2.0
    while not session.pidfile.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.002)
    await proxy.start()
    _build_security(kernel)


async def _save_while_cli_exits(recorder: Any) -> None:
    """``recorder.save()`` (on the loop's thread: it writes to the kernel's database) once
    the SDK's disconnect has had a moment to close the CLI's stdin; it then waits for the
    CLI to exit, which happens meanwhile on the other core."""
    await asyncio.sleep(0.005)
    recorder.save()


def _build_security(kernel: Any) -> None:
    """``kernel.security`` and the audit log ahead of the first tool call (the layered
    policy checks its rules' examples, or finds them checked). A backend that cannot be
    built is left to the gate, whose first call then fails to build it again and denies."""
    for name in ("security", "audit"):  # cached properties, built here
        try:
            getattr(kernel, name)
        except Exception:  # reported (and denied) by the gate itself
            continue


def _warm_up() -> None:
    """What the transcript mirror and the gate use first, built in a thread while the CLI
    boots: the redaction's scanner, and the shell policy's modules (the Bash grammar's
    parser, the programs' rules), imported on the first Bash call otherwise."""
    from llmos.memory.redaction import prebuild

    prebuild()
    try:
        import llmos.security.shell  # noqa: F401
    except Exception:  # the gate imports it again, fails and denies
        return


def _apply_result(
    outcome: ModeOutcome, message: Any, texts: list[str], api_errors: list[str]
) -> None:
    outcome.details.update(num_turns=message.num_turns, session_id=message.session_id,
                           cli_cost_usd=message.total_cost_usd)
    outcome.output = (message.result or "\n".join(texts)).strip()
    outcome.success = not message.is_error and message.subtype == "success"
    if outcome.success:
        return
    reasons = {
        "error_max_turns": "the run reached its turn limit (cortex.max_turns)",
        "error_max_budget_usd": "stopped on its cap: Claude Code counted the run's cost up to "
                                "budget.run_cap_usd",
        "error_during_execution": "Claude Code failed during execution",
    }
    reason = reasons.get(message.subtype, f"the run ended with {message.subtype}")
    status = getattr(message, "api_error_status", None)
    if status:
        reason = f"the model service answered HTTP {status}" + (
            " (overloaded)" if status == 529 else " (rate limited)" if status == 429 else ""
        )
    details = [*api_errors, *(message.errors or [])]
    if message.result and message.is_error:
        details.append(message.result)
    outcome.error = reason + (f": {'; '.join(dict.fromkeys(details))}" if details else "")


def _describe_sdk_error(exc: Exception, stderr: deque[str]) -> str:
    tail = " | ".join(line.strip() for line in list(stderr)[-5:] if line.strip())
    text = f"Claude Code failed: {type(exc).__name__}: {exc}"
    return f"{text} (stderr: {tail})" if tail else text


async def learn_paid(
    context: CallContext, prompt: str, *, progress: Progress | None = None, what: str = "LEARNER"
) -> ModeOutcome:
    """``learn`` under the run's cap, ``budget.run_cap_usd``.

    Paid work needs a positive cap and a balance that covers it (``LowBatteryError``
    before Claude Code starts). Each model request then reserves its own worst case
    through the metering proxy and is committed at its real cost, so the ledger holds
    exactly what was spent, including on a run stopped by its cap or interrupted.
    """
    kernel = context.kernel
    cap = kernel.config.budget.run_cap_usd
    if context.extra.get("run_cap_usd"):  # an agent's budget_usd lowers the run's cap
        cap = min(cap, float(context.extra["run_cap_usd"]))
    from llmos.durable.resume import resume_point

    if (point := resume_point(context)) is not None:  # what it spent before still counts
        cap = max(0.0, cap - point.spent_usd)
    available = kernel.economy.available_micro
    if cap <= 0:
        raise LowBatteryError(0, available, f"{what} run (budget.run_cap_usd is 0: no paid "
                              "work; set it with --set budget.run_cap_usd=USD)")
    if to_micro(cap) > available:
        raise LowBatteryError(to_micro(cap), available, f"a {what} run (its cap, "
                              "budget.run_cap_usd)")
    return await learn(context, prompt, budget_usd=cap, progress=progress)
