"""Make a workspace whose memory holds one proven 2-step trace (Write + sandboxed Bash), so
that ``llmos run GOAL`` replays it in FOLLOWER. Used by ``run.py``; runs with whichever
llmos is first on ``sys.path`` (the tree under test or a baseline).

    python bench/startup/replay_workspace.py WORKSPACE   # prints the goal
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

GOAL = "Create primes.py printing the first 4 primes and run it"
CONTENT = "print([2, 3, 5, 7])\n"


def make(workspace: Path) -> str:
    from llmos import LLMOS
    from llmos.memory.models import FileDigest, Step, StepOutcome
    from llmos.testing.memory_conformance import make_trace

    workspace.mkdir(parents=True, exist_ok=True)
    digest = FileDigest(path="primes.py", sha256=hashlib.sha256(CONTENT.encode()).hexdigest(),
                        size=len(CONTENT))
    steps = [
        Step(index=0, tool="Write", input={"file_path": "primes.py", "content": CONTENT},
             outcome=StepOutcome(files=[digest])),
        Step(index=1, tool="Bash", input={"command": "python3 primes.py"},
             outcome=StepOutcome(excerpt="[2, 3, 5, 7]\n", exit_code=0)),
    ]
    trace = make_trace(GOAL, steps=steps, usage_count=2, success_count=2, success_rating=1.0)
    LLMOS(workspace=workspace).kernel.memory.save_trace(trace)
    return GOAL


if __name__ == "__main__":
    print(make(Path(sys.argv[1])))
