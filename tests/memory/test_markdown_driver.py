"""The markdown driver: files humans can edit, problems reported and skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmos.memory.markdown import MarkdownMemory
from llmos.memory.markdown_format import render_trace
from llmos.memory.models import Step
from llmos.testing.memory_conformance import make_trace


@pytest.fixture
def store(tmp_path: Path) -> MarkdownMemory:
    return MarkdownMemory(tmp_path / "memory")


def test_layout_is_one_readable_file_per_record(store: MarkdownMemory) -> None:
    trace = store.save_trace(make_trace())
    fact = store.add_fact("remember me", tags=["x"])
    run_id = store.start_run("goal", "learner")
    assert (store.root / "traces" / f"{trace.id}.md").read_text().startswith("---\nid: ")
    assert (store.root / "facts" / f"{fact.id}.md").read_text().endswith("\nremember me\n")
    events = (store.root / "runs" / f"{run_id}.jsonl").read_text().splitlines()
    assert [json.loads(e)["event"] for e in events] == ["start"]


def test_a_malformed_trace_is_reported_and_skipped(store: MarkdownMemory) -> None:
    good = store.save_trace(make_trace("Create primes.py"))
    bad = store.root / "traces" / "broken.md"
    bad.write_text("---\ngoal_text: Create primes.py\nusage_count: lots\n---\n")
    (store.root / "traces" / "empty.md").write_text("")
    (store.root / "traces" / "binary.md").write_bytes(b"\xff\xfe\x00garbage")
    assert [t.id for t in store.list_traces()] == [good.id]
    assert [t.id for t in store.search_traces("primes")] == [good.id]
    assert [t.id for t in store.find_traces(signature=good.goal_signature)] == [good.id]
    assert store.count_traces() == 1
    problems = {Path(p.file).name: p for p in store.problems()}
    assert set(problems) == {"broken.md", "empty.md", "binary.md"}
    assert problems["broken.md"].line == 3 and "usage_count" in problems["broken.md"].problem
    assert "cannot read" in problems["binary.md"].problem
    bad.write_text(render_trace(make_trace("Create primes.py", id="broken")))  # fixed by hand
    assert {t.id for t in store.list_traces()} == {good.id, "broken"}
    assert {Path(p.file).name for p in store.problems()} == {"empty.md", "binary.md"}


def test_files_added_by_hand_or_by_another_process_are_seen(store: MarkdownMemory) -> None:
    other = MarkdownMemory(store.root)
    assert store.list_traces() == []
    added = other.save_trace(make_trace("Compute fibonacci numbers"))
    (store.root / "traces" / "copied-in.md").write_text(
        "---\ngoal_text: Say hello in French\n---\n\n### Step 1: Bash\n\nInput:\n\n"
        "```yaml\ncommand: echo bonjour\n```\n")
    assert {t.id for t in store.list_traces()} == {added.id, "copied-in"}
    assert [t.id for t in store.search_traces("bonjour")] == ["copied-in"]
    other.delete_trace(added.id)
    assert [t.id for t in store.list_traces()] == ["copied-in"]


def test_two_files_claiming_one_id(store: MarkdownMemory) -> None:
    trace = store.save_trace(make_trace())
    (store.root / "traces" / "zz-copy.md").write_text(render_trace(trace))
    assert [t.id for t in store.list_traces()] == [trace.id]
    [problem] = store.problems()
    assert problem.file.endswith("zz-copy.md") and "already used" in problem.problem


def test_temp_files_of_killed_writers_are_ignored_and_cleaned(tmp_path: Path) -> None:
    store = MarkdownMemory(tmp_path / "m")
    trace = store.save_trace(make_trace())
    dead_pid = 2**22 + 12345  # beyond pid_max on most systems: never alive
    leftover = store.root / "traces" / f".{trace.id}.md.{dead_pid}.0123abcd.tmp"
    leftover.write_text("---\nhalf a")
    assert [t.id for t in store.list_traces()] == [trace.id] and store.problems() == []
    MarkdownMemory(store.root)
    assert not leftover.exists()


def test_a_torn_run_log_line_is_ignored(store: MarkdownMemory) -> None:
    run_id = store.start_run("g", "learner")
    store.record_step(run_id, Step(tool="Bash", input={"command": "ls"}))
    path = store.root / "runs" / f"{run_id}.jsonl"
    with open(path, "ab") as f:
        f.write(b'{"event":"step","step":{"tool":"Half')  # killed mid-write
    assert len(store.run_steps(run_id)) == 1
    step = store.record_step(run_id, Step(tool="Read"))  # appending ends the torn line
    assert step.index == 1
    assert [s.tool for s in store.run_steps(run_id)] == ["Bash", "Read"]
    [problem] = store.problems()
    assert problem.line == 3 and "unreadable run event" in problem.problem
    assert store.get_run(run_id).step_count == 2


def test_unreadable_run_logs_are_skipped_in_listings(store: MarkdownMemory) -> None:
    run_id = store.start_run("g", "learner")
    (store.root / "runs" / "junk.jsonl").write_text("not json\n")
    assert [r.id for r in store.list_runs()] == [run_id]
    assert [Path(p.file).name for p in store.problems()] == ["junk.jsonl"]


def test_writes_are_atomic_replacements(store: MarkdownMemory) -> None:
    trace = store.save_trace(make_trace())
    path = store.root / "traces" / f"{trace.id}.md"
    before = os.stat(path).st_ino
    store.update_trace_stats(trace.id, "success")
    assert os.stat(path).st_ino != before  # a new file renamed over the old one
    assert [p.name for p in (store.root / "traces").iterdir()] == [path.name]  # no temp file


def test_a_new_handle_starts_from_the_index_cache(store: MarkdownMemory, monkeypatch) -> None:
    import llmos.memory.markdown as driver

    traces = [store.save_trace(make_trace(f"Create file_{i}.txt")) for i in range(5)]
    assert store.count_traces() == 5  # a handle that has seen the whole directory ...
    store.close()  # ... saves the index cache
    assert (store.root / ".cache" / "traces.db").is_file()
    assert ".cache/" in (store.root / ".gitignore").read_text()
    edited = store.root / "traces" / f"{traces[0].id}.md"
    text = edited.read_text().replace("Create file_0.txt", "Delete file_0.txt")
    with open(edited, "r+", encoding="utf-8") as f:  # in place: same inode
        f.write(text)
        f.truncate()
    parsed: list[str] = []
    real = driver.parse_trace
    monkeypatch.setattr(driver, "parse_trace",
                        lambda text, source, **kw: parsed.append(source) or real(text, source,
                                                                                **kw))
    again = MarkdownMemory(store.root)
    assert again.count_traces() == 5
    assert parsed == [str(edited)]  # only the file that changed since was read
    [found] = again.find_traces(signature=make_trace("Delete file_9.txt").goal_signature)
    assert found.id == traces[0].id


def test_a_damaged_index_cache_is_ignored(store: MarkdownMemory) -> None:
    trace = store.save_trace(make_trace())
    store.list_traces()
    store.close()
    (store.root / ".cache" / "traces.json").write_text('{"version": 1, "docs": {"x": [1]}')
    again = MarkdownMemory(store.root)
    assert [t.id for t in again.list_traces()] == [trace.id]
    (store.root / ".cache" / "traces.json").write_text(
        json.dumps({"version": 1, "docs": {f"{trace.id}.md": [1]}}))
    assert [t.id for t in MarkdownMemory(store.root).list_traces()] == [trace.id]
