"""Secrets planted in a run never reach the disk: not the database file, not the markdown
memory, not a trace export, not the audit table; and redaction never changes a path.

Each test plants fabricated secrets in what a run sees (a file the Read tool reads, a
command's JSON output, the goal, the final answer, an error) and then reads every byte
llmos wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmos.memory.models import Trace
from llmos.memory.redaction import REDACTED

PASSWORD = "s3cr3tPassw0rd-e2e"
AWS_KEY = "AKIAEDT2SYWB3WKH5DNS"
GOAL_SECRET = "Zx81kQm2Lp0-goal"
GITLAB = "glpat-Y40uvSwMFLZDe1f8rESQ"
SECRETS = (PASSWORD, AWS_KEY, GOAL_SECRET, GITLAB)

CONFIG = (
    "[db]\n"
    "host = db.internal\n"
    f"password = {PASSWORD}\n"
    f"aws_access_key_id = {AWS_KEY}\n"
)


def _bytes_under(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file()}


def _assert_no_secret(files: dict[Path, bytes]) -> None:
    assert files, "nothing was written"
    for path, data in files.items():
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret} found in {path}"


async def _planted_run(kernel, workspace: Path) -> str:
    """A run that reads a config file with secrets, prints it as JSON (the password after
    a JSON-escaped newline) and ends with the secrets in its output and error."""
    (workspace / "settings.ini").write_text(CONFIG)
    memory = kernel.memory
    run_id = memory.start_run(f"Deploy with API_KEY={GOAL_SECRET}", "learner")
    ctx = kernel.context(run_id=run_id)
    read = await kernel.call_tool("Read", {"file_path": "settings.ini"}, context=ctx,
                                  source="replay")
    assert PASSWORD in read.text  # the tool itself saw the secret
    await kernel.call_tool(
        "Write", {"file_path": "dump.json", "content": json.dumps({"config": CONFIG})},
        context=ctx, source="replay")
    dumped = await kernel.call_tool("Read", {"file_path": "dump.json"}, context=ctx,
                                    source="replay")
    assert "\\npassword = " + PASSWORD in dumped.text  # JSON-escaped in the result
    memory.finish_run(run_id, success=False, output=f"key is {AWS_KEY}",
                      error=f"failed: password={PASSWORD}")
    return run_id


async def test_a_run_with_secrets_leaves_none_on_disk(kernel, workspace: Path, cli,
                                                      backend_name: str) -> None:
    memory = kernel.memory
    run_id = await _planted_run(kernel, workspace)
    steps = memory.run_steps(run_id)
    assert len(steps) == 3
    assert REDACTED in steps[0].outcome.excerpt
    assert "host = db.internal" in steps[0].outcome.excerpt  # the rest is kept
    assert REDACTED in json.dumps(steps[1].input)
    run = memory.get_run(run_id)
    assert REDACTED in run.goal
    assert REDACTED in (run.output or "") and REDACTED in (run.error or "")

    from llmos.goals import analyze_goal

    goal = analyze_goal(f"Deploy with API_KEY={GOAL_SECRET}")
    trace = memory.save_trace(Trace(
        goal_text=goal.text, normalized_goal=goal.normalized,
        goal_signature=goal.signature, steps=steps,
        answer=f"Done; the password is {PASSWORD}", source_run=run_id,
    ))
    assert REDACTED in trace.answer

    out = workspace.parent / "export"
    result = cli("traces", "export", "--out", str(out), backend=backend_name)
    assert result.exit_code == 0, result.output
    exported = _bytes_under(out)
    assert any(REDACTED.encode() in data for data in exported.values())
    _assert_no_secret(exported)
    shown = cli("traces", "show", trace.id, backend=backend_name)
    assert shown.exit_code == 0, shown.output
    assert not any(s in shown.output for s in SECRETS)
    runs = cli("runs", "show", run_id, "--json", backend=backend_name)
    assert runs.exit_code == 0, runs.output
    assert not any(s in runs.output for s in SECRETS)
    # Every byte llmos keeps in the workspace (.llmos: the database and its WAL, or the
    # markdown memory), apart from the files the run itself wrote on purpose.
    _assert_no_secret(_bytes_under(workspace / ".llmos"))


async def test_the_audit_table_has_no_secret(workspace: Path, kernel_factory) -> None:
    async with kernel_factory(workspace, "security.backend=layered") as kernel:
        command = f"git clone https://oauth2:{GITLAB}@gitlab.com/acme/app.git"
        result = await kernel.call_tool("Bash", {"command": command})
        assert result.is_error  # asked, and nobody is there to answer
        # Whatever the policy quotes of the input in its reason, the secret is not kept;
        # a reason that quotes the whole URL is redacted in place.
        kernel.audit.record(tool="Bash", source="model", input_digest="0", decision="ask",
                            rule="test", reason=f"asks: {command}")
        entries = kernel.audit.entries()
        assert len(entries) == 2 and entries[0]["reason"] == (
            f"asks: git clone https://oauth2:{REDACTED}@gitlab.com/acme/app.git")
        assert GITLAB not in json.dumps(entries)
    _assert_no_secret(_bytes_under(workspace / ".llmos"))


async def test_paths_under_the_working_directory_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_factory
) -> None:
    """Issue 10 (1): with the workspace under $PWD, the trace kept ``[REDACTED]/workspace``
    instead of the path, and a replay wrote into ``workspace/[REDACTED]/...``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    monkeypatch.setenv("OLDPWD", str(tmp_path.parent))
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    async with kernel_factory(workspace) as kernel:
        memory = kernel.memory
        run_id = memory.start_run(f"Create {workspace}/primes.py", "learner")
        ctx = kernel.context(run_id=run_id)
        target = str(workspace / "primes.py")
        await kernel.call_tool("Write", {"file_path": target, "content": "print(2)\n"},
                               context=ctx, source="replay")
        await kernel.call_tool("Read", {"file_path": target}, context=ctx, source="replay")
        write, read = memory.run_steps(run_id)
        assert write.input["file_path"] == target
        assert memory.get_run(run_id).goal == f"Create {workspace}/primes.py"
        assert REDACTED not in json.dumps([write.model_dump(mode="json"),
                                           read.model_dump(mode="json")])


@pytest.mark.cli
async def test_learned_and_replayed_reads_of_a_secret_file_leave_none_on_disk(
    llmos_workspace: Path, llmos_model_server
) -> None:
    """LEARNER through the real Claude Code CLI (scripted model) reads a config file with
    a password and an AWS key and repeats them in its answer; FOLLOWER replays the Read.
    Neither run leaves a secret in llmos's state, the export or the audit table."""
    from click.testing import CliRunner

    from llmos import LLMOS
    from llmos.cli import cli as llmos_cli
    from llmos.testing.model_server import Usage

    (llmos_workspace / "settings.ini").write_text(CONFIG)
    goal = "Show the database settings in settings.ini"
    llmos_model_server.script.tool_use(
        "Read", {"file_path": str(llmos_workspace / "settings.ini")}, usage=Usage(2000, 40),
    ).text(f"The database password is {PASSWORD} and the key id {AWS_KEY}.",
           usage=Usage(2200, 30))
    async with LLMOS(llmos_workspace, budget_usd=5,
                     settings=["budget.run_cap_usd=0.5"]) as os_:
        learned = await os_.execute(goal)
        assert learned.success and learned.mode == "LEARNER", learned.error
        assert PASSWORD in llmos_model_server.tool_result("toolu_000_0").text
        replayed = await os_.execute(goal)
        assert replayed.success and replayed.mode == "FOLLOWER", replayed.error
        memory = os_.kernel.memory
        for run_id in (learned.run_id, replayed.run_id):
            steps = memory.run_steps(run_id)
            assert any(s.tool == "Read" and REDACTED in s.outcome.excerpt for s in steps)
            assert "host = db.internal" in json.dumps([s.model_dump(mode="json")
                                                       for s in steps])
        assert os_.kernel.audit.entries()
        assert not any(s in json.dumps(os_.kernel.audit.entries(limit=1000)) for s in SECRETS)
    out = llmos_workspace.parent / "export"
    result = CliRunner().invoke(llmos_cli, ["--workspace", str(llmos_workspace), "traces",
                                            "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    _assert_no_secret(_bytes_under(out))
    _assert_no_secret(_bytes_under(llmos_workspace / ".llmos"))
