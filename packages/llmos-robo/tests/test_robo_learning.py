"""The model drives the arm (LEARNER, scripted model server, the real Claude Code CLI); a
learned pick-and-place replays in FOLLOWER with no model request, re-checked step by step,
and hands off instead of moving blindly when the world differs or the trace is unsafe."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from llmos import LLMOS

from llmos_robo.runtime import robot_for

pytestmark = pytest.mark.cli

GOAL = "Pick up the cube and place it on the tray"
T = "mcp__llmos__"
PICK_AND_PLACE = [
    ("robot_find_objects", {}),
    ("robot_move_to", {"x": 0.55, "y": 0.12, "z": 0.15}),
    ("robot_gripper", {"action": "open"}),
    ("robot_move_to", {"x": 0.55, "y": 0.12, "z": 0.02}),
    ("robot_gripper", {"action": "close"}),
    ("robot_move_to", {"x": 0.55, "y": 0.12, "z": 0.15}),
    ("robot_move_to", {"x": 0.55, "y": -0.04, "z": 0.15}),
    ("robot_move_to", {"x": 0.55, "y": -0.2, "z": 0.15}),
    ("robot_move_to", {"x": 0.55, "y": -0.2, "z": 0.06}),
    ("robot_gripper", {"action": "open"}),
    ("robot_home", {}),
]


@pytest.fixture
def llmos_settings() -> list[str]:
    return ["budget.run_cap_usd=0.5"]


def cube_on_tray(kernel) -> bool:
    objects = robot_for(kernel).driver().object_poses()
    cube, tray = objects["cube"]["position"], objects["tray"]["position"]
    return abs(cube[0] - tray[0]) < 0.06 and abs(cube[1] - tray[1]) < 0.06 and cube[2] < 0.04


def gripper_position(kernel) -> tuple[float, ...]:
    return robot_for(kernel).driver().ee_pose()[0]


async def learn(llm_os: LLMOS, server) -> None:
    for tool, data in PICK_AND_PLACE:
        server.script.tool_use(T + tool, data)
    server.script.text("The cube is on the tray.")
    learned = await llm_os.execute(GOAL)
    assert learned.success and learned.mode == "LEARNER", learned.error
    results = [server.tool_result(f"toolu_{i:03d}_0") for i in range(len(PICK_AND_PLACE))]
    assert not any(r.is_error for r in results), [r.text for r in results if r.is_error]
    assert '"holding": "cube"' in results[4].text
    assert cube_on_tray(llm_os.kernel)


async def test_a_learned_pick_and_place_replays_for_free_and_diverges_when_the_cube_moved(
    llmos_workspace: Path, llmos_model_server, llmos_settings
):
    async with LLMOS(llmos_workspace, budget_usd=2, settings=llmos_settings) as llm_os:
        kernel = llm_os.kernel
        await learn(llm_os, llmos_model_server)
        requests = llmos_model_server.model_request_count

        robot_for(kernel).reset_world()  # a person puts the cube back, the arm at home
        assert not cube_on_tray(kernel)
        replayed = await llm_os.execute(GOAL)
        assert replayed.success, replayed.error
        assert (replayed.mode, replayed.model_requests, replayed.cost_usd) == ("FOLLOWER", 0, 0)
        assert llmos_model_server.model_request_count == requests
        assert cube_on_tray(kernel)
        steps = kernel.memory.run_steps(replayed.run_id)
        assert [s.tool for s in steps] == [tool for tool, _ in PICK_AND_PLACE]
        assert {s.source for s in steps} == {"replay"}

        # the cube is somewhere else now: the replay must not reach for the old place
        robot_for(kernel).reset_world()
        robot_for(kernel).driver().place_object("cube", 0.6, 0.05)
        home = gripper_position(kernel)
        llmos_model_server.script.text("The cube is not where I expected; stopping.")
        moved = await llm_os.execute(GOAL)
        # handed to the model (one request) after the first observation differed
        assert moved.diverged and moved.model_requests == 1
        steps = kernel.memory.run_steps(moved.run_id)
        assert [(s.tool, s.source) for s in steps] == [("robot_find_objects", "replay")]
        assert math.dist(gripper_position(kernel), home) < 0.002  # the arm never moved
        cube = robot_for(kernel).driver().object_poses()["cube"]["position"]
        assert cube[:2] == [0.6, 0.05]


UNSAFE_EDITS = [  # the first move of the learned trace, edited into each kind of unsafe
    ("robo.forbidden-zone", "x: 0.36\ny: 0.45\nz: 0.3", "camera_mast"),
    ("robo.workspace", "x: 0.55\ny: 0.12\nz: 0.9", "leaves the workspace box"),
    ("robo.max-step", "x: 0.7\ny: 0.12\nz: 0.15", "more than robo.max_step_m"),
    ("robo.estop", None, "the emergency stop is engaged"),  # unedited, e-stop pressed
]


async def test_replays_of_a_trace_edited_to_be_unsafe_are_refused_before_they_move(
    llmos_workspace: Path, llmos_model_server, llmos_settings, llmos_cli, tmp_path
):
    async with LLMOS(llmos_workspace, budget_usd=2, settings=llmos_settings) as llm_os:
        kernel = llm_os.kernel
        await learn(llm_os, llmos_model_server)
        (trace,) = kernel.memory.list_traces()
        assert llmos_cli("traces", "export", "--out", str(tmp_path)).exit_code == 0
        exported = tmp_path / f"{trace.id}.md"
        original = exported.read_text()
        first_move = "x: 0.55\ny: 0.12\nz: 0.15"
        assert first_move in original
        for rule, edit, words in UNSAFE_EDITS:
            # a person edits the exported Markdown and imports it again
            exported.write_text(original if edit is None
                                else original.replace(first_move, edit, 1))
            imported = llmos_cli("traces", "import", "--replace", str(exported))
            assert imported.exit_code == 0, imported.output
            assert not kernel.memory.get_trace(trace.id).demoted
            robot_for(kernel).reset_world()
            if rule == "robo.estop":
                await kernel.call_tool("robot_emergency_stop", {"reason": "test"})
            home = gripper_position(kernel)
            llmos_model_server.script.text("The recorded plan was refused; I did not move.")

            result = await llm_os.execute(GOAL)
            assert result.diverged, rule
            run_steps = kernel.memory.run_steps(result.run_id)
            assert [(s.tool, s.source) for s in run_steps][:2] == [
                ("robot_find_objects", "replay"), ("robot_move_to", "replay")]
            refused = run_steps[1].outcome
            assert refused.refused and rule in refused.excerpt and words in refused.excerpt
            assert math.dist(gripper_position(kernel), home) < 0.002
            assert kernel.memory.get_trace(trace.id).demoted  # never offered again
            await kernel.call_tool("robot_reset", {})


async def test_the_model_is_told_why_an_unsafe_move_was_refused(
    llmos_workspace: Path, llmos_model_server, llmos_settings
):
    server = llmos_model_server
    server.script.tool_use(T + "robot_find_objects", {}).tool_use(
        T + "robot_move_to", {"x": 0.36, "y": 0.45, "z": 0.3}       # through the mast
    ).tool_use(T + "robot_move_to", {"x": 0.45, "y": 0.0, "z": 0.9}  # out of the box
    ).tool_use(T + "robot_move_relative", {"dy": -0.4}               # too far at once
    ).tool_use(T + "robot_emergency_stop", {"reason": "model saw a person"}
    ).tool_use(T + "robot_move_relative", {"dz": -0.02}              # e-stop engaged
    ).tool_use(T + "robot_reset", {}                                 # not the model's call
    ).text("I stopped the robot.")
    async with LLMOS(llmos_workspace, budget_usd=2, settings=llmos_settings) as llm_os:
        kernel = llm_os.kernel
        result = await llm_os.execute("Move the robot arm over to the left")
        assert result.mode == "LEARNER"
        seen = [server.tool_result(f"toolu_{i:03d}_0") for i in range(7)]
        assert not seen[0].is_error and '"cube"' in seen[0].text
        for index, rule in [(1, "robo.forbidden-zone"), (2, "robo.workspace"),
                            (3, "robo.max-step"), (5, "robo.estop")]:
            assert seen[index].is_error, seen[index].text
            assert rule in seen[index].text and "suggestion:" in seen[index].text
        assert "camera_mast" in seen[1].text
        assert not seen[4].is_error and '"engaged": true' in seen[4].text
        assert seen[6].is_error  # robot_reset is not offered to the model
        first = server.conversation_requests[0]
        assert T + "robot_move_to" in first.tool_names
        assert T + "robot_reset" not in first.tool_names
        assert "Start every task with `robot_find_objects`" in str(first.body["messages"])
        assert math.dist(gripper_position(kernel), (0.45, 0.0, 0.35)) < 0.003
        status = await kernel.call_tool("robot_status", {})
        assert status.output["estop"]["engaged"] is True


async def test_the_learner_sees_the_camera_picture(llmos_workspace, llmos_model_server):
    """robot_camera's PNG reaches the model as an image block, not only as a path."""
    import base64

    llmos_model_server.script.tool_use(T + "robot_camera", {"view": "front"}).text("I see it.")
    async with LLMOS(llmos_workspace, budget_usd=5,
                     settings=["budget.run_cap_usd=0.5"]) as llm_os:
        result = await llm_os.execute("Look at the workspace with the front camera")
    assert result.success, result.error
    blocks = llmos_model_server.tool_result("toolu_000_0").content
    images = [b for b in blocks if isinstance(b, dict) and b.get("type") == "image"]
    assert len(images) == 1 and images[0]["source"]["media_type"] == "image/png"
    assert base64.b64decode(images[0]["source"]["data"]).startswith(b"\x89PNG\r\n\x1a\n")
