"""Every kind of unsafe move refused with its reason through ``llmos tools call`` (the real
gate: the default layered policy plus the pack's hook), the e-stop durable across
processes, and its release human-only."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

WALL = ('robo.forbidden_zones=[{"kind": "box", "name": "wall", "min": [0.4, 0.1, 0.0], '
        '"max": [0.5, 0.15, 0.6]}]')


@pytest.fixture
def llmos_settings() -> list[str]:
    return [WALL, "robo.max_step_m=0.4"]


def gripper_at(call_json) -> list[float]:
    code, out = call_json("robot_status")
    assert code == 0, out
    return out["output"]["gripper"]["position"]


def test_a_safe_move_runs_and_reports_where_the_gripper_is(call_json):
    code, out = call_json("robot_move_to", {"x": 0.55, "y": -0.1, "z": 0.25, "yaw": 45})
    assert code == 0, out
    assert out["decision"]["verdict"] == "allow"
    result = out["output"]
    assert result["within_tolerance"] and result["error_mm"] <= 5
    assert math.dist(result["reached"], [0.55, -0.1, 0.25]) < 0.005
    assert result["yaw_deg"] == pytest.approx(45, abs=2)
    assert gripper_at(call_json) == result["reached"]  # the world persists between processes


@pytest.mark.parametrize(
    ("target", "rule", "words"),
    [
        ({"x": 0.9, "y": 0.0, "z": 0.35}, "robo.workspace",
         ["leaves the workspace box", "x=0.900 is outside 0.250..0.750",
          "suggestion: choose a target inside the box, e.g. (0.750, 0.000, 0.350)"]),
        ({"x": 0.45, "y": 0.3, "z": 0.35}, "robo.forbidden-zone",
         ["enters forbidden zone 'wall'", "of the way", "suggestion: go around it"]),
        ({"x": 0.45, "y": -0.42, "z": 0.35}, "robo.max-step",
         ["0.420 m long, more than robo.max_step_m = 0.400 m", "split it into 2 moves"]),
    ],
    ids=["outside-box", "zone-crossed-mid-path", "step-too-big"],
)
def test_unsafe_moves_are_refused_with_their_reason_and_do_not_move(
    call_json, target, rule, words
):
    before = gripper_at(call_json)
    code, out = call_json("robot_move_to", target)
    assert code == 4, out
    assert out["decision"]["verdict"] == "deny" and out["decision"]["rule"] == rule
    for word in words:
        assert word in out["error"]
    assert gripper_at(call_json) == before


def test_the_zone_is_checked_on_the_path_of_a_relative_move_too(call_json):
    code, out = call_json("robot_move_relative", {"dy": 0.3})
    assert code == 4 and out["decision"]["rule"] == "robo.forbidden-zone", out
    code, out = call_json("robot_move_relative", {"dz": 0.1})
    assert code == 0 and out["output"]["within_tolerance"], out


def test_the_estop_refuses_every_motion_until_a_human_resets_it(
    call_json, llmos_cli, llmos_workspace
):
    code, out = call_json("robot_emergency_stop", {"reason": "person in the cell"})
    assert code == 0 and out["output"]["estop"]["engaged"] is True
    for tool, data in [("robot_move_to", {"x": 0.5, "y": 0.0, "z": 0.3}),
                       ("robot_move_relative", {"dz": 0.01}), ("robot_home", {}),
                       ("robot_gripper", {"action": "close"})]:
        code, out = call_json(tool, data)
        assert code == 4, out
        assert out["decision"]["rule"] == "robo.estop"
        assert "person in the cell" in out["error"] and "llmos robo reset" in out["error"]
    # observing is still allowed and shows it
    code, out = call_json("robot_status")
    assert code == 0 and out["output"]["estop"]["engaged"] is True

    # a fresh llmos process (a restart) still sees it engaged
    probe = subprocess.run(
        [sys.executable, "-m", "llmos", "--workspace", str(llmos_workspace), "tools", "call",
         "robot_move_relative", "--input", '{"dz": 0.01}', "--json"],
        capture_output=True, text=True)
    assert probe.returncode == 4 and json.loads(probe.stdout)["decision"]["rule"] == "robo.estop"

    refused = llmos_cli("robo", "reset")  # asks first; no answer, no release
    assert refused.exit_code != 0
    code, out = call_json("robot_move_relative", {"dz": 0.01})
    assert code == 4 and out["decision"]["rule"] == "robo.estop"

    released = llmos_cli("robo", "reset", "--yes")
    assert released.exit_code == 0, released.output
    assert "emergency stop released" in released.output
    code, out = call_json("robot_move_relative", {"dz": 0.01})
    assert code == 0, out


async def test_only_a_human_may_release_the_estop(robo_kernel):
    from llmos.calls import ToolCall

    async with robo_kernel() as kernel:
        await kernel.call_tool("robot_emergency_stop", {"reason": "test"})
        ctx = kernel.context()
        for source in ("model", "replay", "tool"):
            result = await kernel.gateway.call(ToolCall("robot_reset", {}, source=source), ctx)
            assert result.decision.verdict == "deny" and result.decision.rule == "robo.human-only"
        status = await kernel.call_tool("robot_status", {})
        assert status.output["estop"]["engaged"] is True
        # robot_reset is not offered to the model at all
        assert kernel.tools.get("robot_reset").meta.offer_to_model is False


def test_a_tool_left_out_of_allowed_tools_is_refused(llmos_cli):
    result = llmos_cli("--set", 'robo.allowed_tools=["robot_status"]', "tools", "call",
                       "robot_home", "--json")
    assert result.exit_code == 4
    out = json.loads(result.output)
    assert out["decision"]["rule"] == "robo.tool-not-allowed"


def test_home_returns_in_legs_of_at_most_one_step(call_json):
    call_json("robot_move_to", {"x": 0.6, "y": -0.2, "z": 0.15})
    code, out = call_json("robot_home")
    assert code == 0, out
    assert out["output"]["legs"] == 1
    assert math.dist(out["output"]["reached"], [0.45, 0.0, 0.35]) < 0.005


@pytest.mark.parametrize("source", ["model", "replay", "tool", "cli"])
async def test_every_caller_is_checked_the_same(robo_kernel, source):
    from llmos.calls import ToolCall

    async with robo_kernel() as kernel:
        call = ToolCall("robot_move_to", {"x": 0.45, "y": 0.3, "z": 0.35}, source=source)
        result = await kernel.gateway.call(call, kernel.context())
        assert result.decision.verdict == "deny"
        assert result.decision.rule == "robo.forbidden-zone"


async def test_a_tool_function_called_directly_is_still_refused_by_the_driver(robo_kernel):
    """What a generated tool or a script that skips the gate would do."""
    from llmos.tools import ToolError

    from llmos_robo import tools
    from llmos_robo.tools import MoveToInput

    async with robo_kernel() as kernel:
        ctx = kernel.context()
        before = (await kernel.call_tool("robot_status", {})).output["gripper"]["position"]
        with pytest.raises(ToolError, match=r"refused by the robot driver \(robo.forbidden-zone\)"):
            await tools.move_to(MoveToInput(x=0.45, y=0.3, z=0.35), ctx)
        await kernel.call_tool("robot_emergency_stop", {})
        with pytest.raises(ToolError, match=r"refused by the robot driver \(robo.estop\)"):
            await tools.move_to(MoveToInput(x=0.5, y=0.0, z=0.3), ctx)
        after = (await kernel.call_tool("robot_status", {})).output["gripper"]["position"]
        assert after == before


async def test_the_same_world_gives_byte_identical_observations(
    tmp_path, llmos_env, llmos_settings
):
    from llmos.kernel import Kernel

    texts = []
    for name in ("one", "two"):
        async with Kernel(tmp_path / name, flags=llmos_settings, interactive=False) as kernel:
            seen = []
            for tool, data in [("robot_find_objects", {}),
                               ("robot_move_to", {"x": 0.55, "y": -0.1, "z": 0.1}),
                               ("robot_find_objects", {}), ("robot_status", {}),
                               ("robot_camera", {"view": "top"})]:
                result = await kernel.call_tool(tool, data)
                assert not result.is_error, result.error
                seen.append(result.text)
            texts.append(seen)
    one, two = texts
    assert [t.replace(str(tmp_path / "one"), "") for t in one] == [
        t.replace(str(tmp_path / "two"), "") for t in two]
    assert '"cube"' in one[0] and one[0] != one[2]  # the gripper moved between them


def test_an_unreadable_estop_file_counts_as_engaged(call_json, llmos_workspace):
    path = llmos_workspace / ".llmos" / "robo" / "estop.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{half a json")
    code, out = call_json("robot_move_relative", {"dz": 0.01})
    assert code == 4 and out["decision"]["rule"] == "robo.estop", out
    assert "unreadable" in out["error"]
    path.write_text('{"engaged": "no"}')
    code, out = call_json("robot_move_relative", {"dz": 0.01})
    assert code == 4 and "malformed" in out["error"]


def test_the_emergency_stop_is_allowed_even_by_the_strict_policy(llmos_cli):
    stopped = llmos_cli("--set", "security.backend=strict", "tools", "call",
                        "robot_emergency_stop", "--input", '{"reason": "drill"}', "--json")
    assert stopped.exit_code == 0, stopped.output
    moved = llmos_cli("--set", "security.backend=strict", "tools", "call", "robot_home",
                      "--input", "{}", "--json")
    assert moved.exit_code == 4  # any motion: strict asks, and nobody is there to answer
