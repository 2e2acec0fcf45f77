"""Compiling proven traces into a crystal: the prompt, the one paid run that writes the
code, the allowlist, and the regression suite from the source traces' cassettes."""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from llmos.crystallize.cassette import CassetteCaller, CassetteIncomplete, entries_from_steps
from llmos.crystallize.check import ALLOWED_IMPORTS, CrystalRejected, check_source
from llmos.crystallize.runtime import CrystalFailed, execute
from llmos.crystallize.store import CrystalStore, Version, crystal_name
from llmos.crystallize.tool import param_specs, source_programs, text_of
from llmos.errors import OperationFailed

if TYPE_CHECKING:
    from llmos.kernel import Kernel
    from llmos.memory.models import Trace

MAX_SOURCES = 6
MAX_RESULT_CHARS = 1500

PROMPT = """Write a Python tool that does this kind of goal for any values:

    {template}

It has been solved {count} times; each solution is shown with the tool calls it made and
what each call returned. Parameters (from the goal's values): {params}.

{runs}

Write exactly one module with `async def run(params, call)`:
- `params.<name>` holds each parameter ({names}).
- `r = await call("Tool", {{...input...}})` runs one tool (only {tools}, with the inputs
  those tools took above; paths relative to the workspace). `r.text` is what it showed (a
  file's text, a command's output), `r.ok`, `r.error`, `r.exit_code`, `r.output`. A call
  that fails raises and ends the tool, unless you pass `may_fail=True`.
- Make the same calls, in the same order, with inputs computed from the parameters and
  from what earlier calls returned (the values that change from run to run are derived
  from those, not copied).
- Quote a value you put into a shell command with `shlex.quote` (import shlex).
- `fail("why")` gives up when the world is not as expected.
- Return a short answer for the user as a string.
- Only these imports: {imports}. No other module, no I/O except through `call`, no
  exec/eval/open/getattr, no names or attributes starting with `_`, no classes, no
  while loops, no str.format (use f-strings).

Do not use any tools yourself. Reply with the module in one ```python block."""

_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


def extract_code(text: str) -> str | None:
    blocks = _BLOCK.findall(text or "")
    if blocks:
        return blocks[-1].strip() + "\n"
    return None


def _relative(value: Any, root: str) -> Any:
    if isinstance(value, str):
        return value.replace(root.rstrip("/") + "/", "")
    if isinstance(value, dict):
        return {k: _relative(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    return value


def _shown_result(entry: Any, tools: Any) -> str:
    from llmos.learning.observe import observed_text

    if entry.result.is_error:
        text = f"(failed) {entry.result.error}"
    else:
        shown = observed_text(entry.tool, entry.result.output, tools)
        text = shown if shown is not None else json.dumps(entry.result.output, default=str)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " [...]"


def build_prompt(kernel: Kernel, traces: list[Trace], specs: list[dict[str, Any]],
                 cassettes: list[list[Any]], tools: list[str]) -> str:
    root = str(kernel.workspace.root)
    runs = []
    for n, (trace, entries) in enumerate(zip(traces, cassettes, strict=True), start=1):
        values = ", ".join(f"{s['name']}={trace.slots[s['slot']].value!r}" for s in specs)
        lines = [f"Solution {n}: goal {trace.goal_text!r} ({values or 'no parameters'})"]
        for i, entry in enumerate(entries, start=1):
            if entry.redundant:
                lines.append(f"  {i}. (the same call again, after a replay: make it once)")
                continue
            shown = json.dumps(_relative(entry.input, root), ensure_ascii=False)
            lines.append(f"  {i}. {entry.tool} {shown}\n     returned: "
                         + _shown_result(entry, kernel.tools).replace("\n", "\n     "))
        if trace.answer:
            lines.append(f"  answer: {trace.answer[:500]}")
        runs.append("\n".join(lines))
    params = ", ".join(f"{s['name']} ({s['type']}, slot {s['slot'] + 1} of kind "
                       f"{s['slot_kind']})" for s in specs) or "none"
    return PROMPT.format(template=traces[0].normalized_goal, count=len(traces), params=params,
                         runs="\n\n".join(runs), names=", ".join(s["name"] for s in specs)
                         or "none", tools=", ".join(tools),
                         imports=", ".join(sorted(ALLOWED_IMPORTS)))


def family(kernel: Kernel, trace: Trace) -> list[Trace]:
    """The trace and the other solved instances of its signature it can be compiled with
    (same slot kinds, not demoted), newest first, the given one first."""
    from llmos.learning.matching import slot_bindings

    others = [t for t in kernel.memory.find_traces(signature=trace.goal_signature)
              if t.id != trace.id and not t.demoted
              and slot_bindings(t.slots, trace.slots) is not None]
    return [trace, *others][:MAX_SOURCES]


async def run_cassette(kernel: Kernel, source: str, version: str, specs: list[dict[str, Any]],
                       allowed: set[str], slots: Any, entries: list[Any],
                       programs: set[str] | None = None) -> dict[str, Any]:
    """Drive the code with one cassette; {agreed, reason, answer}. ``programs``: those
    the source traces' Bash calls ran (default: this cassette's)."""
    from llmos.crystallize.programs import allowed_programs
    from llmos.crystallize.tool import Unbound, bind

    try:
        params = bind(specs, slots)
    except Unbound as exc:
        return {"agreed": False, "reason": f"parameters do not bind: {exc}", "answer": ""}
    checked = check_source(source, allowed)
    if programs is None:
        programs = allowed_programs(str(e.input.get("command", "")) for e in entries
                                    if e.tool == "Bash")
    caller = CassetteCaller(entries, kernel.tools, str(kernel.workspace.root))
    answer, failure = "", ""
    try:
        answer = await execute(checked, version, params, caller, text_of(kernel), allowed,
                               programs)
    except CrystalFailed as exc:
        failure = str(exc)
    comparison = caller.finish()
    if comparison.agreed and failure:
        comparison.agreed, comparison.reason = False, f"the crystal failed: {failure}"
    return {"agreed": comparison.agreed, "reason": comparison.reason, "answer": answer}


async def run_suite(kernel: Kernel, store: CrystalStore, version: Version
                       ) -> list[dict[str, Any]]:
    """Run the version's regression suite (one cassette per source trace)."""
    from llmos.crystallize.cassette import Entry
    from llmos.goals import Slot

    prov = version.provenance
    source = store.source(version.name, version.version)
    results = []
    for case in prov.get("cassettes", []):
        entries = [Entry.from_dict(e) for e in case["calls"]]
        slots = [Slot(**s) for s in case["slots"]]
        outcome = await run_cassette(kernel, source, version.version, prov["params"],
                                     set(prov["allowed_tools"]), slots, entries,
                                     source_programs(prov.get("cassettes", [])))
        results.append({"trace_id": case["trace_id"], **outcome})
    return results


async def crystallize(kernel: Kernel, trace_id: str, *, progress: Any = None) -> Version:
    """Compile ``trace_id`` and the other solved instances of its goal into a crystal:
    one paid, budgeted, recorded model run writes the code; the allowlist checks it; the
    cassette of each source trace tests it. Passing versions start in shadow."""
    from llmos.goals import analyze_goal

    memory = kernel.memory
    trace = memory.get_trace(trace_id)
    cfg = kernel.config.section("crystallize")
    traces = family(kernel, trace)
    if len(traces) < cfg.min_runs:
        raise OperationFailed(
            f"trace {trace.id} ({trace.goal_text!r}) has {len(traces)} solved instance(s) of "
            f"its goal; crystallizing needs {cfg.min_runs} ([crystallize] min_runs): run the "
            "goal again with other values first")
    from llmos.memory.redaction import contains_redaction

    if any(contains_redaction(s.input) for t in traces for s in t.steps):
        raise OperationFailed("a step of these traces held a secret that was redacted: the "
                              "recorded calls cannot be reproduced, so they are not compiled")
    try:
        cassettes = [entries_from_steps(t.steps) for t in traces]
    except CassetteIncomplete as exc:
        raise OperationFailed(f"cannot build the regression suite: {exc}") from None
    shapes = {tuple(e.tool for e in c) for c in cassettes}
    tools = sorted({e.tool for c in cassettes for e in c})
    unknown = [t for t in tools if t not in kernel.tools]
    if unknown:
        raise OperationFailed(f"the traces use {', '.join(unknown)}, which llmos cannot run "
                              "without the model: nothing to crystallize")
    if not tools:
        raise OperationFailed("the traces make no tool calls: nothing to crystallize")
    specs = param_specs([t.slots for t in traces])
    goal = analyze_goal(trace.goal_text)
    name = crystal_name(goal.normalized, goal.signature)
    prompt = build_prompt(kernel, traces, specs, cassettes, tools)
    outcome, run_id = await _write(kernel, name, prompt, progress)
    store = CrystalStore(kernel.db, kernel.workspace)
    provenance: dict[str, Any] = {
        "name": name, "signature": goal.signature, "normalized_goal": goal.normalized,
        "source_traces": [t.id for t in traces], "params": specs, "allowed_tools": tools,
        "call_shapes": sorted(list(s) for s in shapes),
        "writer": {"run_id": run_id, "model": kernel.config.cortex.model or "(Claude Code's "
                   "default)", "cost_usd": outcome.cost_usd,
                   "model_requests": outcome.model_requests,
                   "session_id": outcome.details.get("session_id")},
        "cassettes": [{"trace_id": t.id, "goal": t.goal_text,
                       "slots": [s.model_dump() for s in t.slots],
                       "calls": [e.as_dict() for e in c]} for t, c in zip(traces, cassettes,
                                                                          strict=True)],
    }
    if not outcome.success:
        raise OperationFailed(f"the crystallization run {run_id} failed: {outcome.error}")
    source = extract_code(outcome.output)
    if source is None:
        raise OperationFailed(f"the crystallization run {run_id} gave no ```python block")
    try:
        check_source(source, tools)
    except CrystalRejected as exc:
        provenance["rejected"] = exc.problems
        store.add(name, goal.signature, goal.normalized, source, provenance, "rejected",
                  "; ".join(exc.problems)[:1000])
        raise OperationFailed(f"{exc} (kept as a rejected version of {name})") from None
    version = store.add(name, goal.signature, goal.normalized, source, provenance,
                        "candidate", "written; regression suite pending")
    return await record_tests(kernel, store, version)


async def record_tests(kernel: Kernel, store: CrystalStore, version: Version) -> Version:
    """Run the regression suite, keep its results with the version, and move a candidate
    that passes to shadow."""
    results = await run_suite(kernel, store, version)
    prov = dict(version.provenance)
    prov["tests"] = results
    store.write_provenance(version.name, version.version, prov)
    failed = [r for r in results if not r["agreed"]]
    if failed:
        store.event(version.name, version.version, "tests failed", failed[0]["reason"])
        if version.status == "candidate":
            return store.set_status(version.name, version.version, "candidate",
                                    f"regression test failed: {failed[0]['reason']}"[:1000])
        return store.get(version.name, version.version)
    store.event(version.name, version.version, "tests passed", f"{len(results)} cassettes")
    if version.status == "candidate":
        return store.set_status(version.name, version.version, "shadow",
                                f"{len(results)} regression cassettes passed; compared with "
                                "the normal path from now on")
    return store.get(version.name, version.version)


async def _write(kernel: Kernel, name: str, prompt: str, progress: Any) -> tuple[Any, str]:
    """The paid run that writes the code, recorded like any run (and in the dispatch log)."""
    from llmos.cortex.learner import learn_paid
    from llmos.learning.stats import DispatchLog

    run_id = uuid.uuid4().hex[:16]
    goal = f"crystallize {name}"
    memory = kernel.memory
    memory.start_run(goal, "CRYSTALLIZE", run_id=run_id)
    context = kernel.context(run_id=run_id, goal=goal, mode="CRYSTALLIZE")
    try:
        outcome = await learn_paid(context, prompt, progress=progress, what="crystallization")
    except BaseException as exc:
        memory.finish_run(run_id, success=False, error=f"{type(exc).__name__}: {exc}",
                          cost_usd=sum(context.extra.get("charged_usd", [])))
        raise
    memory.finish_run(run_id, success=outcome.success, cost_usd=outcome.cost_usd,
                      input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens,
                      output=outcome.output, error=outcome.error)
    DispatchLog(kernel.db).record(run_id=run_id, mode="CRYSTALLIZE", success=outcome.success,
                                  cost_usd=outcome.cost_usd,
                                  model_requests=outcome.model_requests)
    return outcome, run_id
