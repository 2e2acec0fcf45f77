"""Backends by name: ``aer`` (ideal) and ``fake_<device>`` (noisy, from a fake IBM device).

Qiskit is imported here on first use only, so loading the pack stays cheap.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from llmos.tools import ToolError

_NAME = re.compile(r"^(aer|fake_[a-z0-9_]+|ibm_[a-z0-9_]+)$")


class UnknownBackend(ToolError):
    pass


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UnknownBackend(
            f"backend {name!r} is not a backend name; use 'aer', 'fake_<device>' such as "
            "'fake_sherbrooke', or 'ibm_<device>'"
        )
    return name


@functools.cache
def fake_device_names() -> dict[str, str]:
    """``fake_sherbrooke`` -> ``FakeSherbrooke`` for every fake V2 device qiskit-ibm-runtime
    ships (read from the module, without building the 60-odd devices)."""
    from qiskit_ibm_runtime import fake_provider
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    names: dict[str, str] = {}
    for attr in dir(fake_provider):
        cls = getattr(fake_provider, attr)
        if (isinstance(cls, type) and issubclass(cls, FakeBackendV2) and cls is not FakeBackendV2
                and attr.startswith("Fake")):
            device = attr[4:].removesuffix("V2")
            names["fake_" + re.sub(r"(?<!^)(?=[A-Z])", "_", device).lower()] = attr
            names.setdefault("fake_" + device.lower(), attr)
    return names


@functools.cache
def fake_device(name: str) -> Any:
    from qiskit_ibm_runtime import fake_provider

    devices = fake_device_names()
    if name not in devices:
        close = sorted(n for n in devices if n[5:8] == name[5:8])[:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownBackend(
            f"there is no fake device {name!r}{hint}; names look like 'fake_sherbrooke', "
            "'fake_brisbane', 'fake_manila'"
        )
    return getattr(fake_provider, devices[name])()


def simulator(name: str) -> Any:
    """An AerSimulator for ``name``: ideal for ``aer``, the device's noise for ``fake_*``."""
    from qiskit_aer import AerSimulator

    check_name(name)
    if name == "aer":
        return AerSimulator()
    if name.startswith("fake_"):
        return AerSimulator.from_backend(fake_device(name))
    raise UnknownBackend(
        f"backend {name!r} is a real IBM device; tools simulate only 'aer' and 'fake_*' "
        "devices (real hardware runs through quantum_execute_code with an IBM token)"
    )


def transpile_target(name: str) -> Any:
    """What to transpile for: the fake device itself, or the ideal simulator."""
    check_name(name)
    if name.startswith("fake_"):
        return fake_device(name)
    return simulator(name)
