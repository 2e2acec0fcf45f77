"""The Qiskit Studio contract against a real uvicorn on 127.0.0.1, with request bodies shaped
as the frontend (github.com/AI4quantum/qiskit-studio) sends them."""

from __future__ import annotations

import hashlib
import json
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
from llmos.security.sandbox import available

pytestmark = pytest.mark.cli
needs_bwrap = pytest.mark.skipif(available().mechanism != "bwrap",
                                 reason=f"needs bubblewrap: {available().reason}")

FRONTEND = "http://localhost:3000"


def body(prompt: str, session: str = "user_1") -> dict:
    """What lib/api-service.ts posts for chat and code generation."""
    return {"input_value": prompt, "output_type": "chat", "input_type": "chat",
            "session_id": session, "prompt": prompt}


def final_prompt(reply: dict) -> str:
    """How the frontend reads a reply: JSON.parse(response).final_prompt."""
    return json.loads(reply["response"])["final_prompt"]


BELL_PROGRAM = '''\
## STEP 0 : IBM Quantum Config
from qiskit_ibm_runtime import QiskitRuntimeService

service = QiskitRuntimeService()
backend = service.least_busy(operational=True, simulator=False)
print(f"Using IBM backend: {backend.name}")


## STEP 1 : Mapping the problem

###[Bell State Circuit]
from qiskit import QuantumCircuit

qc = QuantumCircuit(2)
qc.h(0)
qc.cx(0, 1)
qc.measure_all()

## STEP 2 : Optimize Circuit
###[Transpiler]
from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager

pm = generate_preset_pass_manager(target=backend.target, optimization_level=1)
isa_circuit = pm.run(qc)

## STEP 3 : Execute
###[Sampler]
from qiskit_ibm_runtime import SamplerV2 as Sampler

sampler = Sampler(mode=backend)
sampler.options.dynamical_decoupling.enable = True
counts = sampler.run([isa_circuit], shots=1000).result()[0].data.meas.get_counts()

## STEP 4 : Post-process
###[Result]
import json

print("RESULT: " + json.dumps({"type": "text", "content": {"outcomes": sorted(counts),
                                                          "shots": sum(counts.values())}}))
'''


def test_chat_answers_in_the_maestro_shape_and_records_the_run(studio, llmos_model_server):
    answer = "A Bell state is a maximally entangled state of two qubits, (|00> + |11>)/sqrt 2."
    llmos_model_server.script.text(answer)
    server = studio()
    with server.client() as client:
        response = client.post("/chat", json=body("What is a Bell state?"))
    assert response.status_code == 200, response.text
    reply = response.json()
    assert set(reply) == {"response", "workflow_name", "timestamp"}
    assert final_prompt(reply) == answer
    inner = json.loads(reply["response"])
    assert inner["mode"] == "LEARNER" and inner["agent"] == "quantum-tutor"
    # the tutor agent's prompt reached the model, with the question
    (request,) = llmos_model_server.conversation_requests
    assert "What is a Bell state?" in request.user_text()
    assert "patient quantum computing tutor" in json.dumps(request.body["messages"])
    run = server.kernel.memory.get_run(inner["run_id"])
    assert run.goal == "[quantum-tutor] What is a Bell state?"
    assert run.success is True and run.mode == "LEARNER"


def test_codegen_returns_code_only(studio, llmos_model_server):
    llmos_model_server.script.text(
        "Here is the circuit:\n```python\nfrom qiskit import QuantumCircuit\n"
        "qc = QuantumCircuit(2)\nqc.h(0)\n```\nThen measure it:\n```python\n"
        "qc.measure_all()\n```\nThis prepares |+>|0>.")
    server = studio()
    with server.client() as client:
        response = client.post("/codegen/chat",
                               json=body("Write a circuit that puts qubit 0 in |+>"))
    assert response.status_code == 200, response.text
    assert final_prompt(response.json()) == (
        "from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\nqc.h(0)\n\n"
        "qc.measure_all()\n")
    request = llmos_model_server.conversation_requests[0]
    assert "Qiskit software architect" in json.dumps(request.body["messages"])


def test_a_parameter_update_comes_back_as_the_updated_program(studio, llmos_model_server):
    program = ("from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager"
               "\npm = generate_preset_pass_manager(target=backend.target, "
               "optimization_level=1)\n")
    prompt = (f"###[Transpiler]\n\n```\n{program}```\n\nNEW PARAMETERS:\n\n"
              "    optimization_level: 3")
    updated = program.replace("optimization_level=1", "optimization_level=3")
    llmos_model_server.script.text(f"```python\n{updated}```")
    server = studio()
    with server.client() as client:
        # the frontend falls back to the chat URL when no code-generation URL is set
        response = client.post("/chat", json=body(prompt, "param-update-node-7"))
    assert response.status_code == 200, response.text
    assert final_prompt(response.json()) == updated
    assert json.loads(response.json()["response"])["agent"] == "quantum-architect"
    assert "NEW PARAMETERS:" in llmos_model_server.conversation_requests[0].user_text()


def test_the_stream_has_exactly_one_llm_step_with_the_whole_answer(studio, llmos_model_server):
    answer = ("Superposition means a qubit's state is a combination of |0> and |1>.\n\n"
              "Measuring it gives 0 or 1 with probabilities set by the amplitudes.")
    llmos_model_server.script.text(answer)
    server = studio()
    with server.client() as client:
        response = client.post("/chat/stream", json=body("Explain superposition"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = [c for c in response.text.split("\n\n") if c]
    assert all(c.startswith("data: ") for c in chunks)
    events = [json.loads(c.removeprefix("data: ")) for c in chunks]
    steps = [e for e in events if e.get("step_name") == "llm_step"]
    assert len(steps) == 1
    assert steps[0]["step_result"] == answer
    assert steps[0]["step_complete"] is True and steps[0]["agent_name"] == "quantum-tutor"
    assert events[0] is not None and events.index(steps[0]) == 0
    assert events[-1]["workflow_complete"] is True
    assert final_prompt(events[-1]) == answer


@needs_bwrap
def test_run_swaps_step0_for_a_local_simulator_and_keeps_the_result_line(studio):
    server = studio()
    with server.client() as client:
        response = client.post("/run", json={"input_value": BELL_PROGRAM})
    assert response.status_code == 200
    output = response.json()["output"]
    assert "Using local simulator..." in output
    assert "Using IBM backend" not in output
    lines = [line for line in output.split("\n") if line.strip()]
    (result_line,) = [line for line in lines if "RESULT:" in line]
    result = json.loads(result_line[result_line.index("RESULT:") + 7:])
    assert result == {"type": "text", "content": {"outcomes": ["00", "11"], "shots": 1000}}


@needs_bwrap
def test_run_reports_errors_as_output_with_status_200(studio):
    server = studio("quantum.exec_timeout_s=3")
    with server.client() as client:
        failing = client.post("/run", json={"input_value": "print('start')\n1 / 0\n"})
        forever = client.post("/run", json={"input_value": "while True:\n    pass\n"})
        not_json = client.post("/run", content=b"{not json",
                               headers={"content-type": "application/json"})
        missing = client.post("/run", json={"code": "print(1)"})
        health = client.get("/health")
    assert failing.status_code == forever.status_code == not_json.status_code == 200
    assert failing.json()["output"].startswith("start\n")
    assert "ZeroDivisionError" in failing.json()["output"]
    assert "exited with status 1" in failing.json()["output"]
    assert "stopped after 3 s" in forever.json()["output"]
    assert not_json.json()["output"].startswith("error: the request body is not valid JSON")
    assert missing.json()["output"] == 'error: "input_value" must hold the program to run'
    # the server survived all of it
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["sandbox"] == "bwrap"


@needs_bwrap
def test_concurrent_runs_do_not_mix_their_outputs(studio):
    server = studio()
    program = textwrap.dedent("""
        import time
        for i in range(20):
            print("{name}", i)
            time.sleep(0.02)
    """)
    with server.client() as client, ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(client.post, "/run",
                                     json={"input_value": program.format(name=name)})
                   for name in ("alpha", "omega")}
        outputs = {name: f.result().json()["output"] for name, f in futures.items()}
    for name, other in (("alpha", "omega"), ("omega", "alpha")):
        assert outputs[name] == "".join(f"{name} {i}\n" for i in range(20))
        assert other not in outputs[name]


@needs_bwrap
def test_an_ibm_token_reaches_the_program_only_as_environment(studio):
    token = "ibm-test-token-5d41402abc4b2a76"
    program = textwrap.dedent("""
        import hashlib, os
        print("sha", hashlib.sha256(os.environ["QISKIT_IBM_TOKEN"].encode()).hexdigest())
        print("channel", os.environ["QISKIT_IBM_CHANNEL"], os.environ["QISKIT_IBM_INSTANCE"])
        print("echo", os.environ["QISKIT_IBM_TOKEN"])
        print("token in code", os.environ["QISKIT_IBM_TOKEN"] in open(__file__).read())
    """)
    server = studio("quantum.ibm_max_jobs=1")
    request = {"input_value": program, "ibm_token": token, "channel": "ibm_cloud",
               "instance": "crn:v1:test"}
    with server.client() as client:
        first = client.post("/run", json=request).json()["output"]
        second = client.post("/run", json=request).json()["output"]
    assert f"sha {hashlib.sha256(token.encode()).hexdigest()}" in first
    assert "channel ibm_cloud crn:v1:test" in first
    assert "echo [redacted]" in first and token not in first
    assert "token in code False" in first
    # the budget of one hardware job is spent: the second run is local and says so
    assert second.startswith("[llmos] IBM Quantum hardware budget is spent (1 jobs")
    assert "KeyError: 'QISKIT_IBM_TOKEN'" in second
    # the token is nowhere in llmos's state: run records, audit log, traces
    state = server.kernel.workspace.state_dir
    for path in state.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


@needs_bwrap
def test_a_token_is_refused_when_the_server_has_no_hardware_budget(studio):
    server = studio()
    with server.client() as client:
        output = client.post("/run", json={"input_value": BELL_PROGRAM,
                                           "ibm_token": "ibm-test-token-0000"}).json()["output"]
    assert output.startswith("[llmos] IBM Quantum hardware is not enabled on this server "
                             "(quantum.ibm_max_jobs = 0); running on the local simulator")
    assert '"outcomes": ["00", "11"]' in output


def test_cors_preflight_from_the_frontend_is_answered_and_others_are_not(studio):
    server = studio()
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    with server.client() as client:
        ok = client.options("/chat", headers={"Origin": FRONTEND, **preflight})
        run = client.options("/run", headers={"Origin": FRONTEND, **preflight})
        evil = client.options("/chat", headers={"Origin": "http://evil.example", **preflight})
        health = client.get("/health", headers={"Origin": FRONTEND})
    assert ok.status_code == run.status_code == 200
    assert ok.headers["access-control-allow-origin"] == FRONTEND
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "content-type" in ok.headers["access-control-allow-headers"].lower()
    assert evil.status_code == 400
    assert "access-control-allow-origin" not in evil.headers
    assert health.headers["access-control-allow-origin"] == FRONTEND


def test_cors_allow_origins_comes_from_the_environment(studio, monkeypatch):
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "https://studio.example.org, http://10.0.0.5:3000")
    server = studio()
    with server.client() as client:
        ok = client.get("/health", headers={"Origin": "https://studio.example.org"})
        old = client.get("/health", headers={"Origin": FRONTEND})
    assert ok.headers["access-control-allow-origin"] == "https://studio.example.org"
    assert "access-control-allow-origin" not in old.headers


def test_bad_chat_requests_get_a_4xx_that_names_the_problem(studio):
    server = studio()
    with server.client() as client:
        not_json = client.post("/chat", content=b"hello",
                               headers={"content-type": "application/json"})
        empty = client.post("/codegen/chat", json=body("  "))
        a_list = client.post("/chat/stream", json=["prompt"])
        wrong_method = client.get("/chat")
    assert not_json.status_code == empty.status_code == a_list.status_code == 400
    assert "not valid JSON" in not_json.json()["error"]
    assert '"prompt" is missing or empty' in empty.json()["error"]
    assert "must be a JSON object" in a_list.json()["error"]
    assert wrong_method.status_code == 405


def test_without_model_credentials_chat_fails_clearly(studio, monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
                 "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    server = studio()
    with server.client() as client:
        response = client.post("/chat", json=body("What is a qubit?"))
    assert response.status_code == 503
    assert "no model credentials" in response.json()["error"]


@needs_bwrap
def test_run_holds_programs_to_the_quantum_limits(studio):
    server = studio("quantum.max_qubits=10")
    program = BELL_PROGRAM.replace("QuantumCircuit(2)", "QuantumCircuit(12)")
    with server.client() as client:
        output = client.post("/run", json={"input_value": program}).json()["output"]
    assert "RESULT:" not in output
    assert ("[llmos] refused: qiskit_ibm_runtime.sampler.SamplerV2.run got a circuit of "
            "12 qubits; the limit is 10 (quantum.max_qubits)") in output
    assert output.rstrip().endswith("[llmos] the program exited with status 4")


def test_concurrent_chats_each_get_the_answer_of_their_own_run(studio, llmos_model_server):
    llmos_model_server.script.text("First answer.").text("Second answer.")
    server = studio()
    questions = ("What is a qubit?", "What is a quantum gate?")
    with server.client() as client, ThreadPoolExecutor(2) as pool:
        futures = {q: pool.submit(client.post, "/chat", json=body(q)) for q in questions}
        replies = {q: json.loads(f.result().json()["response"]) for q, f in futures.items()}
    assert {r["final_prompt"] for r in replies.values()} == {"First answer.", "Second answer."}
    for question, reply in replies.items():
        run = server.kernel.memory.get_run(reply["run_id"])
        assert run.goal == f"[quantum-tutor] {question}"
        assert run.output == reply["final_prompt"]
