"""Model-service faults, through the metering proxy, with the real Claude Code CLI.

llmos retries 429/5xx/529 and timeouts itself (each retry shown as it happens), within
``cortex.retry_max_s``; 401/403 fail at once with what to fix; malformed or cut-off
answers fail with the reason. Whatever happens, the budget is settled: nothing stays
reserved and what was charged is in the ledger.
"""

from __future__ import annotations

import json
import time

import pytest

from llmos.kernel import Kernel
from llmos.testing.model_server import Usage

pytestmark = pytest.mark.cli


@pytest.fixture
def llmos_settings():
    return ["budget.run_cap_usd=0.5", "cortex.retry_max_s=3"]


@pytest.fixture
def funded(llmos_cli):
    assert llmos_cli("budget", "set", "5").exit_code == 0
    return llmos_cli


def run_json(cli, *args):
    result = cli(*args)
    data = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result, data


def settled(workspace, run_id):
    """Nothing reserved any more, and what the ledger charged the run."""
    economy = Kernel(workspace, load_entry_points=False).economy
    assert economy.status()["reserved_micro"] == 0
    assert economy.open_reservations() == []
    return economy.run_spent_micro(run_id) / 1e6


@pytest.mark.parametrize("status", [500, 529, 429])
def test_a_passing_fault_is_retried_shown_and_the_run_succeeds(
    funded, llmos_model_server, llmos_workspace, status
):
    llmos_model_server.script.error(status).text("recovered", usage=Usage(500, 10))
    result = funded("run", "Anything")
    assert result.exit_code == 0, result.output
    assert f"HTTP {status}" in result.output and "attempt 2" in result.output
    assert "cortex.retry_max_s" in result.output
    assert len(llmos_model_server.conversation_requests) == 2
    run = Kernel(llmos_workspace, load_entry_points=False).memory.list_runs()[0]
    assert run.status == "succeeded" and run.output == "recovered"
    assert settled(llmos_workspace, run.id) == pytest.approx(run.cost_usd)


def test_retries_are_shown_on_stderr_with_json(funded, llmos_model_server):
    llmos_model_server.script.error(529).text("recovered")
    result, data = run_json(funded, "run", "--json", "Anything")
    assert result.exit_code == 0 and data["success"]
    assert "HTTP 529 (overloaded)" in result.stderr


@pytest.mark.parametrize("status", [500, 529])
def test_a_lasting_fault_fails_within_the_retry_bound(
    funded, llmos_model_server, llmos_workspace, status
):
    for _ in range(40):
        llmos_model_server.script.error(status)
    started = time.monotonic()
    result, data = run_json(funded, "run", "--json", "Anything")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert f"HTTP {status}" in data["error"] and "cortex.retry_max_s = 3" in data["error"]
    assert "gave up" in data["error"]
    # the retries stopped at the bound: 3 s of retrying plus the CLI's own start and end
    assert elapsed < 3 + 25
    assert 2 <= len(llmos_model_server.conversation_requests) < 40
    assert settled(llmos_workspace, data["run_id"]) == 0


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_fail_at_once_with_what_to_fix(
    funded, llmos_model_server, llmos_workspace, status
):
    for _ in range(5):
        llmos_model_server.script.error(status)
    result, data = run_json(funded, "run", "--json", "Anything")
    assert result.exit_code == 1
    assert f"HTTP {status}" in data["error"] and "ANTHROPIC_API_KEY" in data["error"]
    assert len(llmos_model_server.conversation_requests) == 1  # not retried
    assert "attempt" not in result.stderr
    assert settled(llmos_workspace, data["run_id"]) == 0


def test_retry_after_is_honoured(funded, llmos_model_server):
    llmos_model_server.script.rate_limited(retry_after=1.5).text("after the wait")
    result, data = run_json(funded, "run", "--json", "Anything")
    assert result.exit_code == 0 and data["output"] == "after the wait"
    first, second = llmos_model_server.conversation_requests
    assert second.received_at - first.received_at >= 1.5
    assert "in 1.5 s" in result.stderr


def test_a_retry_after_beyond_the_bound_fails_at_once(funded, llmos_model_server):
    llmos_model_server.script.rate_limited(retry_after=30).text("never")
    started = time.monotonic()
    result, data = run_json(funded, "run", "--json", "Anything")
    assert time.monotonic() - started < 25  # not 30 s of waiting
    assert result.exit_code == 1
    assert "asked to wait 30 s" in data["error"] and "cortex.retry_max_s = 3" in data["error"]
    assert len(llmos_model_server.conversation_requests) == 1


def test_a_hanging_service_is_abandoned_within_the_bounds(
    funded, llmos_model_server, llmos_workspace
):
    for _ in range(10):
        llmos_model_server.script.hang()
    started = time.monotonic()
    result, data = run_json(funded, "--set", "cortex.request_timeout_s=1", "run", "--json",
                            "Anything")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert "no answer" in data["error"] and "ReadTimeout" in data["error"]
    assert elapsed < 1 + 3 + 1 + 25  # one attempt, the retry bound, one more attempt
    # the service got the request and may bill it: charged what it may have cost
    assert settled(llmos_workspace, data["run_id"]) == pytest.approx(data["cost_usd"])
    assert 0 < data["cost_usd"] <= 0.5


def test_an_unreachable_service_fails_within_the_bound_and_costs_nothing(
    funded, llmos_model_server, llmos_workspace, monkeypatch
):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
    # at $0.05 the prompt's size in bytes does not fit and count_tokens cannot be asked
    result, data = run_json(funded, "--set", "budget.run_cap_usd=0.05", "run", "--json",
                            "Anything")
    assert result.exit_code == 3, result.output
    assert "count_tokens failed (ConnectError" in data["error"]
    result, data = run_json(funded, "--set", "budget.run_cap_usd=2", "run", "--json", "Again")
    assert result.exit_code == 1, result.output
    assert "ConnectError" in data["error"] and "gave up" in data["error"]
    assert settled(llmos_workspace, data["run_id"]) == 0


def test_a_malformed_answer_fails_with_the_reason(funded, llmos_model_server, llmos_workspace):
    llmos_model_server.script.malformed()
    result, data = run_json(funded, "run", "--json", "Anything")
    assert result.exit_code == 1
    assert "malformed" in data["error"] and "not JSON" in data["error"]
    # what the request may have cost is charged, not hidden
    assert settled(llmos_workspace, data["run_id"]) == pytest.approx(data["cost_usd"])
    assert data["cost_usd"] > 0


def test_a_cut_off_answer_fails_with_the_reason(funded, llmos_model_server, llmos_workspace):
    llmos_model_server.script.truncated()
    result, data = run_json(funded, "run", "--json", "Anything")
    assert result.exit_code == 1
    assert "cut off" in data["error"] and "message_stop" in data["error"]
    assert settled(llmos_workspace, data["run_id"]) == pytest.approx(data["cost_usd"])
    assert data["cost_usd"] > 0


def test_a_fault_after_paid_turns_keeps_their_cost(funded, llmos_model_server, llmos_workspace):
    llmos_model_server.script.tool_use("Bash", {"command": "ls"}, usage=Usage(1000, 50))
    for _ in range(20):
        llmos_model_server.script.error(500)
    result, data = run_json(funded, "run", "--json", "List")
    assert result.exit_code == 1
    assert data["input_tokens"] == 1000 and data["output_tokens"] == 50
    assert data["cost_usd"] == pytest.approx((1000 * 4 + 50 * 20) / 1e6)
    assert settled(llmos_workspace, data["run_id"]) == pytest.approx(data["cost_usd"])


def test_an_answer_that_stalls_midway_is_cut_off_at_the_request_timeout(
    funded, llmos_model_server, llmos_workspace
):
    llmos_model_server.script.hang(mid_stream=True)
    result, data = run_json(funded, "--set", "cortex.request_timeout_s=1", "run", "--json",
                            "Anything")
    assert result.exit_code == 1, result.output
    assert "cut off" in data["error"] and "cortex.request_timeout_s" in data["error"]
    # the service had started answering: the request is charged what it may have cost
    assert settled(llmos_workspace, data["run_id"]) == pytest.approx(data["cost_usd"])
    assert data["cost_usd"] > 0
