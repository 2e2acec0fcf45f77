"""Learn then replay through the server: the second identical code-generation request is
answered from the recorded run, with no model request, at $0."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.cli

PROGRAM = ("from qiskit import QuantumCircuit\n\nqc = QuantumCircuit(3)\nqc.h(0)\n"
           "qc.cx(0, 1)\nqc.cx(1, 2)\nqc.measure_all()\n")


def body(prompt: str) -> dict:
    return {"input_value": prompt, "output_type": "chat", "input_type": "chat",
            "session_id": "user_1", "prompt": prompt}


def test_a_repeated_codegen_request_is_replayed_for_free(studio, llmos_model_server):
    llmos_model_server.script.text(f"Here you go:\n```python\n{PROGRAM}```\nEnjoy.")
    server = studio()
    prompt = "Write a Qiskit program that prepares a 3-qubit GHZ state and measures it"
    with server.client() as client:
        learned = client.post("/codegen/chat", json=body(prompt))
        assert learned.status_code == 200, learned.text
        requests = llmos_model_server.model_request_count
        replayed = client.post("/codegen/chat", json=body(prompt))
    assert replayed.status_code == 200, replayed.text
    first, second = (json.loads(r.json()["response"]) for r in (learned, replayed))
    assert first["mode"] == "LEARNER" and first["final_prompt"] == PROGRAM
    assert (second["mode"], second["model_requests"], second["cost_usd"]) == ("FOLLOWER", 0, 0)
    assert second["final_prompt"] == PROGRAM
    assert llmos_model_server.model_request_count == requests
    # both runs are recorded; the replay cost nothing from the battery
    runs = server.kernel.memory.list_runs()
    assert {run.id for run in runs} >= {first["run_id"], second["run_id"]}
    assert server.kernel.memory.get_run(second["run_id"]).cost_usd == 0
