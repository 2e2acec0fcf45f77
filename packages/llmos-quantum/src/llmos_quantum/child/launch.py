"""Runs first inside the sandbox: read the run's spec from stdin, set the resource limits,
point stdout/stderr at capped files, and exec the program with its own environment.

The spec arrives on stdin (not argv, not a file) so that credentials such as
QISKIT_IBM_TOKEN reach the program only as environment variables.
"""

import json
import os
import resource
import sys


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    os.dup2(os.open(spec["stdout"], flags, 0o600), 1)
    os.dup2(os.open(spec["stderr"], flags, 0o600), 2)
    limits = spec["limits"]
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"]))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.execve(sys.executable, [sys.executable, *spec["argv"]], spec["env"])


main()
