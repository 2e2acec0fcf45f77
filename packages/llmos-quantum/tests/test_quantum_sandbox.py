"""Model-written programs run in a separate, sandboxed process: no network, no writes
outside their own directory, no secrets, bounded time, memory and output."""

from __future__ import annotations

import json
import socket
import textwrap
import threading

import pytest
from llmos.security.sandbox import available

pytestmark = pytest.mark.skipif(available().mechanism != "bwrap",
                                reason=f"needs bubblewrap: {available().reason}")


async def execute(kernel, code: str, **extra):
    result = await kernel.call_tool("quantum_execute_code",
                                    {"code": textwrap.dedent(code), **extra})
    assert not result.is_error, result.error
    return result.output


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that records whether anything connected."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    sock.close()


async def test_a_program_runs_qiskit_in_the_sandbox(quantum_kernel):
    async with quantum_kernel() as kernel:
        out = await execute(kernel, """
            from qiskit import QuantumCircuit
            from qiskit_aer import AerSimulator
            qc = QuantumCircuit(2); qc.h(0); qc.cx(0, 1); qc.measure_all()
            counts = AerSimulator().run(qc, shots=300, seed_simulator=4).result().get_counts()
            print(sorted(counts), sum(counts.values()))
            import sys; print("fails", file=sys.stderr); sys.exit(3)
        """)
    assert out["stdout"] == "['00', '11'] 300\n"
    assert out["stderr"] == "fails\n"
    assert (out["exit_status"], out["ok"], out["sandbox"]) == (3, False, "bwrap")


async def test_the_network_is_unreachable(quantum_kernel, listener):
    port, accepted = listener
    async with quantum_kernel() as kernel:
        out = await execute(kernel, f"""
            import socket
            for host in ("127.0.0.1", "1.1.1.1"):
                try:
                    socket.create_connection((host, {port}), timeout=2)
                    print(host, "connected")
                except OSError as exc:
                    print(host, "refused", type(exc).__name__)
        """)
    assert "connected" not in out["stdout"]
    assert out["stdout"].count("refused") == 2
    assert accepted == []


async def test_writes_outside_the_run_directory_fail(quantum_kernel, tmp_path):
    outside = tmp_path / "outside.txt"
    async with quantum_kernel() as kernel:
        workspace = kernel.workspace.root
        state = kernel.workspace.state_dir
        out = await execute(kernel, f"""
            for path in ({str(workspace / 'pwned.txt')!r}, {str(state / 'pwned.db')!r},
                         {str(outside)!r}, "/usr/lib/pwned", "own-dir.txt"):
                try:
                    with open(path, "w") as handle:
                        handle.write("x")
                    print("wrote", path)
                except OSError as exc:
                    print("refused", path, type(exc).__name__)
        """)
    assert out["stdout"].count("refused") == 4, out
    assert "wrote own-dir.txt" in out["stdout"]
    assert not (workspace / "pwned.txt").exists()
    assert not (state / "pwned.db").exists()
    assert not outside.exists()


async def test_secrets_of_the_server_are_not_visible(quantum_kernel, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret-0042")
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "ibm-secret-token-0042")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-0042")
    async with quantum_kernel() as kernel:
        database = kernel.workspace.database_path
        out = await execute(kernel, f"""
            import os
            print(sorted(os.environ.items()))
            for path in ({str(database)!r}, "/proc/1/environ", os.path.expanduser("~/.ssh")):
                print(path, os.path.exists(path))
        """)
    assert "0042" not in out["stdout"] + out["stderr"]
    assert f"{database} False" in out["stdout"]
    assert "/proc/1/environ" in out["stdout"]
    assert out["exit_status"] == 0


async def test_a_program_that_runs_forever_is_stopped_and_the_kernel_carries_on(
        quantum_kernel):
    async with quantum_kernel() as kernel:
        out = await execute(kernel, "while True:\n    pass\n", timeout_s=2)
        assert out["timed_out"] is True and out["ok"] is False
        assert "stopped after 2 s (quantum.exec_timeout_s)" in out["stderr"]
        again = await execute(kernel, "print('still here')")
    assert again["stdout"] == "still here\n"


async def test_memory_output_and_cpu_are_bounded(quantum_kernel):
    async with quantum_kernel("quantum.exec_memory_mb=512", "quantum.exec_output_kb=16",
                              "quantum.exec_cpu_s=1") as kernel:
        memory = await execute(kernel, "data = bytearray(2 * 1024**3)\nprint('allocated')")
        flood = await execute(kernel, "while True:\n    print('x' * 1000)\n")
        cpu = await execute(kernel, "while True:\n    pass\n", timeout_s=30)
    assert "allocated" not in memory["stdout"]
    assert "MemoryError" in memory["stderr"] and memory["exit_status"] != 0
    assert flood["truncated"] is True and flood["exit_status"] != 0
    assert len(flood["stdout"]) <= 16 * 1024
    assert "output was cut off at 16 KiB" in flood["stderr"]
    assert cpu["timed_out"] is False and cpu["exit_status"] != 0
    assert "CPU limit (quantum.exec_cpu_s)" in cpu["stderr"]


def test_a_token_pasted_into_code_is_refused_with_exit_4(llmos_cli):
    code = ("from qiskit_ibm_runtime import QiskitRuntimeService\n"
            "service = QiskitRuntimeService(channel='ibm_quantum_platform',\n"
            "                               token='abcdef0123456789')\n")
    result = llmos_cli("tools", "call", "quantum_execute_code", "--input",
                       json.dumps({"code": code}), "--json")
    assert result.exit_code == 4, result.output
    out = json.loads(result.output)
    assert out["decision"]["rule"] == "quantum.pasted-token"
    assert "never paste a token into code" in out["error"]


async def test_validate_reports_syntax_and_missing_modules(quantum_kernel):
    async with quantum_kernel() as kernel:
        syntax = await kernel.call_tool("quantum_validate_code",
                                        {"code": "from qiskit import QuantumCircuit\nqc = (\n"})
        missing = await kernel.call_tool("quantum_validate_code",
                                         {"code": "import qiskit\nimport no_such_module_q\n"})
    assert syntax.output["valid"] is False and syntax.output["syntax_ok"] is False
    assert syntax.output["problems"][0].startswith("syntax error at line 2")
    assert missing.output["valid"] is False
    assert missing.output["imports"] == {"qiskit": True, "no_such_module_q": False}
    assert "module 'no_such_module_q' is not installed" in missing.output["problems"][0]


async def test_the_dry_run_reports_circuits_without_running_them(quantum_kernel):
    program = """
        from qiskit import QuantumCircuit, transpile
        from qiskit_aer import AerSimulator
        from qiskit_ibm_runtime import SamplerV2 as Sampler
        backend = AerSimulator()
        qc = QuantumCircuit(3)
        qc.h(0); qc.cx(0, 1); qc.cx(1, 2); qc.measure_all()
        print("building")
        result = Sampler(mode=backend).run([transpile(qc, backend)]).result()
        print("RESULT: ran the circuit")
    """
    async with quantum_kernel() as kernel:
        result = await kernel.call_tool("quantum_validate_code",
                                        {"code": textwrap.dedent(program)})
    out = result.output
    assert out["valid"] is True, out
    dry = out["dry_run"]
    assert dry["ok"] is True
    assert dry["submitted_by"] == "qiskit_ibm_runtime.sampler.SamplerV2.run"
    (circuit,) = dry["circuits"]
    assert circuit["num_qubits"] == 3 and circuit["gate_counts"]["cx"] == 2
    assert circuit["depth"] == 4  # h, cx, cx, measure (barriers do not count)


def test_ibm_hardware_without_a_configured_token_and_budget_is_refused(llmos_cli):
    result = llmos_cli("tools", "call", "quantum_execute_code", "--input",
                       json.dumps({"code": "print(1)", "ibm": True}), "--json")
    assert result.exit_code == 4, result.output
    out = json.loads(result.output)
    assert out["decision"]["rule"] == "quantum.ibm-not-configured"
    assert "needs quantum.ibm_token and a budget quantum.ibm_max_jobs > 0" in out["error"]


async def test_the_configured_token_reaches_the_program_as_environment_within_budget(
        quantum_kernel, monkeypatch):
    import hashlib

    token = "ibm-config-token-7c4a8d09ca3762af"
    monkeypatch.setenv("LLMOS_QUANTUM__IBM_TOKEN", token)
    program = ("import hashlib, os\n"
               "print(hashlib.sha256(os.environ['QISKIT_IBM_TOKEN'].encode()).hexdigest())\n"
               "print(os.environ['QISKIT_IBM_CHANNEL'], os.environ['QISKIT_IBM_TOKEN'])\n")
    async with quantum_kernel("quantum.ibm_max_jobs=1") as kernel:
        first = await kernel.call_tool("quantum_execute_code", {"code": program, "ibm": True})
        second = await kernel.call_tool("quantum_execute_code", {"code": program, "ibm": True})
        state = kernel.workspace.state_dir
        assert first.output["stdout"] == (
            f"{hashlib.sha256(token.encode()).hexdigest()}\nibm_quantum_platform [redacted]\n")
        assert second.is_error
        assert "IBM Quantum hardware budget is spent (1 jobs" in second.error
        for path in state.rglob("*"):
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path


async def test_the_home_directory_of_the_server_is_not_visible(quantum_kernel):
    from pathlib import Path

    home = Path.home()
    async with quantum_kernel() as kernel:
        out = await execute(kernel, f"""
            import json, os
            home = {str(home)!r}
            print(json.dumps(sorted(os.listdir(home)) if os.path.isdir(home) else None))
        """)
    visible = json.loads(out["stdout"])
    real = sorted(p.name for p in home.iterdir())
    assert visible != real
    assert not visible or set(visible) <= {".pyenv"}  # only the interpreter it runs on


WIDE_PROGRAM = """
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator
qc = QuantumCircuit({n})
qc.h(0)
for i in range({n} - 1):
    qc.cx(i, i + 1)
qc.measure_all()
print("submitting")
print(AerSimulator().run(qc, shots={shots}).result().get_counts())
"""


async def test_programs_are_held_to_the_quantum_limits_when_they_submit(quantum_kernel):
    async with quantum_kernel("quantum.max_qubits=4", "quantum.max_shots=500") as kernel:
        wide = await execute(kernel, WIDE_PROGRAM.format(n=6, shots=100))
        many = await execute(kernel, WIDE_PROGRAM.format(n=2, shots=5000))
        fine = await execute(kernel, WIDE_PROGRAM.format(n=3, shots=400))
    assert wide["exit_status"] == 4 and wide["stdout"] == "submitting\n"
    assert wide["refused"] == ("qiskit_aer.backends.aerbackend.AerBackend.run got a circuit "
                               "of 6 qubits; the limit is 4 (quantum.max_qubits)")
    assert many["exit_status"] == 4
    assert "5000 shots; the limit is 500 (quantum.max_shots)" in many["refused"]
    assert fine["exit_status"] == 0 and fine["refused"] is None
    assert "'000'" in fine["stdout"] and "'111'" in fine["stdout"]


async def test_the_dry_run_transpiles_for_a_device_and_flags_limits(quantum_kernel):
    async with quantum_kernel("quantum.max_qubits=5") as kernel:
        result = await kernel.call_tool("quantum_validate_code", {
            "code": WIDE_PROGRAM.format(n=6, shots=100), "backend": "fake_manila"})
        unknown = await kernel.call_tool("quantum_validate_code", {
            "code": WIDE_PROGRAM.format(n=2, shots=100), "backend": "fake_atlantis"})
    out = result.output
    (circuit,) = out["dry_run"]["circuits"]
    assert circuit["num_qubits"] == 6
    assert out["valid"] is False
    # FakeManila has 5 qubits: a 6-qubit circuit cannot be transpiled for it
    assert "error" in circuit["transpiled"]
    first, second = out["problems"]
    assert first.startswith("circuit #0 cannot be transpiled for the device: ")
    assert second == "circuit #0 uses 6 qubits; the limit is 5 (quantum.max_qubits)"
    assert unknown.is_error
    assert "'fake_atlantis' is not one" in unknown.error


async def test_the_dry_run_reports_the_transpiled_circuit(quantum_kernel):
    async with quantum_kernel() as kernel:
        result = await kernel.call_tool("quantum_validate_code", {
            "code": WIDE_PROGRAM.format(n=3, shots=100), "backend": "fake_sherbrooke"})
    (circuit,) = result.output["dry_run"]["circuits"]
    transpiled = circuit["transpiled"]
    assert transpiled["num_qubits"] == 127
    assert "ecr" in transpiled["gate_counts"] and "cx" not in transpiled["gate_counts"]
    assert transpiled["two_qubit_gates"] >= 2
