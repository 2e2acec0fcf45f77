"""llmos-quantum: Qiskit tools, a quantum safety hook and a Qiskit Studio backend."""

__version__ = "0.1.0"
