"""Inside the sandbox, around the user's program: ``harness.py '<json>' program.py``.

When the program imports a Qiskit module that runs circuits (Aer, the reference
primitives, qiskit-ibm-runtime's primitives), that module's ``run`` methods are wrapped:

* ``run`` mode: each submitted circuit is checked against the ``[quantum]`` limits
  (qubits, depth, shots) before it runs; a circuit beyond them stops the program with
  exit status 4 and a line naming the limit;
* ``dry`` mode: the circuits are reported on a ``LLMOS_DRYRUN:`` line (and, with a device,
  transpiled for it) and the program stops before anything is simulated or sent.

Modules are wrapped as they are imported, so a program pays only for what it uses.
"""

import importlib.abc
import importlib.machinery
import json
import os
import runpy
import sys

CONFIG = json.loads(sys.argv[1])
PROGRAM = sys.argv[2]

#: module -> classes whose ``run(pubs_or_circuits, ...)`` submits circuits
TARGETS = {
    "qiskit_aer.backends.aerbackend": ("AerBackend",),
    "qiskit_aer.primitives.sampler_v2": ("SamplerV2",),
    "qiskit_aer.primitives.estimator_v2": ("EstimatorV2",),
    "qiskit.primitives.statevector_sampler": ("StatevectorSampler",),
    "qiskit.primitives.statevector_estimator": ("StatevectorEstimator",),
    "qiskit.primitives.backend_sampler_v2": ("BackendSamplerV2",),
    "qiskit.primitives.backend_estimator_v2": ("BackendEstimatorV2",),
    "qiskit_ibm_runtime.sampler": ("SamplerV2",),
    "qiskit_ibm_runtime.estimator": ("EstimatorV2",),
}


def _submitted(pubs):
    """(circuit, shots or None) for each circuit in a run() call's first argument."""
    from qiskit import QuantumCircuit

    found = []
    items = pubs if isinstance(pubs, (list, tuple)) and not (
        pubs and isinstance(pubs[0], QuantumCircuit) and len(pubs) > 1
        and not isinstance(pubs[1], QuantumCircuit)) else [pubs]
    for item in items:
        if isinstance(item, QuantumCircuit):
            found.append((item, None))
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], QuantumCircuit):
            shots = item[2] if len(item) > 2 and isinstance(item[2], int) else None
            found.append((item[0], shots))
        elif getattr(item, "circuit", None) is not None:
            found.append((item.circuit, getattr(item, "shots", None)))
    return found


def _refuse(message):
    sys.stdout.flush()
    sys.stderr.write(f"[llmos] refused: {message}\n")
    sys.stderr.flush()
    os._exit(4)


def _check(where, pubs, kwargs):
    limits = CONFIG["limits"]
    shots = kwargs.get("shots")
    if isinstance(shots, int) and shots > limits["max_shots"]:
        _refuse(f"{where} asked for {shots} shots; the limit is {limits['max_shots']} "
                "(quantum.max_shots)")
    for circuit, pub_shots in _submitted(pubs):
        if circuit.num_qubits > limits["max_qubits"]:
            _refuse(f"{where} got a circuit of {circuit.num_qubits} qubits; the limit is "
                    f"{limits['max_qubits']} (quantum.max_qubits)")
        depth = circuit.depth()
        if depth > limits["max_depth"]:
            _refuse(f"{where} got a circuit {depth} deep; the limit is {limits['max_depth']} "
                    "(quantum.max_depth)")
        if isinstance(pub_shots, int) and pub_shots > limits["max_shots"]:
            _refuse(f"{where} asked for {pub_shots} shots; the limit is "
                    f"{limits['max_shots']} (quantum.max_shots)")


def _describe(circuit):
    return {"name": circuit.name, "num_qubits": circuit.num_qubits, "depth": circuit.depth(),
            "size": circuit.size(),
            "gate_counts": {k: int(v) for k, v in circuit.count_ops().items()}}


def _dry(where, pubs):
    report = []
    device = CONFIG.get("device")
    target = None
    if device:
        from qiskit_ibm_runtime import fake_provider

        target = getattr(fake_provider, device)()
    for circuit, _ in _submitted(pubs):
        entry = _describe(circuit)
        if target is not None:
            from qiskit import transpile

            try:
                compiled = transpile(circuit, target, optimization_level=1, seed_transpiler=1)
            except Exception as exc:  # the circuit does not fit the device, ...
                entry["transpiled"] = {"error": f"{type(exc).__name__}: {exc}"}
            else:
                entry["transpiled"] = {**_describe(compiled),
                                       "two_qubit_gates": compiled.num_nonlocal_gates()}
        report.append(entry)
    sys.stdout.write("LLMOS_DRYRUN: " + json.dumps({"submitted_by": where,
                                                    "circuits": report}) + "\n")
    sys.stdout.flush()
    os._exit(0)


def _wrap(cls, module_name):
    original = cls.__dict__.get("run")
    if original is None:
        return
    where = f"{module_name}.{cls.__name__}.run"

    def run(self, pubs, *args, **kwargs):
        if CONFIG["mode"] == "dry":
            _dry(where, pubs)
        _check(where, pubs, kwargs)
        return original(self, pubs, *args, **kwargs)

    run.__wrapped__ = original
    cls.run = run


class _Loader(importlib.abc.Loader):
    def __init__(self, inner, name):
        self.inner, self.name = inner, name

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        for class_name in TARGETS[self.name]:
            cls = getattr(module, class_name, None)
            if isinstance(cls, type):
                _wrap(cls, self.name)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in TARGETS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, name)
        return spec


sys.meta_path.insert(0, _Finder())
sys.argv = [PROGRAM]
sys.path.insert(0, os.path.dirname(os.path.abspath(PROGRAM)))
runpy.run_path(PROGRAM, run_name="__main__")
if CONFIG["mode"] == "dry":
    sys.stdout.write("LLMOS_DRYRUN: " + json.dumps({"submitted_by": None, "circuits": []})
                     + "\n")
