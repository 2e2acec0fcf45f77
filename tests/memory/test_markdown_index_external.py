"""Trace files changed behind the markdown store's back, by another process (a script, a
text editor): the next open's persistent index reflects every change, having read only
the files that changed, and is updated, not rebuilt; a rebuild (every file read again)
happens only when the index is missing or of another version."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmos.memory.markdown import MarkdownMemory
from llmos.memory.markdown_format import render_trace
from llmos.memory.mdindex import VERSION
from llmos.testing.memory_conformance import make_trace

from .test_markdown_index import settle

GOALS = ["Create fruit.txt listing apples", "Write squares.csv with squares",
         "Delete the old logs folder", "Summarize notes.md into summary.md",
         "Plot the temperatures of sensors.csv as chart.png"]
MARKER = "test: not rebuilt"


def mark_index(root: Path) -> None:
    """A row only this index holds: gone if the index is ever deleted and rebuilt."""
    conn = sqlite3.connect(root / ".cache" / "traces.db")
    with conn:
        conn.execute("INSERT INTO meta VALUES (?, '1')", (MARKER,))
    conn.close()


def still_marked(root: Path) -> bool:
    conn = sqlite3.connect(root / ".cache" / "traces.db")
    try:
        return conn.execute("SELECT 1 FROM meta WHERE name = ?", (MARKER,)).fetchone() is not None
    finally:
        conn.close()


def another_process(script: str, *args: str) -> None:
    subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], check=True,
                   timeout=60)


@pytest.fixture
def store_root(tmp_path: Path) -> tuple[Path, list[str]]:
    store = MarkdownMemory(tmp_path)
    ids = [store.save_trace(make_trace(goal)).id for goal in GOALS]
    store.close()
    settle(tmp_path)
    MarkdownMemory(tmp_path).count_traces()  # the scan that records the directory as seen
    mark_index(tmp_path)
    return tmp_path, ids


def test_files_added_removed_and_replaced_by_another_process(store_root, parsed) -> None:
    root, ids = store_root
    new = make_trace("Create cubes.json with cubes")
    traces = root / "traces"
    another_process("""
        import os, sys
        from pathlib import Path
        traces, new_name, new_text, gone, edited = Path(sys.argv[1]), *sys.argv[2:]
        (traces / new_name).write_text(new_text)              # a file added
        (traces / gone).unlink()                              # a file removed
        path = traces / edited                                # an editor's save: a new
        text = path.read_text().replace("Write squares.csv with squares",
                                        "Write zebras.csv with zebras")
        tmp = traces / ".edit.swp"                            # file renamed over the old
        tmp.write_text(text)
        os.replace(tmp, path)
    """, str(traces), f"{new.id}.md", render_trace(new), f"{ids[2]}.md", f"{ids[1]}.md")

    store = MarkdownMemory(root)  # the next open
    assert store.count_traces() == len(GOALS)  # one added, one removed
    assert [t.id for t in store.search_traces("cubes")] == [new.id]
    assert store.search_traces("logs folder") == []
    assert store.find_traces(signature=make_trace(GOALS[2]).goal_signature) == []
    assert [t.id for t in store.search_traces("zebras")] == [ids[1]]
    assert store.search_traces("squares") == []
    assert [t.id for t in store.find_traces(
        signature=make_trace("Write zebras.csv with zebras").goal_signature)] == [ids[1]]
    assert store.get_trace(ids[1]).goal_text == "Write zebras.csv with zebras"
    assert sorted(t.id for t in store.list_traces()) == sorted([*ids[:2], *ids[3:], new.id])
    # only the two files with new contents were read: the index was updated ...
    assert sorted(parsed) == sorted([f"{new.id}.md", f"{ids[1]}.md"])
    assert still_marked(root)  # ... not rebuilt
    store.close()

    settle(root)
    parsed.clear()
    again = MarkdownMemory(root)  # and the open after it reads nothing at all
    assert again.count_traces() == len(GOALS)
    assert [t.id for t in again.search_traces("zebras")] == [ids[1]]
    assert parsed == [] and still_marked(root)
    again.close()


def test_a_file_edited_in_place_by_another_process(store_root, parsed) -> None:
    root, ids = store_root
    path = root / "traces" / f"{ids[0]}.md"
    inode = os.stat(path).st_ino
    another_process("""
        import sys
        path = sys.argv[1]
        with open(path, "r+", encoding="utf-8") as f:   # the same inode: an in-place save
            text = f.read().replace("Create fruit.txt listing apples",
                                    "Create fruit.txt listing mangoes")
            f.seek(0)
            f.write(text)
            f.truncate()
    """, str(path))
    assert os.stat(path).st_ino == inode
    settle(root)  # not even the directory's mtime says anything changed

    store = MarkdownMemory(root)
    assert [t.id for t in store.search_traces("mangoes")] == [ids[0]]
    assert store.search_traces("apples") == []
    assert [t.id for t in store.find_traces(
        signature=make_trace("Create fruit.txt listing mangoes").goal_signature)] == [ids[0]]
    assert store.count_traces() == len(GOALS)
    assert parsed == [path.name]  # noticed by the stat check, read alone
    assert still_marked(root)
    store.close()


@pytest.mark.parametrize("how", ["missing", "other version"])
def test_a_rebuild_only_when_the_index_is_missing_or_of_another_version(
        store_root, parsed, how: str) -> None:
    root, ids = store_root
    unchanged = MarkdownMemory(root)
    assert unchanged.count_traces() == len(GOALS)
    assert parsed == [] and still_marked(root)  # an unchanged store: nothing rebuilt
    unchanged.close()

    index = root / ".cache" / "traces.db"
    if how == "missing":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{index}{suffix}").unlink(missing_ok=True)
    else:
        conn = sqlite3.connect(index)
        with conn:
            conn.execute("UPDATE meta SET value = ? WHERE name = 'version'", (str(VERSION - 1),))
        conn.close()
    store = MarkdownMemory(root)
    assert store.count_traces() == len(GOALS)
    assert sorted(parsed) == sorted(f"{i}.md" for i in ids)  # every file read again
    assert not still_marked(root)  # a new index
    assert [t.id for t in store.search_traces("apples")] == [ids[0]]
    store.close()
