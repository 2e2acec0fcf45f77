"""Spend is bounded: no run, alone or among many concurrent ones, takes the balance below
zero, and what every run spent is booked even when it ends on its cap.

Real ``llmos run`` processes drive the real Claude Code CLI through llmos's metering
proxy against the scripted model server; the ledger is the real SQLite database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmos.kernel import Kernel
from llmos.testing.model_server import Usage

pytestmark = pytest.mark.cli

LLMOS = str(Path(sys.executable).parent / "llmos")
# claude-opus-5 (the CLI's default model here) at $4 / $20 per million tokens
IN, OUT = 4e-6, 20e-6


def kernel_for(workspace) -> Kernel:
    return Kernel(workspace, load_entry_points=False)


def run_json(cli, *args):
    result = cli(*args)
    data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result, data


def test_a_zero_cap_means_no_paid_work(llmos_cli, llmos_model_server, llmos_workspace):
    llmos_cli("budget", "set", "5")
    llmos_model_server.script.text("never sent")
    result = llmos_cli("--set", "budget.run_cap_usd=0", "run", "Anything")
    assert result.exit_code == 3
    assert "no paid work" in result.output and "budget.run_cap_usd" in result.output
    assert llmos_model_server.model_request_count == 0
    assert kernel_for(llmos_workspace).economy.balance_micro == 5_000_000


def test_a_run_stopped_on_its_cap_exits_3_with_its_tokens_booked(
    llmos_cli, llmos_model_server, llmos_workspace
):
    llmos_cli("budget", "set", "5")
    llmos_model_server.script.tool_use(
        "Bash", {"command": "ls"}, usage=Usage(20_000, 2_000)
    ).text("never reached", usage=Usage(20_000, 2_000))
    result, data = run_json(llmos_cli, "--set", "budget.run_cap_usd=0.25", "run", "--json",
                            "List the files")
    assert result.exit_code == 3, result.output
    assert data["error"].startswith("stopped on its cap")
    assert "budget.run_cap_usd" in data["error"]
    # the paid turn is booked, tokens included; the refused one was never sent
    assert (data["input_tokens"], data["output_tokens"]) == (20_000, 2_000)
    assert data["cost_usd"] == pytest.approx(20_000 * IN + 2_000 * OUT)
    assert len(llmos_model_server.conversation_requests) == 1
    economy = kernel_for(llmos_workspace).economy
    assert economy.run_spent_micro(data["run_id"]) == round(data["cost_usd"] * 1e6)
    assert economy.status()["reserved_micro"] == 0
    run = kernel_for(llmos_workspace).memory.get_run(data["run_id"])
    assert run.status == "failed" and run.input_tokens == 20_000


def test_a_request_is_lowered_to_what_the_cap_can_pay_for(
    llmos_cli, llmos_model_server, llmos_workspace
):
    """max_tokens is lowered so that the worst case fits; the answer cannot cost more."""
    llmos_cli("budget", "set", "5")
    llmos_model_server.script.text("a long answer", usage=Usage(10_000, 100_000))
    _result, data = run_json(llmos_cli, "--set", "budget.run_cap_usd=0.3", "run", "--json",
                            "Write a lot")
    asked = llmos_model_server.conversation_requests[0].body["max_tokens"]
    assert asked < 32_000  # the CLI asks for far more
    assert data["output_tokens"] == asked
    assert data["cost_usd"] <= 0.3
    assert kernel_for(llmos_workspace).economy.status()["reserved_micro"] == 0


def _start(workspace: Path, goal: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([LLMOS, "-w", str(workspace), "run", "--json", goal], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize(("balance", "cap", "runs"), [("0.10", "0.02", 6), ("1.00", "0.4", 6)])
def test_concurrent_runs_with_large_turns_never_take_the_balance_below_zero(
    llmos_model_server, llmos_workspace, balance, cap, runs
):
    for _ in range(runs * 3):
        # each turn as large as the request allows: 20k prompt tokens, all of max_tokens
        llmos_model_server.script.tool_use("Bash", {"command": "ls"},
                                           usage=Usage(20_000, 128_000))
    env = {**os.environ, "LLMOS_KERNEL__INTERACTIVE": "never", "LLMOS_BUDGET__RUN_CAP_USD": cap}
    subprocess.run([LLMOS, "-w", str(llmos_workspace), "budget", "set", balance], check=True,
                   env=env, capture_output=True)
    procs = [_start(llmos_workspace, f"Task {i}", env) for i in range(runs)]
    codes = []
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        codes.append(proc.returncode)
        assert b"Traceback" not in err, err.decode()[-2000:]
    assert set(codes) <= {0, 1, 3}, codes
    economy = kernel_for(llmos_workspace).economy
    status = economy.status()
    assert status["reserved_micro"] == 0
    assert status["balance_micro"] >= 0
    history = economy.history(limit=10_000)
    assert all(entry["balance_usd"] >= 0 for entry in history)
    spent = sum(e["amount_usd"] for e in history if e["kind"] == "commit")
    assert spent == pytest.approx(float(balance) - status["balance_usd"], abs=1e-6)
    # every paid request is booked with its tokens
    paid = [e for e in history if e["kind"] == "commit" and e["amount_usd"] > 0]
    assert all(e["input_tokens"] > 0 for e in paid)
    assert len(paid) == len(llmos_model_server.conversation_requests)
    if float(cap) < 0.15:  # not even one Claude Code request fits in such a cap
        assert set(codes) == {3} and not paid
    else:
        assert 3 in codes and paid


def test_claude_codes_own_cap_count_also_ends_the_run_with_exit_3(
    llmos_cli, llmos_model_server, llmos_workspace
):
    """Where Claude Code prices the model higher than llmos does, its own count reaches
    the cap first; that is a stop on the cap too."""
    llmos_cli("budget", "set", "5")
    for _ in range(3):
        llmos_model_server.script.tool_use("Bash", {"command": "ls"},
                                           usage=Usage(20_000, 5_000))
    result, data = run_json(llmos_cli, "--set", "budget.run_cap_usd=0.3", "--set",
                            'cortex.prices={"claude-opus-5": [0.4, 2.0]}', "run", "--json",
                            "List")
    assert result.exit_code == 3, result.output
    assert data["error"].startswith("stopped on its cap: Claude Code counted")
    # llmos booked its own (cheaper) price for every request that was made
    assert data["cost_usd"] == pytest.approx(
        len(llmos_model_server.conversation_requests) * (20_000 * 0.4 + 5_000 * 2.0) / 1e6)
    assert kernel_for(llmos_workspace).economy.status()["reserved_micro"] == 0
