"""llmos-quantum benchmark: ``python bench/quantum/run.py [--repeat N]``.

Measures, against a real uvicorn on 127.0.0.1:

* wall time of ``POST /run`` for a 2-qubit and a 20-qubit program (the sandboxed process,
  qiskit's import and the Aer simulation included);
* chat latency of a learned request (LEARNER, the real Claude Code CLI against the
  scripted model server in ``llmos.testing.model_server``) and of the same request again
  (replayed when the router serves it from the trace; the mode is reported);
* the import cost the pack adds to ``llmos plugins`` (with vs without the pack, and the
  pack's own import time from ``python -X importtime``).

Prints JSON and writes it to ``bench/results/quantum.json`` (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"

PROGRAM = """## STEP 0 : IBM Quantum Config
from qiskit_ibm_runtime import QiskitRuntimeService

service = QiskitRuntimeService()
backend = service.least_busy(operational=True, simulator=False)

## STEP 1 : Mapping the problem
from qiskit import QuantumCircuit

qc = QuantumCircuit({n})
qc.h(0)
for i in range({n} - 1):
    qc.cx(i, i + 1)
qc.measure_all()

## STEP 2 : Optimize Circuit
from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager

isa = generate_preset_pass_manager(target=backend.target, optimization_level=1).run(qc)

## STEP 3 : Execute
from qiskit_ibm_runtime import SamplerV2 as Sampler

counts = Sampler(mode=backend).run([isa], shots=1000).result()[0].data.meas.get_counts()

## STEP 4 : Post-process
import json
print("RESULT: " + json.dumps({{"type": "text", "content": str(len(counts)) + " outcomes"}}))
"""


def ms(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50_ms": round(statistics.median(samples) * 1e3, 1),
            "min_ms": round(min(samples) * 1e3, 1), "max_ms": round(max(samples) * 1e3, 1)}


def isolate() -> Path:
    home = Path(tempfile.mkdtemp(prefix="llmos-bench-quantum-"))
    for name in list(os.environ):
        if name.startswith("LLMOS_"):
            del os.environ[name]
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    return home


class Server:
    def __init__(self, workspace: Path) -> None:
        import uvicorn
        from llmos_quantum.studio.app import create_app

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        app = create_app(workspace, settings=["budget.run_cap_usd=0.5"], budget_usd=5)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def bench_run(client: Any, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in (2, 20):
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            output = client.post("/run", json={"input_value": PROGRAM.format(n=n)}).json()
            samples.append(time.perf_counter() - started)
            if "RESULT:" not in output["output"]:
                raise SystemExit(f"the {n}-qubit program failed: {output['output'][-2000:]}")
        out[f"run_{n}_qubits"] = ms(samples)
    return out


QUESTIONS = ("What is a Bell state?", "Why does measurement collapse a superposition?",
             "How does a Hadamard gate act on the zero state?", "What is quantum teleportation?",
             "Explain phase kickback briefly.", "What does transpilation do in Qiskit?",
             "What is readout error mitigation?", "Why are two-qubit gates noisier?")


def bench_chat(client: Any, model_server: Any, repeat: int) -> dict[str, Any]:
    body = {"input_value": "", "output_type": "chat", "input_type": "chat",
            "session_id": "bench", "prompt": ""}
    learned, replayed, modes = [], [], []
    for i in range(repeat):
        prompt = QUESTIONS[i % len(QUESTIONS)]
        model_server.script.text(f"Here is an answer to: {prompt}")
        for samples in (learned, replayed):
            started = time.perf_counter()
            reply = client.post("/chat", json={**body, "input_value": prompt,
                                               "prompt": prompt}).json()
            samples.append(time.perf_counter() - started)
            modes.append(json.loads(reply["response"])["mode"])
    return {"chat_learned": ms(learned), "chat_repeated": ms(replayed),
            "chat_repeated_modes": sorted(set(modes[1::2]))}


def bench_import(repeat: int) -> dict[str, Any]:
    def wall(env: dict[str, str]) -> list[float]:
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "llmos", "plugins", "--json"], env=env,
                           capture_output=True, check=True)
            samples.append(time.perf_counter() - started)
        return samples

    base = dict(os.environ)
    with_pack = wall(base)
    without = wall({**base, "LLMOS_DISABLE_PLUGINS": "quantum"})
    # the pack's own import, after what `llmos plugins` imports anyway (the kernel, the CLI)
    trace = subprocess.run([sys.executable, "-X", "importtime", "-c",
                            "import llmos.kernel, llmos.cli, llmos.config, llmos.tools; "
                            "import llmos_quantum.plugin"],
                           capture_output=True, text=True, check=True).stderr
    own = 0
    for line in trace.splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \| llmos_quantum\.plugin$", line)
        if found:
            own = int(found.group(1))
    return {"llmos_plugins_with_pack": ms(with_pack), "llmos_plugins_without_pack": ms(without),
            "pack_plugin_import_us": own}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per figure (at most 8 "
                        "distinct chat questions)")
    args = parser.parse_args()
    isolate()
    import httpx

    from llmos.testing.model_server import ScriptedModelServer

    results: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    with ScriptedModelServer() as model_server:
        os.environ.update(model_server.env())
        workspace = Path(tempfile.mkdtemp(prefix="llmos-bench-ws-"))
        server = Server(workspace)
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                results.update(bench_run(client, args.repeat))
                results.update(bench_chat(client, model_server, args.repeat))
        finally:
            server.stop()
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "CLAUDE_")):
            del os.environ[name]
    results.update(bench_import(args.repeat))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quantum.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
