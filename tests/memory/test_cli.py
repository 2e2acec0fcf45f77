"""`llmos traces|memory|runs` through the real command line (click's runner)."""

from __future__ import annotations

import json
from pathlib import Path

from llmos.memory.markdown_format import parse_trace
from llmos.memory.models import Step
from llmos.testing.memory_conformance import make_trace


def out(result) -> object:
    assert result.exit_code == 0, (result.output, result.stderr if hasattr(result, "stderr")
                                   else "")
    return json.loads(result.stdout)


def seed(workspace: Path, kernel_factory, backend: str = "sqlite") -> dict[str, str]:
    memory = kernel_factory(workspace, f"memory.backend={backend}").memory
    run_id = memory.start_run("Create primes.py printing the first 10 primes", "LEARNER")
    memory.record_step(run_id, Step(tool="Write", input={"file_path": "primes.py",
                                                         "content": "print(2)\n"}))
    memory.finish_run(run_id, success=True, cost_usd=0.03, input_tokens=10, output_tokens=5)
    trace = memory.save_trace(memory.trace_from_run(run_id))
    other = memory.save_trace(make_trace("Compute fibonacci numbers into fib.txt"))
    memory.close()
    return {"run": run_id, "trace": trace.id, "other": other.id}


def test_facts_add_list_search_rm(cli) -> None:
    added = out(cli("memory", "facts", "add", "Tests run with pytest -q", "--tag", "python",
                    "--tag", "tests", "--run", "r1", "--json"))
    assert set(added) == {"id", "text", "tags", "source_run", "created_at"}
    assert (added["tags"], added["source_run"]) == (["python", "tests"], "r1")
    assert cli("memory", "facts", "add", "Staging deploys need the VPN").exit_code == 0
    assert [f["text"] for f in out(cli("memory", "facts", "list", "--json"))] == [
        "Staging deploys need the VPN", "Tests run with pytest -q"]
    assert [f["id"] for f in out(cli("memory", "facts", "list", "--tag", "python", "--json"))
            ] == [added["id"]]
    assert [f["id"] for f in out(cli("memory", "facts", "search", "pytest", "--json"))
            ] == [added["id"]]
    assert out(cli("memory", "facts", "search", "nothing-like-it", "--json")) == []
    assert out(cli("memory", "facts", "rm", added["id"], "--json")) == {"removed": added["id"]}
    assert cli("memory", "facts", "rm", added["id"]).exit_code == 1
    assert cli("memory", "facts", "add", "   ").exit_code == 2
    listing = cli("memory", "facts", "list")
    assert listing.exit_code == 0 and "Staging deploys" in listing.stdout


def test_runs_list_and_show(cli, workspace: Path, kernel_factory) -> None:
    ids = seed(workspace, kernel_factory)
    [run] = out(cli("runs", "list", "--json"))
    assert (run["id"], run["status"], run["mode"], run["step_count"]) == (
        ids["run"], "succeeded", "LEARNER", 1)
    assert run["cost_usd"] == 0.03 and run["input_tokens"] == 10
    assert out(cli("runs", "list", "--status", "failed", "--json")) == []
    shown = out(cli("runs", "show", ids["run"], "--json"))
    assert shown["steps"][0]["tool"] == "Write" and shown["steps"][0]["index"] == 0
    assert cli("runs", "show", "missing").exit_code == 1
    assert cli("runs", "list", "--status", "bogus").exit_code == 2
    text = cli("runs", "show", ids["run"])
    assert text.exit_code == 0 and "Write(file_path=primes.py" in text.stdout


def test_traces_list_show_rm(cli, workspace: Path, kernel_factory) -> None:
    ids = seed(workspace, kernel_factory)
    listed = out(cli("traces", "list", "--json"))
    assert {t["id"] for t in listed} == {ids["trace"], ids["other"]}
    entry = next(t for t in listed if t["id"] == ids["trace"])
    assert entry["steps"] == 1 and entry["goal_signature"] and "slots" not in entry
    assert [t["id"] for t in out(cli("traces", "list", "--search", "fibonacci", "--json"))
            ] == [ids["other"]]
    shown = out(cli("traces", "show", ids["trace"], "--json"))
    assert shown["steps"][0]["input"]["file_path"] == "primes.py"
    markdown = cli("traces", "show", ids["trace"], "--markdown")
    assert parse_trace(markdown.stdout).id == ids["trace"]
    assert cli("traces", "show", "nope").exit_code == 1
    assert cli("traces", "rm", ids["trace"], "nope").exit_code == 1  # nothing removed
    assert len(out(cli("traces", "list", "--json"))) == 2
    assert out(cli("traces", "rm", ids["trace"], "--json")) == {"removed": [ids["trace"]]}
    assert [t["id"] for t in out(cli("traces", "list", "--json"))] == [ids["other"]]


def test_export_from_sqlite_import_into_markdown(cli, workspace: Path, kernel_factory,
                                                 tmp_path: Path) -> None:
    ids = seed(workspace, kernel_factory)
    exported = out(cli("traces", "export", "--out", str(tmp_path / "x"), "--json"))
    assert exported["count"] == 2
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == sorted(
        f"{i}.md" for i in (ids["trace"], ids["other"]))
    imported = out(cli("traces", "import", str(tmp_path / "x"), "--json", backend="markdown"))
    assert sorted(imported["imported"]) == sorted([ids["trace"], ids["other"]])
    for trace_id in (ids["trace"], ids["other"]):
        assert out(cli("traces", "show", trace_id, "--json", backend="markdown")) == out(
            cli("traces", "show", trace_id, "--json"))
    again = out(cli("traces", "import", str(tmp_path / "x"), "--json", backend="markdown"))
    assert again["imported"] == [] and len(again["existing"]) == 2
    replaced = out(cli("traces", "import", str(tmp_path / "x" / f"{ids['trace']}.md"),
                       "--replace", "--json", backend="markdown"))
    assert replaced["imported"] == [ids["trace"]]
    one = out(cli("traces", "export", ids["other"], "--out", str(tmp_path / "y"), "--json"))
    assert [e["id"] for e in one["exported"]] == [ids["other"]]
    assert cli("traces", "export", "missing", "--out", str(tmp_path / "z")).exit_code == 1


def test_import_reports_malformed_files_and_keeps_the_rest(cli, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.md").write_text(
        "---\ngoal_text: Say hi\n---\n\n### Step 1: Bash\n\nInput:\n\n```yaml\n"
        "command: echo hi\n```\n")
    (folder / "bad.md").write_text("---\ngoal_text: Say hi\nusage_count: [\n---\n")
    result = cli("traces", "import", str(folder), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["imported"] == ["good"]
    [skipped] = data["skipped"]
    assert skipped["file"].endswith("bad.md") and skipped["line"] == 4
    assert f"{folder / 'bad.md'}:4:" in result.stderr
    assert cli("traces", "import", str(tmp_path / "missing.md")).exit_code == 2


def test_a_listing_skips_and_reports_broken_files(cli, workspace: Path, kernel_factory
                                                  ) -> None:
    seed(workspace, kernel_factory, backend="markdown")
    broken = workspace / "memory" / "traces" / "broken.md"
    broken.write_text("---\nusage_count: nope\n")
    result = cli("traces", "list", "--json", backend="markdown")
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 2
    assert f"warning: skipped {broken}:1: the front matter is never closed" in result.stderr
    check = cli("memory", "check", "--json", backend="markdown")
    assert check.exit_code == 1 and json.loads(check.stdout)[0]["file"] == str(broken)
    assert cli("memory", "check").exit_code == 0


def test_backends_and_bad_config(cli) -> None:
    rows = out(cli("memory", "backends", "--json"))
    assert {r["name"]: r["selected"] for r in rows} == {"sqlite": True, "markdown": False,
                                                             "postgres": False}
    bad = cli("traces", "list", backend="nosuch")
    assert bad.exit_code == 2 and "memory.backend = 'nosuch'" in bad.stderr
