"""The workload's data-dependent goals with and without crystallization (issue 15): cost,
model requests, modes, and **false results** (target 0), checked on disk and in the answer.

Run from the repository root:

    .venv/bin/python bench/learning/crystallize.py                 # 60 goals, seed 15
    .venv/bin/python bench/learning/crystallize.py --goals 30 --agreements 1

The goals come from bench/learning/workload.py's own templates (imported, not copied)
whose results are derived from what a step observed or computed, so replay cannot serve
other values: "Count the lines of {f} into {g}" (T02: ``wc -l`` then Write the count),
"Write the larger of {n} and {m} into {f}" (C07) and "Write the sum of {n} and {m} into
{f}" (C08), drawn as in the workload (exact repeats, slot variants, near misses). The same
goal list runs twice on fresh workspaces through the real Claude Code CLI and a scripted
model: once with ``crystallize.auto = false``, once with ``crystallize.auto = true``
(crystallized after ``min_runs`` solved instances, active after ``--agreements`` shadow
agreements). In the second pass the scripted model also answers the crystallization run
with the tool a model would write for the template (``CRYSTAL_CODE``); the code then
passes the allowlist and the cassette tests on its own merits.

- false result: a run that reported success and whose files (or answer) are wrong;
- cost and model requests: what the CLI reported, crystallization runs included;
- writes bench/results/crystallize.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, code_fingerprint, isolate_environment, machine
from workload import Goal, class_tasks, count_regex, draw, script_learner, tasks

TEMPLATES = ("T02 count lines", "C07 larger", "C08 sum of two")

CRYSTAL_CODE = {
    "T02 count lines": '''
async def run(params, call):
    shown = await call("Bash", {"command": f"wc -l {params.file1}"})
    count = int(shown.text.split()[0])
    await call("Write", {"file_path": params.file2, "content": f"{count}\\n"})
    return f"{params.file1} has {count} lines; wrote {params.file2}"
''',
    "T02~words": '''
async def run(params, call):
    shown = await call("Bash", {"command": f"wc -w {params.file1}"})
    count = int(shown.text.split()[0])
    await call("Write", {"file_path": params.file2, "content": f"{count}\\n"})
    return f"{params.file1} has {count} words; wrote {params.file2}"
''',
    "C07 larger": '''
async def run(params, call):
    value = max(params.num1, params.num2)
    await call("Write", {"file_path": params.file1, "content": f"{value}\\n"})
    return f"Wrote {value} into {params.file1}"
''',
    "C07~smaller": '''
async def run(params, call):
    value = min(params.num1, params.num2)
    await call("Write", {"file_path": params.file1, "content": f"{value}\\n"})
    return f"Wrote {value} into {params.file1}"
''',
    "C08 sum of two": '''
async def run(params, call):
    value = params.num1 + params.num2
    await call("Write", {"file_path": params.file1, "content": f"{value}\\n"})
    return f"Wrote {value} into {params.file1}"
''',
}


class CodeTurns:
    """Wraps ``llmos.crystallize.writer._write`` so that the scripted model answers the
    crystallization run with the template's code (the writer imports nothing else)."""

    def __init__(self, server: Any) -> None:
        import llmos.crystallize.writer as module

        self.module, self.original, self.server = module, module._write, server
        self.task: str = ""
        self.written = 0

    def __enter__(self) -> CodeTurns:
        from llmos.testing.model_server import Script, Usage

        original = self.original

        async def write(*args: Any, **kwargs: Any) -> Any:
            code = CRYSTAL_CODE.get(self.task)
            if code is not None:
                turn = Script().text(f"```python\n{code.strip()}\n```",
                                     usage=Usage.from_request()).turns[0]
                self.server.script.turns.insert(self.server.turns_used, turn)
                self.written += 1
            return await original(*args, **kwargs)

        self.module._write = write
        return self

    def __exit__(self, *exc: object) -> None:
        self.module._write = self.original


async def run_pass(goals: list[Goal], workdir: Path, crystallize: bool,
                   agreements: int) -> dict[str, Any]:
    from llmos import LLMOS
    from llmos.testing.model_server import ScriptedModelServer

    settings = ["budget.run_cap_usd=0.5", f"crystallize.auto={str(crystallize).lower()}",
                f"crystallize.agreements={agreements}"]
    rows = []
    with ScriptedModelServer() as server, CodeTurns(server) as coder:
        os.environ.update(server.env())
        ws = workdir / ("with" if crystallize else "without") / "workspace"
        ws.mkdir(parents=True)
        async with LLMOS(ws, budget_usd=1000, settings=settings) as llm_os:
            ws = llm_os.kernel.workspace.root
            for goal in goals:
                task = goal.task
                task.setup(ws, goal.values)
                expected = task.expect(ws, goal.values) if task.expect else None
                script_learner(server, ws, goal)
                coder.task = task.key
                before = server.model_request_count
                started = time.perf_counter()
                result = await llm_os.execute(goal.text)
                wall = time.perf_counter() - started
                del server.script.turns[server.turns_used:]
                problems = task.check(ws, goal.values)
                if expected and not re.search(count_regex(expected), result.output or ""):
                    problems.append(f"the answer does not say {expected}")
                row = {"index": goal.index, "task": task.key, "kind": goal.kind,
                       "goal": goal.text, "mode": result.mode, "success": result.success,
                       "diverged": result.diverged, "cost_usd": result.cost_usd,
                       "model_requests": server.model_request_count - before,
                       "problems": problems, "false_result": result.success and bool(problems),
                       "wall_s": round(wall, 3), "error": result.error}
                rows.append(row)
                print(f"{'with' if crystallize else 'without':<8}{goal.index:>4} "
                      f"{result.mode:<12} ${result.cost_usd:<8.4f} "
                      f"{row['model_requests']:>2} req  {goal.text[:60]:<60}"
                      f"{'  FALSE RESULT' if row['false_result'] else ''}", flush=True)
            stats = llm_os.stats()
            from llmos.crystallize.store import CrystalStore

            crystals = [v.as_dict() for v in CrystalStore(llm_os.kernel.db,
                                                           llm_os.kernel.workspace).current_all()]
    for c in crystals:
        c.pop("provenance", None)
    return {"rows": rows, "stats": stats, "crystals": crystals, "code_turns": coder.written}


def summary(outcome: dict[str, Any]) -> dict[str, Any]:
    rows, stats = outcome["rows"], outcome["stats"]
    return {
        "goals": len(rows),
        "modes": dict(Counter(r["mode"] for r in rows)),
        "spend_usd": stats["spend_usd"],  # crystallization runs included
        "model_requests": stats["model_requests"],
        "crystallization_runs": stats["by_mode"].get("CRYSTALLIZE", 0),
        "crystallized_runs": stats.get("crystallized_runs", 0),
        "false_results": sum(r["false_result"] for r in rows),
        "failed_checks": sum(bool(r["problems"]) for r in rows),
        "crystals": [{k: c[k] for k in ("name", "status", "agreements", "failures", "runs")}
                     for c in outcome["crystals"]],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goals", type=int, default=60)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--agreements", type=int, default=2,
                        help="crystallize.agreements: shadow agreements before active")
    parser.add_argument("--out", default=str(RESULTS_DIR / "crystallize.json"))
    args = parser.parse_args(argv)
    if args.goals < 1:
        parser.error(f"--goals {args.goals}: give at least 1 goal")
    chosen = [t for t in [*tasks(), *class_tasks()] if t.key in TEMPLATES]
    goals = draw(chosen, args.goals, random.Random(args.seed))
    home = isolate_environment()
    workdir = Path(tempfile.mkdtemp(prefix="llmos-bench-crystallize-"))
    began, wall_start = time.perf_counter(), time.time()
    try:
        without = asyncio.run(run_pass(goals, workdir, False, args.agreements))
        with_ = asyncio.run(run_pass(goals, workdir, True, args.agreements))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    report = {"without": summary(without), "with": summary(with_)}
    for name, part in report.items():
        print(f"\n{name} crystallization: {part['goals']} goals, modes {part['modes']}, "
              f"spend ${part['spend_usd']:.4f}, model requests {part['model_requests']}, "
              f"crystallization runs {part['crystallization_runs']}, crystallized runs "
              f"{part['crystallized_runs']}, false results {part['false_results']}, "
              f"failed checks {part['failed_checks']}")
    a, b = report["without"], report["with"]
    if a["spend_usd"]:
        print(f"\ncost with crystallization: {b['spend_usd'] / a['spend_usd']:.0%} of without; "
              f"model requests {b['model_requests']} vs {a['model_requests']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**machine(), "code": code_fingerprint(wall_start),
                               "seed": args.seed, "agreements": args.agreements,
                               "runtime_s": round(time.perf_counter() - began, 1),
                               "summary": report, "without": without, "with": with_},
                              indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0 if b["false_results"] == 0 and a["false_results"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
