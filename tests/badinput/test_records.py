"""One bad record never bricks memory: finite floats, unreadable records skipped, reported
with how to remove them, and removable; traces import is bounded and reports per file."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.badinput.conftest import trace_markdown, write


def _stored(workspace, trace_id="good"):
    from llmos.kernel import Kernel
    from llmos.memory.models import Step, Trace

    kernel = Kernel(workspace)
    kernel.memory.save_trace(Trace(id=trace_id, goal_text="write hello.py",
                                   normalized_goal="", goal_signature="",
                                   steps=[Step(tool="Write", input={"file_path": "hello.py",
                                                                    "content": "x"})]))
    kernel.memory.close()


def _corrupt(workspace, trace_id, data):
    """Overwrite a stored trace's record (as a bug, a crash or an older llmos left it)."""
    db = sqlite3.connect(workspace / ".llmos" / "llmos.db")
    with db:
        assert db.execute("UPDATE memory_traces SET data = ? WHERE id = ?",
                          (data, trace_id)).rowcount == 1
    db.close()


def test_nan_and_inf_ratings_are_rejected_at_import(cli, tmp_path):
    for name, value in (("nan", ".nan"), ("inf", ".inf"), ("ninf", "-.inf")):
        write(tmp_path / "in" / f"{name}.md", trace_markdown(name, rating=value))
    result = cli("traces", "import", str(tmp_path / "in"))
    assert result.exit_code == 1
    assert result.output.count("Input should be a finite number") == 3, result.output
    assert cli("traces", "list", "--json").output.strip() == "[]"


@pytest.mark.parametrize("bad", [
    "NAN",  # a NaN success_rating as an older llmos stored it (JSON null)
    "BROKEN",  # not JSON at all
])
def test_a_stored_unreadable_trace_is_skipped_reported_and_removable(cli, llmos_workspace,
                                                                      bad, tmp_path):
    _stored(llmos_workspace)
    _stored(llmos_workspace, "bad")
    good = sqlite3.connect(llmos_workspace / ".llmos" / "llmos.db").execute(
        "SELECT data FROM memory_traces WHERE id = 'good'").fetchone()[0]
    data = (good.replace('"id":"good"', '"id":"bad"').replace('"success_rating":1.0',
                                                              '"success_rating":null')
            if bad == "NAN" else '{"id":"bad", nope')
    assert data != good
    _corrupt(llmos_workspace, "bad", data)

    listed = cli("traces", "list", "--json")
    assert listed.exit_code == 0
    assert [t["id"] for t in json.loads(listed.stdout)] == ["good"]
    assert "trace bad" in listed.stderr and "llmos traces rm bad" in listed.stderr
    assert cli("traces", "list", "--search", "hello").exit_code == 0
    assert cli("route", "--json", "write hello.py").exit_code in (0, 3)
    exported = cli("traces", "export", "--out", str(tmp_path / "out"))
    assert exported.exit_code == 0 and (tmp_path / "out" / "good.md").exists()
    shown = cli("traces", "show", "bad")
    assert shown.exit_code == 1 and "llmos traces rm bad" in shown.output

    check = cli("memory", "check", "--json")
    assert check.exit_code == 1
    [problem] = json.loads(check.stdout)
    assert problem["record"] == "trace bad" and problem["fix"] == "llmos traces rm bad"
    assert ("success_rating" if bad == "NAN" else "JSON") in problem["problem"]
    assert "llmos traces rm bad" in cli("memory", "check").output

    removed = cli("traces", "rm", "bad")
    assert removed.exit_code == 0, removed.output
    assert cli("memory", "check").exit_code == 0
    assert cli("traces", "rm", "missing").exit_code == 1


def test_a_bad_fact_and_a_bad_run_are_skipped_and_reported(cli, llmos_workspace):
    from llmos.kernel import Kernel

    kernel = Kernel(llmos_workspace)
    kernel.memory.add_fact("the build uses make", tags=["build"])
    bad_fact = kernel.memory.add_fact("the build uses ninja", tags=["build"]).id
    run_id = kernel.memory.start_run("write hello.py")
    kernel.memory.finish_run(run_id, success=True, cost_usd=0.01)
    kernel.memory.close()
    db = sqlite3.connect(llmos_workspace / ".llmos" / "llmos.db")
    with db:
        db.execute("UPDATE memory_facts SET data = ? WHERE id = ?",
                   (json.dumps({"id": bad_fact, "text": 5}), bad_fact))
        db.execute("UPDATE memory_runs SET status = 'exploded' WHERE id = ?", (run_id,))
    db.close()
    facts = cli("memory", "facts", "list", "--json")
    assert facts.exit_code == 0 and len(json.loads(facts.stdout)) == 1
    assert cli("runs", "list", "--json").exit_code == 0
    records = {p["record"] for p in json.loads(cli("memory", "check", "--json").stdout)}
    assert records == {f"fact {bad_fact}", f"run {run_id}"}
    assert cli("memory", "facts", "rm", bad_fact).exit_code == 0


def test_markdown_backend_unreadable_trace_is_reported_and_removable(cli, llmos_workspace):
    from llmos.kernel import Kernel

    kernel = Kernel(llmos_workspace, flags=["memory.backend=markdown"])
    traces_dir = kernel.memory.traces_dir
    write(traces_dir / "bad.md", trace_markdown("bad", rating=".nan"))
    write(traces_dir / "ok.md", trace_markdown("ok"))
    args = ("--set", "memory.backend=markdown")
    listed = cli(*args, "traces", "list", "--json")
    assert [t["id"] for t in json.loads(listed.stdout)] == ["ok"]
    check = cli(*args, "memory", "check", "--json")
    [problem] = json.loads(check.stdout)
    assert problem["fix"] == "llmos traces rm bad" and "finite" in problem["problem"]
    shown = cli(*args, "traces", "show", "bad")
    assert shown.exit_code == 1 and "remove it with `llmos traces rm bad`" in shown.output
    assert cli(*args, "traces", "rm", "bad").exit_code == 0
    assert not (traces_dir / "bad.md").exists()


def test_alias_bomb_is_rejected_at_once_and_stores_nothing(cli, tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = trace_markdown("bomb").replace("---\nid: bomb", "---\n" + "\n".join(lines)
                                          + "\nid: bomb")
    assert len(bomb.encode()) < 1500  # 9**9 strings once expanded
    write(tmp_path / "in" / "bomb.md", bomb)
    write(tmp_path / "in" / "good.md", trace_markdown("good"))
    result = cli("traces", "import", "--json", str(tmp_path / "in"))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["imported"] == ["good"]
    [skipped] = report["skipped"]
    assert skipped["file"].endswith("bomb.md") and "aliases" in skipped["problem"]


def test_import_reports_per_file_keeps_the_good_ones_and_survives_deep_nesting(cli,
                                                                                tmp_path):
    folder = tmp_path / "in"
    deep_json = "```json\n{\"file_path\": " + "[" * 50_000 + "]" * 50_000 + "}\n```"
    write(folder / "deepjson.md", trace_markdown("deepjson", input_block=deep_json))
    deep_yaml = "```yaml\nfile_path: " + "[" * 5_000 + "]" * 5_000 + "\n```"
    write(folder / "deepyaml.md", trace_markdown("deepyaml", input_block=deep_yaml))
    nested = "```json\n{\"file_path\": \"a\", \"x\": " + "[" * 80 + "]" * 80 + "}\n```"
    write(folder / "nested.md", trace_markdown("nested", input_block=nested))
    (folder / "latin1.md").write_bytes(trace_markdown("latin1", goal="caf\xe9")
                                       .encode("latin-1"))
    write(folder / "big.md", trace_markdown("big") + "x" * (5 * 1024 * 1024))
    write(folder / "one.md", trace_markdown("one"))
    write(folder / "two.md", trace_markdown("two", goal="fix [dice] in [/]"))
    result = cli("traces", "import", str(folder))
    assert result.exit_code == 1
    out = result.output
    assert "imported 2 trace(s), 5 skipped" in out
    assert f"imported {folder / 'one.md'} as trace one" in out
    for name, reason in (("deepjson", "nested more than 64 levels"),
                         ("deepyaml", "nest"), ("nested", "deeper than 64 levels"),
                         ("latin1", "not UTF-8"), ("big", "larger than 4 MiB")):
        line = next(line for line in out.splitlines() if f"{name}.md" in line)
        assert line.startswith("error: skipped") and reason in line, line
    ids = {t["id"] for t in json.loads(cli("traces", "list", "--json").stdout)}
    assert ids == {"one", "two"}
    again = json.loads(cli("traces", "import", "--json", str(folder / "one.md")).stdout)
    assert again["files"] == [{"file": str(folder / "one.md"), "status": "existing",
                               "id": "one", "line": None, "problem": None}]
