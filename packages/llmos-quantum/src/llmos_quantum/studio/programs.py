"""Text transformations the Qiskit Studio contract needs: prompts in, code out, programs
made to run locally."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)```", re.DOTALL)
_STEP = re.compile(r"^[ \t]*##[ \t]*STEP[ \t]*(\d+)\b", re.IGNORECASE)
_PARAMETER_UPDATE = re.compile(r"^###\[[^\]\n]*\][ \t]*\n.*```.*NEW PARAMETERS:", re.DOTALL)

LOCAL_BACKEND = """from qiskit_aer import AerSimulator

backend = AerSimulator()
print("Using local simulator...")
"""


def code_only(answer: str) -> str:
    """The code of a model's answer: its fenced blocks joined, fences stripped; an answer
    without fences is taken to be code already."""
    blocks = [block.strip("\n") for block in _FENCE.findall(answer)]
    blocks = [block for block in blocks if block.strip()]
    if blocks:
        return "\n\n".join(blocks).strip() + "\n"
    return answer.replace("```", "").strip() + "\n"


def is_parameter_update(prompt: str) -> bool:
    """``###[<node label>]`` + a fenced program + ``NEW PARAMETERS:`` (the frontend's
    parameter-change prompt)."""
    return bool(_PARAMETER_UPDATE.match(prompt.lstrip()))


def localize(program: str) -> str:
    """The program as it runs without an IBM token: the block under the ``## STEP 0`` comment
    becomes a local ``AerSimulator`` backend, and lines setting ``.options.`` are dropped
    (local primitives have no such options)."""
    out: list[str] = []
    skipping = False
    for line in program.splitlines(keepends=True):
        step = _STEP.match(line)
        if step is not None:
            skipping = step.group(1) == "0"
            out.append(line)
            if skipping:
                out.append(LOCAL_BACKEND + "\n")
            continue
        if skipping:
            continue
        if ".options." in line:
            continue
        out.append(line)
    return "".join(out)
