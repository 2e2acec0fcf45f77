"""Fixtures: kernels with the pack loaded from its entry point, and the Qiskit Studio server
run by a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StudioServer:
    """``llmos quantum serve`` in a thread: the real app under a real uvicorn."""

    def __init__(self, workspace: Path, settings: list[str], budget_usd: float | None) -> None:
        import uvicorn

        from llmos_quantum.studio.app import create_app

        self.app = create_app(workspace, settings=settings, budget_usd=budget_usd)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> StudioServer:
        self.thread.start()
        for _ in range(400):
            if self.server.started:
                return self
            if not self.thread.is_alive():
                raise RuntimeError("the studio server did not start")
            threading.Event().wait(0.025)
        raise RuntimeError("the studio server did not start in 10 s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=180, **kwargs)

    @property
    def kernel(self):
        return self.app.state.studio.kernel


@pytest.fixture
def llmos_settings() -> list[str]:
    return ["budget.run_cap_usd=0.5", "quantum.exec_timeout_s=60"]


@pytest.fixture
def studio(llmos_workspace: Path, llmos_settings: list[str]
           ) -> Iterator[Callable[..., StudioServer]]:
    """``server = studio("quantum.max_shots=10")``: started now, stopped after the test."""
    started: list[StudioServer] = []

    def make(*settings: str, budget_usd: float | None = 5.0) -> StudioServer:
        server = StudioServer(llmos_workspace, [*llmos_settings, *settings], budget_usd)
        started.append(server.start())
        return server

    yield make
    for server in started:
        with contextlib.suppress(Exception):
            server.stop()


@pytest.fixture
def quantum_kernel(llmos_workspace: Path, llmos_settings: list[str]):
    """``async with quantum_kernel("quantum.max_qubits=3") as kernel:``."""
    from llmos.kernel import Kernel

    @contextlib.asynccontextmanager
    async def make(*settings: str):
        async with Kernel(llmos_workspace, flags=[*llmos_settings, *settings],
                          interactive=False) as kernel:
            yield kernel

    return make
