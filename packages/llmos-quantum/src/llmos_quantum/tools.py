"""The tools: run, transpile and kids' circuits in-process on Aer; execute and validate
programs in the sandbox.

Qiskit is imported inside the tool functions only (``llmos plugins`` never loads it).
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
from typing import TYPE_CHECKING, Any, Literal

import llmos
from llmos.tools import ToolError
from pydantic import BaseModel, ConfigDict, Field

from llmos_quantum import ibm_budget
from llmos_quantum.circuits import Format

if TYPE_CHECKING:
    from llmos_quantum.config import QuantumConfig

#: ``CallContext.extra`` key holding ``execute.IBMCredentials`` for one call (never an input).
CREDENTIALS = "quantum.ibm_credentials"
STATEVECTOR_MAX_QUBITS = 10
CIRCUIT_HELP = ("OpenQASM 2 or 3 text, or a JSON description "
                "{\"qubits\": 2, \"gates\": [[\"h\", 0], [\"cx\", 0, 1]], \"measure\": true}")


class RunCircuitInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    circuit: str | dict[str, Any] = Field(description=CIRCUIT_HELP)
    format: Format = Field("auto", description="How to read `circuit` (auto-detected).")
    backend: str = Field("aer", description="'aer' (ideal) or 'fake_<device>' for a noisy "
                         "simulation of that IBM device, e.g. 'fake_sherbrooke'.")
    shots: int = Field(1024, ge=1, description="Shots to sample (quantum.max_shots caps it).")
    seed: int | None = Field(None, description="Simulator seed, for reproducible counts.")
    statevector: bool = Field(False, description="Also return the final statevector (ideal "
                              f"'aer' only, at most {STATEVECTOR_MAX_QUBITS} qubits).")


class TranspileInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    circuit: str | dict[str, Any] = Field(description=CIRCUIT_HELP)
    format: Format = "auto"
    backend: str = Field("fake_sherbrooke", description="Device to transpile for.")
    optimization_level: int = Field(1, ge=0, le=3)
    seed: int | None = Field(None, description="Transpiler seed, for reproducible layouts.")


class ExecuteInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, description="A complete Qiskit Python program.")
    timeout_s: float | None = Field(None, gt=0, description="Wall-clock limit (at most "
                                    "quantum.exec_timeout_s).")
    ibm: bool = Field(False, description="Give the program the configured IBM Quantum "
                      "credentials (as QISKIT_IBM_* environment variables) and the network; "
                      "needs quantum.ibm_token and spends one job of quantum.ibm_max_jobs.")


class ValidateInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, description="A Qiskit Python program.")
    dry_run: bool = Field(True, description="Run it in the sandbox up to the point where it "
                          "submits circuits, report them, and stop before anything executes.")
    backend: str | None = Field(None, description="A fake device ('fake_sherbrooke') to "
                                "transpile the submitted circuits for in the dry run.")


class KidsInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    blocks: list[str] = Field(description="Blocks such as 'COIN_FLIP 0', 'TWIN_LINK 0 1', "
                              "'COLOR_CHANGE 1', 'HALF_SPIN 0'.")
    qubits: int = Field(2, ge=1, description="How many qubits (quantum.kids_max_qubits).")
    shots: int = Field(100, ge=1, description="How many times to run (quantum.kids_max_shots).")
    seed: int | None = None


def config(context: llmos.CallContext) -> QuantumConfig:
    return context.kernel.config.section("quantum")


def _counts(circuit: Any, backend: str, shots: int, seed: int | None) -> dict[str, int]:
    from qiskit import transpile

    from llmos_quantum.backends import simulator

    sim = simulator(backend)
    compiled = transpile(circuit, sim, seed_transpiler=seed) if backend != "aer" else circuit
    options: dict[str, Any] = {"shots": shots}
    if seed is not None:
        options["seed_simulator"] = seed
    counts = sim.run(compiled, **options).result().get_counts()
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _run_circuit(args: RunCircuitInput) -> dict[str, Any]:
    from llmos_quantum.circuits import load

    circuit = load(args.circuit, args.format)
    result: dict[str, Any] = {"backend": args.backend, "shots": args.shots,
                              "num_qubits": circuit.num_qubits, "depth": circuit.depth()}
    if circuit.num_clbits == 0:
        circuit.measure_all()
    result["counts"] = _counts(circuit, args.backend, args.shots, args.seed)
    if args.statevector:
        if args.backend != "aer" or circuit.num_qubits > STATEVECTOR_MAX_QUBITS:
            raise ToolError(
                f"statevector is available for the ideal 'aer' backend and at most "
                f"{STATEVECTOR_MAX_QUBITS} qubits (this run: {args.backend}, "
                f"{circuit.num_qubits} qubits)")
        from qiskit.quantum_info import Statevector

        state = Statevector.from_instruction(circuit.remove_final_measurements(inplace=False))
        result["statevector"] = [[round(a.real, 10), round(a.imag, 10)] for a in state.data]
    return result


async def quantum_run_circuit(args: RunCircuitInput, context: llmos.CallContext) -> dict:
    """Simulate a circuit and return its counts (and optionally its statevector)."""
    return await asyncio.to_thread(_run_circuit, args)


def _transpile(args: TranspileInput) -> dict[str, Any]:
    from qiskit import transpile

    from llmos_quantum.backends import transpile_target
    from llmos_quantum.circuits import load

    circuit = load(args.circuit, args.format)
    target = transpile_target(args.backend)
    compiled = transpile(circuit, target, optimization_level=args.optimization_level,
                         seed_transpiler=args.seed)
    ops = {k: int(v) for k, v in compiled.count_ops().items()}
    return {
        "backend": args.backend,
        "optimization_level": args.optimization_level,
        "input": {"num_qubits": circuit.num_qubits, "depth": circuit.depth(),
                  "size": circuit.size()},
        "depth": compiled.depth(),
        "size": compiled.size(),
        "num_qubits": compiled.num_qubits,
        "two_qubit_gates": compiled.num_nonlocal_gates(),
        "gate_counts": ops,
    }


async def quantum_transpile(args: TranspileInput, context: llmos.CallContext) -> dict:
    """Transpile a circuit for a device: depth, size and gate counts after transpilation."""
    return await asyncio.to_thread(_transpile, args)


async def quantum_execute_code(args: ExecuteInput, context: llmos.CallContext) -> dict:
    """Run a Qiskit program in a sandboxed child process; stdout, stderr and exit status."""
    from llmos_quantum.execute import run_program

    credentials = context.extra.get(CREDENTIALS)
    if args.ibm and credentials is None:
        credentials = ibm_budget.spend(context.kernel, config(context))
    done = await asyncio.to_thread(run_program, args.code, config(context),
                                   credentials=credentials, timeout_s=args.timeout_s)
    return done.as_dict()


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return list(dict.fromkeys(names))


async def quantum_validate_code(args: ValidateInput, context: llmos.CallContext) -> dict:
    """Syntax check, import check, and a sandboxed dry run up to the circuit submission."""
    problems: list[str] = []
    try:
        tree = ast.parse(args.code, "program.py")
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        return {"valid": False, "syntax_ok": False,
                "problems": [f"syntax error at {where}: {exc.msg}"], "imports": {},
                "dry_run": None}
    imports: dict[str, bool] = {}
    for name in _imports(tree):
        top = name.split(".")[0]
        if top not in imports:
            imports[top] = importlib.util.find_spec(top) is not None
            if not imports[top]:
                problems.append(f"module {top!r} is not installed (imported as {name})")
    dry: dict[str, Any] | None = None
    cfg = config(context)
    if args.dry_run and not problems:
        from llmos_quantum.backends import UnknownBackend, fake_device_names
        from llmos_quantum.execute import run_program

        device = None
        if args.backend is not None:
            device = fake_device_names().get(args.backend)
            if device is None:
                raise UnknownBackend(f"the dry run transpiles for fake devices only; "
                                     f"{args.backend!r} is not one (try 'fake_sherbrooke')")
        done = await asyncio.to_thread(run_program, args.code, cfg, dry_run=True,
                                       device=device)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("LLMOS_DRYRUN: ")),
                    None)
        if line is None:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            problems.append(f"the dry run failed before submitting a circuit: {tail}")
            dry = {"ok": False, "exit_status": done.exit_status, "stderr": done.stderr[-4000:]}
        else:
            dry = {"ok": True, **json.loads(line.removeprefix("LLMOS_DRYRUN: "))}
            problems += _beyond_limits(dry["circuits"], cfg)
    return {"valid": not problems, "syntax_ok": True, "problems": problems,
            "imports": imports, "dry_run": dry}


def _beyond_limits(circuits: list[dict[str, Any]], cfg: QuantumConfig) -> list[str]:
    problems = []
    for index, circuit in enumerate(circuits):
        if "error" in circuit.get("transpiled", {}):
            problems.append(f"circuit #{index} cannot be transpiled for the device: "
                            f"{circuit['transpiled']['error']}")
        if circuit["num_qubits"] > cfg.max_qubits:
            problems.append(f"circuit #{index} uses {circuit['num_qubits']} qubits; the limit "
                            f"is {cfg.max_qubits} (quantum.max_qubits)")
        if circuit["depth"] > cfg.max_depth:
            problems.append(f"circuit #{index} is {circuit['depth']} deep; the limit is "
                            f"{cfg.max_depth} (quantum.max_depth)")
    return problems


def _kids(args: KidsInput) -> dict[str, Any]:
    from llmos_quantum.circuits import from_blocks

    circuit = from_blocks(args.blocks, args.qubits)
    counts = _counts(circuit, "aer", args.shots, args.seed)
    return {"qubits": args.qubits, "shots": args.shots, "counts": counts,
            "circuit": circuit.draw(output="text").single_string()}


async def quantum_kids_run(args: KidsInput, context: llmos.CallContext) -> dict:
    """Kids' mode: turn blocks into a circuit and run it."""
    return await asyncio.to_thread(_kids, args)


Side = Literal["read-only", "idempotent", "mutating"]


def _meta(side: Side, latency: float, *modes: str) -> llmos.ToolMeta:
    return llmos.ToolMeta(side_effects=side, cost_hint_usd=0.0, latency_hint_s=latency,
                          error_modes=modes)


LIMITS = "limits: refused by the quantum hook (qubits, shots, depth, backend)"


def tools() -> list[llmos.Tool]:
    return [
        llmos.Tool("quantum_run_circuit",
                   "Simulate a quantum circuit (OpenQASM 2/3 or a JSON gate list) on Qiskit "
                   "Aer, ideal ('aer') or with a fake IBM device's noise ('fake_sherbrooke'), "
                   "and return the measurement counts; optionally the statevector.",
                   RunCircuitInput, quantum_run_circuit,
                   _meta("read-only", 2.0, "parse: the circuit text does not parse", LIMITS,
                         "backend: unknown backend name")),
        llmos.Tool("quantum_transpile",
                   "Transpile a circuit for a device (default fake_sherbrooke) and report "
                   "depth, size, two-qubit gate count and gate counts.",
                   TranspileInput, quantum_transpile,
                   _meta("read-only", 2.0, "parse: the circuit text does not parse", LIMITS,
                         "backend: unknown backend name")),
        llmos.Tool("quantum_execute_code",
                   "Run a complete Qiskit Python program in a sandboxed process (no network, "
                   "no writes outside its own directory, CPU/memory/output/time limits) and "
                   "return stdout, stderr and the exit status.",
                   ExecuteInput, quantum_execute_code,
                   _meta("idempotent", 10.0, "exit_status != 0: the program failed",
                         "timed_out: the program ran longer than quantum.exec_timeout_s",
                         "sandbox: no OS sandbox available (nothing runs)")),
        llmos.Tool("quantum_validate_code",
                   "Check a Qiskit program without running its circuits: syntax, imports, and "
                   "a sandboxed dry run that reports the circuits it would submit (qubits, "
                   "depth, gate counts).",
                   ValidateInput, quantum_validate_code,
                   _meta("read-only", 5.0, "valid: false with the problems listed")),
        llmos.Tool("quantum_kids_run",
                   "Kids' mode: blocks COIN_FLIP (h), TWIN_LINK (cx), COLOR_CHANGE (z) and "
                   "HALF_SPIN (s) on a few qubits, run on the ideal simulator.",
                   KidsInput, quantum_kids_run,
                   _meta("read-only", 1.0, "blocks: an unknown block or qubit", LIMITS)),
    ]
