"""``llmos robo serve`` as a real process on 127.0.0.1: the endpoints go through the gate,
``POST /emergency`` stops a move in progress, ``/ws`` streams state changes, and the
camera PNG shows the arm."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

TOKEN = "operator-secret-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_env(llmos_env) -> dict[str, str]:
    """The environment the server process gets (a test may add the model server's)."""
    return dict(os.environ)


@pytest.fixture
def server(llmos_workspace: Path, server_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    # slow enough that a move is still going when the e-stop arrives
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmos", "--workspace", str(llmos_workspace),
         "--set", "robo.max_speed_m_s=0.04", "robo", "serve", "--port", str(port),
         "--operator-token", TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=server_env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode())
            try:
                if httpx.get(base + "/safety", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("llmos robo serve did not start")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise


def test_state_safety_and_a_move_through_the_gate(server):
    state = httpx.get(server + "/state").json()
    assert state["ok"] and state["decision"]["verdict"] == "allow"
    assert math.dist(state["output"]["gripper"]["position"], [0.45, 0.0, 0.35]) < 0.003
    safety = httpx.get(server + "/safety").json()
    assert safety["estop"] == {"engaged": False}
    assert [z["name"] for z in safety["forbidden_zones"]] == ["camera_mast"]

    moved = httpx.post(server + "/move", json={"dx": 0.0, "dy": 0.0, "dz": -0.05}, timeout=30)
    assert moved.status_code == 200, moved.text
    assert moved.json()["output"]["within_tolerance"]

    refused = httpx.post(server + "/move", json={"x": 0.36, "y": 0.45, "z": 0.3})
    assert refused.status_code == 403
    assert refused.json()["decision"]["rule"] == "robo.forbidden-zone"

    bad = httpx.post(server + "/move", content=b"{not json")
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    bad = httpx.post(server + "/move", json={"x": "far"})
    assert bad.status_code == 400 and "invalid input for tool 'robot_move_to'" in bad.text
    grip = httpx.post(server + "/gripper", json={"action": "close"}, timeout=30)
    assert grip.status_code == 200 and grip.json()["output"]["gripper"] == "closed"
    nothing = httpx.post(server + "/command", json={})
    assert nothing.status_code == 400 and "goal" in nothing.json()["error"]


@pytest.fixture
def funded_model(llmos_model_server, llmos_cli):
    assert llmos_cli("budget", "set", "2").exit_code == 0
    return llmos_model_server


@pytest.mark.cli
def test_a_natural_language_command_goes_through_the_router_and_the_gate(funded_model, server):
    # funded_model comes first: the server process inherits the model server's environment
    funded_model.script.tool_use("mcp__llmos__robot_find_objects", {}).tool_use(
        "mcp__llmos__robot_move_relative", {"dz": -0.05}).tool_use(
        "mcp__llmos__robot_move_to", {"x": 0.36, "y": 0.45, "z": 0.3}).text("Lowered it.")
    response = httpx.post(server + "/command", json={"goal": "Lower the robot arm by 5 cm"},
                          timeout=300)
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["mode"] == "LEARNER" and run["success"], run
    assert not funded_model.tool_result("toolu_001_0").is_error
    refused = funded_model.tool_result("toolu_002_0")
    assert refused.is_error and "robo.forbidden-zone" in refused.text
    here = httpx.get(server + "/state").json()["output"]["gripper"]["position"]
    assert math.dist(here, [0.45, 0.0, 0.30]) < 0.005
    # the operator's instructions reached the model with the goal
    assert "robot_find_objects" in str(funded_model.conversation_requests[0].body["messages"])


def test_emergency_stops_a_move_in_progress_and_only_the_operator_resets(server):
    start = httpx.get(server + "/state").json()["output"]["gripper"]["position"]
    target = [0.45, -0.25, 0.35]

    async def scenario():
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            move = asyncio.create_task(
                client.post("/move", json={"x": target[0], "y": target[1], "z": target[2]}))
            for _ in range(500):  # wait until the arm is really on its way
                await asyncio.sleep(0.01)
                here = (await client.get("/state")).json()["output"]["gripper"]["position"]
                if math.dist(here, start) > 0.01:
                    break
            stop = await client.post("/emergency", json={"reason": "hand in the cell"})
            return await move, stop

    move, stop = asyncio.run(scenario())
    assert stop.status_code == 200 and stop.json()["output"]["estop"]["engaged"] is True
    assert move.status_code == 409, move.text
    assert "halted" in move.json()["error"]
    state = httpx.get(server + "/state").json()["output"]
    here = state["gripper"]["position"]
    assert math.dist(here, target) > 0.05 and math.dist(here, start) > 0.01
    assert state["estop"]["engaged"] and state["estop"]["reason"] == "hand in the cell"

    again = httpx.post(server + "/move", json={"dz": 0.01})
    assert again.status_code == 403 and again.json()["decision"]["rule"] == "robo.estop"
    no_token = httpx.post(server + "/reset")
    assert no_token.status_code == 401 and "operator token" in no_token.json()["error"]
    wrong = httpx.post(server + "/reset", headers={"x-llmos-operator-token": "guess"})
    assert wrong.status_code == 401
    assert httpx.get(server + "/safety").json()["estop"]["engaged"] is True
    reset = httpx.post(server + "/reset", headers={"x-llmos-operator-token": TOKEN})
    assert reset.status_code == 200, reset.text
    assert httpx.post(server + "/move", json={"dz": 0.01}, timeout=30).status_code == 200


def test_the_websocket_streams_state_changes(server):
    import websockets

    async def scenario():
        url = server.replace("http://", "ws://") + "/ws"
        async with websockets.connect(url) as ws, httpx.AsyncClient(base_url=server,
                                                                    timeout=60) as client:
            first = json.loads(await asyncio.wait_for(ws.recv(), 20))
            move = asyncio.create_task(client.post("/move", json={"dz": -0.04}))
            seen = []
            while not move.done() or len(seen) < 2:
                try:
                    seen.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
                except TimeoutError:
                    break
            await move
            return first, seen

    first, seen = asyncio.run(scenario())
    assert first["type"] == "state" and first["state"]["estop"]["engaged"] is False
    heights = [m["state"]["gripper"]["position"][2] for m in seen]
    assert len(heights) >= 2 and heights[-1] < first["state"]["gripper"]["position"][2] - 0.03
    assert seen[-1]["state"]["last_command"]["tool"] == "robot_move_relative"


def _png(server: str, view: str) -> np.ndarray:
    response = httpx.get(f"{server}/camera/{view}.png", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.size == (320, 240)
    return np.asarray(image.convert("RGB")).astype(int)


def test_the_camera_png_shows_the_arm_and_the_cube(server):
    before = _png(server, "front")
    red = (before[:, :, 0] > 150) & (before[:, :, 1] < 80) & (before[:, :, 2] < 80)
    assert red.sum() > 20  # the red cube is in view
    assert len(np.unique(before.reshape(-1, 3), axis=0)) > 50  # a rendered scene, not a fill
    assert httpx.post(server + "/move", json={"dy": -0.2}, timeout=30).status_code == 200
    after = _png(server, "front")
    changed = np.abs(after - before).sum(axis=2) > 60
    # the arm moved across the picture: many pixels changed, the cube's did not
    assert changed.sum() > 500
    assert not (changed & red).any()
    rows, _cols = np.nonzero(changed)
    assert rows.min() < 120  # the arm reaches up into the upper half of the picture
    top = _png(server, "top")
    assert np.abs(top - before).sum() > 0
    unknown = httpx.get(server + "/camera/behind.png")
    assert unknown.status_code == 400 and "view" in unknown.json()["error"]


def test_one_controller_at_a_time_and_the_estop_works_from_another_process(
    server, llmos_workspace
):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "llmos", "--workspace",
                               str(llmos_workspace), *args], capture_output=True, text=True)

    busy = cli("tools", "call", "robot_move_relative", "--input", '{"dz": 0.02}', "--json")
    assert busy.returncode == 4, busy.stdout + busy.stderr
    out = json.loads(busy.stdout)
    assert out["decision"]["rule"] == "robo.busy" and "llmos robo serve" in out["error"]

    start = httpx.get(server + "/state").json()["output"]["gripper"]["position"]

    async def scenario():
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            move = asyncio.create_task(client.post("/move", json={"x": 0.45, "y": 0.25,
                                                                  "z": 0.35}))
            for _ in range(500):
                await asyncio.sleep(0.01)
                here = (await client.get("/state")).json()["output"]["gripper"]["position"]
                if math.dist(here, start) > 0.01:
                    break
            # a human at another terminal presses the e-stop: a different process
            stop = await asyncio.to_thread(cli, "tools", "call", "robot_emergency_stop",
                                           "--input", '{"reason": "from the terminal"}')
            return await move, stop

    move, stop = asyncio.run(scenario())
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert move.status_code == 409 and "emergency stop engaged during the move" in move.text
    here = httpx.get(server + "/state").json()["output"]["gripper"]["position"]
    assert math.dist(here, [0.45, 0.25, 0.35]) > 0.03


def test_the_estop_is_not_held_up_by_moves_queued_behind_the_arm(server):
    start = httpx.get(server + "/state").json()["output"]["gripper"]["position"]
    # ten moves at once, every one at least 10 cm from home: whichever runs first is
    # still under way when the e-stop comes
    targets = [{"x": x, "y": y, "z": z} for x, y, z in [
        (0.45, -0.25, 0.35), (0.45, 0.2, 0.35), (0.5, -0.2, 0.3), (0.5, 0.15, 0.3),
        (0.4, -0.2, 0.4), (0.4, 0.15, 0.4), (0.55, 0.1, 0.25), (0.55, -0.1, 0.25),
        (0.35, 0.1, 0.3), (0.35, -0.1, 0.3)]]

    async def scenario():
        async with httpx.AsyncClient(base_url=server, timeout=120) as client:
            moves = [asyncio.create_task(client.post("/move", json=t)) for t in targets]
            for _ in range(500):
                await asyncio.sleep(0.01)
                here = (await client.get("/state")).json()["output"]["gripper"]["position"]
                if math.dist(here, start) > 0.01:
                    break
            stop = await client.post("/emergency", json={"reason": "queue test"})
            return stop, [await m for m in moves]

    stop, moves = asyncio.run(scenario())
    assert stop.status_code == 200
    codes = [m.status_code for m in moves]
    # the move under way was halted, and none of the queued ones ran after the e-stop
    assert codes.count(200) == 0, [m.text for m in moves]
    assert sum("halted" in m.text for m in moves) == 1
    assert all(m.status_code in (403, 409) for m in moves)
    assert all("robo.estop" in m.text for m in moves if "halted" not in m.text)
