"""A LEARNER session: one claude-agent-sdk client per run, the kernel in control.

The SDK does the agent loop, the tools, streaming and cost accounting; this module sets
its options from config, bridges its hooks to the kernel's gate, and turns what comes
back into an outcome with the real cost and token usage.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

from llmos.calls import CallContext
from llmos.config import ConfigError
from llmos.cortex.bridge import MCP_SERVER, HookBridge, Progress, mcp_server
from llmos.runner import ModeOutcome

CREDENTIAL_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
)

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


def _usage_tokens(usage: dict[str, Any] | None) -> tuple[int, int]:
    usage = usage or {}
    inputs = sum(
        int(usage.get(key) or 0)
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return inputs, int(usage.get("output_tokens") or 0)


def build_options(
    context: CallContext, bridge: HookBridge, budget_usd: float, stderr: deque[str]
) -> Any:
    from claude_agent_sdk import ClaudeAgentOptions

    from llmos.security.sandbox import claude_code_sandbox_settings

    kernel = context.kernel
    cfg = kernel.config.cortex
    append = SYSTEM_PROMPT + (f"\n\n{cfg.system_prompt}" if cfg.system_prompt else "")
    server = mcp_server(context)
    sandboxed = claude_sandbox_available()
    context.extra["claude_sandbox"] = sandboxed
    return ClaudeAgentOptions(
        cwd=str(kernel.workspace.root),
        model=cfg.model,
        fallback_model=cfg.fallback_model,
        max_turns=cfg.max_turns,
        max_budget_usd=budget_usd if budget_usd > 0 else None,
        system_prompt={"type": "preset", "preset": "claude_code", "append": append},
        setting_sources=["user", "project", "local"] if cfg.load_user_settings else [],
        hooks=bridge.sdk_hooks(),
        mcp_servers={MCP_SERVER: server} if server is not None else {},
        include_partial_messages=True,
        env={
            # offer plugin tools directly instead of behind the CLI's ToolSearch tool
            "ENABLE_TOOL_SEARCH": "false",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        },
        stderr=stderr.append,
        # Claude Code's own Bash sandbox: the workspace is the only writable place, no
        # network but the allowed hosts, and no way to opt a command out of it.
        sandbox=claude_code_sandbox_settings(
            allowed_hosts=kernel.config.security.allowed_hosts,
            denied_hosts=kernel.config.security.denied_hosts,
        )
        if sandboxed
        else None,
    )


async def learn(
    context: CallContext,
    prompt: str,
    *,
    budget_usd: float,
    progress: Progress | None = None,
) -> ModeOutcome:
    """Carry out ``prompt`` with Claude Code; every tool call passes the kernel's gate."""
    from claude_agent_sdk import (
        AssistantMessage,
        ClaudeSDKClient,
        ClaudeSDKError,
        ResultMessage,
        StreamEvent,
        TextBlock,
    )

    check_credentials()
    bridge = HookBridge(context, progress)
    stderr: deque[str] = deque(maxlen=40)
    options = build_options(context, bridge, budget_usd, stderr)
    outcome = ModeOutcome(success=False)
    texts: list[str] = []
    api_errors: list[str] = []
    try:
        async with ClaudeSDKClient(options=options) as client:
            await client.query(prompt)
            async for message in client.receive_response():
                if isinstance(message, StreamEvent):
                    event = message.event
                    delta = event.get("delta") or {}
                    if event.get("type") == "content_block_delta" and delta.get("text"):
                        bridge.progress("text", {"text": delta["text"]})
                elif isinstance(message, AssistantMessage):
                    outcome.model_requests += 1
                    if message.error:
                        api_errors.append(str(message.error))
                    texts.extend(b.text for b in message.content if isinstance(b, TextBlock))
                elif isinstance(message, ResultMessage):
                    _apply_result(outcome, message, texts, api_errors)
    except ClaudeSDKError as exc:
        outcome.success = False
        outcome.error = _describe_sdk_error(exc, stderr)
    outcome.tool_calls = bridge.tool_calls
    if not outcome.output:
        outcome.output = "\n".join(texts).strip()
    return outcome


def _apply_result(
    outcome: ModeOutcome, message: Any, texts: list[str], api_errors: list[str]
) -> None:
    outcome.cost_usd = float(message.total_cost_usd or 0.0)
    outcome.input_tokens, outcome.output_tokens = _usage_tokens(message.usage)
    outcome.details.update(num_turns=message.num_turns, session_id=message.session_id)
    outcome.output = (message.result or "\n".join(texts)).strip()
    outcome.success = not message.is_error and message.subtype == "success"
    if outcome.success:
        return
    reasons = {
        "error_max_turns": "the run reached its turn limit (cortex.max_turns)",
        "error_max_budget_usd": "the run reached its budget cap (budget.run_cap_usd)",
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
    """``learn`` inside a budget reservation of ``budget.run_cap_usd``.

    The cap is reserved first (``LowBatteryError`` before any model request when it does
    not fit); the real cost is committed afterwards. A run cut off midway (watchdog,
    Ctrl-C) has an unknown cost, so the whole cap is charged.
    """
    kernel = context.kernel
    cap = kernel.config.budget.run_cap_usd
    reservation = kernel.economy.reserve(cap, run_id=context.run_id, what=f"{what} run")
    charged = context.extra.setdefault("charged_usd", [])
    try:
        outcome = await learn(context, prompt, budget_usd=cap, progress=progress)
    except BaseException:
        kernel.economy.commit(reservation, cap,
                              description=f"{what} cut off: cost unknown, charged the cap")
        charged.append(cap)
        raise
    kernel.economy.commit(
        reservation,
        outcome.cost_usd,
        description=f"{what}: {prompt.splitlines()[0][:60]}",
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
    )
    charged.append(outcome.cost_usd)
    return outcome
