"""Route latency: how long the dispatcher takes to explain a goal with 1k, 10k and 100k
traces in memory, on sqlite and markdown (issue 12, item 2; targets: in-process p99
<= 5 ms at 100k on sqlite, <= 20 ms on markdown; ``llmos route`` as a process <= 100 ms
wall at 100k on sqlite).

Run from the repository root:

    .venv/bin/python bench/learning/route_latency.py --keep /tmp/route-stores   # all
    .venv/bin/python bench/learning/route_latency.py --sizes 1000,10000 --markdown-sizes ""
    .venv/bin/python bench/learning/route_latency.py --profile        # always profile

Defaults: sqlite and markdown at 1k, 10k and 100k traces, 300 goals routed 3 times each
per size, 9 ``llmos route`` processes per size and as many on an empty store, seed 11.
Filling 100k traces takes minutes (sqlite ~2, markdown ~4 plus building its index once):
``--keep DIR`` keeps one workspace per backend and size (``DIR/sqlite-100000``, ...) and
a later run with the same seed reuses it; a missing size starts as a copy of the largest
smaller one kept.

What it does, per backend and size:

1. fills the workspace's memory through ``save_trace`` (the public path, redaction and
   all) and reports the fill rate; the markdown store is filled with fsync off
   (``MarkdownMemory(durable=False)``) and opened durably by the kernel afterwards;
2. times every store open: a new backend handle constructed and answering its first
   query (``count_traces``), the first time after the fill (a markdown index may catch up
   then), again, and on an empty store; then the ``LLMOS`` open and the first route apart;
3. routes 300 goals through ``LLMOS.route`` (``llmos route --json``, no run): a quarter
   each of exact repeats of stored goals, slot variants (other numbers / file names /
   identifiers / paths), near misses (opposite action, other object, negation) and novel
   goals, and reports p50/p90/p99/max in ms of the first pass (wall time), overall and
   per kind, the same pass's CPU time and each goal's best of ``--passes`` (3) passes
   (wall well above CPU = the machine was busy elsewhere), the same goals routed once
   on an empty store in the same run (the baseline), and the chosen mode per kind (a
   near miss or novel goal chosen for FOLLOWER, or a proven exact repeat not, is flagged);
4. runs ``llmos route GOAL --json`` as whole processes, interleaved round by round: on
   the store and on an empty one, each through the ``llmos`` command as installed (with
   engineer A's command daemon once it is there) and with ``LLMOS_DAEMON=0``, next to a
   bare interpreter (``python -c pass``): wall and CPU of each process, the median
   paired difference to the empty store, the peak RSS of a route process (no daemon);
   then a writer process (``--write-rss``: opens the store, saves 200 traces through
   ``save_trace`` and deletes them): its peak RSS after the open and after the saves;
   the load average before and after;
5. on a small separate store where each signature holds ``FAMILY_LIMIT`` (12) traces
   (``--families``): an exact repeat and two slot variants per template, every trace
   of the family judged against the others (the main stores hold at most 3);
6. when p99 misses the target at the largest size (or with ``--profile``): a breakdown
   of where the time goes (goal analysis, lookup by signature, full-text search, judging,
   the rest), every SQL statement timed on its own, the FTS query terms and how many rows
   each pulls into Python, and the top functions under cProfile.

Traces are synthetic but shaped like real ones: 24 task templates (Write / Edit / Bash /
Read steps that use the goal's slot values), content words drawn Zipf-like from a
vocabulary of ~100 common words and ~4,000 rarer ones, at most 3 traces per goal
signature (more would be replayed instead of learned again), 3% demoted and 5% with a
poor success record. The benchmark's own population (100k goals and their slot values,
kept to derive the query goals) is moved out of the garbage collector's reach
(``gc.freeze()``) before routing: a full collection of it was a 30-40 ms pause that no
llmos process has. JSON results go to bench/results/route_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import cProfile
import gc
import hashlib
import io
import itertools
import json
import os
import pstats
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, code_fingerprint, isolate_environment, machine, quantiles_ms

from llmos import LLMOS
from llmos.goals import analyze_goal
from llmos.learning import matching
from llmos.learning.matching import _VERB_GROUP, NEGATIONS
from llmos.learning.matching import STOPWORDS as MATCH_STOPWORDS
from llmos.memory.models import FileDigest, Step, StepOutcome, Trace
from llmos.memory.text import STOPWORDS as TEXT_STOPWORDS

TARGET_P99_MS = 5.0  # sqlite
TARGET_MARKDOWN_P99_MS = 20.0
MAX_PER_SIGNATURE = 3
BUDGET_USD = 100.0  # so that the budget rules never decide alone

# --------------------------------------------------------------------------- vocabulary

COMMON = """
data report users orders invoices logs config tests results summary table chart metrics
errors events sessions accounts products prices items records rows columns values scores
names emails dates files images pages links tasks jobs notes comments messages tickets
issues releases versions servers services requests responses tokens caches queues streams
batches models features labels samples weights customers sales revenue budget expenses
inventory warehouse shipments payments refunds invoices contracts employees teams projects
milestones sprints tags categories regions countries cities temperatures readings sensors
devices alerts incidents backups snapshots migrations schemas queries indexes primes squares
fibonacci factorials averages totals counts words lines characters paragraphs headings
""".split()
EXTS = ["py", "txt", "csv", "json", "md", "yaml", "log", "sh", "html", "toml"]


def _banned(word: str) -> bool:
    return (word in _VERB_GROUP or word in NEGATIONS or word in MATCH_STOPWORDS
            or word in TEXT_STOPWORDS)


def vocabulary(rng: random.Random, rare: int = 4000) -> list[str]:
    """Common words first, then pronounceable rare ones: ranks for a Zipf draw."""
    words = list(dict.fromkeys(w for w in COMMON if not _banned(w)))
    seen = set(words)
    target = len(words) + rare
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    while len(words) < target:
        length = rng.choice((2, 3, 3, 4))
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(length))
        if word not in seen and not _banned(word):
            seen.add(word)
            words.append(word)
    return words


class Zipf:
    """Draw ranks 0..n-1 with P(rank r) proportional to 1 / (r + 1) ** s."""

    def __init__(self, n: int, s: float = 1.0) -> None:
        weights = [1 / (r + 1) ** s for r in range(n)]
        self.cum = list(itertools.accumulate(weights))

    def __call__(self, rng: random.Random) -> int:
        return bisect.bisect_left(self.cum, rng.random() * self.cum[-1])


# --------------------------------------------------------------------------- templates


def program(n: str, word: str) -> str:
    return (f"N = {n}\nvalues = [i * i for i in range(N)]\n"
            f"print('{word}', sum(values))\n")


def _write(path: str, content: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "Write", {"file_path": path, "content": content}, {"files": [path]}


def _bash(command: str, out: str = "") -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "Bash", {"command": command, "description": "run it"}, {"exit_code": 0,
                                                                   "excerpt": out}


def _read(path: str, text: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "Read", {"file_path": path}, {"excerpt": text}


def _edit(path: str, old: str, new: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return "Edit", {"file_path": path, "old_string": old, "new_string": new}, {"files": [path]}


# Each template: the goal (placeholders {f} {g} file names, {n} number, {i} identifier,
# {d} directory path, {u} URL, {w1} {w2} {w3} content words) and the steps a learner run
# took, using the slot values the way a real run would.
TEMPLATES: list[tuple[str, Callable[[dict[str, str]], list[tuple[str, dict, dict]]]]] = [
    ("Create {f} printing the first {n} {w1} and run it",
     lambda s: [_write(s["f"], program(s["n"], s["w1"])), _bash(f"python3 {s['f']}", "0 1 4")]),
    ("Count the lines of {f} into {g}",
     lambda s: [_bash(f"wc -l {s['f']}", f"12 {s['f']}"), _write(s["g"], "12\n")]),
    ("Add a function {i} to {f} that returns the {w1} {w2}",
     lambda s: [_read(s["f"], "import os\n"),
                _edit(s["f"], "import os\n", f"import os\n\ndef {s['i']}():\n    return []\n"),
                _bash(f"python3 -m py_compile {s['f']}")]),
    ("Delete the {w1} {w2} files in {d}",
     lambda s: [_bash(f"ls {s['d']}", "a.tmp b.tmp"), _bash(f"rm -f {s['d']}*.tmp")]),
    ("Summarize {f} into {g} in {n} bullet points about {w1}",
     lambda s: [_read(s["f"], f"the {s['w1']} grew"),
                _write(s["g"], "\n".join(f"- point {k}" for k in range(int(s["n"]))) + "\n")]),
    ("Fetch {u} and save the {w1} {w2} to {f}",
     lambda s: [_bash(f"curl -s {s['u']} -o {s['f']}"), _bash(f"wc -c {s['f']}", "2048")]),
    ("Sort the {w1} in {f} by {w2} and write {g}",
     lambda s: [_bash(f"sort -k2 {s['f']} > {s['g']}"), _bash(f"head -3 {s['g']}")]),
    ("Convert {f} from csv to json as {g} keeping the {w1} column",
     lambda s: [_write("convert.py", f"import csv, json\nsrc, dst = '{s['f']}', '{s['g']}'\n"),
                _bash("python3 convert.py"), _bash(f"cat {s['g']}", "[{}]")]),
    ("Rename {f} to {g} in the {w1} folder",
     lambda s: [_bash(f"mv {s['f']} {s['g']}"), _bash("ls", s["g"])]),
    ("Write a {w1} {w2} report about {w3} into {f}",
     lambda s: [_write(s["f"], f"# {s['w1']} {s['w2']}\n\nAbout {s['w3']}.\n")]),
    ("Make a directory {d} with a {w1} readme {f}",
     lambda s: [_bash(f"mkdir -p {s['d']}"), _write(s["d"] + s["f"], f"# {s['w1']}\n")]),
    ("Print the {w1} {w2} of {f} as a table of {n} rows",
     lambda s: [_bash(f"head -n {s['n']} {s['f']} | column -t", "a b c")]),
    ("Add {n} {w1} entries to {f} for the {w2} {w3}",
     lambda s: [_read(s["f"], "[]"), _write(s["f"], json.dumps(
         [{"kind": s["w1"], "k": k} for k in range(min(int(s["n"]), 5))]) + f"\n# {s['n']}\n")]),
    ("Remove the {w1} line from {f}",
     lambda s: [_read(s["f"], f"{s['w1']}=1\nother=2"), _edit(s["f"], f"{s['w1']}=1\n", "")]),
    ("Update {f} to set {w1} {w2} to {n}",
     lambda s: [_read(s["f"], f"{s['w1']}: 1"), _edit(s["f"], f"{s['w1']}: 1",
                                                      f"{s['w1']}: {s['n']}")]),
    ("Check that {f} has {n} {w1} {w2} and save the result to {g}",
     lambda s: [_bash(f"grep -c {s['w1']} {s['f']}", s["n"]), _write(s["g"], "ok\n")]),
    ("Copy {f} to {d} and append a {w1} note",
     lambda s: [_bash(f"cp {s['f']} {s['d']}"), _bash(f"echo {s['w1']} >> {s['d']}{s['f']}")]),
    ("Generate {n} random {w1} {w2} in {f}",
     lambda s: [_write(s["f"], "\n".join(str(k * 7 % 13) for k in range(min(int(s["n"]), 50))))]),
    ("Run {f} with {n} {w1} workers and save the output to {g}",
     lambda s: [_bash(f"python3 {s['f']} --workers {s['n']} > {s['g']}"), _bash(f"cat {s['g']}")]),
    ("Explain the {w1} {w2} in {f} in {g}",
     lambda s: [_read(s["f"], "def main(): ..."), _write(s["g"], f"{s['w1']} explained\n")]),
    ("Install the {w1} dependencies listed in {f} into {d}",
     lambda s: [_bash(f"cat {s['f']}", "rich"), _bash(f"pip install -r {s['f']} -t {s['d']}")]),
    ("Test {f} against the {w1} {w2} fixtures",
     lambda s: [_bash(f"python3 -m pytest {s['f']} -q", "3 passed")]),
    ("Encode {f} as base64 into {g} for the {w1} upload",
     lambda s: [_bash(f"base64 {s['f']} > {s['g']}"), _bash(f"wc -c {s['g']}")]),
    ("Plot the {w1} {w2} from {f} as {g} with {n} bins",
     lambda s: [_write("plot.py", f"BINS = {s['n']}\nSRC = '{s['f']}'\nOUT = '{s['g']}'\n"),
                _bash("python3 plot.py")]),
]
WORDY = [t for t in TEMPLATES if "{w1}" in t[0]]
NOVEL_TEMPLATES = [
    "Train a {w1} classifier on {f} for {n} epochs",
    "Translate {f} into {w1} and keep the {w2} terms",
    "Schedule a {w1} {w2} job every {n} minutes",
    "Compare {f} with {g} and highlight the {w1} differences",
]
OPPOSITE = {"create": "Delete", "count": "Write", "add": "Remove", "delete": "Create",
            "summarize": "Encode", "fetch": "Upload", "sort": "Shuffle", "convert": "Read",
            "rename": "Copy", "write": "Read", "make": "Remove", "print": "Write",
            "remove": "Add", "update": "Read", "check": "Write", "copy": "Move",
            "generate": "Delete", "run": "Stop", "explain": "Write", "install": "Uninstall",
            "test": "Deploy", "encode": "Decode", "plot": "Delete", "translate": "Read"}
FIELDS = re.compile(r"\{(\w+)\}")


@dataclass
class Generator:
    rng: random.Random
    words: list[str]
    zipf: Zipf = field(init=False)

    def __post_init__(self) -> None:
        self.zipf = Zipf(len(self.words))

    def word(self) -> str:
        return self.words[self.zipf(self.rng)]

    def slots(self, fmt: str, words: dict[str, str] | None = None) -> dict[str, str]:
        rng = self.rng
        values: dict[str, str] = {}
        for name in FIELDS.findall(fmt):
            if name in values:
                continue
            if name.startswith("w"):
                values[name] = (words or {}).get(name) or self.word()
            elif name in ("f", "g"):
                stem = self.word() if rng.random() < 0.7 else f"{self.word()}_{rng.randint(1, 99)}"
                values[name] = f"{stem}.{rng.choice(EXTS)}"
            elif name == "n":
                values[name] = str(rng.choice((rng.randint(2, 20), rng.randint(2, 1000))))
            elif name == "i":
                values[name] = f"{rng.choice(('get', 'load', 'parse', 'to'))}_{self.word()}"
            elif name == "d":
                values[name] = f"{self.word()}/{self.word()}/"
            elif name == "u":
                values[name] = f"https://api.example.com/v{rng.randint(1, 3)}/{self.word()}"
        if values.get("f") and values.get("f") == values.get("g"):
            values["g"] = "out_" + values["g"]
        return values


def build_trace(template: int, values: dict[str, str], demoted: bool = False,
                poor: bool = False) -> Trace:
    fmt, steps_of = TEMPLATES[template]
    goal = analyze_goal(fmt.format(**values))
    steps = []
    for tool, data, outcome in steps_of(values):
        files = [FileDigest(path=p, sha256=hashlib.sha256(f"{p}{goal.text}".encode()).hexdigest(),
                            size=64)
                 for p in outcome.get("files", [])]
        steps.append(Step(tool=tool, input=data, outcome=StepOutcome(
            exit_code=outcome.get("exit_code"), excerpt=outcome.get("excerpt", ""),
            files=files), duration_s=0.05))
    usage, success = (5, 3) if poor else (1, 1)
    return Trace(goal_text=goal.text, normalized_goal=goal.normalized,
                 goal_signature=goal.signature, slots=list(goal.slots), steps=steps,
                 tools_used=list(dict.fromkeys(s.tool for s in steps)),
                 estimated_cost_usd=0.02 + 0.01 * len(steps), estimated_time_secs=8.0,
                 usage_count=usage, success_count=success, failure_count=usage - success,
                 success_rating=success / usage, demoted=demoted)


@dataclass
class Stored:
    """What the benchmark remembers of a stored trace, to derive query goals from it."""

    template: int
    values: dict[str, str]
    replayable: bool


@dataclass
class Population:
    gen: Generator
    stored: list[Stored] = field(default_factory=list)
    per_signature: Counter[str] = field(default_factory=Counter)

    def known(self, goal: str) -> bool:
        """Whether a stored goal has the signature of ``goal``."""
        return analyze_goal(goal).signature in self.per_signature

    def make(self) -> Trace:
        rng = self.gen.rng
        while True:
            template = rng.randrange(len(TEMPLATES))
            values = self.gen.slots(TEMPLATES[template][0])
            goal = analyze_goal(TEMPLATES[template][0].format(**values))
            if self.per_signature[goal.signature] < MAX_PER_SIGNATURE:
                break
        self.per_signature[goal.signature] += 1
        roll = rng.random()
        demoted, poor = roll < 0.03, 0.03 <= roll < 0.08
        self.stored.append(Stored(template, values, not (demoted or poor)))
        return build_trace(template, values, demoted, poor)


# --------------------------------------------------------------------------- query goals


def query_goals(pop: Population, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, goal): exact repeats (of proven traces: "exact", of demoted or poorly rated
    ones: "exact_unproven"), slot variants, near misses and novel goals."""
    gen = pop.gen
    out: list[tuple[str, str]] = []
    per_kind = count // 4
    for _ in range(per_kind):
        s = rng.choice(pop.stored)
        kind = "exact" if s.replayable else "exact_unproven"  # demoted or poorly rated
        out.append((kind, TEMPLATES[s.template][0].format(**s.values)))
    for _ in range(per_kind):
        s = rng.choice(pop.stored)
        fmt = TEMPLATES[s.template][0]
        fresh = gen.slots(fmt, words={k: v for k, v in s.values.items() if k.startswith("w")})
        out.append(("slot_variant", fmt.format(**fresh)))
    for n in range(per_kind):
        s = rng.choice(pop.stored)
        fmt = TEMPLATES[s.template][0]
        goal = fmt.format(**s.values)
        how = n % 3
        if how == 0:  # opposite action
            first, rest = goal.split(" ", 1)
            goal = f"{OPPOSITE[first.lower()]} {rest}"
        elif how == 1:  # other object: one content word replaced, a goal never stored
            w = next((k for k in ("w1", "w2", "w3") if k in s.values), None)
            if w is None:
                goal = goal.replace(" of ", " of the old ", 1)
            else:
                other = dict(s.values)
                while other[w] == s.values[w] or pop.known(fmt.format(**other)):
                    other[w] = gen.word()
                goal = fmt.format(**other)
        else:  # negation
            goal += rng.choice((" without any comments", " but do not overwrite anything",
                                " and never touch the tests"))
        out.append(("near_miss", goal))
    for n in range(count - 3 * per_kind):
        # half of them new tasks, half known templates with words never stored with them
        while True:  # novel: no stored goal has its signature
            fmt = rng.choice(NOVEL_TEMPLATES) if n % 2 == 0 else rng.choice(WORDY)[0]
            goal = fmt.format(**gen.slots(fmt))
            if not pop.known(goal):
                break
        out.append(("novel", goal))
    rng.shuffle(out)
    return out


# --------------------------------------------------------------------------- timing


class TimedCursor:
    """One statement's cursor: the time to run it and to fetch each row is added to its
    entry (rows are read as the caller reads them, so a walk that stops early is timed as
    it ran)."""

    def __init__(self, cursor: Any, totals: list[float], started: float) -> None:
        self.cursor, self.totals = cursor, totals
        self.index = len(totals)
        totals.append(time.perf_counter() - started)

    def _timed(self, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.totals[self.index] += time.perf_counter() - start

    def fetchone(self) -> Any:
        return self._timed(self.cursor.fetchone)

    def fetchall(self) -> list[Any]:
        return self._timed(self.cursor.fetchall)

    def __iter__(self):
        while True:
            row = self._timed(self.cursor.fetchone)
            if row is None:
                return
            yield row


class TimedDatabase:
    """Stands in for ``SqliteMemory.db`` while profiling: every statement timed, by text."""

    def __init__(self, db: Any, totals: dict[str, list[float]]) -> None:
        self._db, self._totals = db, totals

    def execute(self, sql: str, params: Any = ()) -> TimedCursor:
        start = time.perf_counter()
        cursor = self._db.execute(sql, params)
        return TimedCursor(cursor, self._totals[" ".join(sql.split())], start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@contextmanager
def phase_timers(memory: Any, phases: dict[str, float]):
    """Time the phases of ``route`` by wrapping what it calls (nothing is edited)."""
    originals = {name: getattr(matching, name) for name in ("analyze_goal", "judge")}
    bound = {name: getattr(memory, name) for name in ("find_traces", "search_traces")}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] += time.perf_counter() - start
        return wrapper

    for name, fn in originals.items():
        setattr(matching, name, timed(name, fn))
    for name, fn in bound.items():
        setattr(memory, name, timed(name, fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(matching, name, fn)
        for name in bound:
            delattr(memory, name)


def fts_expansion(memory: Any, goals: list[tuple[str, str]]) -> dict[str, Any]:
    """The query terms ``candidates`` sends to full-text search, and how many rows each
    term pulls out of FTS5 into Python (at most ``text.MAX_POSTINGS`` per term; when
    every term is common, the 10 newest rows of the rarest one's postings, read from
    their end)."""
    from llmos.memory.text import is_common, prefix_upper, query_terms, selective_terms

    db = memory.db
    total = db.execute("SELECT df FROM memory_trace_terms WHERE term = ''").fetchone()[0]
    pulled: list[int] = []
    sizes: dict[str, int] = {}
    uses: Counter[str] = Counter()
    for _, text in goals:
        goal = analyze_goal(text)
        query = " ".join(matching.content_words(matching.words(goal.normalized))) or text
        terms = query_terms(query)
        bounds = {t: db.execute("SELECT coalesce(sum(df), 0) FROM memory_trace_terms"
                                " WHERE term >= ? AND term < ?",
                                (t, prefix_upper(t))).fetchone()[0] for t in terms}
        rows = 0
        chosen = selective_terms(terms, bounds, total)
        if len(chosen) == 1 and is_common(bounds[chosen[0]], total):
            pulled.append(10)  # every term common: the newest, from the postings' end
            continue
        for term in chosen:
            if term not in sizes:
                sizes[term] = db.execute(
                    "SELECT count(*) FROM memory_trace_fts WHERE memory_trace_fts MATCH ?",
                    (f'"{term}"*',)).fetchone()[0]
            rows += sizes[term]
            uses[term] += 1
        pulled.append(rows)
    ordered = sorted(pulled)
    heavy = sorted(uses, key=lambda t: -sizes[t] * uses[t])[:12]
    return {
        "traces": total,
        "rows_pulled_per_route": {"median": statistics.median(ordered),
                                  "p99": ordered[min(len(ordered) - 1,
                                                     round(0.99 * len(ordered)) - 1)],
                                  "max": ordered[-1]},
        "heaviest_terms": [{"term": t, "rows": sizes[t], "share": round(sizes[t] / total, 3),
                            "routes_using_it": uses[t]} for t in heavy],
    }


def profile(llm_os: LLMOS, goals: list[tuple[str, str]], backend: str) -> dict[str, Any]:
    memory = llm_os.kernel.memory
    n = len(goals)
    phases: dict[str, float] = defaultdict(float)
    total = 0.0
    with phase_timers(memory, phases):
        for _, goal in goals:
            start = time.perf_counter()
            llm_os.route(goal)
            total += time.perf_counter() - start
    breakdown = {name: round(sec / n * 1e3, 3) for name, sec in sorted(phases.items())}
    breakdown["rest (bids, choose, economy, as_dict)"] = round(
        (total - sum(phases.values())) / n * 1e3, 3)
    breakdown["total"] = round(total / n * 1e3, 3)
    result: dict[str, Any] = {"mean_ms_per_route": breakdown}

    # the slowest goals, phase by phase
    slow = []
    for kind, goal in goals:
        phases.clear()
        with phase_timers(memory, phases):
            start = time.perf_counter()
            llm_os.route(goal)
            elapsed = time.perf_counter() - start
        slow.append((elapsed, kind, goal, {k: round(v * 1e3, 3) for k, v in phases.items()}))
    slow.sort(reverse=True)
    result["slowest_goals"] = [
        {"ms": round(e * 1e3, 3), "kind": k, "goal": g, "phases_ms": p}
        for e, k, g, p in slow[:5]]

    if backend == "sqlite":
        totals: dict[str, list[float]] = defaultdict(list)
        real = memory.db
        memory.db = TimedDatabase(real, totals)
        try:
            for _, goal in goals:
                llm_os.route(goal)
        finally:
            memory.db = real
        result["sql_per_route"] = sorted(
            ({"sql": sql[:160], "calls_per_route": round(len(t) / n, 2),
              "ms_per_route": round(sum(t) / n * 1e3, 3),
              "max_single_ms": round(max(t) * 1e3, 3)} for sql, t in totals.items()),
            key=lambda row: -row["ms_per_route"])

    if backend == "sqlite":
        result["fts_expansion"] = fts_expansion(memory, goals)

    profiler = cProfile.Profile()
    profiler.enable()
    for _, goal in goals:
        llm_os.route(goal)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(18)
    result["cprofile_tottime_top"] = stream.getvalue()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(25)
    result["cprofile_cumulative_top"] = stream.getvalue()
    return result


def measure_routes(llm_os: LLMOS, goals: list[tuple[str, str]], passes: int
                   ) -> dict[str, Any]:
    """Route every goal ``passes`` times. The first pass is the headline (wall time, as a
    user sees it); CPU time and each goal's best of all passes show how much of the tail
    is other processes taking the CPU rather than work done by ``route``."""
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    best: dict[str, list[float]] = defaultdict(list)
    chosen: dict[str, Counter[str]] = defaultdict(Counter)
    why_not: dict[str, Counter[str]] = defaultdict(Counter)
    flagged = []
    runs: list[list[float]] = [[] for _ in goals]
    for n in range(passes):
        for index, (kind, goal) in enumerate(goals):
            c0, t0 = time.thread_time(), time.perf_counter()
            routed = llm_os.route(goal)
            elapsed, used = time.perf_counter() - t0, time.thread_time() - c0
            runs[index].append(elapsed)
            if n:
                continue
            for key in (kind, "all"):
                wall[key].append(elapsed)
                cpu[key].append(used)
            chosen[kind][routed["chosen"]] += 1
            replayed = routed["chosen"] == "FOLLOWER"
            if replayed != (kind == "exact") and kind in ("exact", "near_miss", "novel"):
                # a near miss or novel goal replayed, or a proven exact repeat not replayed
                flagged.append({"kind": kind, "goal": goal, "matched": routed["matched_trace"]})
            if kind in ("exact", "slot_variant") and routed["chosen"] != "FOLLOWER":
                reason = (routed["matched_trace"] or {}).get("reason", "no candidate")
                why_not[kind][re.sub(r"'[^']*'|\(.*\)|:.*", "", reason).strip()] += 1
    for (kind, _), samples in zip(goals, runs, strict=True):
        best[kind].append(min(samples))
        best["all"].append(min(samples))
    return {
        "latency": {k: quantiles_ms(v) for k, v in wall.items()},
        "cpu": {k: quantiles_ms(v) for k, v in cpu.items()},
        "best_of_passes": {k: quantiles_ms(v) for k, v in best.items()},
        "chosen": {k: dict(v) for k, v in chosen.items()},
        "not_follower_because": {k: dict(v) for k, v in why_not.items()},
        "wrong_choice": flagged,
    }


# --------------------------------------------------------------------------- driver


def fill(memory: Any, pop: Population, upto: int, rate_sample: list[float]) -> float:
    start = time.perf_counter()
    kept = memory.count_traces() >= upto  # a store kept by --keep: same seed, same traces
    while len(pop.stored) < upto:
        t0 = time.perf_counter()
        trace = pop.make()
        if not kept:
            memory.save_trace(trace)
            rate_sample.append(time.perf_counter() - t0)
    return time.perf_counter() - start


CLI_VARIANTS = ("store", "store_no_daemon", "empty_store", "empty_store_no_daemon",
                "bare_python")


def cli_route(workspace: Path, empty: Path, goals: list[tuple[str, str]], settings: list[str],
              runs: int) -> dict[str, Any]:
    """``llmos route GOAL --json`` as a fresh process, interleaved round by round with its
    baselines: on the store and on an empty store, each through the ``llmos`` command as
    installed (engineer A's command daemon when it is there) and with ``LLMOS_DAEMON=0``
    (a whole interpreter every time), and a bare interpreter (``python -c pass``). A first
    round is reported apart (``first_call_ms``: a daemon starts for the workspace then),
    ``runs`` more make the quantiles. Wall and CPU of each process (``os.wait4``; with a
    daemon, CPU is the thin client's only),
    then the peak RSS of three more routes on the store without the daemon (with it, the
    work is done in a forked server, not in the process measured)."""
    import subprocess

    exe = shutil.which("llmos") or str(Path(sys.executable).parent / "llmos")
    sets = [x for s in settings for x in ("--set", s)]
    for ws in (workspace, empty):  # an empty store has no balance yet
        subprocess.run([exe, "--workspace", str(ws), *sets, "budget", "set", str(BUDGET_USD)],
                       check=True, capture_output=True)
    base_env = dict(os.environ)
    no_daemon = {**base_env, "LLMOS_DAEMON": "0"}

    def command(variant: str, goal: str) -> tuple[list[str], dict[str, str]]:
        if variant == "bare_python":
            return [sys.executable, "-c", "pass"], base_env
        ws = workspace if variant.startswith("store") else empty
        env = no_daemon if variant.endswith("no_daemon") else base_env
        return [exe, "--workspace", str(ws), *sets, "route", goal, "--json"], env

    walls: dict[str, list[float]] = defaultdict(list)
    cpus: dict[str, list[float]] = defaultdict(list)
    first: dict[str, float] = {}
    for round_, (_, goal) in enumerate(goals[:runs + 1]):
        for variant in CLI_VARIANTS:
            argv, env = command(variant, goal)
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            err = proc.stderr.read() if proc.stderr else b""
            if proc.stderr:
                proc.stderr.close()
            if proc.returncode:
                raise RuntimeError(f"{variant}: {argv[0]} failed ({proc.returncode}): "
                                   f"{err.decode()[-500:]}")
            if round_ == 0:  # the first call (a daemon for the workspace starts then)
                first[variant] = elapsed
                continue
            walls[variant].append(elapsed)
            cpus[variant].append(usage.ru_utime + usage.ru_stime)
    out: dict[str, Any] = {v: {"wall": quantiles_ms(walls[v]), "cpu": quantiles_ms(cpus[v]),
                               "first_call_ms": round(first[v] * 1e3, 1)}
                           for v in CLI_VARIANTS}
    out["store"]["over_empty_store_ms"] = round(
        statistics.median(a - b for a, b in zip(walls["store"], walls["empty_store"],
                                                strict=True)) * 1e3, 2)
    out["store_no_daemon"]["over_empty_store_ms"] = round(
        statistics.median(a - b for a, b in zip(walls["store_no_daemon"],
                                                walls["empty_store_no_daemon"],
                                                strict=True)) * 1e3, 2)
    # peak memory: the child's own VmHWM, read as it exits (ru_maxrss of a child counts the
    # pages of this benchmark's process it was forked from, which holds the population)
    rss = []
    for _, goal in goals[:min(runs, 3)]:
        done = subprocess.run(
            [sys.executable, "-c", _PEAK_RSS, "--workspace", str(workspace), *sets, "route",
             goal, "--json"], capture_output=True, text=True, check=True, env=no_daemon)
        rss += [int(line.split()[1]) / 1024 for line in done.stderr.splitlines()
                if line.startswith("VmHWM:")]
    out["store_no_daemon"]["max_rss_mib"] = round(max(rss), 1) if rss else None
    out["store_no_daemon"]["median_rss_mib"] = round(statistics.median(rss), 1) if rss else None
    return out


_WRITE_RSS = """
import json, sys, time
from llmos import cheap_imports
cheap_imports.install()  # as the llmos command does: no pandas under sqlite_utils
from llmos.memory.markdown import MarkdownMemory
from llmos.memory.sqlite import SqliteMemory
from llmos.goals import analyze_goal
from llmos.memory.models import Step, Trace
def make_trace(text):
    goal = analyze_goal(text)
    return Trace(goal_text=goal.text, normalized_goal=goal.normalized,
                 goal_signature=goal.signature, slots=list(goal.slots), tools_used=['Write'],
                 steps=[Step(tool='Write', input={'file_path': 'x.txt', 'content': text})])
backend, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
def hwm():
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) / 1024 for l in f if l.startswith('VmHWM:'))
opened = time.perf_counter()
store = SqliteMemory(path) if backend == 'sqlite' else MarkdownMemory(path)
before = store.count_traces()
opened = time.perf_counter() - opened
at_open = hwm()
saves, ids = [], []
for n in range(count):
    trace = make_trace(f'Write bench_extra_{n}.txt with the extra line {n}')
    t0 = time.perf_counter()
    store.save_trace(trace)
    saves.append(time.perf_counter() - t0)
    ids.append(trace.id)
after_saves = hwm()
for trace_id in ids:
    store.delete_trace(trace_id)
assert store.count_traces() == before
store.close()
saves.sort()
print(json.dumps({'open_s': round(opened, 3), 'peak_rss_mib_after_open': round(at_open, 1),
                  'peak_rss_mib_after_saves': round(after_saves, 1),
                  'peak_rss_mib': round(hwm(), 1),
                  'saves': count, 'save_p50_ms': round(saves[len(saves) // 2] * 1e3, 2),
                  'save_max_ms': round(saves[-1] * 1e3, 2)}))
"""


def write_rss(backend: str, workspace: Path, count: int = 200) -> dict[str, Any]:
    """The memory a writer needs at this size: a fresh process opens the store, saves
    ``count`` traces (the fill's path: ``save_trace``, redaction and index upkeep) and
    deletes them again; its peak RSS after the open and after the saves, and the save
    latency. Stays flat with N when nothing is held per record."""
    import subprocess

    path = (workspace / ".llmos" / "llmos.db") if backend == "sqlite" else workspace / "memory"
    done = subprocess.run([sys.executable, "-c", _WRITE_RSS, backend, str(path), str(count)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


_PEAK_RSS = """
import atexit, sys
def peak():
    with open('/proc/self/status') as f:
        sys.stderr.write(''.join(line for line in f if line.startswith('VmHWM:')))
atexit.register(peak)
from llmos.cli import main
sys.argv = ['llmos', *sys.argv[1:]]
sys.exit(main())
"""


def store_open(backend: str, workspace: Path) -> dict[str, Any]:
    """The memory backend alone, opened as a new process would (a fresh handle): the time
    to construct it and to answer its first query (a count, which refreshes a markdown
    index), so that a per-process cost of the store shows here and not only inside
    ``llmos route``."""
    from llmos.memory.markdown import MarkdownMemory
    from llmos.memory.sqlite import SqliteMemory

    t0 = time.perf_counter()
    if backend == "sqlite":
        (workspace / ".llmos").mkdir(exist_ok=True)
        memory: Any = SqliteMemory(workspace / ".llmos" / "llmos.db")
    else:
        memory = MarkdownMemory(workspace / "memory")
    opened = time.perf_counter() - t0
    count = memory.count_traces()
    first = time.perf_counter() - t0
    memory.close()
    return {"construct_ms": round(opened * 1e3, 2), "construct_and_count_ms": round(first * 1e3, 2),
            "traces": count}


def workspace_for(workdir: Path, backend: str, size: int, sizes: list[int]) -> Path:
    """One workspace per backend and size (``--keep`` reuses it): a new one starts as a
    copy of the largest smaller one already filled."""
    path = workdir / f"{backend}-{size}"
    if not path.exists():
        smaller = [s for s in sizes if s < size and (workdir / f"{backend}-{s}").exists()]
        if smaller:
            shutil.copytree(workdir / f"{backend}-{max(smaller)}", path, symlinks=True)
        else:
            path.mkdir(parents=True)
    return path


async def run_backend(backend: str, sizes: list[int], args: argparse.Namespace,
                      workdir: Path) -> list[dict[str, Any]]:
    from llmos.memory.markdown import RACY_NS, MarkdownMemory

    rng = random.Random(args.seed)
    pop = Population(Generator(rng, vocabulary(random.Random(args.seed))))
    empty = workdir / f"{backend}-empty"
    empty.mkdir(exist_ok=True)
    settings = [f"memory.backend={backend}"]
    rows = []
    started = time.perf_counter()
    for size in sizes:
        saves: list[float] = []
        if backend == "markdown" and time.perf_counter() - started > args.markdown_budget_s:
            print(f"markdown {size}: skipped, {time.perf_counter() - started:.0f} s already "
                  f"spent (--markdown-budget-s {args.markdown_budget_s})", flush=True)
            break
        workspace = workspace_for(workdir, backend, size, sizes)
        if backend == "sqlite":
            async with LLMOS(workspace, budget_usd=BUDGET_USD, settings=settings) as llm_os:
                fill_s = fill(llm_os.kernel.memory, pop, size, saves)
        else:
            store = MarkdownMemory(workspace / "memory", durable=False)
            fill_s = fill(store, pop, size, saves)
            store.close()
            if saves:
                time.sleep(RACY_NS / 1e9 + 0.2)  # let the index settle (see RACY_NS)
        goals = query_goals(pop, args.goals, random.Random(args.seed + size))
        warmup = query_goals(pop, 20, random.Random(args.seed - size))
        gc.collect()  # the population is this benchmark's, not llmos's: out of the GC's
        gc.freeze()  # scans (a full collection of it was a 30-40 ms pause mid-route)
        opens = {"store_first_open": store_open(backend, workspace)}  # may update an index
        opens["store_open"] = store_open(backend, workspace)
        opens["store_open_empty"] = store_open(backend, empty)
        t0 = time.perf_counter()
        async with LLMOS(workspace, budget_usd=BUDGET_USD, settings=settings) as llm_os:
            opened_s = time.perf_counter() - t0
            llm_os.route(warmup[0][1])
            first_route_s = time.perf_counter() - t0 - opened_s
            for _, goal in warmup[1:]:
                llm_os.route(goal)
            assert llm_os.kernel.memory.count_traces() == size
            row: dict[str, Any] = {
                "backend": backend, "traces": size,
                "fill": {"seconds": round(fill_s, 1),
                         "added": len(saves),
                         "per_second": round(len(saves) / fill_s, 1) if fill_s else None,
                         "save_trace": quantiles_ms(saves),
                         "durable": backend == "sqlite"},
                "opens": opens,
                "llmos_open_s": round(opened_s, 3),
                "first_route_s": round(first_route_s, 3),
                "signatures_max_traces": max(pop.per_signature.values()),
            }
            row["load_average"] = os.getloadavg()
            row.update(measure_routes(llm_os, goals, args.passes))
        async with LLMOS(empty, budget_usd=BUDGET_USD, settings=settings) as llm_os:
            row["empty_store"] = measure_routes(llm_os, goals, 1)["latency"]["all"]
        if args.cli_routes:  # whole processes, next to the same command on an empty store
            row["cli_route"] = cli = cli_route(workspace, empty, goals, settings,
                                               args.cli_routes)
            row["load_average_after"] = os.getloadavg()
            print("  llmos route as a process, wall p50 / p90 ms (CPU p50), interleaved:",
                  flush=True)
            for variant in CLI_VARIANTS:
                extra = (f", {cli[variant]['over_empty_store_ms']:+.1f} ms over the empty"
                         " store" if "over_empty_store_ms" in cli[variant] else "")
                wall, cpu = cli[variant]["wall"], cli[variant]["cpu"]
                print(f"    {variant:<24} {wall['p50_ms']:>6.0f} / {wall['p90_ms']:>4.0f}"
                      f" ({cpu['p50_ms']:.0f}); first call {cli[variant]['first_call_ms']:.0f}"
                      f"{extra}", flush=True)
            print(f"    peak RSS of llmos route (no daemon): "
                  f"{cli['store_no_daemon']['max_rss_mib'] or 0:.1f} MiB", flush=True)
        print(f"  store open (new handle + first count): first "
              f"{opens['store_first_open']['construct_and_count_ms']:.1f} ms, again "
              f"{opens['store_open']['construct_and_count_ms']:.1f} ms, empty store "
              f"{opens['store_open_empty']['construct_and_count_ms']:.1f} ms; LLMOS open "
              f"{row['llmos_open_s'] * 1e3:.0f} ms, first route {row['first_route_s'] * 1e3:.0f}"
              f" ms; in-process route on an empty store p99 {row['empty_store']['p99_ms']:.2f}"
              f" ms; load average {row['load_average'][0]:.2f}", flush=True)
        async with LLMOS(workspace, budget_usd=BUDGET_USD, settings=settings) as llm_os:
            p99 = row["latency"]["all"]["p99_ms"]
            target = TARGET_P99_MS if backend == "sqlite" else TARGET_MARKDOWN_P99_MS
            row["target_p99_ms"] = target
            row["target_met"] = p99 <= target
            print(format_row(row), flush=True)
            if args.profile or (size == max(sizes) and not row["target_met"]):
                row["profile"] = profile(llm_os, goals, backend)
                print_profile(row)
        if args.write_rss:  # last: its changes would make a markdown index rescan
            row["writer"] = write_rss(backend, workspace, args.write_rss)
            print(f"  a writer process: open {row['writer']['open_s'] * 1e3:.0f} ms, peak RSS "
                  f"{row['writer']['peak_rss_mib_after_open']:.1f} MiB after the open, "
                  f"{row['writer']['peak_rss_mib_after_saves']:.1f} MiB after "
                  f"{row['writer']['saves']} saves (p50 {row['writer']['save_p50_ms']:.1f} ms), "
                  f"{row['writer']['peak_rss_mib']:.1f} MiB after deleting them and counting"
                  " again", flush=True)
        rows.append(row)
    return rows


def family_values(gen: Generator, fmt: str, like: dict[str, str]) -> dict[str, str]:
    """Fresh slot values for ``fmt`` with the content words and file kinds of ``like``:
    the same goal signature."""
    values = gen.slots(fmt, words={k: v for k, v in like.items() if k.startswith("w")})
    for key in ("f", "g"):
        if key in values:
            values[key] = values[key].rsplit(".", 1)[0] + "." + like[key].rsplit(".", 1)[1]
    if values.get("f") == values.get("g") and "g" in values:
        values["g"] = "out_" + values["g"]
    return values


async def full_families(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Routing where one signature holds ``matching.FAMILY_LIMIT`` traces (12), all
    judged against each other: the main stores hold at most 3 per signature, but a slot
    variant the evidence cannot settle is learned again and stored, so a family grows. A
    small sqlite store (one family per template), an exact repeat and two slot variants
    per template, routed ``--passes`` times: CPU of the first pass and chosen modes."""
    rng = random.Random(args.seed + 7)
    gen = Generator(rng, vocabulary(random.Random(args.seed)))
    workspace = workdir / "sqlite-families"
    fresh = not workspace.exists()
    workspace.mkdir(parents=True, exist_ok=True)
    settings = ["memory.backend=sqlite"]
    goals: list[tuple[str, str]] = []
    async with LLMOS(workspace, budget_usd=BUDGET_USD, settings=settings) as llm_os:
        memory = llm_os.kernel.memory
        for template, (fmt, _) in enumerate(TEMPLATES):
            first = gen.slots(fmt)
            signature = analyze_goal(fmt.format(**first)).signature
            stored = [first]
            while len(stored) < matching.FAMILY_LIMIT:
                values = family_values(gen, fmt, first)
                if analyze_goal(fmt.format(**values)).signature == signature:
                    stored.append(values)
            if fresh:
                for values in stored:
                    memory.save_trace(build_trace(template, values))
            goals.append(("exact", fmt.format(**rng.choice(stored))))
            for _ in range(2):
                goals.append(("slot_variant", fmt.format(**family_values(gen, fmt, first))))
        for _, goal in goals[:5]:
            llm_os.route(goal)
        measured = measure_routes(llm_os, goals, args.passes)
    return {"traces_per_signature": matching.FAMILY_LIMIT, "signatures": len(TEMPLATES),
            "goals": len(goals), "cpu": measured["cpu"], "latency": measured["latency"],
            "best_of_passes": measured["best_of_passes"], "chosen": measured["chosen"]}


HEADER = (f"{'backend':<9}{'traces':>8} | {'fill s':>7} {'saves/s':>8} | "
          f"{'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} | "
          f"{'cpu p50':>7} {'cpu p99':>7} | {'best p99':>8} | target (5 / 20 ms)")


def format_row(row: dict[str, Any]) -> str:
    wall, cpu = row["latency"]["all"], row["cpu"]["all"]
    return (f"{row['backend']:<9}{row['traces']:>8} | {row['fill']['seconds']:>7.1f} "
            f"{row['fill']['per_second'] or 0:>8.0f} | {wall['p50_ms']:>7.2f} "
            f"{wall['p90_ms']:>7.2f} {wall['p99_ms']:>7.2f} {wall['max_ms']:>7.2f} | "
            f"{cpu['p50_ms']:>7.2f} {cpu['p99_ms']:>7.2f} | "
            f"{row['best_of_passes']['all']['p99_ms']:>8.2f} | "
            f"{'met' if row['target_met'] else 'MISSED'}")


def print_profile(row: dict[str, Any]) -> None:
    prof = row["profile"]
    print(f"\n  profile, {row['backend']} at {row['traces']} traces: mean ms per route")
    for name, ms in prof["mean_ms_per_route"].items():
        print(f"    {name:<40} {ms:>8.3f}")
    if "sql_per_route" in prof:
        print("  SQL statements, by time per route:")
        for q in prof["sql_per_route"][:8]:
            print(f"    {q['ms_per_route']:>7.3f} ms  x{q['calls_per_route']:<5} "
                  f"(max {q['max_single_ms']:.2f} ms)  {q['sql'][:110]}")
    if "fts_expansion" in prof:
        fx = prof["fts_expansion"]
        print(f"  FTS rows pulled into Python per route: {fx['rows_pulled_per_route']}")
        print("  heaviest query terms (rows each pulls, share of traces, routes using it):")
        print("    " + ", ".join(f"{t['term']} {t['rows']} ({t['share']:.0%}, "
                                 f"x{t['routes_using_it']})" for t in fx["heaviest_terms"]))
    print("  slowest goals:")
    for s in prof["slowest_goals"]:
        print(f"    {s['ms']:>7.2f} ms {s['kind']:<12} {s['goal'][:70]!r} {s['phases_ms']}")
    print("  cProfile, by own time:")
    lines = prof["cprofile_tottime_top"].splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    for line in lines[start:start + 16]:
        print("    " + line[:150])
    print(flush=True)


KINDS = ("exact", "exact_unproven", "slot_variant", "near_miss", "novel")


def growth_with_n(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per backend, the CPU time of a route at each size, and the ratio of the largest
    size's to the smallest's: flat (about 1) when no work per query grows with N."""
    table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in results:
        cpu = row["cpu"]
        table[row["backend"]].append({
            "traces": row["traces"], "cpu_p50_ms": cpu["all"]["p50_ms"],
            "cpu_p99_ms": cpu["all"]["p99_ms"], "wall_p99_ms": row["latency"]["all"]["p99_ms"],
            "cpu_p99_ms_by_kind": {k: cpu[k]["p99_ms"] for k in KINDS if k in cpu}})
    lines = [f"{'backend':<9}{'traces':>8} {'p50':>6} {'p99':>6} {'wall p99':>9} | "
             + " ".join(f"{k[:12]:>12}" for k in KINDS)]
    for backend, rows in table.items():
        rows.sort(key=lambda r: r["traces"])
        for r in rows:
            lines.append(f"{backend:<9}{r['traces']:>8} {r['cpu_p50_ms']:>6.2f} "
                         f"{r['cpu_p99_ms']:>6.2f} {r['wall_p99_ms']:>9.2f} | "
                         + " ".join(f"{r['cpu_p99_ms_by_kind'].get(k, 0):>12.2f}"
                                    for k in KINDS))
        if len(rows) > 1:
            lo, hi = rows[0], rows[-1]
            lines.append(f"{backend:<9}{'ratio':>8} {hi['cpu_p50_ms'] / lo['cpu_p50_ms']:>6.2f} "
                         f"{hi['cpu_p99_ms'] / lo['cpu_p99_ms']:>6.2f}   ({hi['traces']} "
                         f"traces against {lo['traces']}: {hi['traces'] // lo['traces']}x N)")
    return {"table": dict(table), "lines": lines}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="sqlite store sizes")
    parser.add_argument("--markdown-sizes", default="1000,10000,100000",
                        help="markdown store sizes ('' to skip)")
    parser.add_argument("--markdown-budget-s", type=float, default=1800.0,
                        help="no further markdown size once this many seconds are spent")
    parser.add_argument("--goals", type=int, default=300, help="goals routed per size")
    parser.add_argument("--passes", type=int, default=3,
                        help="times each goal is routed (the first pass is the headline)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", action="store_true",
                        help="profile every size (default: only a largest size that misses)")
    parser.add_argument("--cli-routes", type=int, default=9,
                        help="`llmos route` processes timed per size (0: none)")
    parser.add_argument("--write-rss", type=int, default=200,
                        help="traces a separate writer process saves (and deletes) per size,"
                        " for its peak RSS (0: none)")
    parser.add_argument("--families", type=int, default=1,
                        help="also route on signatures holding FAMILY_LIMIT traces (0: no)")
    parser.add_argument("--keep", metavar="DIR",
                        help="fill the stores in DIR and keep them; a later run with the same "
                        "--keep, --seed and sizes reuses them (e.g. to route with a baseline "
                        "revision on PYTHONPATH over the very same store)")
    parser.add_argument("--out", default=str(RESULTS_DIR / "route_latency.json"))
    args = parser.parse_args(argv)
    home = isolate_environment()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="llmos-bench-route-"))
    workdir.mkdir(parents=True, exist_ok=True)
    began, wall_start = time.perf_counter(), time.time()
    print(HEADER)
    print("-" * len(HEADER))
    results: list[dict[str, Any]] = []
    families: dict[str, Any] | None = None
    try:
        plan = [("sqlite", args.sizes), ("markdown", args.markdown_sizes)]
        for backend, sizes in plan:
            parsed = sorted(int(s) for s in sizes.split(",") if s.strip())
            if parsed:
                results += asyncio.run(run_backend(backend, parsed, args, workdir))
        if args.families:
            families = asyncio.run(full_families(workdir, args))
            cpu = families["cpu"]
            print(f"\nfull families ({families['traces_per_signature']} traces per signature, "
                  f"{families['signatures']} signatures, sqlite): CPU p50 / p99 ms "
                  + ", ".join(f"{k} {cpu[k]['p50_ms']:.2f} / {cpu[k]['p99_ms']:.2f}"
                              for k in ("all", "exact", "slot_variant")), flush=True)
            print(f"  chosen {families['chosen']}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    runtime = time.perf_counter() - began
    for row in results:
        kinds = {k: v["p99_ms"] for k, v in row["latency"].items() if k != "all"}
        print(f"{row['backend']} {row['traces']}: p99 ms by kind {kinds}")
        print(f"  chosen {row['chosen']}")
        print(f"  exact repeats / slot variants not replayed because "
              f"{row['not_follower_because']}")
        for bad in row["wrong_choice"]:
            print(f"  UNEXPECTED ({bad['kind']}): {bad['goal']!r} -> {bad['matched']}")
    growth = growth_with_n(results)
    print("\nhow the cost grows with N (CPU ms per route, first pass; p99 per goal kind):")
    for line in growth["lines"]:
        print("  " + line)
    print(f"total runtime {runtime:.0f} s")
    code = code_fingerprint(wall_start)
    changed = [name for name, c in code.items() if c["changed_during_run"]]
    if changed:
        print(f"WARNING: changed while this ran (figures may mix versions): {changed}")
    report = {**machine(), "code": code, "target_p99_ms": TARGET_P99_MS,
              "goals_per_size": args.goals, "seed": args.seed, "runtime_s": round(runtime, 1),
              "growth_with_n": growth["table"], "full_families": families,
              "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
