"""SIMULATION: the model really works the goal, in a scratch copy; the real workspace is
byte-identical afterwards, the run is marked simulated, never becomes a trace, and is
exported as training data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pydantic import BaseModel

import llmos
from llmos.kernel import Kernel
from llmos.runner import execute

pytestmark = pytest.mark.cli


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under the workspace but llmos's own state, with its content's sha256
    (or the link target / 'dir')."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".llmos":
            continue
        if path.is_symlink():
            out[str(rel)] = "link:" + str(path.readlink())
        elif path.is_dir():
            out[str(rel)] = "dir"
        else:
            out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def populated(llmos_workspace):
    (llmos_workspace / "notes.md").write_text("# notes\nfirst line\n")
    (llmos_workspace / "src").mkdir()
    (llmos_workspace / "src" / "app.py").write_text("print('hi')\n")
    return llmos_workspace


def test_a_simulated_run_changes_nothing_in_the_workspace(llmos_cli, llmos_model_server,
                                                          populated):
    assert llmos_cli("budget", "set", "5").exit_code == 0
    before = tree_digest(populated)
    llmos_model_server.script.tool_use(
        "Write", {"file_path": "new.txt", "content": "created\n"}
    ).tool_use(
        "Edit", {"file_path": "notes.md", "old_string": "first line", "new_string": "edited"}
    ).tool_use("Bash", {"command": "echo more >> src/app.py && cat src/app.py"}).tool_use(
        "Write", {"file_path": str(populated / "escape.txt"), "content": "out\n"}
    ).tool_use("Bash", {"command": f"echo out > {populated / 'notes.md'}"}).text(
        "Simulated the change.")
    result = llmos_cli("run", "--json", "--simulate", "Add new.txt and edit the notes")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mode"] == "SIMULATION" and data["success"], data
    # the model's tools really ran, in the scratch copy
    assert llmos_model_server.tool_result("toolu_000_0").is_error is False
    assert "print('hi')\nmore" in llmos_model_server.tool_result("toolu_002_0").text
    # a path into the real workspace is outside the scratch copy: refused
    assert llmos_model_server.tool_result("toolu_003_0").is_error
    assert llmos_model_server.tool_result("toolu_004_0").is_error  # Bash, likewise
    assert tree_digest(populated) == before
    assert data["trace_id"] is None
    kernel = Kernel(populated, load_entry_points=False)
    assert kernel.memory.count_traces() == 0
    assert kernel.memory.get_run(data["run_id"]).mode == "SIMULATION"
    from llmos.export.store import ConversationStore

    (session,) = ConversationStore(kernel.db).for_run(data["run_id"])
    assert session["simulated"]
    # the same goal again is not replayed from the simulation: nothing was learned
    route = json.loads(llmos_cli("route", "--json", "Add new.txt and edit the notes").stdout)
    assert route["matched_trace"] is None


def test_simulate_and_another_mode_is_a_usage_error(llmos_cli):
    result = llmos_cli("run", "--simulate", "--mode", "LEARNER", "x")
    assert result.exit_code == 2 and "drop --mode LEARNER" in result.output


class MoveInput(BaseModel):
    x: float


class Robot:
    """A pack tool that changes the world outside the workspace."""

    def __init__(self) -> None:
        self.moves: list[float] = []

    @llmos.hookimpl
    def llmos_register_tools(self, register):
        async def move(args: MoveInput, context):
            self.moves.append(args.x)
            return f"moved to {args.x}"

        register(llmos.Tool("move", "Move the arm", MoveInput, move,
                            llmos.ToolMeta("mutating")))


async def test_a_world_changing_tool_is_answered_from_a_recorded_observation(
    llmos_model_server, llmos_workspace
):
    robot = Robot()
    script = llmos_model_server.script
    script.tool_use("mcp__llmos__move", {"x": 0.25}).text("Moved.")  # the real run
    script.tool_use("mcp__llmos__move", {"x": 0.25}).tool_use(
        "mcp__llmos__move", {"x": 9.0}).text("Simulated.")
    async with Kernel(llmos_workspace, plugins={"robot": robot}, load_entry_points=False,
                      interactive=False) as kernel:
        kernel.economy.set_balance(5)
        learned = await execute(kernel, "Move the arm to 0.25", mode="LEARNER")
        assert learned.success and learned.trace_id
        simulated = await execute(kernel, "Move the arm to 0.25", mode="SIMULATION")
        traces = kernel.memory.count_traces()
    assert simulated.success and simulated.mode == "SIMULATION"
    assert robot.moves == [0.25]  # only the real run moved the arm
    recorded = llmos_model_server.tool_result("toolu_002_0")
    assert "a similar run observed: moved to 0.25" in recorded.text
    unknown = llmos_model_server.tool_result("toolu_003_0")
    assert unknown.is_error and "no similar trace recorded this call" in unknown.text
    assert traces == 1
