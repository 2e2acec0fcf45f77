"""End to end through the CLI on PostgreSQL: two workspaces (two workers' machines) point at
one database; what one learns the other replays at $0, and they share one budget."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from llmos.cli import cli
from llmos.testing.model_server import Usage

pytestmark = pytest.mark.cli

GOAL = "Create alpha.txt containing alpha"


def make_llmos(workspace: Path, dsn: str):
    workspace.mkdir(parents=True, exist_ok=True)

    def llmos(*args: str):
        settings = ["--set", "memory.backend=postgres", "--set", f"memory.dsn={dsn}",
                    "--set", "budget.run_cap_usd=0.5"]
        return CliRunner().invoke(cli, ["--workspace", str(workspace), *settings, *args])

    return llmos


def test_two_workspaces_share_memory_and_budget_through_postgres(
        tmp_path: Path, llmos_postgres_db: str, llmos_model_server) -> None:
    first_ws, second_ws = tmp_path / "one", tmp_path / "two"
    first, second = make_llmos(first_ws, llmos_postgres_db), make_llmos(
        second_ws, llmos_postgres_db)
    assert first("budget", "set", "5").exit_code == 0
    # one budget: the second workspace sees what the first set
    status = json.loads(second("budget", "--json").stdout)
    assert status["balance_usd"] == 5 and status["reserved_usd"] == 0

    # an absolute path into the first workspace: the second worker's workspace is
    # elsewhere, and the trace's paths lead into it there
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(first_ws / "alpha.txt"), "content": "alpha\n"},
        usage=Usage(1500, 60)).text("Created alpha.txt.", usage=Usage(1600, 10))
    result = first("run", "--json", GOAL)
    assert result.exit_code == 0, result.output
    learned = json.loads(result.stdout)
    assert learned["mode"] == "LEARNER" and learned["success"] and learned["cost_usd"] > 0
    assert (first_ws / "alpha.txt").read_text() == "alpha\n"
    requests = llmos_model_server.model_request_count

    # the trace is in PostgreSQL, so the other workspace finds it and would replay it
    traces = json.loads(second("traces", "list", "--json").stdout)
    assert [t["goal_text"] for t in traces] == [GOAL]
    route = json.loads(second("route", "--json", GOAL).stdout)
    assert route["chosen"] == "FOLLOWER" and route["matched_trace"]["trace_id"] == traces[0]["id"]

    result = second("run", "--json", GOAL)
    assert result.exit_code == 0, result.output
    replayed = json.loads(result.stdout)
    assert replayed["mode"] == "FOLLOWER" and replayed["success"], replayed
    assert replayed["cost_usd"] == 0, second("runs", "show", replayed["run_id"]).output
    assert llmos_model_server.model_request_count == requests  # no model request
    assert (second_ws / "alpha.txt").read_text() == "alpha\n"

    # both runs, the shared ledger and the trace's use are readable from either side
    runs = json.loads(first("runs", "list", "--json").stdout)
    assert {r["id"] for r in runs} == {learned["run_id"], replayed["run_id"]}
    spent = json.loads(second("budget", "--json").stdout)
    assert spent["balance_usd"] == pytest.approx(5 - learned["cost_usd"])
    history = json.loads(second("budget", "history", "--json").stdout)
    assert learned["run_id"] in {e["run_id"] for e in history}
    assert json.loads(first("traces", "list", "--json").stdout)[0]["usage_count"] >= 1
    # nothing of it went to the workspaces' SQLite memory: it is all in the database
    with psycopg.connect(llmos_postgres_db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM memory_runs").fetchone()
    assert count == 2
