"""The ``[quantum]`` config section, contributed through ``llmos_register_config``."""

from __future__ import annotations

from fnmatch import fnmatchcase

from llmos.config import Section
from pydantic import Field, SecretStr, field_validator

DEFAULT_ORIGINS = ["http://localhost:3000"]


class QuantumConfig(Section):
    """Limits the quantum safety hook enforces, sandbox limits, IBM access and the server.

    Backend names: ``aer`` (ideal simulator), ``fake_<device>`` (a noisy simulator built
    from a fake IBM device, e.g. ``fake_sherbrooke``), ``ibm_<device>`` (real hardware,
    only with ``ibm_token`` and ``ibm_max_jobs`` > 0).
    """

    max_qubits: int = Field(24, ge=1, le=64, description="Most qubits a circuit may use.")
    max_shots: int = Field(100_000, ge=1, description="Most shots one run may take.")
    max_depth: int = Field(10_000, ge=1, description="Deepest circuit accepted (before "
                           "transpilation).")
    allowed_backends: list[str] = Field(
        default_factory=lambda: ["aer", "fake_*"],
        description="Backend names (fnmatch patterns) tools may use; real IBM devices "
        "(ibm_*) also need ibm_token and ibm_max_jobs.",
    )
    kids_max_qubits: int = Field(4, ge=1, le=16, description="Kids' mode: most qubits.")
    kids_max_shots: int = Field(1024, ge=1, description="Kids' mode: most shots.")
    kids_max_blocks: int = Field(40, ge=1, description="Kids' mode: most blocks a program has.")

    exec_timeout_s: float = Field(120.0, gt=0, le=3600,
                                  description="Wall-clock limit of one sandboxed program.")
    exec_cpu_s: int = Field(300, ge=1, description="CPU seconds one sandboxed program may use.")
    exec_memory_mb: int = Field(4096, ge=256, description="Address-space limit of a sandboxed "
                                "program (MiB).")
    exec_output_kb: int = Field(512, ge=1, description="Most stdout (and, separately, stderr) "
                                "a sandboxed program may write (KiB); the rest is cut off.")

    ibm_token: SecretStr | None = Field(
        None, description="IBM Quantum API key; prefer the LLMOS_QUANTUM__IBM_TOKEN "
        "environment variable to a file. Given to programs only as QISKIT_IBM_TOKEN.")
    ibm_channel: str = Field("ibm_quantum_platform", description="QISKIT_IBM_CHANNEL.")
    ibm_instance: str | None = Field(None, description="QISKIT_IBM_INSTANCE (a CRN).")
    ibm_max_jobs: int = Field(
        0, ge=0, description="Budget of programs that may run on real IBM hardware per server "
        "process (0: never; tokens sent by a client are refused).")

    cors_allow_origins: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ORIGINS),
        description="Origins the Qiskit Studio server answers from a browser (the "
        "CORS_ALLOW_ORIGINS environment variable, comma-separated, wins).")

    @field_validator("allowed_backends")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not entry or entry != entry.strip().lower():
                raise ValueError(
                    f"backend pattern {entry!r} must be a lower-case name such as 'aer' or "
                    "'fake_*'"
                )
        return value

    def backend_allowed(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self.allowed_backends)

    def ibm_configured(self) -> bool:
        return self.ibm_token is not None and self.ibm_max_jobs > 0
