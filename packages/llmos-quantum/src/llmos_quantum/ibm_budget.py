"""The budget of real IBM hardware runs: ``quantum.ibm_max_jobs`` per kernel (process)."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from llmos.tools import ToolError

if TYPE_CHECKING:
    from llmos_quantum.config import QuantumConfig
    from llmos_quantum.execute import IBMCredentials

_SPENT: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class HardwareRefused(ToolError):
    pass


def take(kernel: Any, cfg: QuantumConfig) -> str | None:
    """Spend one hardware job; ``None`` when it was granted, else why not."""
    with _LOCK:
        spent = _SPENT.get(kernel, 0)
        if cfg.ibm_max_jobs == 0:
            return "is not enabled on this server (quantum.ibm_max_jobs = 0)"
        if spent >= cfg.ibm_max_jobs:
            return f"budget is spent ({cfg.ibm_max_jobs} jobs, quantum.ibm_max_jobs)"
        _SPENT[kernel] = spent + 1
        return None


def spend(kernel: Any, cfg: QuantumConfig) -> IBMCredentials:
    """The configured credentials for one hardware run, its job taken from the budget."""
    from llmos_quantum.execute import IBMCredentials

    if cfg.ibm_token is None:
        raise HardwareRefused("no IBM Quantum token is configured (quantum.ibm_token, e.g. "
                              "the LLMOS_QUANTUM__IBM_TOKEN environment variable)")
    refused = take(kernel, cfg)
    if refused is not None:
        raise HardwareRefused(f"IBM Quantum hardware {refused}")
    return IBMCredentials(cfg.ibm_token.get_secret_value(), cfg.ibm_channel, cfg.ibm_instance)
