"""Crystallization end to end with the real Claude Code CLI (scripted model on 127.0.0.1):
a data-dependent goal learned twice, compiled by the model into a tool, tested on the
source runs' cassettes, promoted after shadow agreement, then served at $0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmos import LLMOS
from llmos.testing.model_server import Usage

pytestmark = pytest.mark.cli

SETTINGS = ["budget.run_cap_usd=0.5", "crystallize.agreements=1", "crystallize.demote_after=1"]

COUNT_CODE = '''
async def run(params, call):
    shown = await call("Bash", {"command": f"wc -l {params.file1}"})
    count = int(shown.text.split()[0])
    await call("Write", {"file_path": params.file2, "content": f"{count}\\n"})
    return f"{params.file1} has {count} lines; wrote {params.file2}"
'''


def goal(source: str, target: str) -> str:
    return f"Count the lines of {source} into {target}"


def learn(chosen: str, server, workspace: Path, source: str, target: str, lines: int) -> None:
    """The model's solution: count, then write the number it read. When FOLLOWER replays
    the count first and diverges (another number), the model only writes."""
    if chosen != "FOLLOWER":
        server.script.tool_use("Bash", {"command": f"wc -l {source}", "description": "wc"},
                               usage=Usage(2000, 60))
    server.script.tool_use(
        "Write", {"file_path": str(workspace / target), "content": f"{lines}\n"},
        usage=Usage(2200, 40)).text(f"{source} has {lines} lines.", usage=Usage(2300, 20))


def write_lines(workspace: Path, name: str, n: int) -> None:
    (workspace / name).write_text("".join(f"line {i}\n" for i in range(n)))


def code_reply(server, code: str = COUNT_CODE) -> None:
    server.script.text(f"Here is the tool:\n\n```python\n{code.strip()}\n```\n",
                       usage=Usage(3000, 200))


@pytest.fixture
async def llm_os(llmos_workspace, llmos_model_server):
    async with LLMOS(llmos_workspace, budget_usd=5, settings=SETTINGS) as os_:
        yield os_


async def learned_twice(llm_os, server, workspace) -> list:
    results = []
    for source, target, n in (("data.txt", "count.txt", 2), ("notes.txt", "total.txt", 5)):
        write_lines(workspace, source, n)
        learn(llm_os.route(goal(source, target))["chosen"], server, workspace, source,
              target, n)
        result = await llm_os.execute(goal(source, target))
        assert result.success and result.mode != "CRYSTALLIZED", result.error
        assert result.cost_usd > 0  # replay cannot serve another file: the count differs
        results.append(result)
    return results


async def crystallized(llm_os, server, trace_id: str):
    crystallizer = llm_os.kernel.crystallizers.get("python").value
    code_reply(server)
    return await crystallizer.crystallize(llm_os.kernel, trace_id)


async def test_a_data_dependent_goal_is_crystallized_promoted_and_served_free(
        llm_os, llmos_model_server, llmos_workspace):
    server, ws = llmos_model_server, llmos_workspace
    first, second = await learned_twice(llm_os, server, ws)

    version = await crystallized(llm_os, server, second.trace_id)
    assert version.status == "shadow", version.reason
    prompt = server.conversation_requests[-1].user_text()  # what the model was shown
    assert "count lines of <file.txt> into <file.txt>" in prompt and "params.<name>" in prompt
    assert "wc -l data.txt" in prompt and "returned: 2 data.txt" in prompt
    prov = version.provenance
    assert sorted(prov["source_traces"]) == sorted([first.trace_id, second.trace_id])
    assert [t["agreed"] for t in prov["tests"]] == [True, True]
    assert prov["writer"]["cost_usd"] > 0 and prov["writer"]["run_id"]
    code = ws / "plugins" / "generated" / "crystals" / version.name / f"{version.version}.py"
    assert code.read_text().strip() == COUNT_CODE.strip()
    assert "is in shadow" in llm_os.route(goal("todo.txt", "n.txt"))["bids"][0]["reason"]

    # shadow: the normal path (paid) runs the goal; the crystal is compared beside it
    write_lines(ws, "todo.txt", 3)
    learn(llm_os.route(goal("todo.txt", "n.txt"))["chosen"], server, ws, "todo.txt", "n.txt",
          3)
    third = await llm_os.execute(goal("todo.txt", "n.txt"))
    assert third.mode == "FOLLOWER" and third.diverged and third.success
    routed = llm_os.route(goal("big.txt", "out.txt"))
    assert routed["chosen"] == "CRYSTALLIZED", routed

    # active: new values at $0, no model request, the right answer on disk
    write_lines(ws, "big.txt", 7)
    before = server.model_request_count
    served = await llm_os.execute(goal("big.txt", "out.txt"))
    assert served.mode == "CRYSTALLIZED" and served.success, served.error
    assert served.cost_usd == 0 and served.model_requests == 0
    assert server.model_request_count == before
    assert (ws / "out.txt").read_text() == "7\n"
    assert "big.txt has 7 lines" in served.output
    assert served.saved_usd > 0
    stats = llm_os.stats()
    assert stats["crystallized_runs"] == 1 and stats["crystallized_saved_usd"] > 0
    assert stats["by_mode"]["CRYSTALLIZE"] == 1


async def test_a_crystal_whose_world_changed_falls_back_and_is_demoted(
        llm_os, llmos_model_server, llmos_workspace):
    server, ws = llmos_model_server, llmos_workspace
    _, second = await learned_twice(llm_os, server, ws)
    version = await crystallized(llm_os, server, second.trace_id)
    from llmos.crystallize.store import CrystalStore

    store = CrystalStore(llm_os.kernel.db, llm_os.kernel.workspace)
    store.set_status(version.name, version.version, "active", "test")
    assert llm_os.route(goal("gone.txt", "out.txt"))["chosen"] == "CRYSTALLIZED"

    # gone.txt does not exist: wc fails, the crystal cannot do it, LEARNER finishes
    server.script.tool_use("Write", {"file_path": str(ws / "out.txt"), "content": "0\n"}) \
        .text("gone.txt does not exist; wrote 0.")
    result = await llm_os.execute(goal("gone.txt", "out.txt"))
    assert result.mode == "CRYSTALLIZED" and result.diverged and result.success
    assert result.cost_usd > 0
    assert (ws / "out.txt").read_text() == "0\n"
    fallback = server.conversation_requests[-2].user_text()
    assert "could not finish" in fallback and "wc -l gone.txt" in fallback
    demoted = store.get(version.name)
    assert demoted.status == "demoted" and "1 failures at run time" in demoted.reason
    assert llm_os.route(goal("x.txt", "y.txt"))["chosen"] != "CRYSTALLIZED"
    assert any(e["event"] == "failed" for e in store.events(version.name))


@pytest.fixture
def llmos_settings() -> list[str]:
    return SETTINGS


def test_the_whole_life_cycle_through_the_cli(llmos_model_server, llmos_workspace, llmos_cli):
    server, ws = llmos_model_server, llmos_workspace
    assert llmos_cli("budget", "set", "5").exit_code == 0
    traces = []
    for source, target, n in (("data.txt", "count.txt", 2), ("notes.txt", "total.txt", 5)):
        write_lines(ws, source, n)
        chosen = json.loads(llmos_cli("route", goal(source, target), "--json").output)["chosen"]
        learn(chosen, server, ws, source, target, n)
        ran = llmos_cli("run", goal(source, target), "--json")
        assert ran.exit_code == 0, ran.output
        traces.append(json.loads(ran.output)["trace_id"])
    second = traces[-1]

    code_reply(server)
    made = llmos_cli("crystallize", second, "--json")
    assert made.exit_code == 0, made.output
    v1 = json.loads(made.output)
    assert v1["status"] == "shadow" and v1["tests_passed"] == 2

    listed = json.loads(llmos_cli("crystals", "list", "--json").output)
    assert [c["name"] for c in listed] == [v1["name"]]
    shown = json.loads(llmos_cli("crystals", "show", v1["name"], "--json").output)
    assert "wc -l" in shown["source"] and shown["provenance"]["writer"]["run_id"]
    assert llmos_cli("crystals", "test", v1["name"]).exit_code == 0
    table = llmos_cli("crystals", "list").output
    assert "crystal" in table and "shadow" in table and "0/1" in table  # agreements
    text = llmos_cli("crystals", "show", v1["name"]).output
    assert "wc -l" in text and "tests 2/2" in text and "created" in text

    # not active yet: not a tool
    tools = json.loads(llmos_cli("tools", "--json").output)
    assert v1["name"] not in {t["name"] for t in tools}
    promoted = llmos_cli("crystals", "promote", v1["name"], "--json")
    assert promoted.exit_code == 0, promoted.output
    assert json.loads(promoted.output)["status"] == "active"
    tools = {t["name"]: t for t in json.loads(llmos_cli("tools", "--json").output)}
    assert tools[v1["name"]]["plugin"] == f"crystal:{v1['name']}"
    assert set(tools[v1["name"]]["input_schema"]["properties"]) == {"file1", "file2"}
    plugins = {p["name"]: p for p in json.loads(llmos_cli("plugins", "--json").output)}
    assert plugins[f"crystal:{v1['name']}"]["error"] is None
    assert plugins[f"crystal:{v1['name']}"]["version"] == v1["version"]
    assert "register_tools" in plugins[f"crystal:{v1['name']}"]["hooks"][0]

    # the tool runs through the gate like any other
    write_lines(ws, "five.txt", 5)
    called = llmos_cli("tools", "call", v1["name"], "--input",
                       json.dumps({"file1": "five.txt", "file2": "five.count"}))
    assert called.exit_code == 0, called.output
    assert (ws / "five.count").read_text() == "5\n"

    # a second version (the model rewrote it), then rollback to the first
    second_code = COUNT_CODE.replace("wrote", "saved the count to")
    code_reply(server, second_code)
    made = llmos_cli("crystallize", second, "--json")
    v2 = json.loads(made.output)
    assert v2["version"] != v1["version"] and v2["status"] == "shadow"
    assert json.loads(llmos_cli("crystals", "promote", v1["name"], "--version",
                                v2["version"], "--json").output)["status"] == "active"
    current = json.loads(llmos_cli("crystals", "show", v1["name"], "--json").output)
    assert current["version"] == v2["version"] and current["previous"] == v1["version"]
    back = llmos_cli("crystals", "rollback", v1["name"], "--json")
    assert back.exit_code == 0, back.output
    assert json.loads(back.output)["version"] == v1["version"]
    everything = json.loads(llmos_cli("crystals", "list", "--all", "--json").output)
    assert {v["version"]: v["status"] for v in everything} == {
        v1["version"]: "active", v2["version"]: "retired"}

    demoted = llmos_cli("crystals", "demote", v1["name"], "--json")
    assert json.loads(demoted.output)["status"] == "demoted"
    assert v1["name"] not in {t["name"] for t in json.loads(llmos_cli("tools",
                                                                      "--json").output)}
    assert llmos_cli("crystals", "rm", v1["name"]).exit_code == 0
    assert json.loads(llmos_cli("crystals", "list", "--json").output) == []
    missing = llmos_cli("crystals", "show", v1["name"])
    assert missing.exit_code == 1 and "no crystal named" in missing.output


async def test_a_shadow_crystal_that_disagrees_with_the_normal_path_is_demoted(
        llm_os, llmos_model_server, llmos_workspace):
    server, ws = llmos_model_server, llmos_workspace
    _, second = await learned_twice(llm_os, server, ws)
    version = await crystallized(llm_os, server, second.trace_id)
    assert version.status == "shadow"
    # the normal path did something else for this goal (wrote the count and a note)
    write_lines(ws, "todo.txt", 3)
    if llm_os.route(goal("todo.txt", "n.txt"))["chosen"] != "FOLLOWER":
        server.script.tool_use("Bash", {"command": "wc -l todo.txt"})
    server.script.tool_use("Write", {"file_path": str(ws / "n.txt"), "content": "3\n"}) \
        .tool_use("Write", {"file_path": str(ws / "note.txt"), "content": "counted\n"}) \
        .text("Counted.")
    third = await llm_os.execute(goal("todo.txt", "n.txt"))
    assert third.success
    from llmos.crystallize.store import CrystalStore

    store = CrystalStore(llm_os.kernel.db, llm_os.kernel.workspace)
    demoted = store.get(version.name)
    assert demoted.status == "demoted" and "disagreements with the normal path" in \
        demoted.reason
    assert "the record has 3" in demoted.reason or "next: Write" in demoted.reason
    assert llm_os.route(goal("x.txt", "y.txt"))["chosen"] != "CRYSTALLIZED"
