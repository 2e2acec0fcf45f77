"""The dashboard's pages over real stores, in process: what a run, its sub-goals and a
trace show, untrusted text escaped, unknown records a 404."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from llmos.kernel import Kernel
from llmos.memory.models import Step, StepOutcome
from llmos.ui.app import create_app

TOKEN = "t0ken-for-tests"


@pytest.fixture
def kernel(llmos_workspace):
    return Kernel(llmos_workspace, load_entry_points=False)


@pytest.fixture
def client(kernel):
    with TestClient(create_app(kernel, TOKEN), base_url="http://127.0.0.1") as c:
        c.get(f"/?token={TOKEN}")  # sets the cookie, as the printed URL does
        yield c


def test_a_run_shows_its_sub_goals_steps_and_trace(kernel, client):
    memory = kernel.memory
    parent = memory.start_run("Plan the <b>report</b>", "ORCHESTRATOR")
    child = memory.start_run("Write <script>alert(1)</script>", "LEARNER", parent_run=parent)
    memory.record_step(child, Step(tool="Write", input={"file_path": "r.md", "content": "r"},
                                   outcome=StepOutcome(excerpt="File created")))
    memory.finish_run(child, success=True, cost_usd=0.0123, duration_s=2.5, output="done")
    memory.finish_run(parent, success=True, cost_usd=0.002, duration_s=3.0)
    trace = memory.save_trace(memory.trace_from_run(child))
    memory.set_run_trace(child, trace.id)

    runs = client.get("/").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in runs and "<script>alert" not in runs
    assert f'href="/runs/{child}"' in runs and "sub-goal of" in runs

    page = client.get(f"/runs/{parent}").text
    assert "Sub-goals" in page and f'data-run="{child}"' in page
    page = client.get(f"/runs/{child}").text
    assert "$0.0123" in page and "2.5 s" in page and "File created" in page
    assert f'href="/traces/{trace.id}"' in page

    page = client.get(f"/traces/{trace.id}").text
    assert "1 verified, 0 failed, 0 diverged of 1 uses" in page
    memory.update_trace_stats(trace.id, "refused", reason="the policy refused Write")
    page = client.get(f"/traces/{trace.id}").text
    assert "demoted" in page and "the policy refused Write" in page


def test_unknown_records_are_404(client):
    assert client.get("/runs/nosuchrun").status_code == 404
    assert client.get("/runs/..%2F..%2Fetc").status_code == 404
    assert client.get("/traces/nosuchtrace").status_code == 404


def test_the_series_follow_the_dispatch_log_and_the_ledger(kernel, client):
    from llmos.learning.stats import DispatchLog

    kernel.economy.set_balance(3)
    log = DispatchLog(kernel.db)
    log.record(run_id="a", mode="LEARNER", success=True, cost_usd=0.5)
    log.record(run_id="b", mode="FOLLOWER", success=True, cost_usd=0.0, saved_usd=0.5)
    series = client.get("/api/series").json()
    assert [p["hit_rate"] for p in series["savings"]] == [0.0, 0.5]
    assert series["savings"][-1]["saved_usd"] == 0.5
    assert series["budget"][-1]["balance_usd"] == 3
