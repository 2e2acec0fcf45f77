"""The markdown driver's persistent side index (``llmos.memory.mdindex``): updated, not
rebuilt, when files are added, edited, deleted or renamed behind its back; rebuilt from
the files when it is missing or damaged; protected like the rest of the memory folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from llmos.memory.markdown import MarkdownMemory
from llmos.memory.markdown_format import render_trace
from llmos.memory.mdindex import RACY_NS
from llmos.testing.memory_conformance import make_trace


def settle(root: Path) -> None:
    """Age the traces directory's mtime past the racy window, so that a handle trusts its
    last scan (as it would a few seconds after the last write)."""
    traces = root / "traces"
    past = os.stat(traces).st_mtime_ns - 2 * RACY_NS
    os.utime(traces, ns=(past, past))


def filled(root: Path, goals: list[str]) -> tuple[MarkdownMemory, list[str]]:
    store = MarkdownMemory(root)
    ids = [store.save_trace(make_trace(goal)).id for goal in goals]
    store.close()
    settle(root)
    return MarkdownMemory(root), ids


GOALS = ["Create fruit.txt listing apples", "Write squares.csv with squares",
         "Delete the old logs folder", "Summarize notes.md into summary.md"]


def signature(goal: str) -> str:
    return make_trace(goal).goal_signature


def test_an_unchanged_store_is_opened_without_reading_its_files(tmp_path: Path,
                                                                 parsed: list[str]) -> None:
    store, ids = filled(tmp_path, GOALS)
    assert store.count_traces() == 4
    assert {t.id for t in store.search_traces("apples squares logs notes")} == set(ids)
    assert [t.id for t in store.find_traces(signature=signature(GOALS[0]))] == [ids[0]]
    assert len(store.list_traces()) == 4  # the records come from the index's copy ...
    assert parsed == []  # ... so no Markdown file was parsed, and nothing was rebuilt
    assert (tmp_path / ".cache" / "traces.db").is_file()


def test_an_added_file_is_noticed(tmp_path: Path, parsed: list[str]) -> None:
    store, _ids = filled(tmp_path, GOALS)
    assert store.count_traces() == 4
    new = make_trace("Create cubes.json with cubes")
    (tmp_path / "traces" / f"{new.id}.md").write_text(render_trace(new))
    # the same handle notices it (the directory changed) ...
    assert store.count_traces() == 5
    assert [t.id for t in store.search_traces("cubes")] == [new.id]
    assert [t.id for t in store.find_traces(signature=new.goal_signature)] == [new.id]
    assert parsed == [f"{new.id}.md"]  # ... reading only the new file
    store.close()
    settle(tmp_path)
    parsed.clear()
    again = MarkdownMemory(tmp_path)  # and so does the next process, reading nothing
    assert again.count_traces() == 5 and again.get_trace(new.id).id == new.id
    assert parsed == []


def test_a_file_replaced_by_an_edit_is_noticed(tmp_path: Path, parsed: list[str]) -> None:
    store, ids = filled(tmp_path, GOALS)
    assert store.count_traces() == 4
    path = tmp_path / "traces" / f"{ids[1]}.md"
    text = path.read_text().replace("Write squares.csv with squares",
                                    "Write cubes.csv with cubes")
    tmp = path.with_name(".edit.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # how editors, git and sed -i write: a new inode
    assert [t.id for t in store.search_traces("cubes")] == [ids[1]]
    assert store.search_traces("squares") == []
    assert [t.id for t in store.find_traces(signature=signature("Write cubes.csv with "
                                                                "cubes"))] == [ids[1]]
    assert store.find_traces(signature=signature(GOALS[1])) == []
    assert parsed == [path.name]


def test_a_file_edited_in_place_is_noticed(tmp_path: Path, parsed: list[str]) -> None:
    store, ids = filled(tmp_path, GOALS)
    assert store.count_traces() == 4
    path = tmp_path / "traces" / f"{ids[0]}.md"
    inode = os.stat(path).st_ino
    text = path.read_text().replace(GOALS[0], "Create evens.txt listing evens")
    with open(path, "r+", encoding="utf-8") as f:  # same inode, same directory mtime
        f.write(text)
        f.truncate()
    assert os.stat(path).st_ino == inode
    # the next process notices (its stat check covers every file of a small store)
    fresh = MarkdownMemory(tmp_path)
    assert [t.id for t in fresh.search_traces("evens")] == [ids[0]]
    assert fresh.search_traces("apples") == []
    # this handle notices once it reads the file, and a full check notices at once
    assert store.get_trace(ids[0]).goal_text == "Create evens.txt listing evens"
    assert [t.id for t in store.find_traces(signature=signature("Create evens.txt listing "
                                                                "evens"))] == [ids[0]]
    with open(path, "r+", encoding="utf-8") as f:
        f.write(text.replace("evens", "odds"))
        f.truncate()
    assert store.problems() == []  # the full check (llmos memory check) ...
    assert [t.id for t in store.search_traces("odds")] == [ids[0]]  # ... re-indexed it


def test_a_large_store_checks_a_slice_of_files_per_process(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from llmos.memory.mdindex import DocIndex

    monkeypatch.setattr(DocIndex, "STAT_SLICE", 2)
    store, _ids = filled(tmp_path, GOALS)
    store.close()
    names = sorted(p.name for p in tmp_path.joinpath("traces").iterdir())
    last = tmp_path / "traces" / names[-1]
    text = last.read_text()
    goal = next(g for g in GOALS if g in text)
    with open(last, "r+", encoding="utf-8") as f:  # in place: the directory is unchanged
        f.write(text.replace(goal, "Create zebras.txt listing zebras"))
        f.truncate()

    def process(start: str) -> list[str]:
        monkeypatch.setattr(DocIndex, "_slice_start", staticmethod(lambda: start))
        handle = MarkdownMemory(tmp_path)
        try:
            return [t.id for t in handle.search_traces("zebras")]
        finally:
            handle.close()

    assert process("") == []  # this process checked the first two files only
    assert process(names[1]) == [last.stem]  # the next two, the edited one among them
    assert process("") == [last.stem]  # and the index keeps it


def test_a_deleted_file_is_noticed(tmp_path: Path) -> None:
    store, ids = filled(tmp_path, GOALS)
    assert store.count_traces() == 4
    (tmp_path / "traces" / f"{ids[2]}.md").unlink()
    assert store.count_traces() == 3
    assert store.search_traces("logs") == []
    assert ids[2] not in {t.id for t in store.list_traces()}
    assert store.find_traces(signature=signature(GOALS[2])) == []
    store.close()
    assert MarkdownMemory(tmp_path).count_traces() == 3


def test_a_renamed_file_is_noticed(tmp_path: Path) -> None:
    store, ids = filled(tmp_path, GOALS)
    assert store.count_traces() == 4
    os.rename(tmp_path / "traces" / f"{ids[3]}.md", tmp_path / "traces" / "renamed.md")
    assert store.count_traces() == 4
    assert store.get_trace(ids[3]).id == ids[3]  # found by its id, in the new file
    assert [t.id for t in store.search_traces("summary")] == [ids[3]]
    assert store.traces.known_file(ids[3]) == "renamed.md"
    store.delete_trace(ids[3])
    assert not (tmp_path / "traces" / "renamed.md").exists()


def test_a_duplicate_id_is_skipped_until_the_first_file_goes(tmp_path: Path) -> None:
    store, ids = filled(tmp_path, GOALS)
    shutil.copy(tmp_path / "traces" / f"{ids[0]}.md", tmp_path / "traces" / "zz-copy.md")
    assert store.count_traces() == 4
    [problem] = store.problems()
    assert problem.file.endswith("zz-copy.md") and "already used" in problem.problem
    (tmp_path / "traces" / f"{ids[0]}.md").unlink()
    assert store.count_traces() == 4 and store.problems() == []
    assert store.traces.known_file(ids[0]) == "zz-copy.md"


@pytest.mark.parametrize("damage", ["garbage", "empty", "other version", "missing",
                                    "foreign tables"])
def test_a_missing_or_damaged_index_is_rebuilt_from_the_files(tmp_path: Path, damage: str
                                                              ) -> None:
    import sqlite3

    store, ids = filled(tmp_path, GOALS)
    expected = [t.id for t in store.search_traces("primes squares")]
    store.close()
    index = tmp_path / ".cache" / "traces.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    if damage == "garbage":
        index.write_bytes(b"SQLite format 3\x00" + os.urandom(3000))
    elif damage == "empty":
        index.write_bytes(b"")
    elif damage == "missing":
        index.unlink()
    else:
        conn = sqlite3.connect(index)
        if damage == "other version":
            conn.execute("UPDATE meta SET value = '1' WHERE name = 'version'")
        else:
            conn.execute("DROP TABLE meta")
        conn.commit()
        conn.close()
    again = MarkdownMemory(tmp_path)
    assert again.count_traces() == 4
    assert [t.id for t in again.search_traces("primes squares")] == expected
    assert sorted(t.id for t in again.list_traces()) == sorted(ids)


def test_a_damaged_copy_of_a_record_falls_back_to_the_file(tmp_path: Path) -> None:
    import sqlite3

    store, ids = filled(tmp_path, GOALS)
    store.close()
    conn = sqlite3.connect(tmp_path / ".cache" / "traces.db")
    conn.execute("UPDATE docs SET data = '{not json' WHERE id = ?", (ids[0],))
    conn.commit()
    conn.close()
    assert MarkdownMemory(tmp_path).get_trace(ids[0]).goal_text == GOALS[0]


def test_the_index_is_protected_state(tmp_path: Path) -> None:
    from llmos.kernel import Kernel
    from llmos.security.protected import protected_paths

    kernel = Kernel(tmp_path, load_entry_points=False, interactive=False,
                    flags=["security.backend=trusted", "memory.backend=markdown"])
    protected = protected_paths(kernel)
    for path in ("memory/.cache/traces.db", "memory/.cache/facts.db-wal"):
        entry = protected.find(path)
        assert entry is not None and entry.key == ("memory",), path
    assert protected.holding("memory") is None and protected.find("notes/a.md") is None


def test_an_index_that_cannot_be_written_is_kept_in_memory(tmp_path: Path) -> None:
    store, ids = filled(tmp_path, GOALS)
    store.close()
    cache = tmp_path / ".cache"
    for path in cache.iterdir():
        path.unlink()
    cache.rmdir()
    cache.write_text("not a directory")  # no index file can be made there
    again = MarkdownMemory(tmp_path)
    assert again.count_traces() == 4
    assert [t.id for t in again.search_traces("squares")] == [ids[1]]
    assert sorted(t.id for t in again.list_traces()) == sorted(ids)
