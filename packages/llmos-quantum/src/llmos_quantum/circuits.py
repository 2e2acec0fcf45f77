"""Circuits from text: OpenQASM 2, OpenQASM 3, a small JSON description, or kids' blocks."""

from __future__ import annotations

import json
from typing import Any, Literal

from llmos.tools import ToolError

Format = Literal["auto", "qasm2", "qasm3", "json"]

#: Kids' blocks and the gates they stand for.
KIDS_BLOCKS = {"COIN_FLIP": "h", "TWIN_LINK": "cx", "COLOR_CHANGE": "z", "HALF_SPIN": "s"}
#: Gates the JSON description accepts, with how many qubits and parameters each takes.
JSON_GATES: dict[str, tuple[int, int]] = {
    "id": (1, 0), "x": (1, 0), "y": (1, 0), "z": (1, 0), "h": (1, 0), "s": (1, 0),
    "sdg": (1, 0), "t": (1, 0), "tdg": (1, 0), "sx": (1, 0), "rx": (1, 1), "ry": (1, 1),
    "rz": (1, 1), "p": (1, 1), "u": (1, 3), "cx": (2, 0), "cy": (2, 0), "cz": (2, 0),
    "ch": (2, 0), "swap": (2, 0), "cp": (2, 1), "crx": (2, 1), "cry": (2, 1), "crz": (2, 1),
    "rzz": (2, 1), "ccx": (3, 0), "cswap": (3, 0),
}


class CircuitError(ToolError):
    pass


def detect(text: str) -> Format:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return "json"
    head = stripped[:200].upper()
    if head.startswith("OPENQASM 3") or "OPENQASM 3" in head:
        return "qasm3"
    if "OPENQASM 2" in head:
        return "qasm2"
    raise CircuitError(
        "the circuit is neither OpenQASM (it must start with 'OPENQASM 2.0;' or 'OPENQASM 3;') "
        "nor a JSON description such as {\"qubits\": 2, \"gates\": [[\"h\", 0], [\"cx\", 0, 1]]}"
    )


def load(circuit: str | dict[str, Any], fmt: Format = "auto") -> Any:
    """A ``QuantumCircuit`` from QASM text or a JSON description; errors say what is wrong."""
    if isinstance(circuit, dict):
        return from_json(circuit)
    if fmt == "auto":
        fmt = detect(circuit)
    if fmt == "json":
        try:
            data = json.loads(circuit)
        except json.JSONDecodeError as exc:
            raise CircuitError(f"the JSON circuit description is not valid JSON: {exc}") from None
        return from_json(data)
    try:
        if fmt == "qasm2":
            from qiskit import qasm2

            return qasm2.loads(circuit, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        from qiskit import qasm3

        return qasm3.loads(circuit)
    except Exception as exc:  # qiskit's parsers raise several types; all mean bad input
        name = "OpenQASM 2" if fmt == "qasm2" else "OpenQASM 3"
        raise CircuitError(f"the {name} program does not parse: {exc}") from None


def from_json(data: Any) -> Any:
    """``{"qubits": 2, "gates": [["h", 0], ["cx", 0, 1], ["rz", 0.5, 1]], "measure": true}``.

    A gate is ``[name, *params, *qubits]`` or ``{"gate": name, "qubits": [...],
    "params": [...]}``; ``measure`` (default true) measures every qubit at the end.
    """
    from qiskit import QuantumCircuit

    if isinstance(data, list):
        data = {"gates": data}
    if not isinstance(data, dict):
        raise CircuitError("a JSON circuit is an object: {\"qubits\": n, \"gates\": [...]}")
    unknown = set(data) - {"qubits", "gates", "measure"}
    if unknown:
        raise CircuitError(f"unknown keys in the JSON circuit: {', '.join(sorted(unknown))} "
                           "(allowed: qubits, gates, measure)")
    gates = data.get("gates", [])
    if not isinstance(gates, list):
        raise CircuitError("'gates' must be a list such as [[\"h\", 0], [\"cx\", 0, 1]]")
    parsed = [_gate(i, g) for i, g in enumerate(gates)]
    used = max((q for _, _, qs in parsed for q in qs), default=-1) + 1
    qubits = data.get("qubits", used)
    if not isinstance(qubits, int) or isinstance(qubits, bool) or qubits < 1:
        raise CircuitError(f"'qubits' must be a positive integer, not {qubits!r}")
    if used > qubits:
        raise CircuitError(f"a gate uses qubit {used - 1} but the circuit has {qubits} qubits")
    circuit = QuantumCircuit(qubits)
    for name, params, qs in parsed:
        getattr(circuit, name)(*params, *qs)
    if data.get("measure", True):
        circuit.measure_all()
    return circuit


def _gate(index: int, gate: Any) -> tuple[str, list[float], list[int]]:
    where = f"gate #{index}"
    if isinstance(gate, dict):
        name, qubits, params = gate.get("gate"), gate.get("qubits", []), gate.get("params", [])
        if isinstance(qubits, int):
            qubits = [qubits]
    elif isinstance(gate, list) and gate:
        name, rest = gate[0], gate[1:]
        arity = JSON_GATES.get(str(name).lower(), (0, 0))
        params, qubits = rest[: arity[1]], rest[arity[1]:]
    else:
        raise CircuitError(f"{where} must be [name, *params, *qubits] or an object")
    if not isinstance(name, str) or name.lower() not in JSON_GATES:
        raise CircuitError(f"{where}: unknown gate {name!r}; known: {', '.join(JSON_GATES)}")
    name = name.lower()
    n_qubits, n_params = JSON_GATES[name]
    if (not isinstance(qubits, list) or len(qubits) != n_qubits
            or not all(isinstance(q, int) and not isinstance(q, bool) and q >= 0
                       for q in qubits)):
        raise CircuitError(f"{where}: {name} acts on {n_qubits} qubit(s) given as "
                           f"non-negative integers, got {qubits!r}")
    if len(set(qubits)) != len(qubits):
        raise CircuitError(f"{where}: {name} names the same qubit twice ({qubits})")
    if (not isinstance(params, list) or len(params) != n_params
            or not all(isinstance(p, int | float) and not isinstance(p, bool) for p in params)):
        raise CircuitError(f"{where}: {name} takes {n_params} numeric parameter(s), "
                           f"got {params!r}")
    return name, [float(p) for p in params], list(qubits)


def from_blocks(blocks: list[str], qubits: int) -> Any:
    """Kids' mode: ``["COIN_FLIP 0", "TWIN_LINK 0 1"]`` -> a measured circuit."""
    gates: list[list[Any]] = []
    for index, block in enumerate(blocks):
        words = block.replace(",", " ").split()
        if not words or words[0].upper() not in KIDS_BLOCKS:
            raise CircuitError(
                f"block #{index} ({block!r}) is not a block; use "
                + ", ".join(f"{b} (qubit{'s' if g == 'cx' else ''})"
                            for b, g in KIDS_BLOCKS.items())
            )
        try:
            targets = [int(w) for w in words[1:]]
        except ValueError:
            raise CircuitError(f"block #{index} ({block!r}): qubits are numbers such as 0 or 1"
                               ) from None
        gates.append([KIDS_BLOCKS[words[0].upper()], *targets])
    return from_json({"qubits": qubits, "gates": gates, "measure": True})
