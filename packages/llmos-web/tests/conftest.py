"""Fixtures: real HTTP servers on 127.0.0.1, kernels with the pack loaded from its entry point,
and a guard that makes any connection to a non-loopback address fail loudly."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from web_site import Site

# -- no traffic leaves the machine --------------------------------------------------------
# Every socket.connect of the test process is recorded; one to a non-loopback address
# raises instead of connecting. Tests assert on CONNECTS to prove a refusal happened
# before any connection was attempted.
CONNECTS: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect":
        return
    sock, address = args
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = str(address[0])
    CONNECTS.append(host)
    if not ipaddress.ip_address(host.split("%")[0]).is_loopback:
        raise ConnectionRefusedError(f"test guard: a test tried to connect to {host}")


sys.addaudithook(_audit)


@pytest.fixture
def connects() -> Callable[[], list[str]]:
    """``connects()``: the addresses the test process connected to since the test began."""
    start = len(CONNECTS)
    return lambda: CONNECTS[start:]


# -- kernels ------------------------------------------------------------------------------

BASE_SETTINGS = [
    'web.allowed_hosts=["127.0.0.1"]',
    # the pack's own hook is what these tests exercise; keep the kernel policy out of it
    "security.backend=trusted",
]


@pytest.fixture
def llmos_settings() -> list[str]:
    return list(BASE_SETTINGS)


@pytest.fixture
def web_kernel(llmos_workspace: Path, llmos_settings: list[str]):
    """``async with web_kernel("web.timeout_s=0.5") as kernel:`` - extra settings per test."""
    from llmos.kernel import Kernel

    @contextlib.asynccontextmanager
    async def make(*settings: str) -> AsyncIterator[Kernel]:
        async with Kernel(
            llmos_workspace, flags=[*llmos_settings, *settings], interactive=False
        ) as kernel:
            yield kernel

    return make


@pytest.fixture
def site() -> Iterator[Site]:
    """A real HTTP server on 127.0.0.1 (see web_site.Site); stopped after the test."""
    server = Site().start()
    yield server
    server.stop()
