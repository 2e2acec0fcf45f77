"""The pack as users meet it: installed with pip, found through its entry points, seen by
the CLI, configured through [robo] with validation that names the problem."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution, entry_points

import llmos_robo


def test_the_distribution_declares_its_plugin_and_driver_entry_points():
    assert distribution("llmos-robo").version == llmos_robo.__version__
    (ep,) = [ep for ep in entry_points(group="llmos") if ep.name == "robo"]
    assert ep.value == "llmos_robo.plugin"
    drivers = {ep.name: ep.value for ep in entry_points(group="llmos_robo.drivers")}
    assert drivers["pybullet"] == "llmos_robo.drivers.pybullet:PyBulletDriver"


def test_llmos_plugins_and_tools_do_not_import_pybullet(llmos_workspace, llmos_env):
    code = (
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from llmos.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['--workspace', {str(llmos_workspace)!r}, 'plugins',"
        " '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "names = [p['name'] for p in json.loads(r.output)]\n"
        f"r2 = CliRunner().invoke(cli, ['--workspace', {str(llmos_workspace)!r}, 'tools',"
        " '--json'])\n"
        "assert r2.exit_code == 0, r2.output\n"
        "print(json.dumps({'robo': 'robo' in names, 'pybullet': 'pybullet' in sys.modules,"
        " 'driver': 'llmos_robo.drivers.pybullet' in sys.modules,"
        " 'starlette': 'starlette' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"robo": True, "pybullet": False, "driver": False, "starlette": False}


def test_the_robot_tools_are_listed_with_their_side_effects(llmos_cli):
    result = llmos_cli("tools", "--json")
    assert result.exit_code == 0, result.output
    tools = {t["name"]: t for t in json.loads(result.output) if t["plugin"] == "robo"}
    assert set(tools) == {
        "robot_move_to", "robot_move_relative", "robot_gripper", "robot_status",
        "robot_find_objects", "robot_camera", "robot_home", "robot_emergency_stop",
        "robot_reset"}
    for name in ("robot_status", "robot_find_objects", "robot_camera"):
        assert tools[name]["side_effects"] == "read-only"
    assert tools["robot_move_to"]["side_effects"] == "mutating"
    assert tools["robot_move_to"]["input_schema"]["required"] == ["x", "y", "z"]
    assert tools["robot_gripper"]["input_schema"]["properties"]["action"]["enum"] == [
        "open", "close"]


def test_a_home_inside_a_forbidden_zone_is_a_config_error(llmos_cli, llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text(
        "[robo]\nhome = [0.5, 0.0, 0.3]\n"
        'forbidden_zones = [{kind = "sphere", name = "operator", center = [0.5, 0.0, 0.3], '
        "radius = 0.1}]\n")
    result = llmos_cli("tools")
    assert result.exit_code == 2, result.output
    assert "inside forbidden zone 'operator'" in result.output
    assert "Traceback" not in result.output


def test_a_home_outside_the_workspace_and_an_unknown_tool_are_config_errors(llmos_cli):
    result = llmos_cli("--set", "robo.home=[1.5, 0, 0.3]", "tools")
    assert result.exit_code == 2 and "outside the workspace box" in result.output
    result = llmos_cli("--set", 'robo.allowed_tools=["robot_fly"]', "tools")
    assert result.exit_code == 2 and "unknown tool(s) robot_fly" in result.output
    result = llmos_cli("--set", "robo.max_speed=3", "tools")
    assert result.exit_code == 2 and "max_speed" in result.output


def test_an_unknown_driver_is_reported_when_a_robot_tool_runs(call_json, llmos_cli):
    code, out = call_json("robot_status")
    assert code == 0 and out["output"]["driver"] == "pybullet"
    result = llmos_cli("--set", "robo.driver=mujoco", "tools", "call", "robot_status",
                       "--json")
    assert result.exit_code == 1
    error = json.loads(result.output)["error"]
    assert "robot driver 'mujoco' could not be loaded" in error and "pybullet" in error


def test_robot_goals_get_the_operator_and_safety_officer_as_context(robo_kernel):
    import asyncio

    async def go():
        async with robo_kernel() as kernel:
            ctx = kernel.context()
            robot = kernel.pm.hook.llmos_user_prompt_submit(
                goal="Pick up the cube and place it on the tray", context=ctx)
            other = kernel.pm.hook.llmos_user_prompt_submit(goal="Write primes.py", context=ctx)
            return robot, other, kernel.agents

    robot, other, agents = asyncio.run(go())
    text = "\n".join(p for p in robot if p)
    assert "Start every task with `robot_find_objects`" in text
    assert "Answer APPROVED, or REJECTED" in text and "camera_mast" in text
    assert not any(p and "robot_find_objects" in p for p in other)
    (folder,) = [a for a in agents if "llmos_robo" in str(a)]
    assert sorted(p.name for p in folder.glob("*.md")) == ["robot-operator.md",
                                                           "safety-officer.md"]
