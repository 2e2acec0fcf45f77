"""Trust is earned: rejected code never runs, stored code is out of the agent's reach and
checked against its address, a crystal's calls pass every pack's gate, and crystallizing
on its own happens only for goals replay cannot serve."""

from __future__ import annotations

import json

import pytest

import llmos
from llmos import LLMOS
from llmos.calls import Decision
from llmos.crystallize.store import CrystalStore
from llmos.errors import OperationFailed
from tests.crystallize.test_lifecycle import (
    SETTINGS,
    code_reply,
    crystallized,
    goal,
    learned_twice,
    write_lines,
)

pytestmark = pytest.mark.cli


@pytest.fixture
async def llm_os(llmos_workspace, llmos_model_server):
    async with LLMOS(llmos_workspace, budget_usd=5, settings=SETTINGS) as os_:
        yield os_


async def test_generated_code_with_forbidden_operations_is_rejected_and_never_runs(
        llm_os, llmos_model_server, llmos_workspace):
    server, ws = llmos_model_server, llmos_workspace
    _, second = await learned_twice(llm_os, server, ws)
    evil = ("import os\n\nasync def run(params, call):\n"
            "    os.system('touch pwned')\n    return 'done'\n")
    code_reply(server, evil)
    crystallizer = llm_os.kernel.crystallizers.get("python").value
    with pytest.raises(OperationFailed, match="import of 'os' is not allowed"):
        await crystallizer.crystallize(llm_os.kernel, second.trace_id)
    assert not (ws / "pwned").exists()
    store = CrystalStore(llm_os.kernel.db, llm_os.kernel.workspace)
    [version] = store.current_all()
    assert version.status == "rejected"
    assert llm_os.route(goal("a.txt", "b.txt"))["chosen"] != "CRYSTALLIZED"
    # the writing run was paid, recorded and counted
    runs = [r for r in llm_os.kernel.memory.list_runs() if r.mode == "CRYSTALLIZE"]
    assert len(runs) == 1 and runs[0].cost_usd > 0
    assert llm_os.stats()["by_mode"]["CRYSTALLIZE"] == 1


async def test_crystallizing_needs_budget(llmos_workspace, llmos_model_server):
    async with LLMOS(llmos_workspace, budget_usd=5, settings=SETTINGS) as llm_os:
        _, second = await learned_twice(llm_os, llmos_model_server, llmos_workspace)
    settings = [*SETTINGS, "budget.run_cap_usd=0"]
    async with LLMOS(llmos_workspace, settings=settings) as llm_os:
        before = llmos_model_server.model_request_count
        crystallizer = llm_os.kernel.crystallizers.get("python").value
        from llmos.economy import LowBatteryError

        with pytest.raises(LowBatteryError):
            await crystallizer.crystallize(llm_os.kernel, second.trace_id)
        assert llmos_model_server.model_request_count == before


@pytest.fixture
def llmos_settings() -> list[str]:
    return SETTINGS


def test_the_agent_cannot_write_crystals_and_a_changed_file_is_not_loaded(
        llmos_model_server, llmos_workspace, llmos_cli):
    import asyncio

    ws = llmos_workspace

    async def make():
        async with LLMOS(ws, budget_usd=5, settings=SETTINGS) as llm_os:
            _, second = await learned_twice(llm_os, llmos_model_server, ws)
            version = await crystallized(llm_os, llmos_model_server, second.trace_id)
            CrystalStore(llm_os.kernel.db, llm_os.kernel.workspace).set_status(
                version.name, version.version, "active", "test")
            return version

    version = asyncio.run(make())
    path = f"plugins/generated/crystals/{version.name}/{version.version}.py"
    refused = llmos_cli("tools", "call", "Write", "--input",
                        json.dumps({"file_path": path, "content": "async def run(p, c): 0"}))
    assert refused.exit_code == 4, refused.output
    bash = llmos_cli("tools", "call", "Bash", "--input",
                     json.dumps({"command": f"echo x >> {path}"}))
    assert bash.exit_code != 0
    assert version.name in {t["name"] for t in json.loads(llmos_cli("tools", "--json").output)}

    # only a human edits it; then it no longer hashes to its version and is not loaded
    (ws / path).write_text((ws / path).read_text() + "\n# edited\n")
    tools = {t["name"] for t in json.loads(llmos_cli("tools", "--json").output)}
    assert version.name not in tools
    plugins = {p["name"]: p for p in json.loads(llmos_cli("plugins", "--json").output)}
    assert "no longer hashes to its version" in plugins[f"crystal:{version.name}"]["error"]
    routed = json.loads(llmos_cli("route", goal("x.txt", "y.txt"), "--json").output)
    assert routed["chosen"] != "CRYSTALLIZED"
    crystal_bid = next(b for b in routed["bids"] if b["mode"] == "CRYSTALLIZED")
    assert "cannot be loaded" in crystal_bid["reason"]


class NoWritesToCounts:
    """A pack's pre_tool_use hook: nothing may write guarded files."""

    @llmos.hookimpl
    def llmos_pre_tool_use(self, call, context):
        if call.tool == "Write" and "guarded" in str(call.input.get("file_path", "")):
            return Decision.deny("counts are read-only here", "pack.counts")
        return None


async def test_a_crystals_calls_pass_every_packs_gate(llmos_workspace, llmos_model_server):
    ws, server = llmos_workspace, llmos_model_server
    async with LLMOS(ws, budget_usd=5, settings=SETTINGS,
                     plugins={"counts-guard": NoWritesToCounts()}) as llm_os:
        _, second = await learned_twice(llm_os, server, ws)
        version = await crystallized(llm_os, server, second.trace_id)
        store = CrystalStore(llm_os.kernel.db, llm_os.kernel.workspace)
        store.set_status(version.name, version.version, "active", "test")
        write_lines(ws, "a.txt", 4)
        server.script.text("Writing guarded.txt is refused here.")
        result = await llm_os.execute(goal("a.txt", "guarded.txt"))
        assert result.mode == "CRYSTALLIZED" and result.diverged
        assert not (ws / "guarded.txt").exists()
        denied = [e for e in llm_os.kernel.audit.entries()
                  if e["tool"] == "Write" and e["decision"] == "deny"]
        assert denied and denied[-1]["rule"] == "pack.counts"
        assert "was refused" in store.get(version.name).reason


async def test_a_goal_replay_cannot_serve_is_crystallized_on_its_own(
        llmos_workspace, llmos_model_server):
    ws, server = llmos_workspace, llmos_model_server
    settings = [*SETTINGS, "crystallize.auto=true"]
    async with LLMOS(ws, budget_usd=5, settings=settings) as llm_os:
        write_lines(ws, "data.txt", 2)
        from tests.crystallize.test_lifecycle import learn

        learn("LEARNER", server, ws, "data.txt", "count.txt", 2)
        await llm_os.execute(goal("data.txt", "count.txt"))
        store = CrystalStore(llm_os.kernel.db, llm_os.kernel.workspace)
        assert store.current_all() == []  # one solved instance is not enough
        write_lines(ws, "notes.txt", 5)
        learn(llm_os.route(goal("notes.txt", "total.txt"))["chosen"], server, ws, "notes.txt",
              "total.txt", 5)
        code_reply(server)
        second = await llm_os.execute(goal("notes.txt", "total.txt"))
        assert second.success and second.diverged
        [version] = store.current_all()
        assert version.status == "shadow"
        assert second.trace_id in version.provenance["source_traces"]


def test_bad_input_gets_a_clear_message_and_exit_code(llmos_cli):
    missing = llmos_cli("crystallize", "nosuchtrace")
    assert missing.exit_code == 1 and "nosuchtrace" in missing.output
    assert "Traceback" not in missing.output
    bad = llmos_cli("--set", "crystallize.agreements=0", "crystals", "list")
    assert bad.exit_code == 2 and "crystallize" in bad.output and "agreements" in bad.output
    unknown = llmos_cli("crystals", "rollback", "crystal_nothing")
    assert unknown.exit_code == 1 and "no crystal named 'crystal_nothing'" in unknown.output
    assert llmos_cli("crystals", "list").output.startswith("no crystals yet")


def test_the_crystallizer_can_be_disabled_like_any_plugin(llmos_workspace, monkeypatch):
    from click.testing import CliRunner

    from llmos.cli import cli

    def llmos_cli(*args):  # without this module's [crystallize] settings
        return CliRunner().invoke(cli, ["--workspace", str(llmos_workspace), *args])

    monkeypatch.setenv("LLMOS_DISABLE_PLUGINS", "llmos.crystallize.plugin")
    assert llmos_cli("budget", "set", "5").exit_code == 0
    routed = llmos_cli("route", "Count the lines of a.txt into b.txt", "--json")
    assert routed.exit_code == 0, routed.output
    assert "CRYSTALLIZED" not in {b["mode"] for b in json.loads(routed.output)["bids"]}
    made = llmos_cli("crystallize", "sometrace")
    assert made.exit_code == 1 and "no crystallizer is loaded" in made.output


async def test_traces_that_held_a_redacted_secret_are_not_compiled(llm_os, llmos_model_server):
    from llmos.goals import analyze_goal
    from llmos.memory.models import Step, StepOutcome, Trace
    from llmos.memory.redaction import REDACTED

    for name, token in (("a.env", REDACTED), ("b.env", REDACTED)):
        goal_ = analyze_goal(f"Write the API token into {name}")
        llm_os.kernel.memory.save_trace(Trace(
            goal_text=goal_.text, normalized_goal=goal_.normalized,
            goal_signature=goal_.signature, slots=list(goal_.slots),
            steps=[Step(tool="Write", input={"file_path": name, "content": f"TOKEN={token}"},
                        outcome=StepOutcome(excerpt="{}"))]))
    trace = llm_os.kernel.memory.list_traces()[0]
    crystallizer = llm_os.kernel.crystallizers.get("python").value
    with pytest.raises(OperationFailed, match="secret that was redacted"):
        await crystallizer.crystallize(llm_os.kernel, trace.id)
    assert llmos_model_server.model_request_count == 0
