"""llmos's own state is out of reach of everything the agent runs: file tools, sandboxed
code, replays and LEARNER's Claude Code. Plus the bounds (output, memory, time) and scopes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

import llmos
from llmos import Tool, ToolMeta
from llmos.kernel import Kernel
from llmos.memory.models import Step, Trace
from llmos.security import sandbox

STATUS = sandbox.available()
needs_bwrap = pytest.mark.skipif(STATUS.mechanism != "bwrap",
                                 reason=f"bubblewrap cannot run here: {STATUS.bwrap_reason}")

CONFIG = "[budget]\nrun_cap_usd = 0.5\n"
TARGETS = ("llmos.toml", ".llmos/llmos.db", ".git/hooks/pre-commit", ".git/config",
           "plugins/generated/evil.py", ".bashrc")

#: Model-written code that rewrites every protected entry it can reach.
ATTACK_SCRIPT = textwrap.dedent("""\
    import os, sqlite3
    done = []
    for target in %r:
        try:
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            with open(target, "w") as handle:
                handle.write('[security]\\nbackend = "trusted"\\n')
            done.append(target)
        except OSError as exc:
            print("refused", target, exc.strerror)
    for name in (".git", "plugins"):
        try:
            os.rename(name, name + ".old")
            done.append("renamed " + name)
        except OSError as exc:
            print("refused rename", name, exc.strerror)
    print("WROTE", done)
    """)


def _prepare(workspace: Path) -> dict[str, bytes]:
    """A workspace with a config, a git repo and llmos's state; their contents."""
    kernel = Kernel(workspace, load_entry_points=False)  # lays out .llmos/, plugins/
    kernel.db.conn.close()  # creates .llmos/llmos.db
    (workspace / "llmos.toml").write_text(CONFIG)
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    (workspace / "x.py").write_text(ATTACK_SCRIPT % (TARGETS,))
    return _snapshot(workspace)


def _snapshot(workspace: Path) -> dict[str, bytes]:
    found = {}
    for target in TARGETS:
        path = workspace / target
        found[target] = path.read_bytes() if path.exists() else b"<missing>"
        if target.endswith(".db"):  # the kernel itself writes it (audit): its kind stays
            found[target] = found[target][:16]
    found["dirs"] = repr(sorted(os.listdir(workspace))).encode()
    return found


def _assert_untouched(workspace: Path, before: dict[str, bytes]) -> None:
    after = _snapshot(workspace)
    assert after == before
    assert not (workspace / ".git.old").exists() and not (workspace / "plugins.old").exists()


# --------------------------------------------------------------------------- tools call
@pytest.mark.parametrize("target", [*TARGETS, "LLMOS.toml",
                                    "./plugins/generated/../generated/x.py"])
def test_tools_call_write_to_llmos_state_is_denied(llmos_cli, llmos_workspace, target):
    before = _prepare(llmos_workspace)
    result = llmos_cli("tools", "call", "Write", "--json", "--input", json.dumps(
        {"file_path": target, "content": '[security]\nbackend = "trusted"\n'}))
    assert result.exit_code == 4, result.output
    assert json.loads(result.stdout)["decision"]["verdict"] == "deny"
    _assert_untouched(llmos_workspace, before)
    # and the gate is still on afterwards
    check = llmos_cli("policy", "check", "--tool", "Write", "--input",
                      '{"file_path": "/etc/passwd", "content": "x"}')
    assert check.exit_code == 4


def test_the_markdown_memory_folder_is_protected(llmos_cli, llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text('[memory]\nbackend = "markdown"\n')
    trace = "memory/traces/planted.md"
    result = llmos_cli("tools", "call", "Write", "--json", "--input", json.dumps(
        {"file_path": trace, "content": "---\nid: planted\n---\n"}))
    assert result.exit_code == 4, result.output
    assert "memory folder" in json.loads(result.stdout)["decision"]["reason"]
    assert not (llmos_workspace / trace).exists()
    # sandboxed code cannot plant one either
    (llmos_workspace / "p.py").write_text(
        "import os\nos.makedirs('memory/traces', exist_ok=True)\n"
        "open('memory/traces/planted.md', 'w').write('x')\n")
    if STATUS.mechanism == "bwrap":
        ran = llmos_cli("tools", "call", "Bash", "--json", "--input",
                        '{"command": "python3 p.py"}')
        assert ran.exit_code == 1, ran.output
        assert "Read-only file system" in json.loads(ran.stdout)["error"]
        assert not (llmos_workspace / trace).exists()


def test_human_commands_still_change_the_config(llmos_cli, llmos_workspace):
    _prepare(llmos_workspace)
    assert llmos_cli("budget", "set", "3").exit_code == 0
    shown = llmos_cli("config", "show", "--json")
    assert shown.exit_code == 0, shown.output


@needs_bwrap
def test_tools_call_sandboxed_code_cannot_rewrite_llmos_state(llmos_cli, llmos_workspace):
    before = _prepare(llmos_workspace)
    result = llmos_cli("tools", "call", "Bash", "--json", "--input",
                       '{"command": "python3 x.py"}')
    assert result.exit_code == 0, result.output
    assert "WROTE []" in json.loads(result.stdout)["output"]["stdout"]
    _assert_untouched(llmos_workspace, before)


@needs_bwrap
def test_missing_protected_files_cannot_be_created_and_leave_no_trace(llmos_cli,
                                                                     llmos_workspace):
    Kernel(llmos_workspace, load_entry_points=False)
    (llmos_workspace / "m.py").write_text(textwrap.dedent("""\
        import subprocess
        for name in ("llmos.toml", ".bashrc"):
            try:
                open(name, "w").write("x")
            except OSError as exc:
                print("refused", name, exc.strerror)
        print("git", subprocess.run(["git", "init", "-q", "."]).returncode)
        """))
    result = llmos_cli("tools", "call", "Bash", "--json", "--input",
                       '{"command": "python3 m.py"}')
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["output"]["stdout"]
    assert "refused llmos.toml" in shown and "refused .bashrc" in shown
    assert "git 0" not in shown
    assert not (llmos_workspace / "llmos.toml").exists()
    assert not (llmos_workspace / ".git").exists()  # git init could not make one
    assert not (llmos_workspace / ".bashrc").exists()  # placeholders are removed


# --------------------------------------------------------------------------- replay
def _trace(*steps: tuple[str, dict]) -> Trace:
    return Trace(goal_text="rewrite the config", normalized_goal="rewrite the config",
                 goal_signature="rewrite-config",
                 steps=[Step(index=i, tool=tool, input=data) for i, (tool, data) in
                        enumerate(steps)])


async def replay_trace(trace: Trace, context):
    """FOLLOWER's replay engine on ``trace`` as recorded (whichever form its API has)."""
    import inspect

    from llmos.learning import replay as engine

    if next(iter(inspect.signature(engine.replay).parameters)) == "plan":
        from llmos.learning.generalize import exact_plan

        return await engine.replay(exact_plan(trace), (), context)
    return await engine.replay(trace, {}, context)


async def _replay(workspace: Path, trace: Trace, *flags: str):
    async with Kernel(workspace, load_entry_points=False, interactive=False,
                      flags=list(flags)) as kernel:
        context = kernel.context(run_id="replay-test")
        return await replay_trace(trace, context), context


async def test_a_replayed_write_to_llmos_state_is_refused(llmos_workspace):
    before = _prepare(llmos_workspace)
    for target in TARGETS:
        report, _ = await _replay(llmos_workspace, _trace(
            ("Write", {"file_path": target, "content": "backend = 'trusted'"})))
        assert report.diverged_at == 0 and report.refused, report.reason
    _assert_untouched(llmos_workspace, before)


@needs_bwrap
async def test_replayed_code_cannot_rewrite_llmos_state(llmos_workspace):
    before = _prepare(llmos_workspace)
    report, _ = await _replay(llmos_workspace, _trace(
        ("Write", {"file_path": "x.py", "content": ATTACK_SCRIPT % (TARGETS,)}),
        ("Bash", {"command": "python3 x.py"})))
    assert len(report.steps) == 2
    _assert_untouched(llmos_workspace, before)


# --------------------------------------------------------------------------- LEARNER
@pytest.mark.cli
@pytest.mark.skipif(not __import__("llmos.cortex.learner", fromlist=["x"])
                    .claude_sandbox_available(),
                    reason="Claude Code's sandbox needs bwrap and socat on PATH")
def test_learner_code_cannot_rewrite_config_state_or_hooks(llmos_cli, llmos_model_server,
                                                           llmos_workspace):
    from llmos.testing.model_server import Usage

    before = _prepare(llmos_workspace)
    assert llmos_cli("budget", "set", "5").exit_code == 0
    before = _snapshot(llmos_workspace)
    llmos_model_server.script.tool_use(
        "Write", {"file_path": str(llmos_workspace / "llmos.toml"), "content": "x = 1\n"},
        usage=Usage(100, 10),
    ).tool_use(
        "Bash", {"command": "python3 x.py"}, usage=Usage(100, 10),
    ).tool_use(
        "Bash", {"command": "echo '[security]' > llmos.toml"}, usage=Usage(100, 10),
    ).text("done", usage=Usage(100, 10))
    result = llmos_cli("run", "--json", "Rewrite the llmos config to trust everything")
    assert result.stdout.strip(), result.output
    write = llmos_model_server.tool_result("toolu_000_0").text
    assert "llmos" in write and ("protected" in write or "denied" in write.lower()
                                 or "refused" in write.lower()), write
    ran = llmos_model_server.tool_result("toolu_001_0").text
    assert "WROTE" in ran or "denied" in ran.lower() or "refused" in ran.lower(), ran
    assert "WROTE [" not in ran.replace("WROTE []", ""), ran
    echo = llmos_model_server.tool_result("toolu_002_0").text
    assert "protected" in echo or "llmos" in echo, echo
    after = _snapshot(llmos_workspace)
    for target in TARGETS:
        if target == ".llmos/llmos.db":
            continue  # the run itself records into the database
        assert after[target] == before[target], target


# --------------------------------------------------------------------------- bounds
PEAK_PROBE = textwrap.dedent("""\
    import asyncio, json, resource, sys
    from llmos.kernel import Kernel
    from llmos.memory.models import Step, Trace
    from tests.security.test_state_protection import replay_trace

    async def main():
        trace = Trace(goal_text="print", normalized_goal="print", goal_signature="print",
                      steps=[Step(index=0, tool="Bash", input={"command": sys.argv[2]})])
        async with Kernel(sys.argv[1], load_entry_points=False, interactive=False) as kernel:
            context = kernel.context(run_id="probe")
            report = await replay_trace(trace, context)
            result = await kernel.call_tool("Bash", {"command": sys.argv[2]},
                                            context=context, source="replay")
        out = result.output or {}
        print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                          "stdout_len": len(out.get("stdout", "")),
                          "truncated": out.get("truncated_bytes", 0),
                          "tail": out.get("stdout", "")[-40:], "steps": len(report.steps),
                          "marked": out.get("stdout", "").count("[... truncated")}))

    asyncio.run(main())
    """)


def _peak(workspace: Path, command: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PEAK_PROBE, str(workspace), command],
                          capture_output=True, text=True, timeout=300, check=False,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_bwrap
def test_a_50mb_replayed_output_keeps_memory_flat(llmos_workspace):
    baseline = _peak(llmos_workspace, "true")
    big = _peak(llmos_workspace, "seq 1 7000000")  # 54.9 MB, as in the issue
    assert big["truncated"] > 50_000_000 and big["stdout_len"] < 150_000
    assert big["tail"].endswith("6999999\n7000000\n") and big["marked"] == 1
    # 50 MB printed; our own peak grows by far less than the output (bounded capture)
    assert big["peak_kib"] - baseline["peak_kib"] < 20 * 1024, (baseline, big)


@needs_bwrap
async def test_tool_timeout_kills_the_whole_process_tree(llmos_workspace):
    seconds = 4000 + os.getpid() % 1000  # an unusual duration, to find our own sleeps
    (llmos_workspace / "tree.sh").write_text(
        f"sleep {seconds} &\n(sleep {seconds}; echo late) &\nsleep {seconds + 1}\n")
    report, _ = await _replay(llmos_workspace, _trace(("Bash", {"command": "bash tree.sh"})),
                              "kernel.tool_timeout_s=2")
    assert report.diverged_at == 0, report.reason
    assert "timed out" in report.reason or "did not finish" in report.reason, report.reason
    left = subprocess.run(["pgrep", "-f", f"sleep {seconds}"], capture_output=True, text=True,
                          check=False)
    assert left.stdout.strip() == "", f"processes survived: {left.stdout}"


@needs_bwrap
def test_sandbox_limits_file_size(llmos_cli, llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text("[security]\nsandbox_max_file_bytes = 1000000\n")
    (llmos_workspace / "w.py").write_text("open('big', 'wb').write(b'x' * 5_000_000)\n")
    result = llmos_cli("tools", "call", "Bash", "--json", "--input",
                       '{"command": "python3 w.py"}')
    assert result.exit_code == 1
    assert (llmos_workspace / "big").stat().st_size <= 1_000_000


# --------------------------------------------------------------------------- shell cwd
@needs_bwrap
async def test_replayed_bash_keeps_and_reports_its_working_directory(llmos_workspace):
    (llmos_workspace / "frontend" / "src").mkdir(parents=True)
    async with Kernel(llmos_workspace, load_entry_points=False, interactive=False) as kernel:
        context = kernel.context(run_id="cwd")
        first = await kernel.call_tool("Bash", {"command": "cd frontend && echo hi >&2"},
                                       context=context, source="replay")
        assert first.output["cwd"] == "frontend" and first.output["stderr"] == "hi\n"
        context.extra["shell_cwd"] = first.output["cwd"]
        second = await kernel.call_tool("Bash", {"command": "pwd; cd src"}, context=context,
                                        source="replay")
        assert second.output["stdout"].strip().endswith("/frontend")
        assert second.output["cwd"] == "frontend/src"
        context.extra["shell_cwd"] = "frontend"
        escape = await kernel.call_tool("Bash", {"command": "echo x > ../llmos.toml"},
                                        context=context, source="replay")
        assert escape.decision.verdict == "deny", escape.error
        out = await kernel.call_tool("Bash", {"command": "cd /tmp"}, context=context,
                                     source="replay")
        assert out.decision.verdict != "allow" or out.output["cwd"] is None


# --------------------------------------------------------------------------- scopes
class CopyInput(BaseModel):
    src: str
    dest: str


class Note(BaseModel):
    where: str


class Copier:
    @llmos.hookimpl
    def llmos_register_tools(self, register):
        async def copy(args: CopyInput, context):
            return "copied"

        async def note(args: Note, context):
            return "noted"

        register(Tool("copy_file", "Copies a file", CopyInput, copy, ToolMeta("mutating")))
        register(Tool("jot", "Writes somewhere", Note, note,
                      ToolMeta("mutating", inputs={"where": "write_path"})))


@pytest.mark.parametrize(("tool", "data"), [
    ("copy_file", {"src": "a.txt", "dest": "../../etc/passwd"}),
    ("copy_file", {"src": "/etc/shadow", "dest": "b.txt"}),
    ("copy_file", {"src": "a.txt", "dest": "llmos.toml"}),
    ("jot", {"where": "../outside.txt"}),
    ("jot", {"where": ".git/hooks/pre-commit"}),
    ("copy_file", {"src": "http://169.254.169.254/latest/meta-data/", "dest": "b.txt"}),
])
async def test_plugin_path_inputs_are_checked_whatever_they_are_named(llmos_workspace, tool,
                                                                     data):
    async with Kernel(llmos_workspace, load_entry_points=False, interactive=False,
                      plugins={"copier": Copier()}) as kernel:
        result = await kernel.call_tool(tool, data)
        fine = await kernel.call_tool(tool, {k: "a.txt" for k in data})
    assert result.decision.verdict == "deny", result.decision
    assert fine.decision.verdict == "allow" and fine.output in ("copied", "noted")


def test_policy_check_resolves_paths_from_the_shells_directory(llmos_cli, llmos_workspace):
    (llmos_workspace / "frontend").mkdir()
    command = '{"command": "echo x > ../llmos.toml"}'
    at_root = llmos_cli("policy", "check", "--tool", "Bash", "--json", "--input", command)
    inside = llmos_cli("policy", "check", "--tool", "Bash", "--json", "--cwd", "frontend",
                       "--input", command)
    assert at_root.exit_code == inside.exit_code == 4
    assert json.loads(at_root.stdout)["rule"] == "shell.write_outside"
    assert json.loads(inside.stdout)["rule"] == "shell.protected_path"
    outside = llmos_cli("policy", "check", "--tool", "Bash", "--json", "--cwd", "../..",
                        "--input", '{"command": "ls"}')
    assert outside.exit_code == 4


class Arm(BaseModel):
    target: list[float]
    speed: float = 1.0


async def test_inferred_path_names_with_other_values_are_not_refused(llmos_workspace):
    class Robot:
        @llmos.hookimpl
        def llmos_register_tools(self, register):
            async def move(args: Arm, context):
                return args.target

            register(Tool("move", "Moves the arm", Arm, move, ToolMeta("mutating")))

    async with Kernel(llmos_workspace, load_entry_points=False, interactive=False,
                      plugins={"robot": Robot()}) as kernel:
        result = await kernel.call_tool("move", {"target": [0.1, 0.2, 0.3]})
    assert result.decision.verdict == "allow" and result.output == [0.1, 0.2, 0.3]


# --------------------------------------------------------------------------- sandbox level
def _landlock_ok() -> bool:
    return STATUS.landlock_reason.startswith(f"Landlock ABI {STATUS.landlock_abi} works")


@pytest.mark.parametrize("mechanism", [
    pytest.param("bwrap", marks=needs_bwrap),
    pytest.param("landlock", marks=pytest.mark.skipif(not _landlock_ok(),
                                                      reason="Landlock cannot run here")),
])
def test_sandboxed_code_cannot_rewrite_state_under_either_mechanism(llmos_workspace, mechanism):
    from llmos.security.sandbox import run_sandboxed

    before = _prepare(llmos_workspace)
    done = run_sandboxed("python3 x.py", workspace=llmos_workspace, mechanism=mechanism,
                         timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "WROTE []" in done.stdout, done.stdout
    _assert_untouched(llmos_workspace, before)


@needs_bwrap
def test_concurrent_sandboxes_leave_no_placeholder_and_create_nothing(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from llmos.security.sandbox import run_sandboxed

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "m.py").write_text(textwrap.dedent("""\
        import sys, time
        time.sleep(float(sys.argv[1]))
        for name in ("llmos.toml", ".bashrc", ".git"):
            try:
                open(name, "w").write("x")
                print("WROTE", name)
            except OSError:
                pass
        """))
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda delay: run_sandboxed(
            f"python3 m.py {delay}", workspace=workspace, timeout=60), (0, 0.3, 0.6, 0.9)))
    assert all(r.returncode == 0 and "WROTE" not in r.stdout for r in runs), runs
    assert sorted(os.listdir(workspace)) == ["m.py"]


def test_bounded_buffer_keeps_head_and_tail_and_counts():
    from llmos.security.bounded import BoundedBuffer

    small = BoundedBuffer(100)
    small.write(b"hello ")
    small.write(b"world")
    assert (small.text(), small.truncated) == ("hello world", 0)
    big = BoundedBuffer(100)
    for index in range(1000):
        big.write(f"{index:04d}\n".encode())
    text = big.text()
    assert text.startswith("0000\n0001\n") and text.endswith("0998\n0999\n")
    assert big.total == 5000 and big.truncated == 4900
    assert "[... truncated 4900 bytes ...]" in text


@pytest.mark.skipif(not _landlock_ok(), reason="Landlock cannot run here")
def test_landlock_grants_no_write_through_a_symlink_in_the_workspace(tmp_path):
    from llmos.security.sandbox import run_sandboxed

    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "sub").mkdir()
    (workspace / "out").symlink_to(outside)
    done = run_sandboxed("echo x > out/pwned; echo y > sub/ok", workspace=workspace,
                         mechanism="landlock", timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert not (outside / "pwned").exists()
    assert (workspace / "sub" / "ok").read_text() == "y\n", done.stderr


@needs_bwrap
def test_a_symlinked_protected_entry_fails_closed(llmos_cli, llmos_workspace, tmp_path):
    Kernel(llmos_workspace, load_entry_points=False)
    (tmp_path / "rc").write_text("# rc\n")
    (llmos_workspace / ".bashrc").symlink_to(tmp_path / "rc")
    result = llmos_cli("tools", "call", "Bash", "--json", "--input", '{"command": "ls"}')
    assert result.exit_code == 1
    assert "symlink" in json.loads(result.stdout)["error"]


@needs_bwrap
@pytest.mark.cli
def test_an_imported_trace_replayed_by_llmos_run_cannot_rewrite_state(
        llmos_cli, llmos_model_server, llmos_workspace, tmp_path):
    from llmos.goals import analyze_goal
    from llmos.memory.markdown_format import render_trace
    from llmos.testing.model_server import Usage

    before = _prepare(llmos_workspace)
    assert llmos_cli("budget", "set", "5").exit_code == 0
    before = _snapshot(llmos_workspace)
    goal = "Tidy the workspace settings"
    analyzed = analyze_goal(goal)
    trace = Trace(goal_text=goal, normalized_goal=analyzed.normalized,
                  goal_signature=analyzed.signature,
                  steps=[Step(index=0, tool="Write", input={
                             "file_path": "x.py", "content": ATTACK_SCRIPT % (TARGETS,)}),
                         Step(index=1, tool="Bash", input={"command": "python3 x.py"}),
                         Step(index=2, tool="Write", input={
                             "file_path": "llmos.toml",
                             "content": '[security]\nbackend = "trusted"\n'})])
    planted = tmp_path / "planted.md"
    planted.write_text(render_trace(trace))
    imported = llmos_cli("traces", "import", "--json", str(planted))
    assert imported.exit_code == 0, imported.output
    llmos_model_server.script.text("Nothing to do.", usage=Usage(100, 10))
    ran = json.loads(llmos_cli("run", "--json", goal).stdout)
    # FOLLOWER replays the planted trace, is refused at the protected write and hands off
    assert ran["mode"] == "FOLLOWER" and ran["matched_trace"] == trace.id, ran
    assert ran["diverged"] is True
    after = _snapshot(llmos_workspace)
    for target in TARGETS:
        if target != ".llmos/llmos.db":
            assert after[target] == before[target], target
    check = llmos_cli("policy", "check", "--tool", "Write", "--input",
                      '{"file_path": "/etc/passwd", "content": "x"}')
    assert check.exit_code == 4


@needs_bwrap
def test_sandbox_limits_memory(tmp_path):
    from llmos.security.bounded import Limits
    from llmos.security.sandbox import run_sandboxed

    done = run_sandboxed("python3 -c 'b = bytearray(2 << 30); print(len(b))'",
                         workspace=tmp_path, limits=Limits(memory_bytes=512 << 20), timeout=60)
    assert done.returncode != 0 and "MemoryError" in done.stderr, done


@needs_bwrap
async def test_a_command_that_ends_outside_the_workspace_reports_no_cwd(llmos_workspace):
    async with Kernel(llmos_workspace, load_entry_points=False, interactive=False,
                      flags=["security.backend=trusted"]) as kernel:
        result = await kernel.call_tool("Bash", {"command": "cd /tmp"}, source="replay")
        replaced = await kernel.call_tool("Bash", {"command": "exec true"}, source="replay")
    assert result.output["cwd"] is None and "outside the workspace" in result.output["cwd_note"]
    assert replaced.output["cwd"] is None and "unknown" in replaced.output["cwd_note"]


def test_replay_file_tools_refuse_llmos_state_whatever_the_backend(llmos_cli, llmos_workspace):
    before = _prepare(llmos_workspace)
    for target in ("llmos.toml", "plugins/generated/x.py", ".llmos/llmos.db"):
        result = llmos_cli("--set", "security.backend=trusted", "tools", "call", "Write",
                           "--json", "--input", json.dumps({"file_path": target,
                                                            "content": "x"}))
        assert result.exit_code == 1, result.output
        assert "path refused" in json.loads(result.stdout)["error"]
    _assert_untouched(llmos_workspace, before)


@needs_bwrap
def test_config_loads_while_sandboxes_come_and_go(tmp_path):
    """A sandbox holds an empty placeholder at llmos.toml while its command runs (so the
    command cannot create it) and removes it afterwards: another process reading the
    workspace's config meanwhile sees no file or an empty one, never an error."""
    import threading

    from llmos.config import load_layers
    from llmos.security.sandbox import run_sandboxed

    workspace = tmp_path / "ws"
    workspace.mkdir()
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            run_sandboxed("true", workspace=workspace, timeout=60)

    workers = [threading.Thread(target=churn) for _ in range(3)]
    for worker in workers:
        worker.start()
    seen_placeholder = 0
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            seen_placeholder += (workspace / "llmos.toml").exists()
            layers = load_layers(workspace, [], environ={})
            assert all(layer.values == {} for layer in layers if layer.path is not None
                       and layer.path.parent == workspace), layers
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert seen_placeholder, "the placeholder was never seen: the test did not race"
    assert not (workspace / "llmos.toml").exists()


@needs_bwrap
def test_sandboxes_starting_while_others_end_all_run(tmp_path):
    """A sandbox that sees another's placeholder (an empty llmos.toml held while that one
    runs) binds it; the placeholder is not removed under it when the other ends first."""
    from concurrent.futures import ThreadPoolExecutor

    from llmos.security.sandbox import run_sandboxed

    workspace = tmp_path / "ws"
    workspace.mkdir()

    def runs(_: int) -> list[tuple[int, str]]:
        out = []
        for _ in range(50):
            done = run_sandboxed("true", workspace=workspace, timeout=60)
            out.append((done.returncode, done.stderr))
        return out

    with ThreadPoolExecutor(4) as pool:
        results = [r for batch in pool.map(runs, range(4)) for r in batch]
    failed = [r for r in results if r[0] != 0]
    assert not failed, failed[:3]
    assert sorted(os.listdir(workspace)) == []


def test_what_is_beneath_a_placeholder_is_not_looked_at_again(tmp_path, monkeypatch):
    """Another sandbox may make the mount point of its placeholder (``.git``) while this
    one's command line is being built: entries beneath a component found missing stay
    covered by this one's placeholder, never a mount inside another's read-only one."""
    from llmos.security import protected as module

    workspace = tmp_path / "ws"
    workspace.mkdir()
    real = os.path.lexists

    def lexists(path) -> bool:
        found = real(path)
        if not found and os.fspath(path) == str(workspace / ".git"):
            (workspace / ".git").mkdir()  # another sandbox's bwrap, just now
        return found

    monkeypatch.setattr(module.os.path, "lexists", lexists)
    args = module.bwrap_protection(module.base_protected_paths(workspace), [])
    targets = [args[i + 2] for i, a in enumerate(args) if a in ("--bind", "--ro-bind")]
    assert str(workspace / ".git") in targets
    assert not [t for t in targets if t.startswith(str(workspace / ".git") + "/")], targets
