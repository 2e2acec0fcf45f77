"""One database, many workspaces: a trace's paths follow the worker's workspace folder, and
each project keeps its own memory (its own PostgreSQL schema) while the wallet is shared."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from llmos.cli import cli
from llmos.kernel import Kernel
from llmos.memory.models import Step
from llmos.memory.postgres import PostgresMemory
from llmos.testing.memory_conformance import make_trace


def write_trace(root: str):
    return make_trace("Create alpha.txt containing alpha", steps=[
        Step(index=0, tool="Write", input={"file_path": f"{root}/alpha.txt",
                                           "content": "alpha\n"}),
        Step(index=1, tool="Bash", input={"command": f"cat {root}/alpha.txt"}),
    ], answer=f"Wrote {root}/alpha.txt")


def test_a_trace_reads_back_in_each_workers_folder(llmos_postgres_db: str) -> None:
    here = PostgresMemory(llmos_postgres_db, root="/srv/one")
    there = PostgresMemory(llmos_postgres_db, root="/home/two/ws")
    try:
        saved = here.save_trace(write_trace("/srv/one"))
        mine, theirs = here.get_trace(saved.id), there.get_trace(saved.id)
        assert mine == saved
        assert theirs.steps[0].input["file_path"] == "/home/two/ws/alpha.txt"
        assert theirs.steps[1].input["command"] == "cat /home/two/ws/alpha.txt"
        assert theirs.answer == "Wrote /home/two/ws/alpha.txt"
        assert [t.steps[0].input["file_path"] for t in there.search_traces("alpha")] == [
            "/home/two/ws/alpha.txt"]
        assert there.find_traces(signature=saved.goal_signature)[0] == theirs
        # a use counted by the other worker leaves the trace as it was recorded
        used = there.update_trace_stats(saved.id, "success")
        assert used.steps[0].input["file_path"] == "/home/two/ws/alpha.txt"
        again = here.get_trace(saved.id)
        assert again.usage_count == saved.usage_count + 1
        assert again.steps[0].input["file_path"] == "/srv/one/alpha.txt"
    finally:
        here.close()
        there.close()


def test_projects_keep_their_own_memory_and_share_the_wallet(
        llmos_workspace: Path, llmos_postgres_db: str) -> None:
    settings = ["memory.backend=postgres", f"memory.dsn={llmos_postgres_db}"]
    for name in ("alpha", "beta"):
        result = CliRunner().invoke(cli, ["--workspace", str(llmos_workspace), "projects",
                                          "new", name])
        assert result.exit_code == 0, result.output
    alpha = Kernel(llmos_workspace, flags=settings, project="alpha", load_entry_points=False)
    beta = Kernel(llmos_workspace, flags=settings, project="beta", load_entry_points=False)
    root = Kernel(llmos_workspace, flags=settings, load_entry_points=False)
    try:
        trace = alpha.memory.save_trace(write_trace(str(alpha.workspace.root)))
        assert [t.id for t in alpha.memory.list_traces()] == [trace.id]
        assert beta.memory.list_traces() == [] and root.memory.list_traces() == []
        alpha.economy.set_balance(2.0)
        assert beta.economy.balance_micro == root.economy.balance_micro == 2_000_000
    finally:
        for kernel in (alpha, beta, root):
            kernel.memory.close()
            kernel.economy.close()
