"""The pack as users meet it: installed with pip, found through its entry point, cheap to
load, configured through [quantum], with its agents and its command."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution, entry_points

import llmos_quantum
from llmos_quantum.studio import programs


def test_the_distribution_declares_its_entry_point():
    dist = distribution("llmos-quantum")
    assert dist.version == llmos_quantum.__version__
    (ep,) = [ep for ep in entry_points(group="llmos") if ep.name == "quantum"]
    assert ep.value == "llmos_quantum.plugin" and ep.dist.name == "llmos-quantum"
    requires = " ".join(dist.requires or [])
    for dep in ("qiskit>=2.6", "qiskit-aer>=0.18", "qiskit-ibm-runtime>=0.51", "uvicorn"):
        assert dep in requires


def test_llmos_plugins_and_version_do_not_import_qiskit(llmos_workspace):
    # The console script leaves with os._exit after its atexit handlers: the probe looks at
    # sys.modules from one of them, as the process is about to end.
    probe = (
        "import atexit, runpy, sys\n"
        "sys.argv = ['llmos', '--workspace', sys.argv[1], *sys.argv[2:]]\n"
        "def report():\n"
        "    heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('qiskit', 'qiskit_aer', 'qiskit_ibm_runtime', 'starlette', 'uvicorn'))\n"
        "    print('HEAVY', heavy, file=sys.stderr, flush=True)\n"
        "atexit.register(report)\n"
        "runpy.run_module('llmos', run_name='__main__')\n"
    )
    for args in (["plugins", "--json"], ["--version"], ["tools", "--json"]):
        done = subprocess.run([sys.executable, "-c", probe, str(llmos_workspace), *args],
                              capture_output=True, text=True, timeout=120, check=False)
        line = next(ln for ln in done.stderr.splitlines() if ln.startswith("HEAVY"))
        assert (done.returncode, line) == (0, "HEAVY []"), (args, done.stderr[-2000:])
        if args[0] == "plugins":
            (quantum,) = [p for p in json.loads(done.stdout) if p["name"] == "quantum"]
            assert quantum["error"] is None
            assert {"llmos_register_tools", "llmos_register_config", "llmos_pre_tool_use",
                    "llmos_register_agents", "llmos_register_commands",
                    "llmos_user_prompt_submit"} <= set(quantum["hooks"])


def test_llmos_tools_lists_the_quantum_tools_with_side_effects(llmos_cli):
    result = llmos_cli("tools", "--json")
    assert result.exit_code == 0, result.output
    tools = {t["name"]: t for t in json.loads(result.output) if t["plugin"] == "quantum"}
    assert set(tools) == {"quantum_run_circuit", "quantum_transpile", "quantum_execute_code",
                          "quantum_validate_code", "quantum_kids_run"}
    assert tools["quantum_run_circuit"]["side_effects"] == "read-only"
    assert tools["quantum_execute_code"]["side_effects"] == "idempotent"
    schema = tools["quantum_run_circuit"]["input_schema"]
    assert schema["required"] == ["circuit"]
    assert schema["properties"]["shots"]["minimum"] == 1


def test_the_quantum_section_is_read_from_file_env_and_flags(llmos_cli, llmos_workspace,
                                                             monkeypatch):
    (llmos_workspace / "llmos.toml").write_text(
        '[quantum]\nmax_qubits = 8\nallowed_backends = ["aer", "fake_manila"]\n'
        'ibm_token = "ibm-config-token-777"\n')
    monkeypatch.setenv("LLMOS_QUANTUM__MAX_SHOTS", "2048")
    result = llmos_cli("--set", "quantum.kids_max_qubits=3", "config", "show", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    quantum = shown["config"]["quantum"]
    assert quantum["max_qubits"] == 8 and quantum["max_shots"] == 2048
    assert quantum["kids_max_qubits"] == 3
    assert quantum["allowed_backends"] == ["aer", "fake_manila"]
    assert quantum["cors_allow_origins"] == ["http://localhost:3000"]
    assert "ibm-config-token-777" not in result.output
    assert shown["origins"]["quantum.max_qubits"].endswith("llmos.toml")


def test_bad_quantum_settings_are_clear_config_errors(llmos_cli):
    result = llmos_cli("--set", "quantum.max_qubit=3", "tools")
    assert result.exit_code == 2
    assert "unknown key quantum.max_qubit" in result.output
    result = llmos_cli("--set", 'quantum.allowed_backends=["Fake Manila"]', "tools")
    assert result.exit_code == 2
    assert "must be a lower-case name" in result.output


def test_the_pack_registers_its_agents(llmos_kernel):
    names = {getattr(a, "stem", str(a)) for a in llmos_kernel.agents}
    assert {"quantum-tutor", "quantum-architect"} <= names


def test_quantum_serve_is_a_command(llmos_cli):
    result = llmos_cli("quantum", "serve", "--help")
    assert result.exit_code == 0, result.output
    assert "--port" in result.output and "NEXT_PUBLIC_RUNCODE_URL" in result.output
    result = llmos_cli("quantum", "serve", "--port", "0")
    assert result.exit_code == 2
    assert "0 is not in the range 1<=x<=65535" in result.output


def test_code_only_joins_fenced_blocks_and_strips_fences():
    answer = "Intro\n```python\na = 1\n```\ntext\n```\nb = 2\n```\nbye"
    assert programs.code_only(answer) == "a = 1\n\nb = 2\n"
    assert programs.code_only("x = 3\n") == "x = 3\n"


def test_localize_replaces_step0_and_drops_options_lines():
    program = ("## STEP 0 : IBM Quantum Config\nservice = QiskitRuntimeService()\n"
               "backend = service.least_busy()\n\n## STEP 1 : Map\nqc = 1\n"
               "est.options.resilience_level = 2\n## STEP 3 : Execute\nrun()\n")
    local = programs.localize(program)
    assert "QiskitRuntimeService" not in local
    assert "backend = AerSimulator()" in local
    assert "resilience_level" not in local
    assert local.endswith("## STEP 1 : Map\nqc = 1\n## STEP 3 : Execute\nrun()\n")
    assert programs.localize("print(1)\n") == "print(1)\n"


def test_parameter_update_prompts_are_recognized():
    prompt = "###[Transpiler]\n\n```\npm = 1\n```\n\nNEW PARAMETERS:\n\n    level: 3"
    assert programs.is_parameter_update(prompt)
    assert not programs.is_parameter_update("What does ###[x] mean?")


def test_llmos_quantum_serve_serves_until_stopped(llmos_workspace, tmp_path):
    import os
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmos", "--workspace", str(llmos_workspace), "quantum",
         "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "CORS_ALLOW_ORIGINS": "http://studio.test"})
    try:
        health = None
        for _ in range(600):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health",
                                   headers={"Origin": "http://studio.test"}, timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
        assert health is not None, log.seek(0) or log.read()
        assert health.status_code == 200 and health.json()["service"] == "llmos-quantum"
        assert health.headers["access-control-allow-origin"] == "http://studio.test"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    log.seek(0)
    assert f"serving Qiskit Studio on http://127.0.0.1:{port}" in log.read()


def test_llmos_quantum_serve_with_a_bad_setting_exits_2_without_a_traceback(llmos_cli):
    result = llmos_cli("--set", "quantum.max_shots=0", "quantum", "serve")
    assert result.exit_code == 2, result.output
    assert "quantum.max_shots" in result.output
    assert "Traceback" not in result.output
