"""Markdown agents: the format and its file:line errors, hot reload, changes through the
gate (validated, recorded, reversible), and an agent's tool list enforced by the gate."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import llmos
from llmos.agents.format import AgentFileError, parse_agent, read_agent_file
from llmos.agents.registry import agents_of

SAMPLES = Path(__file__).resolve().parents[2] / "workspace" / "agents"

GOOD = """---
name: scribe
description: Writes short notes.
tools: [Write, Read]
---
You write short notes.
"""


def test_the_sample_agents_are_valid():
    names = {read_agent_file(p).name for p in SAMPLES.glob("*.md")}
    assert names == {"researcher", "coder", "data-analyst"}
    coder = read_agent_file(SAMPLES / "coder.md")
    assert "Bash" in coder.spec.tools and coder.prompt.startswith("You are a pragmatic")


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("---\nname: scribe\ndescription: x\ntools: [Read]\nmodle: sonnet\n---\nhi\n", 5,
     "unknown key 'modle'"),
    ("---\nname: scribe\ntools: [Read]\n---\nhi\n", 1, "missing required key 'description'"),
    ("---\nname: scribe\ndescription: x\ntools: [Read\n---\nhi\n", 5, "not valid YAML"),
    ("---\nname: scribe\ndescription: x\ntools: [Read]\n---\n\n", 6, "no system prompt"),
    ("---\nname: other\ndescription: x\ntools: [Read]\n---\nhi\n", 2, "differs from the file"),
    ("---\nname: scribe\ndescription: x\ntools: []\nmax_turns: 0\n---\nhi\n", 4, "tools"),
    ("name: scribe\n", 1, "starts with YAML front matter"),
])
def test_an_invalid_agent_is_reported_with_file_and_line(text, line, problem):
    with pytest.raises(AgentFileError) as caught:
        parse_agent(text, "agents/scribe.md", expected_name="scribe")
    assert str(caught.value).startswith(f"agents/scribe.md:{line}: "), str(caught.value)
    assert problem in str(caught.value)


def test_llmos_agents_check_refuses_an_invalid_file(llmos_cli, llmos_workspace):
    assert llmos_cli("agents", "check").exit_code == 0
    agents = llmos_workspace / "agents"
    (agents / "scribe.md").write_text(GOOD)
    (agents / "broken.md").write_text("---\nname: broken\ndescription: x\ntools: [Read]\n"
                                      "colour: red\n---\nhi\n")
    result = llmos_cli("agents", "check", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert "scribe" in report["valid"]
    assert report["problems"] == [{"file": str(agents / "broken.md"), "line": 5,
                                   "problem": report["problems"][0]["problem"]}]
    assert "unknown key 'colour'" in report["problems"][0]["problem"]
    listed = json.loads(llmos_cli("agents", "list", "--json").stdout)
    assert "broken" not in {a["name"] for a in listed}
    shown = llmos_cli("agents", "show", "broken")
    assert shown.exit_code == 1 and "broken.md:5" in shown.output


async def test_edits_are_seen_without_a_restart(llmos_kernel):
    registry = agents_of(llmos_kernel)
    path = llmos_kernel.workspace.agents_dir / "scribe.md"
    assert registry.find("scribe") is None
    path.write_text(GOOD)
    assert registry.get("scribe").spec.tools == ["Write", "Read"]
    path.write_text(GOOD.replace("[Write, Read]", "[Read]").replace("short", "long"))
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    agent = registry.get("scribe")
    assert agent.spec.tools == ["Read"] and "long notes" in agent.prompt
    path.unlink()
    assert registry.find("scribe") is None


async def test_packs_and_projects_add_agents_and_the_project_wins(llmos_workspace, llmos_env):
    from llmos.kernel import Kernel
    from llmos.projects import open_project

    (llmos_workspace / "agents").mkdir()
    shutil.copy(SAMPLES / "coder.md", llmos_workspace / "agents" / "coder.md")

    class Pack:
        @llmos.hookimpl
        def llmos_register_agents(self, register):
            register({"name": "linter", "description": "Lints.", "tools": ["Read"],
                      "prompt": "You lint."})

    project = open_project(Kernel(llmos_workspace, load_entry_points=False).workspace, "p1",
                           create=True)
    (project.agents_dir / "coder.md").write_text(
        GOOD.replace("scribe", "coder").replace("short notes", "project code"))
    kernel = Kernel(llmos_workspace, load_entry_points=False, plugins={"pack": Pack()},
                    project="p1")
    agents = {a.name: a for a in agents_of(kernel).all()}
    assert agents["linter"].origin == "pack"
    assert agents["coder"].origin == "project" and "project code" in agents["coder"].prompt
    outside = {a.name: a for a in agents_of(
        Kernel(llmos_workspace, load_entry_points=False, plugins={"pack": Pack()})).all()}
    assert outside["coder"].origin == "workspace"


async def test_create_agent_validates_records_and_reverts(llmos_kernel, llmos_cli):
    kernel = llmos_kernel
    context = kernel.context(run_id="run-1", mode="LEARNER")
    bad = await kernel.call_tool("create_agent", {
        "name": "Scribe!", "description": "x", "tools": ["Write"], "prompt": "hi"},
        context=context, source="model")
    assert bad.is_error and "name" in bad.error
    assert not list(kernel.workspace.agents_dir.glob("*.md"))  # nothing saved

    made = await kernel.call_tool("create_agent", {
        "name": "scribe", "description": "Writes notes.", "tools": ["Write"],
        "prompt": "You write notes."}, context=context, source="model")
    assert not made.is_error, made.error
    assert agents_of(kernel).get("scribe").spec.tools == ["Write"]
    again = await kernel.call_tool("create_agent", {
        "name": "scribe", "description": "x", "tools": ["Read"], "prompt": "p"},
        context=context, source="model")
    assert again.is_error and "exists already" in again.error

    changed = await kernel.call_tool("modify_agent", {"name": "scribe", "tools": ["Write", "Read"]},
                                     context=context, source="model")
    assert not changed.is_error, changed.error
    assert agents_of(kernel).get("scribe").spec.tools == ["Write", "Read"]
    assert agents_of(kernel).get("scribe").prompt == "You write notes."

    history = json.loads(llmos_cli("agents", "history", "--json").stdout)
    assert [h["action"] for h in history] == ["modify", "create"]
    assert history[0]["actor"] == "model (LEARNER run run-1)" and history[0]["run_id"] == "run-1"
    assert "-tools: [Write]" in history[0]["diff"] and "+tools: [Write, Read]" in history[0]["diff"]

    reverted = llmos_cli("agents", "revert", str(history[0]["id"]))
    assert reverted.exit_code == 0, reverted.output
    assert agents_of(kernel).get("scribe").spec.tools == ["Write"]
    assert llmos_cli("agents", "revert", str(history[1]["id"])).exit_code == 0
    assert agents_of(kernel).find("scribe") is None  # reverting the creation removes it
    actions = [h["action"] for h in json.loads(llmos_cli("agents", "history", "--json").stdout)]
    assert actions[:2] == [f"revert #{history[1]['id']}", f"revert #{history[0]['id']}"]
    missing = llmos_cli("agents", "revert", "999")
    assert missing.exit_code == 1 and "no agent change #999" in missing.output


async def test_agent_files_are_not_written_by_file_tools(llmos_kernel):
    kernel = llmos_kernel
    result = await kernel.call_tool(
        "Write", {"file_path": str(kernel.workspace.agents_dir / "evil.md"), "content": GOOD},
        context=kernel.context(run_id="r"), source="replay")
    assert result.is_error and "create_agent" in result.error
    assert not (kernel.workspace.agents_dir / "evil.md").exists()


async def test_a_tool_outside_the_agents_list_is_refused_by_the_gate(llmos_kernel):
    from llmos.agents.session import run_extra

    kernel = llmos_kernel
    (kernel.workspace.agents_dir / "scribe.md").write_text(GOOD)
    agent = agents_of(kernel).get("scribe")
    context = kernel.context(run_id="r", **run_extra(agent))
    refused = await kernel.call_tool("Bash", {"command": "echo hi"}, context=context,
                                     source="replay")
    assert refused.is_error and "may use only Write, Read" in refused.error
    assert refused.decision.rule == "agent.tools"
    listed = await kernel.call_tool("list_agents", {}, context=context, source="model")
    assert listed.is_error and "list_agents is not in its tools" in listed.error
    allowed = await kernel.call_tool("Write", {"file_path": "note.txt", "content": "n\n"},
                                     context=context, source="replay")
    assert not allowed.is_error, allowed.error


async def test_create_agent_does_not_follow_a_symlinked_agents_folder(llmos_kernel, tmp_path):
    kernel = llmos_kernel
    outside = tmp_path / "outside"
    outside.mkdir()
    kernel.workspace.agents_dir.rmdir()
    kernel.workspace.agents_dir.symlink_to(outside)
    result = await kernel.call_tool("create_agent", {
        "name": "scribe", "description": "x", "tools": ["Write"], "prompt": "p"},
        context=kernel.context(run_id="r"), source="model")
    assert result.is_error and "not a plain folder inside the workspace" in result.error
    assert not list(outside.iterdir())
