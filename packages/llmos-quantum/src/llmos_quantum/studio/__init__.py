"""A drop-in backend for the Qiskit Studio frontend (github.com/AI4quantum/qiskit-studio)."""
