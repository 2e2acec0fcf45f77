"""A recorded LEARNER run that used web_fetch replays in FOLLOWER mode: no model request,
the page fetched again through the gate (the pack's SSRF hook and the kernel's policy)."""

from __future__ import annotations

from pathlib import Path

import pytest
from llmos import LLMOS

pytestmark = pytest.mark.cli

ARTICLE = """<html><head><title>Tide tables</title></head><body><article>
<h1>Tide tables</h1><p>High tide comes twice a day, about 12 hours and 25 minutes apart,
because the Moon pulls the oceans as the Earth turns beneath it.</p>
<p>Spring tides follow the new and full moons.</p></article></body></html>"""


@pytest.fixture
def llmos_settings() -> list[str]:
    # the real default policy this time: both the kernel's and the pack's host lists
    return ['web.allowed_hosts=["127.0.0.1"]', 'security.allowed_hosts=["127.0.0.1"]',
            "budget.run_cap_usd=0.5"]


async def test_a_learned_web_fetch_run_replays_without_the_model(
    site, llmos_workspace: Path, llmos_model_server, llmos_settings
):
    site.page("/tides", ARTICLE)
    summary = llmos_workspace / "summary.md"
    goal = f"Fetch {site.url('/tides')} with web_fetch and write a summary to summary.md"
    llmos_model_server.script.tool_use(
        "mcp__llmos__web_fetch", {"url": site.url("/tides"), "format": "markdown"}
    ).tool_use(
        "Write", {"file_path": str(summary), "content": "# Tide tables\n- twice a day\n"}
    ).text("Summary written.")

    async with LLMOS(llmos_workspace, budget_usd=2, settings=llmos_settings) as llm_os:
        learned = await llm_os.execute(goal)
        assert learned.success and learned.mode == "LEARNER", learned.error
        assert "High tide comes twice a day" in llmos_model_server.tool_result(
            "toolu_000_0").text
        summary.unlink()
        requests = llmos_model_server.model_request_count

        replayed = await llm_os.execute(goal)
        assert replayed.success, replayed.error
        assert (replayed.mode, replayed.model_requests, replayed.cost_usd) == ("FOLLOWER", 0, 0)
        assert llmos_model_server.model_request_count == requests
        assert summary.read_text() == "# Tide tables\n- twice a day\n"
        steps = llm_os.kernel.memory.run_steps(replayed.run_id)
        assert [(s.tool, s.source) for s in steps] == [("web_fetch", "replay"),
                                                       ("Write", "replay")]
