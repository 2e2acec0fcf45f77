"""A repeated workload through the real Claude Code CLI and a scripted model (issue 5,
benchmark (b); issue 10): hit rate, modes, model requests, cost against LEARNER-only,
**false replays by class** (target 0), divergences and the replay executor's overhead.

Run from the repository root:

    .venv/bin/python bench/learning/workload.py                 # 200 goals, seed 5
    .venv/bin/python bench/learning/workload.py --goals 60 --seed 1
    .venv/bin/python bench/learning/workload.py --only "derived value,quoting" --goals 40

Takes about 8-15 minutes for 200 goals on 2 shared cores (almost all of it in the learner
runs of the CLI). Prints a table per task and per class and writes
bench/results/workload.json (``summary.by_class``, ``summary.false_replays_by_class``,
``summary.false_replay_goals`` with the trace each bad replay ran and its steps).

The workload has two halves. The *classic* half: 20 task templates (Write / Edit / Read /
Bash with python3, cat, wc, sort, head, tail, cut, tr, cp, mv, ls, mkdir), ranked in the
order ``tasks()`` lists them and drawn Zipf-like (P(rank r) ~ 1/r, fixed seed). The
*classes* half (``--class-share``, default 0.5): 18 templates from ``class_tasks()``, drawn
uniformly, one or more per class of false replay found in issue 10, with their own cases:

- file kind: "Convert {f} to {g}" csv→json (a near miss to .xml, another script),
  primes.js next to T01's primes.py, "Pack the {d} folder into {f}" .tar.gz (near miss:
  .zip);
- swapped roles: "Append {f} to {g}" with the two files swapped (same kinds: a slot
  variant that must swap the files), "Convert staff.json to staff.csv" (other kinds:
  another task);
- literal twin: ``print(number ** 2)`` learned for "the square of 2", FizzBuzz's ``% 15``
  / ``% 3`` / ``% 5`` learned for "1 to 15" (and 3, 5);
- shared value: "{n} workers and {m} retries" learned for 2 and 2, written as JSON;
- derived value: "the larger of {n} and {m}" / "the sum of {n} and {m}" written as a
  literal (and "the smaller of" as a near miss);
- path prefix: "Move {f} from mail/inbox/ to archive/" → ``mv mail/inbox/a.txt archive/``
  (every mail folder holds its own copy, so a move from the wrong one shows);
- quoting: a title with double quotes, ``&`` or a backslash written into JSON; a message
  with apostrophes or ``$`` in ``echo '...' > file``; a Python ``print('...')`` of a
  string with an apostrophe or a backslash;
- shell state: ``mkdir -p {d}``, ``cd {d}``, then relative ``mkdir -p src tests`` and
  ``touch`` in later Bash calls;
- question: "How many lines does {f} have?", "What is the largest number in {f}?": the
  run's output must hold the right number (in a changed world, the file grew);
- failed check: "Create {f} containing '{s}' unless it already exists": a Read of the
  missing file, then Write; in a changed world the file exists with the user's own
  content, which must survive;
- no-op handoff: "Unless it already has one, add a default config.ini to the {d} folder":
  ``ls {d}`` then Write; in a changed world the file is already there, the handoff does
  nothing, and later runs in the normal world must still create the file.

Each draw is the template's usual goal (an exact repeat, 40%), a slot variant (other
numbers, file names, quoted strings, paths, or the swapped roles: 35%) or, for templates
that have them, a near miss (25%): the opposite action (add / remove, enable / disable,
copy / move), another object (squares for primes, words for lines, last for first,
smaller for larger, XML for JSON...) or a negation ("... and do not run it", "... without
duplicates"). A near miss is a task of its own, with its own learner answer and expected
result. Some templates' worlds sometimes changed (30-40% of their goals): a heading
renamed, ``debug = False`` spelled another way, the port moved, a file grew, a file that
the goal would create exists already.

Before each goal the benchmark lays out the world the goal needs (input files; outputs
removed, so a stale file can never pass a check) and appends that task's learner turns to
the scripted model (what Claude Code would do, including its final answer); turns the run
did not use (a replay) are dropped afterwards. After each goal it checks the files the
goal should have produced (and, for questions, the answer), whatever mode ran it.

- false replay: a verified FOLLOWER run whose files (or answer) are wrong for its goal,
  checked on disk, or that replayed the trace of another task (a near miss served by the
  trace it is near to). Reported per class, each with the trace it replayed (its goal,
  the evidence: exact / single example / the solved instances aligned) and its steps;
- damaging divergence: a FOLLOWER run that changed files, diverged, and whose files were
  still wrong after the handoff to LEARNER;
- hit rate: correct verified replays (FOLLOWER, not diverged, not false) / goals;
- cost: what the CLI reported, with token counts measured from each request the CLI sent
  (``Usage.from_request()``: 4 bytes of JSON per token, the prompt cache modelled from the
  request's ``cache_control`` breakpoints), not fixed per turn; the LEARNER-only baseline
  charges every goal the mean cost of the learner runs of its task, measured in this run;
- replay overhead per step: ``ReplayReport.overhead_s`` (time in the replay executor
  outside the tools: gate, hooks, step recording, verification) / replayed steps, read by
  wrapping ``llmos.learning.replay.replay`` in this process (nothing is edited).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, code_fingerprint, isolate_environment, machine

Values = dict[str, str]
Call = tuple[str, dict[str, Any]]

# --------------------------------------------------------------------------- the world


def seeded(name: str, salt: str = "") -> random.Random:
    """The same pseudo-random content for the same file name, run after run."""
    return random.Random(zlib.crc32(f"{salt}:{name}".encode()))


def put(ws: Path, rel: str, text: str) -> None:
    path = ws / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def drop(ws: Path, *rels: str) -> None:
    for rel in rels:
        path = ws / rel
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def read(ws: Path, rel: str) -> str | None:
    path = ws / rel
    return path.read_text() if path.is_file() else None


def same(ws: Path, rel: str, expected: str) -> list[str]:
    got = read(ws, rel)
    if got == expected:
        return []
    return [f"{rel}: expected {expected[:60]!r}, found {None if got is None else got[:60]!r}"]


def same_lines(ws: Path, rel: str, expected: list[str], ordered: bool = True) -> list[str]:
    got = read(ws, rel)
    lines = None if got is None else got.splitlines()
    ok = lines is not None and (lines == expected if ordered else sorted(lines) == sorted(expected))
    return [] if ok else [f"{rel}: expected lines {expected[:6]}, found {lines and lines[:6]}"]


WORDS = "apple pear plum fig kiwi lime mango peach grape melon cherry lemon".split()


def text_lines(name: str) -> list[str]:
    rng = seeded(name, "lines")
    return [" ".join(rng.sample(WORDS, 3)) for _ in range(rng.randint(3, 17))]


def numbers_of(name: str) -> list[int]:
    rng = seeded(name, "numbers")
    return [rng.randint(1, 500) for _ in range(rng.randint(4, 12))]


def csv_rows(name: str) -> list[list[str]]:
    rng = seeded(name, "csv")
    cities = ["Oslo", "Lima", "Pune", "Kyiv", "Doha", "Nice", "Bern"]
    return [[f"person{k}", rng.choice(cities), str(rng.randint(18, 90))]
            for k in range(rng.randint(3, 8))]


def listing_of(directory: str) -> list[str]:
    rng = seeded(directory, "listing")
    names = rng.sample(["a.txt", "b.md", "c.csv", "d.json", "e.py", "f.log"], rng.randint(2, 5))
    return [*names, ".hidden", ".state"]


def primes_program(n: str) -> str:
    return (f"N = {n}\nfound = []\ncandidate = 2\nwhile len(found) < N:\n"
            "    if all(candidate % p for p in found):\n        found.append(candidate)\n"
            "    candidate += 1\nprint(' '.join(map(str, found)))\n")


def squares_program(n: str) -> str:
    return f"N = {n}\nfor i in range(1, N + 1):\n    print(i * i)\n"


def fib_program(n: str) -> str:
    return f"N = {n}\na, b = 0, 1\nfor _ in range(N):\n    a, b = b, a + b\nprint(a)\n"


DRIFT = "_drift"  # in a goal's values: its world changed (the template knows how)
DRIFT_RATE = 0.3
SUM_SCRIPT = "import sys\nprint(sum(int(x) for x in open(sys.argv[1])))\n"
CONFIG_JSON = '{\n  "port": 8000,\n  "timeout": 30\n}\n'

# --------------------------------------------------------------------------- tasks


@dataclass
class Task:
    """One task: a goal with slots, its world, the learner's tool calls and the check."""

    key: str
    goal: str
    canonical: Values
    pools: dict[str, list[str]]
    steps: Callable[[Path, Values], list[Call]]
    check: Callable[[Path, Values], list[str]]
    setup: Callable[[Path, Values], None] = lambda ws, v: None
    variant: str = "base"  # or the kind of near miss
    near: list[Task] = field(default_factory=list)
    drifts: bool = False  # its world sometimes changed since a trace was recorded
    cls: str = ""  # the class of false replay it probes (see CLASSES)
    family: str = ""  # the task whose traces are right for it ('' = its own key)
    adapt: Callable[[Values], Values] | None = None  # a near miss's values from the base's
    swap: tuple[str, str] | None = None  # slot variants may swap these two roles
    reply: Callable[[Path, Values], str] | None = None  # the learner's final answer
    expect: Callable[[Path, Values], str] | None = None  # a value the run's answer must say
    drift_rate: float = 0.3

    def text(self, values: Values) -> str:
        return self.goal.format(**values)

    @property
    def kin(self) -> str:
        """Tasks with the same kin are one task: each one's traces are right for the other."""
        return self.family or self.key


def W(ws: Path, rel: str, content: str) -> Call:
    return "Write", {"file_path": str(ws / rel), "content": content}


def R(ws: Path, rel: str) -> Call:
    return "Read", {"file_path": str(ws / rel)}


def E(ws: Path, rel: str, old: str, new: str, replace_all: bool = False) -> Call:
    data: dict[str, Any] = {"file_path": str(ws / rel), "old_string": old, "new_string": new}
    if replace_all:
        data["replace_all"] = True
    return "Edit", data


def B(command: str) -> Call:
    return "Bash", {"command": command}


def n_range(lo: int, hi: int) -> list[str]:
    return [str(k) for k in range(lo, hi + 1)]


def tasks() -> list[Task]:
    def lines_world(ws: Path, v: Values) -> None:
        put(ws, v["f"], "\n".join(text_lines(v["f"])) + "\n")
        drop(ws, v["g"])

    def copy_world(ws: Path, v: Values) -> None:
        put(ws, v["f"], f"contents of {v['f']}\n")
        drop(ws, v["g"])

    def listing_world(ws: Path, v: Values) -> None:
        drop(ws, v["d"], v["f"])
        for name in listing_of(v["d"]):
            put(ws, v["d"] + name, name + "\n")

    def words_world(ws: Path, v: Values) -> None:
        rng = seeded(v["f"], "sort")
        put(ws, v["f"], "\n".join(rng.choice(WORDS) for _ in range(9)) + "\n")
        drop(ws, v["g"])

    def rows_world(ws: Path, v: Values) -> None:
        put(ws, v["f"], "".join(f"row {k}\n" for k in range(1, 21)))
        drop(ws, v["g"])

    def csv_world(ws: Path, v: Values) -> None:
        put(ws, v["f"], "".join(",".join(r) + "\n" for r in csv_rows(v["f"])))
        drop(ws, v["g"])

    def case_world(ws: Path, v: Values) -> None:
        put(ws, v["f"], f"The Quick {v['f']} Fox\nJumps Over\n")
        drop(ws, v["g"])

    rows = [f"row {k}" for k in range(1, 21)]
    primes = Task(
        "T01 primes", "Create {f} printing the first {n} primes and run it",
        {"f": "primes.py", "n": "10"},
        {"f": ["primes.py", "sieve.py", "first_primes.py", "p.py"], "n": n_range(5, 40)},
        lambda ws, v: [W(ws, v["f"], primes_program(v["n"])), B(f"python3 {v['f']}")],
        lambda ws, v: same(ws, v["f"], primes_program(v["n"])),
        lambda ws, v: drop(ws, v["f"]),
        near=[
            Task("T01~squares", "Create {f} printing the first {n} squares and run it", {}, {},
                 lambda ws, v: [W(ws, v["f"], squares_program(v["n"])),
                                B(f"python3 {v['f']}")],
                 lambda ws, v: same(ws, v["f"], squares_program(v["n"])),
                 lambda ws, v: drop(ws, v["f"]), "other object"),
            Task("T01~no-run", "Create {f} printing the first {n} primes and do not run it",
                 {}, {}, lambda ws, v: [W(ws, v["f"], primes_program(v["n"]))],
                 lambda ws, v: same(ws, v["f"], primes_program(v["n"])),
                 lambda ws, v: drop(ws, v["f"]), "negation"),
        ],
    )
    count_lines = Task(
        "T02 count lines", "Count the lines of {f} into {g}",
        {"f": "data.txt", "g": "count.txt"},
        {"f": ["data.txt", "items.txt", "records.txt", "inventory.txt"],
         "g": ["count.txt", "lines.txt", "n.txt"]},
        lambda ws, v: [B(f"wc -l {v['f']}"), W(ws, v["g"], f"{len(text_lines(v['f']))}\n")],
        lambda ws, v: same(ws, v["g"], f"{len(text_lines(v['f']))}\n"),
        lines_world,
        near=[Task("T02~words", "Count the words of {f} into {g}", {}, {},
                   lambda ws, v: [B(f"wc -w {v['f']}"),
                                  W(ws, v["g"], f"{3 * len(text_lines(v['f']))}\n")],
                   lambda ws, v: same(ws, v["g"], f"{3 * len(text_lines(v['f']))}\n"),
                   lines_world, "other object")],
    )
    word_count = Task(
        "T03 word count", "Save the word count of {f} to {g}",
        {"f": "essay.txt", "g": "words.txt"},
        {"f": ["essay.txt", "story.txt", "draft.md", "letter.txt"],
         "g": ["words.txt", "wc.txt", "word_total.txt"]},
        lambda ws, v: [B(f"wc -w < {v['f']} > {v['g']}")],
        lambda ws, v: same(ws, v["g"], f"{3 * len(text_lines(v['f']))}\n"),
        lines_world,
        near=[Task("T03~lines", "Save the line count of {f} to {g}", {}, {},
                   lambda ws, v: [B(f"wc -l < {v['f']} > {v['g']}")],
                   lambda ws, v: same(ws, v["g"], f"{len(text_lines(v['f']))}\n"),
                   lines_world, "other object")],
    )
    squares = Task(
        "T04 squares", "Write {f} that prints the squares of the numbers up to {n} and run it",
        {"f": "squares.py", "n": "12"},
        {"f": ["squares.py", "sq.py", "table.py"], "n": n_range(3, 30)},
        lambda ws, v: [W(ws, v["f"], squares_program(v["n"])), B(f"python3 {v['f']}")],
        lambda ws, v: same(ws, v["f"], squares_program(v["n"])),
        lambda ws, v: drop(ws, v["f"]),
    )
    literal = Task(
        "T05 numbers list", "Write the numbers 1 to {n} into {f}, one per line",
        {"f": "numbers.txt", "n": "5"},
        {"f": ["numbers.txt", "count_up.txt", "seq.txt"], "n": n_range(3, 12)},
        lambda ws, v: [W(ws, v["f"], "".join(f"{k}\n" for k in range(1, int(v["n"]) + 1)))],
        lambda ws, v: same(ws, v["f"], "".join(f"{k}\n" for k in range(1, int(v["n"]) + 1))),
        lambda ws, v: drop(ws, v["f"]),
    )
    def header(v: Values) -> str:  # someone renamed the heading: the recorded Edit misses
        return "# My notes\n" if v.get(DRIFT) else "# notes\n"

    add_line = Task(
        "T06 add line", "Add the line '{s}' to {f}",
        {"s": "buy milk", "f": "notes.txt"},
        {"s": ["buy milk", "call mom", "water the plants", "book flights"],
         "f": ["notes.txt", "todo.md", "list.txt"]},
        lambda ws, v: [R(ws, v["f"]), E(ws, v["f"], header(v), f"{header(v)}{v['s']}\n")],
        lambda ws, v: same(ws, v["f"], f"{header(v)}{v['s']}\n"),
        lambda ws, v: put(ws, v["f"], header(v)),
        drifts=True,
        near=[Task("T06~remove", "Remove the line '{s}' from {f}", {}, {},
                   lambda ws, v: [R(ws, v["f"]), E(ws, v["f"], f"{v['s']}\n", "")],
                   lambda ws, v: same(ws, v["f"], "# notes\n"),
                   lambda ws, v: put(ws, v["f"], f"# notes\n{v['s']}\n"), "opposite action")],
    )
    def off(v: Values) -> str:  # written another way: the recorded Edit misses
        return "debug = False" if v.get(DRIFT) else "debug = false"

    debug = Task(
        "T07 enable debug", "Enable debug in {f}",
        {"f": "settings.ini"}, {"f": ["settings.ini", "app.cfg", "server.ini", "dev.toml"]},
        lambda ws, v: [R(ws, v["f"]), E(ws, v["f"], off(v), "debug = true")],
        lambda ws, v: same(ws, v["f"], "debug = true\nport = 8000\n"),
        lambda ws, v: put(ws, v["f"], f"{off(v)}\nport = 8000\n"),
        drifts=True,
        near=[Task("T07~disable", "Disable debug in {f}", {}, {},
                   lambda ws, v: [R(ws, v["f"]), E(ws, v["f"], "debug = true", "debug = false")],
                   lambda ws, v: same(ws, v["f"], "debug = false\nport = 8000\n"),
                   lambda ws, v: put(ws, v["f"], "debug = true\nport = 8000\n"),
                   "opposite action")],
    )
    copy = Task(
        "T08 copy", "Copy {f} to {g}",
        {"f": "report.txt", "g": "backup.txt"},
        {"f": ["report.txt", "summary.md", "memo.txt"],
         "g": ["backup.txt", "copy.txt", "archive.txt"]},
        lambda ws, v: [B(f"cp {v['f']} {v['g']}")],
        lambda ws, v: same(ws, v["g"], f"contents of {v['f']}\n"),
        copy_world,
        near=[Task("T08~move", "Move {f} to {g}", {}, {},
                   lambda ws, v: [B(f"mv {v['f']} {v['g']}")],
                   lambda ws, v: same(ws, v["g"], f"contents of {v['f']}\n") + (
                       [f"{v['f']} still exists"] if (ws / v["f"]).exists() else []),
                   copy_world, "opposite action")],
    )
    folder = Task(
        "T09 folder", "Create a folder {d} containing an empty {f}",
        {"d": "build_2024", "f": "placeholder.txt"},
        {"d": ["build_2024", "release_7", "out_dir", "tmp_cache"],
         "f": ["placeholder.txt", "README.md", "index.html", "keep.txt"]},
        lambda ws, v: [B(f"mkdir -p {v['d']}"), W(ws, f"{v['d']}/{v['f']}", "")],
        lambda ws, v: same(ws, f"{v['d']}/{v['f']}", ""),
        lambda ws, v: drop(ws, v["d"]),
    )
    listing = Task(
        "T10 list files", "List the files in {d} into {f} including hidden files",
        {"d": "data/inbox/", "f": "listing.txt"},
        {"d": ["data/inbox/", "data/outbox/", "work/queue/"],
         "f": ["listing.txt", "files.txt", "dir_list.txt"]},
        lambda ws, v: [B(f"ls -A {v['d']} > {v['f']}")],
        lambda ws, v: same_lines(ws, v["f"], listing_of(v["d"]), ordered=False),
        listing_world,
        near=[Task("T10~no-hidden", "List the files in {d} into {f} not including hidden files",
                   {}, {}, lambda ws, v: [B(f"ls {v['d']} > {v['f']}")],
                   lambda ws, v: same_lines(ws, v["f"], [n for n in listing_of(v["d"])
                                                         if not n.startswith(".")], False),
                   listing_world, "negation")],
    )
    sort = Task(
        "T11 sort", "Sort the lines of {f} into {g}",
        {"f": "fruits.txt", "g": "sorted.txt"},
        {"f": ["fruits.txt", "names.txt", "colors.txt"], "g": ["sorted.txt", "sorted_out.txt"]},
        lambda ws, v: [B(f"sort {v['f']} > {v['g']}")],
        lambda ws, v: same_lines(ws, v["g"], sorted((ws / v["f"]).read_text().splitlines())),
        words_world,
        near=[Task("T11~unique", "Sort the lines of {f} into {g} without duplicates", {}, {},
                   lambda ws, v: [B(f"sort -u {v['f']} > {v['g']}")],
                   lambda ws, v: same_lines(
                       ws, v["g"], sorted(set((ws / v["f"]).read_text().splitlines()))),
                   words_world, "negation")],
    )
    head = Task(
        "T12 first lines", "Save the first {n} lines of {f} to {g}",
        {"n": "3", "f": "log.txt", "g": "head.txt"},
        {"n": n_range(2, 9), "f": ["log.txt", "events.log", "access.log"],
         "g": ["head.txt", "top.txt", "excerpt.txt"]},
        lambda ws, v: [B(f"head -n {v['n']} {v['f']} > {v['g']}")],
        lambda ws, v: same_lines(ws, v["g"], rows[: int(v["n"])]),
        rows_world,
        near=[Task("T12~last", "Save the last {n} lines of {f} to {g}", {}, {},
                   lambda ws, v: [B(f"tail -n {v['n']} {v['f']} > {v['g']}")],
                   lambda ws, v: same_lines(ws, v["g"], rows[-int(v["n"]):]),
                   rows_world, "other object")],
    )
    def port_of(v: Values) -> str:  # someone moved the port: the recorded Edit misses
        return "8001" if v.get(DRIFT) else "8000"

    port = Task(
        "T13 set port", "Set the port in {f} to {n}",
        {"f": "config.json", "n": "8080"},
        {"f": ["config.json", "server.json", "app.json"],
         "n": ["8080", "9000", "5000", "3000", "8443"]},
        lambda ws, v: [R(ws, v["f"]), E(ws, v["f"], f'"port": {port_of(v)}',
                                        f'"port": {v["n"]}')],
        lambda ws, v: same(ws, v["f"], CONFIG_JSON.replace("8000", v["n"])),
        lambda ws, v: put(ws, v["f"], CONFIG_JSON.replace("8000", port_of(v))),
        drifts=True,
        near=[Task("T13~timeout", "Set the timeout in {f} to {n}", {}, {},
                   lambda ws, v: [R(ws, v["f"]),
                                  E(ws, v["f"], '"timeout": 30', f'"timeout": {v["n"]}')],
                   lambda ws, v: same(ws, v["f"], CONFIG_JSON.replace("30", v["n"])),
                   lambda ws, v: put(ws, v["f"], CONFIG_JSON), "other object")],
    )
    fib = Task(
        "T14 fibonacci", "Create {f} that prints Fibonacci number {n} and run it",
        {"f": "fib.py", "n": "20"},
        {"f": ["fib.py", "fibonacci.py", "f.py"], "n": n_range(5, 40)},
        lambda ws, v: [W(ws, v["f"], fib_program(v["n"])), B(f"python3 {v['f']}")],
        lambda ws, v: same(ws, v["f"], fib_program(v["n"])),
        lambda ws, v: drop(ws, v["f"]),
    )

    def sum_world(ws: Path, v: Values) -> None:
        put(ws, v["f"], "".join(f"{x}\n" for x in numbers_of(v["f"])))
        drop(ws, v["g"], "sum_numbers.py")

    total = Task(
        "T15 add up", "Add up the numbers in {f} and write the total to {g}",
        {"f": "amounts.txt", "g": "total.txt"},
        {"f": ["amounts.txt", "payments.txt", "scores.txt"], "g": ["total.txt", "sum_out.txt"]},
        lambda ws, v: [W(ws, "sum_numbers.py", SUM_SCRIPT),
                       B(f"python3 sum_numbers.py {v['f']} > {v['g']}")],
        lambda ws, v: same(ws, v["g"], f"{sum(numbers_of(v['f']))}\n"),
        sum_world,
    )
    column = Task(
        "T16 column", "Extract the second column of {f} into {g}",
        {"f": "people.csv", "g": "cities.txt"},
        {"f": ["people.csv", "staff.csv", "members.csv"], "g": ["cities.txt", "column.txt"]},
        lambda ws, v: [B(f"cut -d, -f2 {v['f']} > {v['g']}")],
        lambda ws, v: same_lines(ws, v["g"], [r[1] for r in csv_rows(v["f"])]),
        csv_world,
        near=[Task("T16~third", "Extract the third column of {f} into {g}", {}, {},
                   lambda ws, v: [B(f"cut -d, -f3 {v['f']} > {v['g']}")],
                   lambda ws, v: same_lines(ws, v["g"], [r[2] for r in csv_rows(v["f"])]),
                   csv_world, "other object")],
    )
    upper = Task(
        "T17 upper case", "Convert {f} to upper case into {g}",
        {"f": "poem.txt", "g": "loud.txt"},
        {"f": ["poem.txt", "title.txt", "motto.txt"], "g": ["loud.txt", "upper.txt", "shout.txt"]},
        lambda ws, v: [B(f"tr a-z A-Z < {v['f']} > {v['g']}")],
        lambda ws, v: same(ws, v["g"], f"The Quick {v['f']} Fox\nJumps Over\n".upper()),
        case_world,
        near=[Task("T17~lower", "Convert {f} to lower case into {g}", {}, {},
                   lambda ws, v: [B(f"tr A-Z a-z < {v['f']} > {v['g']}")],
                   lambda ws, v: same(ws, v["g"],
                                      f"The Quick {v['f']} Fox\nJumps Over\n".lower()),
                   case_world, "other object")],
    )
    gauss = Task(
        "T18 sum 1..n", "Write the sum of the numbers from 1 to {n} into {f}",
        {"n": "10", "f": "sum.txt"},
        {"n": n_range(4, 100), "f": ["sum.txt", "answer.txt", "result.txt"]},
        lambda ws, v: [W(ws, v["f"], f"{int(v['n']) * (int(v['n']) + 1) // 2}\n")],
        lambda ws, v: same(ws, v["f"], f"{int(v['n']) * (int(v['n']) + 1) // 2}\n"),
        lambda ws, v: drop(ws, v["f"]),
    )

    def concat_world(ws: Path, v: Values) -> None:
        put(ws, v["f"], f"first part from {v['f']}\n")
        put(ws, v["g"], f"second part from {v['g']}\n")
        drop(ws, v["h"])

    concat = Task(
        "T19 concatenate", "Concatenate {f} and {g} into {h}",
        {"f": "part1.txt", "g": "part2.txt", "h": "all.txt"},
        {"f": ["part1.txt", "a.txt", "intro.md"], "g": ["part2.txt", "b.txt", "body.md"],
         "h": ["all.txt", "joined.txt", "full.md"]},
        lambda ws, v: [B(f"cat {v['f']} {v['g']} > {v['h']}")],
        lambda ws, v: same(ws, v["h"],
                           f"first part from {v['f']}\nsecond part from {v['g']}\n"),
        concat_world,
    )
    replace = Task(
        "T20 replace", "Replace '{a}' with '{b}' in {f}",
        {"a": "foo", "b": "bar", "f": "draft.txt"},
        {"a": ["foo", "colour", "teh", "http"], "b": ["bar", "color", "the", "https"],
         "f": ["draft.txt", "chapter.txt", "post.md"]},
        lambda ws, v: [R(ws, v["f"]), E(ws, v["f"], v["a"], v["b"], replace_all=True)],
        lambda ws, v: same(ws, v["f"], f"{v['b']} and {v['b']} again\n"),
        lambda ws, v: put(ws, v["f"], f"{v['a']} and {v['a']} again\n"),
    )
    classic = [primes, count_lines, word_count, squares, literal, add_line, debug, copy, folder,
               listing, sort, head, port, fib, total, column, upper, gauss, concat, replace]
    for task in classic:
        task.cls = task.cls or ("changed world" if task.drifts else "baseline")
        for near in task.near:
            near.cls = near.cls or "near miss"
    return classic


# --------------------------------------------------------------------------- classes

CLASSES = {
    "baseline": "the original 20 templates: exact repeats and name/number variants",
    "near miss": "another action, object or negation: a task of its own",
    "changed world": "the world changed since the trace (a recorded Edit misses)",
    "file kind": "another file extension is another format or language (csv→json vs xml, "
                 "py vs js)",
    "swapped roles": "source and target swapped (same kinds: a variant; other kinds: "
                     "another task)",
    "literal twin": "a number slot that also stands as an unrelated literal (** 2, % 15)",
    "shared value": "two slots with the same value (2 workers and 2 retries)",
    "derived value": "a value computed from slots written as a literal (larger of, sum of)",
    "path prefix": "a folder slot that starts a longer path (mail/inbox/a.txt)",
    "quoting": "quoted strings with quotes or apostrophes landing in JSON or shell echo",
    "shell state": "cd into a folder, then relative mkdir/touch in later Bash calls",
    "question": "the answer is the output: it must hold the right count/value",
    "failed check": "a Read of a missing file, then Write; when the file exists it survives",
    "no-op handoff": "the work is already done: the handoff does nothing and must not "
                     "poison later runs",
}

CSV2JSON = ("import csv, json, sys\n\nwith open(sys.argv[1], newline='') as src:\n"
            "    rows = list(csv.DictReader(src))\nwith open(sys.argv[2], 'w') as out:\n"
            "    json.dump(rows, out, indent=2)\n")
CSV2XML = ("import csv, sys\nfrom xml.sax.saxutils import quoteattr\n\n"
           "with open(sys.argv[1], newline='') as src:\n    rows = list(csv.DictReader(src))\n"
           "with open(sys.argv[2], 'w') as out:\n    out.write('<rows>\\n')\n"
           "    for row in rows:\n"
           "        attrs = ' '.join(f'{k}={quoteattr(v)}' for k, v in row.items())\n"
           "        out.write(f'  <row {attrs}/>\\n')\n    out.write('</rows>\\n')\n")
JSON2CSV = ("import csv, json, sys\n\nwith open(sys.argv[1]) as src:\n    rows = json.load(src)\n"
            "with open(sys.argv[2], 'w', newline='') as out:\n"
            "    writer = csv.DictWriter(out, fieldnames=list(rows[0]))\n"
            "    writer.writeheader()\n    writer.writerows(rows)\n")
INI_DEFAULTS = "[main]\nlog_level = info\nretries = 3\n"
PACK_TGZ = ("import sys, tarfile\n\nwith tarfile.open(sys.argv[2], 'w:gz') as archive:\n"
            "    archive.add(sys.argv[1])\n")
PACK_ZIP = ("import os, sys, zipfile\n\nwith zipfile.ZipFile(sys.argv[2], 'w') as archive:\n"
            "    for root, _, files in os.walk(sys.argv[1]):\n        for name in files:\n"
            "            archive.write(os.path.join(root, name))\n")


def records(name: str) -> list[dict[str, str]]:
    return [{"name": a, "city": b, "age": c} for a, b, c in csv_rows(name)]


def csv_text(name: str) -> str:
    return "name,city,age\n" + "".join(",".join(r) + "\n" for r in csv_rows(name))


def xml_of(name: str) -> str:
    from xml.sax.saxutils import quoteattr

    rows = "".join("  <row " + " ".join(f"{k}={quoteattr(v)}" for k, v in r.items()) + "/>\n"
                   for r in records(name))
    return f"<rows>\n{rows}</rows>\n"


def js_primes_program(n: str) -> str:
    return (f"const N = {n};\nconst found = [];\n"
            "for (let c = 2; found.length < N; c++) {\n"
            "  if (found.every((p) => c % p !== 0)) found.push(c);\n}\n"
            "console.log(found.join(' '));\n")


def fizzbuzz_program(n: str) -> str:
    return (f"for i in range(1, {n} + 1):\n    if i % 15 == 0:\n        print('FizzBuzz')\n"
            "    elif i % 3 == 0:\n        print('Fizz')\n    elif i % 5 == 0:\n"
            "        print('Buzz')\n    else:\n        print(i)\n")


def json_equals(ws: Path, rel: str, expected: Any) -> list[str]:
    got = read(ws, rel)
    try:
        value = None if got is None else json.loads(got)
    except ValueError as exc:
        return [f"{rel}: not valid JSON ({exc}): {got[:80]!r}"]
    return [] if value == expected else [f"{rel}: expected {expected!r}, found {got!r}"[:200]]


def csv_equals(ws: Path, rel: str, expected: list[dict[str, str]]) -> list[str]:
    import csv
    import io

    got = read(ws, rel)
    rows = None if got is None else list(csv.DictReader(io.StringIO(got)))
    return [] if rows == expected else [f"{rel}: expected rows {expected[:2]}..., found "
                                        f"{None if got is None else got[:80]!r}"]


def echo_quoted(text: str) -> str:
    """How Claude Code quotes a message for echo: single quotes unless it holds one."""
    return f'"{text}"' if "'" in text else f"'{text}'"


def count_regex(value: str) -> str:
    """The number as a word of its own (a sentence's full stop may follow it)."""
    return rf"(?<![\w.]){re.escape(value)}(?!\w|\.\d)"


def question_lines(ws: Path, v: Values) -> list[str]:
    lines = text_lines(v["f"])
    late = ["late entry one", "late entry two", "late entry three"]
    return [*lines, *late] if v.get(DRIFT) else lines


def question_numbers(v: Values) -> list[int]:
    numbers = numbers_of(v["f"])
    return [*numbers, 777 + len(numbers)] if v.get(DRIFT) else numbers


MAIL = ["mail/inbox/", "mail/drafts/", "mail/sent/"]
ARCHIVES = ["archive/", "old/", "done/"]


def class_tasks() -> list[Task]:
    """One or more templates per class of false replay (issue 10), with their own cases."""

    def convert_world(ws: Path, v: Values) -> None:
        put(ws, v["f"], csv_text(v["f"]))
        drop(ws, v["g"], "csv2json.py", "csv2xml.py")

    def json_world(ws: Path, v: Values) -> None:
        put(ws, v["f"], json.dumps(records(v["f"]), indent=2))
        drop(ws, v["g"], "json2csv.py")

    def to_ext(key: str, ext: str) -> Callable[[Values], Values]:
        return lambda v: {**v, key: v[key].rsplit(".", 1)[0] + "." + ext}

    def swapped(a: str, b: str) -> Callable[[Values], Values]:
        return lambda v: {**v, a: v[b], b: v[a]}

    convert = Task(
        "C01 convert", "Convert {f} to {g}",
        {"f": "staff.csv", "g": "staff.json"},
        {"f": ["staff.csv", "people.csv", "orders.csv"],
         "g": ["staff.json", "people.json", "export.json"]},
        lambda ws, v: [W(ws, "csv2json.py", CSV2JSON),
                       B(f"python3 csv2json.py {v['f']} {v['g']}")],
        lambda ws, v: json_equals(ws, v["g"], records(v["f"])),
        convert_world, cls="file kind",
        near=[Task("C01~xml", "Convert {f} to {g}", {}, {},
                   lambda ws, v: [W(ws, "csv2xml.py", CSV2XML),
                                  B(f"python3 csv2xml.py {v['f']} {v['g']}")],
                   lambda ws, v: same(ws, v["g"], xml_of(v["f"])),
                   convert_world, "other file kind", cls="file kind", adapt=to_ext("g", "xml")),
              Task("C01~swapped", "Convert {f} to {g}", {}, {},
                   lambda ws, v: [W(ws, "json2csv.py", JSON2CSV),
                                  B(f"python3 json2csv.py {v['f']} {v['g']}")],
                   lambda ws, v: csv_equals(ws, v["g"], records(v["f"])),
                   json_world, "swapped roles", cls="swapped roles", adapt=swapped("f", "g"))],
    )
    # T01's goal for JavaScript: traces of the two must never serve each other
    js = Task("C02 primes.js", "Create {f} printing the first {n} primes and run it",
              {"f": "primes.js", "n": "10"},
              {"f": ["primes.js", "sieve.js", "p.js"], "n": n_range(5, 40)},
              lambda ws, v: [W(ws, v["f"], js_primes_program(v["n"])), B(f"node {v['f']}")],
              lambda ws, v: same(ws, v["f"], js_primes_program(v["n"])),
              lambda ws, v: drop(ws, v["f"]), cls="file kind")

    def append_world(ws: Path, v: Values) -> None:
        for name in ("notes.txt", "journal.txt", "diary.txt", "inbox.txt"):
            put(ws, name, f"{name} first line\n")

    append = Task(
        "C03 append", "Append {f} to {g}",
        {"f": "notes.txt", "g": "journal.txt"},
        {"f": ["notes.txt", "journal.txt", "diary.txt", "inbox.txt"],
         "g": ["notes.txt", "journal.txt", "diary.txt", "inbox.txt"]},
        lambda ws, v: [B(f"cat {v['f']} >> {v['g']}")],
        lambda ws, v: same(ws, v["g"], f"{v['g']} first line\n{v['f']} first line\n")
        + same(ws, v["f"], f"{v['f']} first line\n"),
        append_world, cls="swapped roles", swap=("f", "g"),
    )
    square = Task(
        "C04 square", "Create {f} printing the square of {n}",
        {"f": "square.py", "n": "2"},
        {"f": ["square.py", "sq.py"], "n": n_range(2, 12)},
        lambda ws, v: [W(ws, v["f"], f"number = {v['n']}\nprint(number ** 2)\n"),
                       B(f"python3 {v['f']}")],
        lambda ws, v: same(ws, v["f"], f"number = {v['n']}\nprint(number ** 2)\n"),
        lambda ws, v: drop(ws, v["f"]), cls="literal twin",
    )
    fizz = Task(
        "C05 fizzbuzz", "Write {f} that prints FizzBuzz from 1 to {n} and run it",
        {"f": "fizzbuzz.py", "n": "15"},
        {"f": ["fizzbuzz.py", "fb.py"], "n": ["15", "3", "5", "20", "30", "10", "45"]},
        lambda ws, v: [W(ws, v["f"], fizzbuzz_program(v["n"])), B(f"python3 {v['f']}")],
        lambda ws, v: same(ws, v["f"], fizzbuzz_program(v["n"])),
        lambda ws, v: drop(ws, v["f"]), cls="literal twin",
    )

    def pool_json(v: Values) -> str:
        return json.dumps({"workers": int(v["n"]), "retries": int(v["m"])}, indent=2) + "\n"

    pool = Task(
        "C06 workers", "Write {f} with {n} workers and {m} retries",
        {"f": "pool.json", "n": "2", "m": "2"},
        {"f": ["pool.json", "workers.json"], "n": n_range(1, 6), "m": n_range(1, 4)},
        lambda ws, v: [W(ws, v["f"], pool_json(v))],
        lambda ws, v: json_equals(ws, v["f"], {"workers": int(v["n"]), "retries": int(v["m"])}),
        lambda ws, v: drop(ws, v["f"]), cls="shared value",
    )

    def pair(fn: Callable[[int, int], int]) -> Callable[[Values], str]:
        return lambda v: f"{fn(int(v['n']), int(v['m']))}\n"

    def derived(key: str, goal: str, fn: Callable[[int, int], int], **kw: Any) -> Task:
        return Task(key, goal, {"n": "7", "m": "3", "f": "answer.txt"},
                    {"n": n_range(1, 9), "m": n_range(1, 9), "f": ["answer.txt", "out.txt"]},
                    lambda ws, v: [W(ws, v["f"], pair(fn)(v))],
                    lambda ws, v: same(ws, v["f"], pair(fn)(v)),
                    lambda ws, v: drop(ws, v["f"]), cls="derived value", **kw)

    larger = derived("C07 larger", "Write the larger of {n} and {m} into {f}", max)
    larger.near = [derived("C07~smaller", "Write the smaller of {n} and {m} into {f}", min,
                           variant="other object")]
    total = derived("C08 sum of two", "Write the sum of {n} and {m} into {f}",
                    lambda a, b: a + b)

    def mail_world(ws: Path, v: Values) -> None:
        for folder in MAIL:
            put(ws, folder + v["f"], f"{v['f']} from {folder}\n")
        for folder in ARCHIVES:
            drop(ws, folder + v["f"])
            (ws / folder).mkdir(parents=True, exist_ok=True)

    def mail_check(ws: Path, v: Values) -> list[str]:
        problems = same(ws, v["e"] + v["f"], f"{v['f']} from {v['d']}\n")
        if (ws / (v["d"] + v["f"])).exists():
            problems.append(f"{v['d']}{v['f']} is still there")
        for folder in MAIL:
            if folder != v["d"]:
                problems += same(ws, folder + v["f"], f"{v['f']} from {folder}\n")
        return problems

    move = Task(
        "C09 move from folder", "Move {f} from {d} to {e}",
        {"f": "a.txt", "d": "mail/inbox/", "e": "archive/"},
        {"f": ["a.txt", "invoice.txt", "memo.md"], "d": MAIL, "e": ARCHIVES},
        lambda ws, v: [B(f"mv {v['d']}{v['f']} {v['e']}")],
        mail_check, mail_world, cls="path prefix",
    )
    title = Task(
        "C10 json title", "Save the title '{s}' to {f}",
        {"s": "my app", "f": "app.json"},
        {"s": ["my app", 'the "best" app', 'say "cheese"', "notes & todos", "tab\\there"],
         "f": ["app.json", "meta.json"]},
        lambda ws, v: [W(ws, v["f"], json.dumps({"title": v["s"]}, indent=2) + "\n")],
        lambda ws, v: json_equals(ws, v["f"], {"title": v["s"]}),
        lambda ws, v: drop(ws, v["f"]), cls="quoting",
    )
    echo = Task(
        "C11 echo message", 'Put the message "{s}" in {f}',
        {"s": "hello world", "f": "message.txt"},
        {"s": ["hello world", "it's late", "don't panic", "see you soon", "rock 'n' roll",
               "cost: $5 & up"],
         "f": ["message.txt", "note.txt"]},
        lambda ws, v: [B(f"echo {echo_quoted(v['s'])} > {v['f']}")],
        lambda ws, v: same(ws, v["f"], v["s"] + "\n"),
        lambda ws, v: drop(ws, v["f"]), cls="quoting",
    )

    def scaffold_check(ws: Path, v: Values) -> list[str]:
        problems = [f"{v['d']}/{rel} missing" for rel in ("src/__init__.py", "tests/__init__.py")
                    if not (ws / v["d"] / rel).is_file()]
        return problems + [f"{rel}/ created at the workspace root" for rel in ("src", "tests")
                           if (ws / rel).exists()]

    scaffold = Task(
        "C12 scaffold", "Set up a {d} folder with src and tests subfolders",
        {"d": "frontend"}, {"d": ["frontend", "backend", "worker", "api"]},
        lambda ws, v: [B(f"mkdir -p {v['d']}"), B(f"cd {v['d']}"), B("mkdir -p src tests"),
                       B("touch src/__init__.py tests/__init__.py")],
        scaffold_check, lambda ws, v: drop(ws, v["d"], "src", "tests"), cls="shell state",
    )

    def lines_q_world(ws: Path, v: Values) -> None:
        put(ws, v["f"], "\n".join(question_lines(ws, v)) + "\n")

    # access.log and audit.log have the same number of lines: a replay for the other file
    # observes what the recorded run saw (names abstracted) and must still say the count
    count_q = Task(
        "C13 how many lines", "How many lines does {f} have?",
        {"f": "events.log"},
        {"f": ["events.log", "access.log", "app.log", "errors.log", "audit.log"]},
        lambda ws, v: [B(f"wc -l {v['f']}")],
        lambda ws, v: [], lines_q_world, cls="question", drifts=True,
        reply=lambda ws, v: f"{v['f']} has {len(question_lines(ws, v))} lines.",
        expect=lambda ws, v: str(len(question_lines(ws, v))),
        near=[Task("C13~words", "How many words does {f} have?", {}, {},
                   lambda ws, v: [B(f"wc -w {v['f']}")],
                   lambda ws, v: [], lines_q_world, "other object", cls="question",
                   reply=lambda ws, v: f"{v['f']} has {3 * len(question_lines(ws, v))} words.",
                   expect=lambda ws, v: str(3 * len(question_lines(ws, v))))],
    )
    largest = Task(
        "C14 largest number", "What is the largest number in {f}?",
        {"f": "readings.txt"}, {"f": ["readings.txt", "levels.txt", "heights.txt"]},
        lambda ws, v: [B(f"sort -n {v['f']} | tail -n 1")],
        lambda ws, v: [],
        lambda ws, v: put(ws, v["f"], "".join(f"{x}\n" for x in question_numbers(v))),
        cls="question", drifts=True,
        reply=lambda ws, v: f"The largest number in {v['f']} is {max(question_numbers(v))}.",
        expect=lambda ws, v: str(max(question_numbers(v))),
    )

    def users_list(v: Values) -> str:
        return f"my own {v['f']}\nrice\nbeans\n"

    unless = Task(
        "C15 unless exists", "Create {f} containing '{s}' unless it already exists",
        {"f": "shopping.txt", "s": "milk"},
        {"f": ["shopping.txt", "groceries.txt", "pantry.txt"], "s": ["milk", "eggs", "bread"]},
        lambda ws, v: [R(ws, v["f"])] if v.get(DRIFT) else [R(ws, v["f"]),
                                                          W(ws, v["f"], v["s"] + "\n")],
        lambda ws, v: same(ws, v["f"], users_list(v) if v.get(DRIFT) else v["s"] + "\n"),
        lambda ws, v: put(ws, v["f"], users_list(v)) if v.get(DRIFT) else drop(ws, v["f"]),
        cls="failed check", drifts=True, drift_rate=0.4,
        reply=lambda ws, v: (f"{v['f']} already exists; I left it as it is." if v.get(DRIFT)
                             else f"Created {v['f']} with {v['s']}."),
    )

    def ini_world(ws: Path, v: Values) -> None:
        put(ws, f"{v['d']}/README.md", f"# {v['d']}\n")
        if v.get(DRIFT):
            put(ws, f"{v['d']}/config.ini", INI_DEFAULTS)
        else:
            drop(ws, f"{v['d']}/config.ini")

    ini = Task(
        "C16 default config", "Unless it already has one, add a default config.ini to the {d} "
        "folder", {"d": "services"}, {"d": ["services", "gateway", "scheduler"]},
        lambda ws, v: [B(f"ls {v['d']}")] if v.get(DRIFT) else [
            B(f"ls {v['d']}"), W(ws, f"{v['d']}/config.ini", INI_DEFAULTS)],
        lambda ws, v: same(ws, f"{v['d']}/config.ini", INI_DEFAULTS),
        ini_world, cls="no-op handoff", drifts=True, drift_rate=0.4,
        reply=lambda ws, v: (f"{v['d']} already has a config.ini; nothing to do."
                             if v.get(DRIFT) else f"Added {v['d']}/config.ini."),
    )
    def pack_world(ws: Path, v: Values) -> None:
        drop(ws, v["d"], v["f"], "pack.py", "pack_zip.py")
        for name in ("a.txt", "b.txt"):
            put(ws, f"{v['d']}/{name}", f"{name} of {v['d']}\n")

    def pack_check(ws: Path, v: Values, kind: str) -> list[str]:
        import tarfile
        import zipfile

        path = ws / v["f"]
        expected = {f"{v['d']}/{n}": f"{n} of {v['d']}\n".encode() for n in ("a.txt", "b.txt")}
        try:
            if kind == "zip":
                with zipfile.ZipFile(path) as z:
                    got = {n: z.read(n) for n in z.namelist() if not n.endswith("/")}
            else:
                with tarfile.open(path, "r:gz") as t:
                    got = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
            return [f"{v['f']} is not a {kind} archive: {exc}"]
        return [] if got == expected else [f"{v['f']}: expected {sorted(expected)}, "
                                           f"found {sorted(got)}"]

    pack = Task(
        "C17 pack", "Pack the {d} folder into {f}",
        {"d": "reports", "f": "reports.tar.gz"},
        {"d": ["reports", "photos", "invoices"],
         "f": ["reports.tar.gz", "backup.tar.gz", "bundle.tar.gz"]},
        # tar and zip ask (not on the allowlist): refused in a run, so Claude writes a helper
        lambda ws, v: [B(f"tar -czf {v['f']} {v['d']}"), W(ws, "pack.py", PACK_TGZ),
                       B(f"python3 pack.py {v['d']} {v['f']}")],
        lambda ws, v: pack_check(ws, v, "tar.gz"), pack_world, cls="file kind",
        near=[Task("C17~zip", "Pack the {d} folder into {f}", {}, {},
                   lambda ws, v: [B(f"zip -r {v['f']} {v['d']}"), W(ws, "pack_zip.py", PACK_ZIP),
                                  B(f"python3 pack_zip.py {v['d']} {v['f']}")],
                   lambda ws, v: pack_check(ws, v, "zip"), pack_world, "other file kind",
                   cls="file kind",
                   adapt=lambda v: {**v, "f": v["f"].removesuffix(".tar.gz") + ".zip"})],
    )

    def prints(ws: Path, v: Values) -> list[str]:
        import ast

        got = read(ws, v["f"])
        try:
            call = ast.parse(got or "").body[0].value  # type: ignore[attr-defined]
            said = ast.literal_eval(call.args[0])
        except (SyntaxError, IndexError, AttributeError, ValueError) as exc:
            return [f"{v['f']}: not a print of a string literal ({exc}): {got!r}"]
        return [] if said == v["s"] else [f"{v['f']} prints {said!r}, not {v['s']!r}"]

    greet = Task(
        "C18 python string", 'Create {f} that prints "{s}" and run it',
        {"f": "hello.py", "s": "hello world"},
        {"f": ["hello.py", "greet.py"],
         "s": ["hello world", "it's fine", "C:\\temp", "50% off", "don't stop"]},
        lambda ws, v: [W(ws, v["f"], f"print({v['s']!r})\n"), B(f"python3 {v['f']}")],
        prints, lambda ws, v: drop(ws, v["f"]), cls="quoting",
    )
    return [convert, js, append, square, fizz, pool, larger, total, move, title, echo,
            scaffold, count_q, largest, unless, ini, pack, greet]


# --------------------------------------------------------------------------- the draw


@dataclass
class Goal:
    index: int
    task: Task
    values: Values
    kind: str  # exact, slot_variant, near_miss

    @property
    def text(self) -> str:
        return self.task.text(self.values)


def draw(templates: list[Task], count: int, rng: random.Random,
         classes: list[Task] | None = None, class_share: float = 0.5) -> list[Goal]:
    """``count`` goals: ``templates`` ranked in the order listed, drawn Zipf-like, and a
    ``class_share`` of them drawn uniformly from the ``classes`` templates."""
    ranked = templates
    cum = list(itertools.accumulate(1 / (r + 1) for r in range(len(ranked))))
    goals = []
    for index in range(count):
        if classes and rng.random() < class_share:
            base = rng.choice(classes)
        else:
            base = ranked[bisect.bisect_left(cum, rng.random() * cum[-1])]
        roll = rng.random()
        if roll < 0.40:
            goals.append(Goal(index, base, dict(base.canonical), "exact"))
        elif roll < 0.75 or not base.near:
            values = variant(base, rng)
            kind = "slot_variant"
            if base.swap and rng.random() < 0.6:
                a, b = base.swap
                values = {**values, a: values[b], b: values[a]}
                kind = "swapped" if values != base.canonical else "exact"
            goals.append(Goal(index, base, values, kind))
        else:
            near = rng.choice(base.near)
            values = dict(base.canonical) if rng.random() < 0.7 else variant(base, rng)
            if near.adapt is not None:
                values = near.adapt(values)
            goals.append(Goal(index, near, values, "near_miss"))
        task = goals[-1].task
        if task.drifts and rng.random() < task.drift_rate:
            goals[-1].values[DRIFT] = "1"
    return goals


def variant(task: Task, rng: random.Random) -> Values:
    """Other slot values (at least one differs; distinct file names stay distinct)."""
    while True:
        values = {k: rng.choice(pool) for k, pool in task.pools.items()}
        files = [values[k] for k in ("f", "g", "h") if k in values]
        if values != task.canonical and len(set(files)) == len(files) and (
                values.get("a") != values.get("b") or "a" not in values):
            return values


# --------------------------------------------------------------------------- running


def usage_for(turn: int, call: Call | None) -> Any:
    """Token usage of one scripted turn, measured from the request Claude Code sends (its
    system prompt, tools and history, prompt caching modelled) and from the answer."""
    from llmos.testing.model_server import Usage

    return Usage.from_request()


def script_learner(server: Any, ws: Path, goal: Goal) -> None:
    calls = goal.task.steps(ws, goal.values)
    for turn, (tool, data) in enumerate(calls):
        server.script.tool_use(tool, data, usage=usage_for(turn, (tool, data)))
    reply = goal.task.reply(ws, goal.values) if goal.task.reply else f"Done: {goal.text}"
    server.script.text(reply, usage=usage_for(len(calls), None))


class ReplayProbe:
    """Wraps ``llmos.learning.replay.replay`` to keep each report (FollowerMode imports it
    at call time, so the wrapper is what it runs)."""

    def __init__(self) -> None:
        import llmos.learning.replay as module

        self.module, self.original = module, module.replay
        self.reports: list[tuple[Any, float]] = []

    def __enter__(self) -> ReplayProbe:
        original = self.original

        async def replay(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            report = await original(*args, **kwargs)
            self.reports.append((report, time.perf_counter() - start))
            return report

        self.module.replay = replay
        return self

    def __exit__(self, *exc: object) -> None:
        self.module.replay = self.original


def replayed_detail(memory: Any, reports: list[tuple[Any, float]], trace_id: str | None,
                    matched: dict[str, Any]) -> dict[str, Any]:
    """What a bad replay ran: the trace (its goal, its evidence) and the steps' inputs."""
    def goal_of(tid: str) -> str | None:
        try:
            return memory.get_trace(tid).goal_text
        except Exception:  # a missing trace is shown as None
            return None

    evidence_ids = matched.get("evidence_traces") or [] if matched.get(
        "trace_id") == trace_id else []
    steps = []
    for report, _ in reports:
        for step in report.steps:
            shown = {k: (v if not isinstance(v, str) or len(v) < 160 else v[:157] + "...")
                     for k, v in step.input.items()}
            steps.append({"trace": report.trace_id, "tool": step.tool, "input": shown,
                          "ok": step.ok, "note": step.note})
    return {"trace_id": trace_id, "trace_goal": goal_of(trace_id) if trace_id else None,
            "evidence": [r.evidence for r, _ in reports],
            "evidence_goals": [goal_of(t) for t in evidence_ids],
            "steps": steps}


async def run_workload(goals: list[Goal], workdir: Path) -> dict[str, Any]:
    from llmos import LLMOS
    from llmos.testing.model_server import ScriptedModelServer

    rows: list[dict[str, Any]] = []
    trace_task: dict[str, str] = {}  # trace id -> the task whose run recorded it
    kin = {t.key: t.kin for g in goals for t in (g.task,)}
    with ScriptedModelServer() as server, ReplayProbe() as probe:
        os.environ.update(server.env())
        ws = workdir / "workspace"
        ws.mkdir()
        # ORCHESTRATOR plans sub-goals with run_plan, which the scripted learner turns do not
        # do: this benchmark measures learning and replay of one-deliverable goals
        settings = ["budget.run_cap_usd=0.5", "orchestrator.enabled=false"]
        async with LLMOS(ws, budget_usd=1000, settings=settings) as llm_os:
            ws = llm_os.kernel.workspace.root
            memory = llm_os.kernel.memory
            for goal in goals:
                task = goal.task
                task.setup(ws, goal.values)
                expected_answer = task.expect(ws, goal.values) if task.expect else None
                routed = llm_os.route(goal.text)
                script_learner(server, ws, goal)
                before_requests, before_exhausted = server.model_request_count, \
                    server.exhausted_count
                before_reports = len(probe.reports)
                started = time.perf_counter()
                result = await llm_os.execute(goal.text)
                wall = time.perf_counter() - started
                del server.script.turns[server.turns_used:]  # a replay used none of them
                problems = task.check(ws, goal.values)
                if expected_answer and not re.search(count_regex(expected_answer),
                                                     result.output or ""):
                    problems.append(f"the answer does not say {expected_answer}: "
                                    f"{(result.output or '')[:160]!r}")
                reports = probe.reports[before_reports:]
                served = next((r for r, _ in reports if r.verified), None)
                replayed_id = served.trace_id if served else result.matched_trace
                matched = routed["matched_trace"] or {}
                row = {
                    "index": goal.index, "task": task.key, "class": task.cls,
                    "kin": task.kin, "kind": goal.kind,
                    "variant": task.variant, "goal": goal.text, "mode": result.mode,
                    "success": result.success, "error": result.error,
                    "output": (result.output or "")[:400],
                    "cost_usd": result.cost_usd, "model_requests": result.model_requests,
                    "server_requests": server.model_request_count - before_requests,
                    "script_exhausted": server.exhausted_count > before_exhausted,
                    "diverged": result.diverged, "confidence": result.confidence,
                    "route_reason": routed["reason"],
                    "matched_reason": matched.get("reason"),
                    "matched_trace": replayed_id,
                    "matched_task": trace_task.get(replayed_id or ""),
                    "evidence": served.evidence if served else matched.get("evidence"),
                    "trace_id": result.trace_id, "saved_usd": result.saved_usd,
                    "wall_s": round(wall, 4), "duration_s": result.duration_s,
                    "problems": problems,
                    "task_learned_before": task.kin in {kin.get(t, t)
                                                        for t in trace_task.values()},
                    "world_changed": DRIFT in goal.values,
                    "attempts": len(reports),
                }
                if result.trace_id and (result.mode != "FOLLOWER" or result.diverged):
                    trace_task[result.trace_id] = task.key  # a trace learned here
                if reports:
                    report, replay_wall = reports[-1]
                    tool_s = sum(s.duration_s for s in report.steps)
                    row["replay"] = {
                        "steps": len(report.steps), "verified": report.verified,
                        "reason": report.reason, "kind": report.kind,
                        "mutated": report.mutated, "wall_s": replay_wall, "tool_s": tool_s,
                        "outside_replay_s": wall - replay_wall,
                        "overhead_s": report.overhead_s,
                        "tools": [s.tool for s in report.steps],
                    }
                wrong_trace = kin.get(row["matched_task"] or "", row["matched_task"]) != task.kin
                row["false_replay"] = result.mode == "FOLLOWER" and not result.diverged and (
                    bool(problems) or wrong_trace)
                # a replay that changed files, diverged, and left them wrong after the handoff
                row["damaging_divergence"] = result.mode == "FOLLOWER" and result.diverged \
                    and bool(problems) and any(r.mutated for r, _ in reports)
                if row["false_replay"] or row["damaging_divergence"]:
                    row["replayed"] = replayed_detail(memory, reports, replayed_id, matched)
                rows.append(row)
                mark = "FALSE REPLAY" if row["false_replay"] else (
                    "CHECK FAILED" if problems else "")
                print(f"{goal.index:>4} {goal.kind:<12} {result.mode:<8} "
                      f"${result.cost_usd:<8.4f} {wall:>6.2f}s  {goal.text[:64]:<64} {mark}",
                      flush=True)
            stats = llm_os.stats()
    return {"rows": rows, "stats": stats}


# --------------------------------------------------------------------------- report


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    learned_cost: dict[str, list[float]] = defaultdict(list)
    learned_requests: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if r["mode"] in ("LEARNER", "MIXED") and r["success"]:
            learned_cost[r["task"]].append(r["cost_usd"])
            learned_requests[r["task"]].append(r["model_requests"])
    all_costs = [c for costs in learned_cost.values() for c in costs]

    def task_cost(task: str) -> float:
        costs = learned_cost.get(task) or learned_cost.get(task.split("~")[0]) or all_costs
        return statistics.fmean(costs)

    def task_requests(task: str) -> float:
        counts = learned_requests.get(task) or [
            n for ns in learned_requests.values() for n in ns]
        return statistics.fmean(counts)

    spend = sum(r["cost_usd"] for r in rows)
    baseline = sum(task_cost(r["task"]) for r in rows)
    requests = sum(r["model_requests"] for r in rows)
    baseline_requests = sum(task_requests(r["task"]) for r in rows)
    follower = [r for r in rows if r["mode"] == "FOLLOWER"]
    verified = [r for r in follower if not r["diverged"]]
    replays = [r["replay"] for r in follower if "replay" in r]
    steps = sum(p["steps"] for p in replays)
    per_step_overhead = [p["overhead_s"] / p["steps"] for p in replays if p["steps"]]
    per_step_tool = [p["tool_s"] / p["steps"] for p in replays if p["steps"]]
    learner_wall = [r["wall_s"] for r in rows if r["mode"] in ("LEARNER", "MIXED")]
    follower_wall = [r["wall_s"] for r in verified]
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        by_kind[r["kind"]][r["mode"]] += 1

    def ms(values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        ordered = sorted(values)
        return {"median_ms": round(statistics.median(ordered) * 1e3, 2),
                "mean_ms": round(statistics.fmean(ordered) * 1e3, 2),
                "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1e3, 2),
                "max_ms": round(ordered[-1] * 1e3, 2)}

    by_class: dict[str, dict[str, Any]] = {}
    for cls in [*CLASSES, *sorted({r["class"] for r in rows} - set(CLASSES))]:
        mine = [r for r in rows if r["class"] == cls]
        if not mine:
            continue
        hits = [r for r in mine if r["mode"] == "FOLLOWER" and not r["diverged"]
                and not r["false_replay"]]  # correct verified replays
        by_class[cls] = {
            "goals": len(mine),
            "by_mode": dict(Counter(r["mode"] for r in mine)),
            "replays_verified": sum(r["mode"] == "FOLLOWER" and not r["diverged"] for r in mine),
            "hits": len(hits),
            "hit_rate": round(len(hits) / len(mine), 4),
            "evidence": dict(Counter(r["evidence"] for r in hits)),
            "divergences": sum(r["diverged"] for r in mine),
            "false_replays": sum(r["false_replay"] for r in mine),
            "damaging_divergences": sum(r["damaging_divergence"] for r in mine),
            "check_failures_not_follower": sum(bool(r["problems"]) and r["mode"] != "FOLLOWER"
                                               for r in mine),
            "model_requests": sum(r["model_requests"] for r in mine),
            "model_requests_learner_only": round(sum(task_requests(r["task"]) for r in mine), 1),
            "spend_usd": round(sum(r["cost_usd"] for r in mine), 6),
            "learner_only_usd": round(sum(task_cost(r["task"]) for r in mine), 6),
        }
    slot_not_replayed = [  # although a trace of the same task was there to replay
        {"goal": r["goal"], "mode": r["mode"], "why": r["matched_reason"]}
        for r in rows if r["kind"] in ("slot_variant", "swapped")
        and (r["mode"] != "FOLLOWER" or r["diverged"])
        and r["task_learned_before"]]
    return {
        "goals": len(rows),
        "by_mode": dict(Counter(r["mode"] for r in rows)),
        "by_kind_and_mode": {k: dict(v) for k, v in by_kind.items()},
        "distinct_goals": len({r["goal"] for r in rows}),
        "model_requests": requests,
        "model_requests_learner_only": round(baseline_requests, 1),
        "server_requests_incl_side": sum(r["server_requests"] for r in rows),
        "spend_usd": round(spend, 6),
        "learner_only_usd": round(baseline, 6),
        "saved_fraction": round(1 - spend / baseline, 4) if baseline else None,
        "mean_learner_cost_by_task": {t: round(statistics.fmean(c), 6)
                                      for t, c in sorted(learned_cost.items())},
        "hit_rate": round(sum(not r["false_replay"] for r in verified) / len(rows), 4)
        if rows else None,  # correct verified replays / goals
        "by_class": by_class,
        "false_replays_by_class": {c: v["false_replays"] for c, v in by_class.items()},
        "replays_verified": len(verified),
        "replays_zero_cost": sum(1 for r in verified if r["cost_usd"] == 0
                                 and r["model_requests"] == 0 and r["server_requests"] == 0),
        "false_replays": sum(r["false_replay"] for r in rows),
        "false_replay_goals": [
            {"goal": r["goal"], "task": r["task"], "class": r["class"], "kind": r["kind"],
             "world_changed": r["world_changed"], "replayed_trace_of": r["matched_task"],
             "replayed": r.get("replayed"), "problems": r["problems"],
             "output": r["output"]}
            for r in rows if r["false_replay"]],
        "damaging_divergences": [
            {"goal": r["goal"], "task": r["task"], "class": r["class"],
             "reason": r.get("replay", {}).get("reason"), "replayed": r.get("replayed"),
             "problems": r["problems"]}
            for r in rows if r["damaging_divergence"]],
        "near_misses_replayed": sum(1 for r in verified if r["kind"] == "near_miss"
                                    and r["matched_task"] not in (r["task"], r["kin"])),
        "divergences": sum(r["diverged"] for r in rows),
        "world_changed_goals": sum(r["world_changed"] for r in rows),
        "diverged_goals": [{"goal": r["goal"], "reason": r.get("replay", {}).get("reason"),
                            "world_changed": r["world_changed"],
                            "handoff_success": r["success"] and not r["problems"],
                            "handoff_cost_usd": r["cost_usd"], "problems": r["problems"]}
                           for r in rows if r["diverged"]],
        "check_failures_not_follower": [
            {"goal": r["goal"], "mode": r["mode"], "problems": r["problems"],
             "error": r["error"]}
            for r in rows if r["problems"] and r["mode"] != "FOLLOWER"],
        "failed_runs": sum(not r["success"] for r in rows),
        "script_exhausted": sum(r["script_exhausted"] for r in rows),
        "slot_variants_not_replayed": slot_not_replayed,
        "slot_variants_replayed": sum(1 for r in verified
                                      if r["kind"] in ("slot_variant", "swapped")),
        "replay": {
            "runs": len(replays), "steps": steps,
            "overhead_per_step": ms(per_step_overhead),
            "tool_time_per_step": ms(per_step_tool),
            "overhead_total_s": round(sum(p["overhead_s"] for p in replays), 4),
            "follower_run_wall": ms(follower_wall),
            "follower_run_outside_replay": ms([r["replay"]["outside_replay_s"]
                                               for r in verified if "replay" in r]),
            "learner_run_wall": ms(learner_wall),
        },
    }


def print_report(summary: dict[str, Any], rows: list[dict[str, Any]], runtime: float) -> None:
    per_task: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        c = per_task[r["task"]]
        c["goals"] += 1
        c[r["mode"]] += 1
        c["false"] += r["false_replay"]
        c["diverged"] += r["diverged"]
    costs = summary["mean_learner_cost_by_task"]
    print(f"\n{'task':<22}{'goals':>6}{'FOLLOW':>7}{'LEARN':>6}{'MIXED':>6}{'diverg':>7}"
          f"{'false':>6}{'learn $':>9}")
    for task in sorted(per_task):
        c = per_task[task]
        cost = f"{costs[task]:.4f}" if task in costs else "-"
        print(f"{task:<22}{c['goals']:>6}{c['FOLLOWER']:>7}{c['LEARNER']:>6}{c['MIXED']:>6}"
              f"{c['diverged']:>7}{c['false']:>6}{cost:>9}")
    s, rp = summary, summary["replay"]
    print(f"\n{'class':<16}{'goals':>6}{'hits':>7}{'hit %':>7}{'diverg':>7}{'LEARN':>6}"
          f"{'MIXED':>6}{'false':>6}{'damage':>7}{'reqs':>6}{'L-only':>7}{'spend $':>9}"
          f"{'L-only $':>9}")
    for cls, c in s["by_class"].items():
        modes = c["by_mode"]
        print(f"{cls:<16}{c['goals']:>6}{c['hits']:>7}{100 * c['hit_rate']:>7.1f}"
              f"{c['divergences']:>7}{modes.get('LEARNER', 0):>6}{modes.get('MIXED', 0):>6}"
              f"{c['false_replays']:>6}{c['damaging_divergences']:>7}{c['model_requests']:>6}"
              f"{c['model_requests_learner_only']:>7.0f}{c['spend_usd']:>9.4f}"
              f"{c['learner_only_usd']:>9.4f}")
    print(f"\ngoals {s['goals']} ({s['distinct_goals']} distinct); modes {s['by_mode']}; "
          f"hit rate (correct verified replays / goals) {100 * (s['hit_rate'] or 0):.1f}%")
    print(f"by kind: {s['by_kind_and_mode']}")
    print(f"model requests: {s['model_requests']} (LEARNER-only: "
          f"{s['model_requests_learner_only']}); all requests seen by the server incl. side "
          f"requests: {s['server_requests_incl_side']}")
    print(f"cost: ${s['spend_usd']:.4f} vs LEARNER-only ${s['learner_only_usd']:.4f} "
          f"(saved {100 * (s['saved_fraction'] or 0):.1f}%)")
    print(f"verified replays: {s['replays_verified']} ({s['replays_zero_cost']} with $0 and no "
          f"request); divergences: {s['divergences']}; false replays: {s['false_replays']} "
          f"(near misses replayed: {s['near_misses_replayed']})")
    for bad in s["false_replay_goals"]:
        replayed = bad["replayed"] or {}
        print(f"  FALSE REPLAY [{bad['class']}: {bad['task']}, {bad['kind']}"
              f"{', world changed' if bad['world_changed'] else ''}] {bad['goal']!r}\n"
              f"    replayed {replayed.get('trace_id')} (learned for "
              f"{replayed.get('trace_goal')!r}, evidence {replayed.get('evidence')}"
              f"{' with ' + str(replayed.get('evidence_goals') or '')}"
              f")\n    wrong: {bad['problems'] or 'the trace of ' + str(bad['replayed_trace_of'])}")
        for step in replayed.get("steps", []):
            print(f"      {step['tool']} {step['input']} -> {'ok' if step['ok'] else step['note']}")
    print(f"replays that changed files, diverged and left them wrong after the handoff: "
          f"{len(s['damaging_divergences'])}")
    for bad in s["damaging_divergences"]:
        print(f"  [{bad['class']}] {bad['goal']!r}: {bad['reason']}; {bad['problems']}")
    print(f"goals that found a changed world (T06/T07/T13: heading, spelling, port; C13/C14: "
          f"the file grew; C15/C16: the file exists): "
          f"{s['world_changed_goals']}; a trace learned in a changed world diverges when "
          f"the world is back to normal")
    for d in s["diverged_goals"]:
        print(f"  diverged: {d['goal']!r}: {d['reason'][:90]} (handoff to LEARNER ok: "
              f"{d['handoff_success']}, ${d['handoff_cost_usd']:.4f})")
    for bad in s["check_failures_not_follower"]:
        print(f"  CHECK FAILED ({bad['mode']}) {bad['goal']!r}: {bad['problems']} {bad['error']}")
    print(f"slot variants not replayed although their task had a trace: "
          f"{len(s['slot_variants_not_replayed'])}")
    reasons = Counter((x["mode"], (x["why"] or "").split(":")[0].split("(")[0].strip())
                      for x in s["slot_variants_not_replayed"])
    for (mode, why), n in reasons.most_common():
        print(f"  {n:>3} x {mode}: {why}")
    print(f"replay: {rp['runs']} runs, {rp['steps']} steps; overhead per step "
          f"{rp['overhead_per_step']}; tool time per step {rp['tool_time_per_step']}")
    print(f"run wall time: verified FOLLOWER {rp['follower_run_wall']} (outside replay(): "
          f"{rp['follower_run_outside_replay']}); LEARNER/MIXED {rp['learner_run_wall']}")
    print(f"failed runs: {s['failed_runs']}; script exhausted: {s['script_exhausted']}; "
          f"runtime {runtime:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goals", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--class-share", type=float, default=0.5,
                        help="the share of goals drawn from the false-replay class templates")
    parser.add_argument("--only", default="",
                        help="comma-separated task keys or class names to draw from")
    parser.add_argument("--out", default=str(RESULTS_DIR / "workload.json"))
    args = parser.parse_args(argv)
    if args.goals < 1:
        parser.error(f"--goals {args.goals}: give at least 1 goal")
    if not 0 <= args.class_share <= 1:
        parser.error(f"--class-share {args.class_share}: give a share between 0 and 1")
    classic, classes, share = tasks(), class_tasks(), args.class_share
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}

        def chosen(t: Task) -> bool:
            return t.cls in wanted or any(t.key.startswith(w) for w in wanted)

        classic = [t for t in classic if chosen(t)]
        classes = [t for t in classes if chosen(t)]
        if not classic and not classes:
            parser.error(f"--only {args.only!r} names no task key or class; classes: "
                         + ", ".join(CLASSES))
        share = 1.0 if not classic else 0.0 if not classes else share
    goals = draw(classic or classes, args.goals, random.Random(args.seed), classes, share)
    home = isolate_environment()
    workdir = Path(tempfile.mkdtemp(prefix="llmos-bench-workload-"))
    began, wall_start = time.perf_counter(), time.time()
    try:
        outcome = asyncio.run(run_workload(goals, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    runtime = time.perf_counter() - began
    summary = summarize(outcome["rows"])
    print_report(summary, outcome["rows"], runtime)
    code = code_fingerprint(wall_start)
    changed = [name for name, c in code.items() if c["changed_during_run"]]
    if changed:
        print(f"WARNING: changed while this ran (figures may mix versions): {changed}")
    report = {**machine(), "code": code, "seed": args.seed, "runtime_s": round(runtime, 1),
              "summary": summary, "llmos_stats": outcome["stats"], "runs": outcome["rows"]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
