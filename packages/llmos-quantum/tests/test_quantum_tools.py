"""The tools on real qiskit-aer, through the gate: counts, noise, transpilation, limits."""

from __future__ import annotations

import json
import math

import pytest

BELL_QASM2 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0],q[1];
measure q -> c;
"""

GHZ_QASM3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[3] c;
h q[0];
cx q[0], q[1];
cx q[1], q[2];
c = measure q;
"""


def call(llmos_cli, tool: str, data: dict, *settings: str):
    flags = [item for s in settings for item in ("--set", s)]
    result = llmos_cli(*flags, "tools", "call", tool, "--input", json.dumps(data), "--json")
    return result.exit_code, json.loads(result.output)


def test_a_bell_circuit_gives_only_correlated_counts(llmos_cli):
    code, out = call(llmos_cli, "quantum_run_circuit",
                     {"circuit": BELL_QASM2, "shots": 2000, "seed": 11})
    assert code == 0, out
    counts = out["output"]["counts"]
    assert set(counts) == {"00", "11"}
    assert sum(counts.values()) == 2000
    assert 800 < counts["00"] < 1200
    assert out["output"]["num_qubits"] == 2


def test_openqasm3_and_json_descriptions_run_too(llmos_cli):
    code, out = call(llmos_cli, "quantum_run_circuit",
                     {"circuit": GHZ_QASM3, "shots": 500, "seed": 3})
    assert code == 0, out
    assert set(out["output"]["counts"]) == {"000", "111"}
    code, out = call(llmos_cli, "quantum_run_circuit", {
        "circuit": {"qubits": 2, "gates": [["x", 0], ["rz", 0.25, 1]]}, "shots": 100})
    assert code == 0, out
    assert out["output"]["counts"] == {"01": 100}  # qubit 0 is the rightmost bit


def test_the_statevector_of_a_bell_state(llmos_cli):
    code, out = call(llmos_cli, "quantum_run_circuit", {
        "circuit": {"qubits": 2, "gates": [["h", 0], ["cx", 0, 1]]}, "statevector": True})
    assert code == 0, out
    amplitudes = out["output"]["statevector"]
    half = 1 / math.sqrt(2)
    flat = [part for amplitude in amplitudes for part in amplitude]
    assert flat == pytest.approx([half, 0, 0, 0, 0, 0, half, 0], abs=1e-9)


def test_a_noisy_run_on_a_fake_device_shows_errors_an_ideal_run_does_not(llmos_cli):
    circuit = {"qubits": 2, "gates": [["h", 0], ["cx", 0, 1]]}
    code, noisy = call(llmos_cli, "quantum_run_circuit",
                       {"circuit": circuit, "backend": "fake_manila", "shots": 4000,
                        "seed": 5})
    assert code == 0, noisy
    counts = noisy["output"]["counts"]
    assert sum(counts.values()) == 4000
    wrong = counts.get("01", 0) + counts.get("10", 0)
    assert 0 < wrong < 800  # noise flips some shots, but Bell correlations dominate


def test_transpiling_for_a_device_reports_depth_and_native_gates(llmos_cli):
    code, out = call(llmos_cli, "quantum_transpile",
                     {"circuit": GHZ_QASM3, "backend": "fake_sherbrooke", "seed": 1})
    assert code == 0, out
    result = out["output"]
    assert result["input"] == {"num_qubits": 3, "depth": 4, "size": 6}
    assert result["num_qubits"] == 127
    assert result["two_qubit_gates"] >= 2
    assert set(result["gate_counts"]) <= {"ecr", "rz", "sx", "x", "measure", "barrier"}
    assert "ecr" in result["gate_counts"]
    assert result["depth"] > 4


def test_an_unknown_device_and_bad_qasm_are_clear_errors(llmos_cli):
    code, out = call(llmos_cli, "quantum_transpile",
                     {"circuit": BELL_QASM2, "backend": "fake_nowhere"})
    assert code == 1
    assert "there is no fake device 'fake_nowhere'" in out["error"]
    code, out = call(llmos_cli, "quantum_run_circuit",
                     {"circuit": "OPENQASM 2.0;\nqreg q[1];\nfoo q[0];\n"})
    assert code == 1
    assert "OpenQASM 2 program does not parse" in out["error"]
    code, out = call(llmos_cli, "quantum_run_circuit",
                     {"circuit": {"qubits": 1, "gates": [["cx", 0, 0]]}})
    assert code == 1
    assert "gate #0" in out["error"]


@pytest.mark.parametrize(("data", "settings", "rule", "reason"), [
    ({"circuit": BELL_QASM2, "shots": 5000}, ["quantum.max_shots=1000"], "quantum.shots",
     "5000 shots asked; the limit is 1000 (quantum.max_shots)"),
    ({"circuit": GHZ_QASM3}, ["quantum.max_qubits=2"], "quantum.qubits",
     "the circuit uses 3 qubits; the limit is 2 (quantum.max_qubits)"),
    ({"circuit": {"qubits": 1, "gates": [["x", 0]] * 30}}, ["quantum.max_depth=20"],
     "quantum.depth", "the circuit is 31 deep; the limit is 20 (quantum.max_depth)"),
    ({"circuit": BELL_QASM2, "backend": "fake_manila"}, ['quantum.allowed_backends=["aer"]'],
     "quantum.backend", "backend 'fake_manila' is not in quantum.allowed_backends (aer)"),
    ({"circuit": BELL_QASM2, "backend": "ibm_torino"}, [], "quantum.ibm-not-configured",
     "backend 'ibm_torino' is real IBM hardware: set quantum.ibm_token and a budget"),
])
def test_limits_are_refused_with_exit_4_and_a_reason(llmos_cli, data, settings, rule, reason):
    code, out = call(llmos_cli, "quantum_run_circuit", data, *settings)
    assert code == 4, out
    assert out["decision"]["verdict"] == "deny"
    assert out["decision"]["rule"] == rule
    assert reason in out["error"]
    assert out["output"] is None


def test_kids_blocks_become_a_circuit_and_run(llmos_cli):
    code, out = call(llmos_cli, "quantum_kids_run",
                     {"blocks": ["COIN_FLIP 0", "TWIN_LINK 0 1"], "qubits": 2, "shots": 200,
                      "seed": 2})
    assert code == 0, out
    assert set(out["output"]["counts"]) == {"00", "11"}
    assert "H" in out["output"]["circuit"]
    code, out = call(llmos_cli, "quantum_kids_run",
                     {"blocks": ["HALF_SPIN 0", "HALF_SPIN 0", "COLOR_CHANGE 0"], "qubits": 1,
                      "shots": 50})
    assert code == 0, out
    assert out["output"]["counts"] == {"0": 50}


def test_kids_mode_has_stricter_limits_from_the_same_hook(llmos_cli):
    code, out = call(llmos_cli, "quantum_kids_run",
                     {"blocks": ["COIN_FLIP 0"], "qubits": 6})
    assert code == 4, out
    assert out["decision"]["rule"] == "quantum.kids-qubits"
    assert "kids' mode allows 4 qubits, not 6 (quantum.kids_max_qubits)" in out["error"]
    code, out = call(llmos_cli, "quantum_kids_run",
                     {"blocks": ["COIN_FLIP 0"], "shots": 5000})
    assert code == 4 and out["decision"]["rule"] == "quantum.shots", out
    # the same shot count is fine for the grown-up tool
    code, out = call(llmos_cli, "quantum_run_circuit", {"circuit": BELL_QASM2, "shots": 5000})
    assert code == 0, out


def test_an_unknown_kids_block_says_which_blocks_exist(llmos_cli):
    code, out = call(llmos_cli, "quantum_kids_run", {"blocks": ["JUMP 0"]})
    assert code == 1
    assert "block #0 ('JUMP 0') is not a block" in out["error"]
    assert "COIN_FLIP" in out["error"]
