"""llmos-robo: simulated moves per second through the gate, and how fast the e-stop stops
the arm (simulation time and wall time).

Run from the repository root (after ``pip install -e packages/llmos-robo``):

    python bench/robo/run.py                 # 200 moves, 10 e-stops, HTTP e-stops too
    python bench/robo/run.py --moves 50 --stops 3 --no-http

Measures, on a fresh temporary workspace with the default ``layered`` policy:

- gate: ``robot_move_relative`` calls of +-2 cm through ``kernel.call_tool`` (validation,
  policy, the pack's path check, the simulated move until it settles, trace hooks):
  moves per second, median and p95 wall time per move; the same for refused moves (the
  path check alone) and for ``robot_status`` (an observation);
- e-stop (in process): a 25 cm move at 0.1 m/s, then ``robot_emergency_stop`` through the
  gate once the arm is moving: simulation time from the stop request to the arm at rest
  (joint speeds under 0.02 rad/s) and wall time from the call to the move returning;
- e-stop (HTTP): the same against ``llmos robo serve``: wall time from sending
  ``POST /emergency`` until the ``POST /move`` in progress returns halted.

Prints a table and writes JSON (default bench/results/robo.json, not committed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIM_HZ = 240


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summary(times: list[float]) -> dict[str, float]:
    return {"n": len(times), "per_s": len(times) / sum(times),
            "median_ms": statistics.median(times) * 1000, "p95_ms": pct(times, 0.95) * 1000}


async def gate_bench(workspace: Path, moves: int) -> dict[str, Any]:
    from llmos.kernel import Kernel

    async with Kernel(workspace, interactive=False) as kernel:
        await kernel.call_tool("robot_status", {})  # connect the simulator first
        timed = []
        for i in range(moves):
            dz = 0.02 if i % 2 == 0 else -0.02
            t = time.perf_counter()
            result = await kernel.call_tool("robot_move_relative", {"dz": dz})
            timed.append(time.perf_counter() - t)
            assert not result.is_error, result.error
        refused = []
        for _ in range(moves):
            t = time.perf_counter()
            result = await kernel.call_tool("robot_move_to", {"x": 0.36, "y": 0.45, "z": 0.3})
            refused.append(time.perf_counter() - t)
            assert result.decision.rule == "robo.forbidden-zone"
        status = []
        for _ in range(moves):
            t = time.perf_counter()
            await kernel.call_tool("robot_status", {})
            status.append(time.perf_counter() - t)
    return {"moves": summary(timed), "refused_moves": summary(refused),
            "status": summary(status)}


async def estop_bench(workspace: Path, stops: int) -> dict[str, Any]:
    from llmos_robo.runtime import robot_for

    from llmos.kernel import Kernel

    sim_ms, wall_ms = [], []
    async with Kernel(workspace, flags=["robo.max_speed_m_s=0.1"], interactive=False) as kernel:
        robot = robot_for(kernel)
        for i in range(stops):
            await kernel.call_tool("robot_reset", {"world": True})
            driver = await asyncio.to_thread(robot.driver)
            start = driver.ee_pose()[0]
            y = -0.25 if i % 2 == 0 else 0.2
            move = asyncio.create_task(
                kernel.call_tool("robot_move_to", {"x": 0.45, "y": y, "z": 0.35}))
            while math.dist(driver.ee_pose()[0], start) < 0.03:
                await asyncio.sleep(0.002)
            t = time.perf_counter()
            await kernel.call_tool("robot_emergency_stop", {"reason": "bench"})
            result = await move
            wall_ms.append((time.perf_counter() - t) * 1000)
            assert result.is_error and "halted" in result.error, result.error
            halt = driver.last_halt
            sim_ms.append((halt["still"] - halt["asked"]) / SIM_HZ * 1000)
        await kernel.call_tool("robot_reset", {"world": True})
    return {"n": stops, "sim_to_still_ms_median": statistics.median(sim_ms),
            "sim_to_still_ms_max": max(sim_ms), "wall_to_return_ms_median":
            statistics.median(wall_ms), "wall_to_return_ms_max": max(wall_ms)}


def http_bench(workspace: Path, stops: int) -> dict[str, Any]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "bench-token"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmos", "--workspace", str(workspace), "--set",
         "robo.max_speed_m_s=0.1", "robo", "serve", "--port", str(port), "--operator-token",
         token], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(base + "/safety", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        walls = []

        async def once(i: int) -> float:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                await client.post("/reset", json={"world": True},
                                  headers={"x-llmos-operator-token": token})
                start = (await client.get("/state")).json()["output"]["gripper"]["position"]
                y = -0.25 if i % 2 == 0 else 0.2
                move = asyncio.create_task(client.post("/move", json={"x": 0.45, "y": y,
                                                                      "z": 0.35}))
                while True:
                    here = (await client.get("/state")).json()["output"]["gripper"]["position"]
                    if math.dist(here, start) > 0.03:
                        break
                t = time.perf_counter()
                await client.post("/emergency", json={"reason": "bench"})
                response = await move
                assert response.status_code == 409, response.text
                return (time.perf_counter() - t) * 1000

        for i in range(stops):
            walls.append(asyncio.run(once(i)))
    finally:
        proc.terminate()
        proc.wait(15)
    return {"n": stops, "wall_post_emergency_to_move_returned_ms_median":
            statistics.median(walls), "max_ms": max(walls)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--stops", type=int, default=10)
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parents[1] / "results" / "robo.json"))
    args = parser.parse_args()
    for name in [n for n in os.environ if n.startswith("LLMOS_")]:
        del os.environ[name]
    results: dict[str, Any] = {"python": platform.python_version(),
                               "machine": platform.machine(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        results["gate"] = asyncio.run(gate_bench(Path(tmp) / "a", args.moves))
        results["estop"] = asyncio.run(estop_bench(Path(tmp) / "b", args.stops))
        if not args.no_http:
            results["estop_http"] = http_bench(Path(tmp) / "c", args.stops)
    for section in ("moves", "refused_moves", "status"):
        r = results["gate"][section]
        print(f"{section:15} {r['per_s']:8.1f}/s  median {r['median_ms']:7.2f} ms  "
              f"p95 {r['p95_ms']:7.2f} ms  (n={r['n']})")
    e = results["estop"]
    print(f"e-stop in process: arm still {e['sim_to_still_ms_median']:.1f} ms sim time after the "
          f"request (max {e['sim_to_still_ms_max']:.1f}); the move returned "
          f"{e['wall_to_return_ms_median']:.1f} ms wall (max {e['wall_to_return_ms_max']:.1f})")
    if "estop_http" in results:
        h = results["estop_http"]
        print(f"e-stop over HTTP: POST /emergency -> move returned halted in "
              f"{h['wall_post_emergency_to_move_returned_ms_median']:.1f} ms wall median "
              f"(max {h['max_ms']:.1f})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
