"""One robot per kernel: the driver (connected on first use), the durable e-stop, the
durable world snapshot and the listeners that stream state changes.

The simulated world is state like the e-stop: it is saved to ``.llmos/robo/world.json``
after every action and restored on the next start, so that ``llmos tools call`` in one
process and ``llmos robo serve`` in another see the same arm and the same cube.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
import threading
import weakref
from typing import TYPE_CHECKING, Any

from llmos_robo.estop import EStop

if TYPE_CHECKING:
    from llmos.kernel import Kernel

    from llmos_robo.config import RoboConfig
    from llmos_robo.driver import Action, AppliedAction, RobotDriver

_ROBOTS: weakref.WeakKeyDictionary[Any, Robot] = weakref.WeakKeyDictionary()


def robot_for(kernel: Kernel) -> Robot:
    robot = _ROBOTS.get(kernel)
    if robot is None:
        robot = _ROBOTS[kernel] = Robot(kernel)
    return robot


def estop_for(kernel: Kernel) -> EStop:
    """The e-stop, without starting the simulator."""
    return EStop(kernel.workspace.state_dir / "robo" / "estop.json")


class RobotBusy(Exception):
    """Another llmos process drives the robot (one controller at a time, like a real arm)."""


class _ControllerLock:
    """An exclusive ``flock`` on ``.llmos/robo/controller.lock`` while a driver is connected.
    The e-stop needs no lock: any process may engage it, the controller's motion loop
    reads it while moving."""

    def __init__(self, path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 100).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RobotBusy(
                f"the robot is driven by another llmos process ({holder}); one controller at "
                "a time: use that process (e.g. the HTTP API of `llmos robo serve`), or stop "
                "it. The emergency stop works from anywhere.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


class Robot:
    def __init__(self, kernel: Kernel) -> None:
        self.cfg: RoboConfig = kernel.config.section("robo")
        self.dir = kernel.workspace.state_dir / "robo"
        self.estop = estop_for(kernel)
        self.world_path = self.dir / "world.json"
        self._driver: RobotDriver | None = None
        self._controller = _ControllerLock(self.dir / "controller.lock")
        self._connect_lock = threading.Lock()
        self.motion = threading.Lock()  # one action at a time
        # actions queue on their own worker, so that waiting moves never fill the shared
        # pool that observations (and the HTTP API's /state) need
        from concurrent.futures import ThreadPoolExecutor

        self.motion_worker = ThreadPoolExecutor(1, thread_name_prefix="robo-motion")
        self.last_command: dict[str, Any] | None = None
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]] = []

    # -- the driver ------------------------------------------------------------------

    def scene_key(self) -> str:
        blob = json.dumps([self.cfg.driver, self.cfg.robot,
                           [o.model_dump() for o in self.cfg.scene]], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def connected(self) -> bool:
        return self._driver is not None

    def driver(self) -> RobotDriver:
        """The connected driver (connects and restores the saved world on first use;
        blocking: call it from a worker thread in async code)."""
        with self._connect_lock:
            if self._driver is None:
                self._controller.acquire()
                try:
                    self._driver = self._connect(self._load_world())
                except BaseException:
                    self._controller.release()
                    raise
            return self._driver

    def _connect(self, saved: dict[str, Any] | None) -> RobotDriver:
        import math

        from llmos_robo.driver import Limits, load_driver
        from llmos_robo.safety import Envelope

        driver = load_driver(self.cfg.driver)
        driver.connect(Limits(Envelope.from_config(self.cfg)), list(self.cfg.scene),
                       saved.get("driver") if saved else None, lambda: self.estop.engaged)
        if not saved:
            driver.place_home(self.cfg.home, math.radians(self.cfg.home_yaw_deg))
        else:
            self.last_command = saved.get("last_command")
        driver.set_observer(self._notify)
        return driver

    def _load_world(self) -> dict[str, Any] | None:
        try:
            saved = json.loads(self.world_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("scene_key") != self.scene_key():
            return None  # another robot or scene: start fresh
        return saved

    def save_world(self) -> None:
        if self._driver is None:
            return
        data = {"scene_key": self.scene_key(), "driver": self._driver.snapshot(),
                "last_command": self.last_command}
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".world-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, self.world_path)

    def reset_world(self) -> None:
        """A fresh scene: objects where the config puts them, the arm at home (human only)."""
        with self.motion, self._connect_lock:
            if self._driver is not None:
                self._driver.disconnect()
            else:
                self._controller.acquire()
            with contextlib.suppress(FileNotFoundError):
                self.world_path.unlink()
            self.last_command = None
            self._driver = self._connect(None)
            self.save_world()
        self._notify()

    def close(self) -> None:
        with self._connect_lock:
            if self._driver is not None:
                self.save_world()
                self._driver.disconnect()
                self._driver = None
            self._controller.release()
        self.motion_worker.shutdown(wait=False, cancel_futures=True)

    # -- acting ----------------------------------------------------------------------

    def act(self, action: Action, command: dict[str, Any]) -> AppliedAction:
        """Send one action (blocking); the world is saved whatever happened."""
        driver = self.driver()
        with self.motion:
            try:
                applied = driver.send_action(action)
            except Exception as exc:
                self.last_command = {**command, "result": f"refused: {exc}"}
                raise
            else:
                self.last_command = {**command, "result": "halted" if applied.stopped
                                     else "done"}
            finally:
                self.save_world()
        return applied

    def emergency_stop(self, by: str, reason: str = "") -> dict[str, Any]:
        """Engage the durable e-stop and halt any motion now."""
        state = self.estop.engage(by, reason)
        if self._driver is not None:
            self._driver.stop()
        self._notify()
        return state

    # -- listeners (the WebSocket stream) -------------------------------------------

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._listeners.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._listeners = [(lp, q) for lp, q in self._listeners if q is not queue]

    def _notify(self) -> None:
        for loop, queue in list(self._listeners):
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_offer, queue)


def _offer(queue: asyncio.Queue[str]) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait("changed")
