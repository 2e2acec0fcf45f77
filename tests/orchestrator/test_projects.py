"""Projects: their own folder and memory; a trace replays in another project only when
both allow sharing."""

from __future__ import annotations

import json

import pytest

from llmos import LLMOS
from llmos.testing.model_server import Usage

pytestmark = pytest.mark.cli

GOAL = "Create alpha.txt containing alpha"


def script_write(server, folder) -> None:
    server.script.tool_use("Write", {"file_path": str(folder / "alpha.txt"),
                                     "content": "alpha\n"}, usage=Usage(1500, 60))
    server.script.text("Created alpha.txt.", usage=Usage(1600, 10))


def projects(llmos_cli, *specs: tuple[str, bool]) -> None:
    for name, share in specs:
        args = ["projects", "new", name] + (["--share-traces"] if share else [])
        assert llmos_cli(*args).exit_code == 0


async def run_in(workspace, project, goal):
    async with LLMOS(workspace, budget_usd=5, settings=["budget.run_cap_usd=0.5"],
                     project=project) as os_:
        return await os_.execute(goal), os_.route(goal)


async def test_memory_is_the_projects_own(llmos_workspace, llmos_model_server, llmos_cli):
    projects(llmos_cli, ("alpha", False), ("beta", False))
    script_write(llmos_model_server, llmos_workspace / "projects" / "alpha")
    learned, _ = await run_in(llmos_workspace, "alpha", GOAL)
    assert learned.success and learned.mode == "LEARNER", learned.error
    assert (llmos_workspace / "projects" / "alpha" / "alpha.txt").is_file()
    assert not (llmos_workspace / "alpha.txt").exists()

    async with LLMOS(llmos_workspace, budget_usd=5, project="beta") as beta:
        assert beta.route(GOAL)["chosen"] == "LEARNER"
        assert beta.route(GOAL)["matched_trace"] is None
    async with LLMOS(llmos_workspace, budget_usd=5) as root:
        assert root.route(GOAL)["matched_trace"] is None
    async with LLMOS(llmos_workspace, budget_usd=5, project="alpha") as alpha:
        assert alpha.route(GOAL)["chosen"] == "FOLLOWER"

    shown = json.loads(llmos_cli("projects", "show", "alpha", "--json").stdout)
    assert shown["runs"] == 1 and shown["traces"] == 1
    assert json.loads(llmos_cli("projects", "show", "beta", "--json").stdout)["runs"] == 0
    missing = llmos_cli("--project", "gamma", "runs", "list")
    assert missing.exit_code == 2 and "llmos projects new gamma" in missing.output


async def test_sharing_projects_replay_each_others_traces(
        llmos_workspace, llmos_model_server, llmos_cli):
    projects(llmos_cli, ("one", True), ("two", True), ("private", False))
    script_write(llmos_model_server, llmos_workspace / "projects" / "one")
    learned, _ = await run_in(llmos_workspace, "one", GOAL)
    assert learned.success, learned.error
    requests = llmos_model_server.model_request_count

    replayed, _ = await run_in(llmos_workspace, "two", GOAL)
    assert replayed.success and replayed.mode == "FOLLOWER", replayed.error
    assert replayed.matched_trace == learned.trace_id
    assert llmos_model_server.model_request_count == requests
    # the replay wrote into its own project's folder
    assert (llmos_workspace / "projects" / "two" / "alpha.txt").read_text() == "alpha\n"
    async with LLMOS(llmos_workspace, budget_usd=5, project="private") as private:
        assert private.route(GOAL)["matched_trace"] is None

    report = json.loads(llmos_cli("insights", "--json").stdout)
    by_project = {p["project"]: p for p in report["projects"]}
    assert by_project["one"]["runs"] == 1 and by_project["one"]["spend_usd"] > 0
    assert by_project["two"]["replays"] == 1
    assert by_project["two"]["saved_usd"] == pytest.approx(learned.cost_usd)
    [pattern] = report["patterns"]
    assert pattern["projects"] == {"one": 1, "two": 1} and pattern["replayed"] == 1
