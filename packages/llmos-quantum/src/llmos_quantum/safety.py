"""The quantum safety hook: qubits, shots, depth and backends within ``[quantum]`` limits,
kids' mode stricter, real IBM hardware only with a configured token and budget, and no
credentials pasted into programs.

A refusal is a ``deny`` decision with a reason that names the limit and the key to change;
``llmos tools call`` exits 4 on it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import llmos

if TYPE_CHECKING:
    from llmos_quantum.config import QuantumConfig

#: A credential written into the program itself (the token must come from the environment).
_PASTED_TOKEN = re.compile(
    r"""(QiskitRuntimeService|save_account)\s*\([^)]*\btoken\s*=\s*(['"])[^'"]{8,}\2"""
    r"""|\bQISKIT_IBM_TOKEN['"]?\s*\]?\s*=\s*['"][^'"]{8,}['"]""",
    re.DOTALL,
)


def deny(reason: str, rule: str) -> llmos.Decision:
    return llmos.Decision.deny(reason, f"quantum.{rule}")


def check_backend(name: str, cfg: QuantumConfig) -> llmos.Decision | None:
    if name.startswith("ibm_") and not cfg.ibm_configured():
        return deny(f"backend {name!r} is real IBM hardware: set quantum.ibm_token and a "
                    "budget quantum.ibm_max_jobs > 0 first", "ibm-not-configured")
    if not cfg.backend_allowed(name):
        return deny(f"backend {name!r} is not in quantum.allowed_backends "
                    f"({', '.join(cfg.allowed_backends)})", "backend")
    return None


def check_circuit(circuit: Any, cfg: QuantumConfig, *, max_qubits: int,
                  qubits_key: str) -> llmos.Decision | None:
    if circuit.num_qubits > max_qubits:
        return deny(f"the circuit uses {circuit.num_qubits} qubits; the limit is {max_qubits} "
                    f"({qubits_key})", "qubits")
    depth = circuit.depth()
    if depth > cfg.max_depth:
        return deny(f"the circuit is {depth} deep; the limit is {cfg.max_depth} "
                    "(quantum.max_depth)", "depth")
    return None


def check_shots(shots: Any, limit: int, key: str) -> llmos.Decision | None:
    if isinstance(shots, int) and shots > limit:
        return deny(f"{shots} shots asked; the limit is {limit} ({key})", "shots")
    return None


def review(tool: str, data: dict[str, Any], cfg: QuantumConfig) -> llmos.Decision | None:
    """The verdict on one call of this pack's tools (``None``: nothing to object to)."""
    if tool in ("quantum_run_circuit", "quantum_transpile"):
        backend = data.get("backend", "aer" if tool == "quantum_run_circuit"
                           else "fake_sherbrooke")
        if isinstance(backend, str) and (found := check_backend(backend, cfg)):
            return found
        if found := check_shots(data.get("shots"), cfg.max_shots, "quantum.max_shots"):
            return found
        circuit = _circuit(data)
        if circuit is not None:
            return check_circuit(circuit, cfg, max_qubits=cfg.max_qubits,
                                 qubits_key="quantum.max_qubits")
        return None
    if tool == "quantum_kids_run":
        qubits = data.get("qubits", 2)
        if isinstance(qubits, int) and qubits > cfg.kids_max_qubits:
            return deny(f"kids' mode allows {cfg.kids_max_qubits} qubits, not {qubits} "
                        "(quantum.kids_max_qubits)", "kids-qubits")
        if found := check_shots(data.get("shots", 100), cfg.kids_max_shots,
                                "quantum.kids_max_shots"):
            return found
        blocks = data.get("blocks")
        if isinstance(blocks, list) and len(blocks) > cfg.kids_max_blocks:
            return deny(f"the program has {len(blocks)} blocks; kids' mode allows "
                        f"{cfg.kids_max_blocks} (quantum.kids_max_blocks)", "kids-blocks")
        return None
    if tool in ("quantum_execute_code", "quantum_validate_code"):
        if data.get("ibm") is True and not cfg.ibm_configured():
            return deny("running on IBM hardware needs quantum.ibm_token and a budget "
                        "quantum.ibm_max_jobs > 0", "ibm-not-configured")
        code = data.get("code")
        if isinstance(code, str) and _PASTED_TOKEN.search(code):
            return deny("the program contains an IBM Quantum token; never paste a token into "
                        "code: configure quantum.ibm_token (or send it with the /run request) "
                        "and the program gets it as QISKIT_IBM_TOKEN", "pasted-token")
    return None


def _circuit(data: dict[str, Any]) -> Any:
    """The parsed circuit, or None when it does not parse (the tool reports that)."""
    from llmos_quantum.circuits import CircuitError, load

    try:
        return load(data["circuit"], data.get("format", "auto"))
    except (CircuitError, KeyError, TypeError):
        return None
