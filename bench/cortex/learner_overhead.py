"""What the kernel adds to a LEARNER run: the same scripted conversation (Write, Bash, a
final answer) run several ways, each as a fresh process, interleaved round by round (issue
12), so every ratio pairs runs of the same round:

1. ``llmos run GOAL`` as a user types it: through the command daemon when one serves it
   (``llmos``: a pre-warmed fork server; started by the warm-up round, in the benchmark's
   own ``LLMOS_DAEMON_DIR``), and in process (``llmos, LLMOS_DAEMON=0``). LEARNER: the
   kernel, the policy gate through the SDK's hooks, the metering proxy, the ledger, the
   transcript mirror, trace capture;
2. the Claude Agent SDK alone (``query()`` with the same tools, no llmos), in Python
   (``sdk``), and with the sandbox llmos gives Claude Code's Bash (``sdk+sandbox``,
   ``sandbox=`` of ``ClaudeAgentOptions``). llmos always runs Bash sandboxed, so
   ``llmos / sdk+sandbox`` is what the kernel itself adds and ``llmos / sdk`` what it adds
   with the sandbox included;
3. the bundled Claude Code CLI alone (``claude -p`` with the same permission flags), bare
   and with the sandbox flags (``--settings``), so the sandbox's own cost is reported on
   its own (``cli+sandbox / cli``);
4. with ``--baseline REF``: llmos of git revision REF (``git archive`` of ``core`` first on
   ``PYTHONPATH``, in process), for a before/after in the same rounds;
5. with ``--cold``: ``llmos, LLMOS_DAEMON=0`` and ``sdk`` with no bytecode cache at all
   (``PYTHONDONTWRITEBYTECODE=1`` and an empty ``PYTHONPYCACHEPREFIX`` per run: every
   module is compiled from source).

Run from the repository root with the llmos environment active:

    python bench/cortex/learner_overhead.py              # 5 rounds
    python bench/cortex/learner_overhead.py --rounds 9 --cold --baseline 91573c2

Each run talks to a fresh ``ScriptedModelServer`` on 127.0.0.1 (in this process, so its
CPU is counted in none of them). Reported per way: median wall and CPU time. CPU is user
+ system of the process and every child it waited for (Claude Code's node process,
bwrap); for a run the daemon served, the daemon's own CPU and its waited-for children's
(the forked command and what it started) are added, read from ``/proc/PID/stat`` before
and after, so the thin client's small figure does not flatter it. Whether each daemon run
was really served by the daemon is counted (``served``); one that ran in process instead
(the daemon stopped because llmos's files changed: it is restarted before the next, outside
the timing) is left out of the daemon's figures and of their paired ratios.

Next to the whole process, the in-process figures: llmos's ``duration_s`` (from routing to
the settled run: the interpreter's start-up, llmos's imports and exit are the rest; in
process it includes importing claude_agent_sdk, which the daemon has preloaded) and the
SDK script's own clock, ``query`` (building the options to the last message) and
``import+query`` (from ``import claude_agent_sdk`` on). Their paired ratios: the daemon's
``duration_s`` over the SDK's ``query`` (both with the SDK imported already), the in-process
``duration_s`` over ``import+query`` (both importing it). The target (issue 12) is
llmos <= 1.10 x the SDK alone. The probe caches live in the run's own folder
(``LLMOS_CACHE_DIR``), warmed by the warm-up round. The load average is recorded. JSON
goes to bench/results/learner_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOAL = "Create hello.txt saying hello and show it"
TARGET = 1.10

SDK_ALONE = r"""
import time
started = time.perf_counter()
import asyncio, json, sys
from claude_agent_sdk import ClaudeAgentOptions, query

async def main() -> None:
    sandbox = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    options = ClaudeAgentOptions(cwd=sys.argv[1], setting_sources=[],
                                 allowed_tools=["Write", "Bash"], sandbox=sandbox)
    async for _ in query(prompt=sys.argv[2], options=options):
        pass

imported = time.perf_counter()
asyncio.run(main())
done = time.perf_counter()
print(json.dumps({"query_s": done - imported, "import_query_s": done - started}))
"""

DAEMON = "llmos"
IN_PROCESS = "llmos, LLMOS_DAEMON=0"
SDK, SDK_SANDBOX, CLI, CLI_SANDBOX = "sdk", "sdk+sandbox", "cli", "cli+sandbox"
COLD_SUFFIX = ", cold"


def script():
    from llmos.testing.model_server import Script, Usage

    return (Script()
            .tool_use("Write", {"file_path": "hello.txt", "content": "hello\n"},
                      usage=Usage(1200, 40))
            .tool_use("Bash", {"command": "cat hello.txt"}, usage=Usage(1500, 30))
            .text("Wrote hello.txt and printed it.", usage=Usage(1800, 20)))


def bundled_cli() -> str:
    import claude_agent_sdk

    path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    return str(path)


def sandbox_settings() -> dict:
    from llmos.security.sandbox import claude_code_sandbox_settings

    return claude_code_sandbox_settings()


def baseline_tree(ref: str) -> Path:
    """The kernel of ``ref``, extracted into a temporary folder."""
    out = Path(tempfile.mkdtemp(prefix=f"llmos-bench-{ref[:12]}-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "core"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float | None:
    """CPU seconds of ``pid`` and of its children it has waited for."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is the state (field 3): utime, stime, cutime, cstime are fields 14-17
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / _clock_ticks()


class Bench:
    def __init__(self, home: Path, baseline: str | None) -> None:
        self.home = home
        self.llmos = str(Path(sys.executable).parent / "llmos")
        self.base = {k: v for k, v in os.environ.items() if not k.startswith("LLMOS_")}
        self.base.pop("PYTHONPATH", None)
        self.base.update(XDG_CONFIG_HOME=str(home / "config"),
                         XDG_DATA_HOME=str(home / "data"),
                         LLMOS_CACHE_DIR=str(home / "cache"),
                         LLMOS_DAEMON_DIR=str(home / "daemon"), LLMOS_DAEMON_IDLE="900")
        self.baseline = baseline
        self.baseline_path = str(baseline_tree(baseline) / "core") if baseline else None
        self.in_process: dict[str, list[float]] = {}
        self.served = 0
        self.daemon_runs = 0
        self.daemon_starts = 0
        self.last_served = False

    def way_names(self, cold: bool) -> list[str]:
        ways = [DAEMON, IN_PROCESS]
        if self.baseline:
            ways.append(self.baseline_way)
        ways += [SDK, SDK_SANDBOX, CLI, CLI_SANDBOX]
        if cold:
            ways += [IN_PROCESS + COLD_SUFFIX, SDK + COLD_SUFFIX]
        return ways

    @property
    def baseline_way(self) -> str:
        return f"llmos@{self.baseline}, in process"

    # -- the daemon --------------------------------------------------------------------

    def daemon_state(self) -> dict | None:
        """The daemon's status, asked in the benchmark's own environment (a run's adds the
        model server's HOME, under which the status command would look elsewhere)."""
        proc = subprocess.run([self.llmos, "daemon", "status", "--json"], env={
            **self.base, "LLMOS_DAEMON": "0"}, capture_output=True, text=True, check=False)
        try:
            state = json.loads(proc.stdout)
        except ValueError:
            return None  # no daemon command in this tree
        return state.get("daemon") if state.get("running") else None

    def ensure_daemon(self) -> dict | None:
        """The daemon's state, started first when none runs (it is a pre-warmed server:
        one that stopped, e.g. because llmos's files changed, is restarted outside the
        timed run)."""
        state = self.daemon_state()
        if state is not None and (state.get("stale") or not state.get("listening", True)):
            self.stop_daemon()  # llmos's files changed since it started (a shared tree)
            deadline = time.monotonic() + 10
            while self.daemon_state() is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            state = None
        if state is None:
            subprocess.run([self.llmos, "daemon", "start"], env=self.base, capture_output=True,
                           check=False)
            state = self.daemon_state()
            self.daemon_starts += 1
        return state

    def stop_daemon(self) -> None:
        subprocess.run([self.llmos, "daemon", "stop"], env={**self.base, "LLMOS_DAEMON": "0"},
                       capture_output=True, check=False)

    # -- one run -----------------------------------------------------------------------

    def timed(self, argv: list[str], env: dict[str, str], cwd: Path
              ) -> tuple[float, float, str]:
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=600, check=False)
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (usage.ru_utime - usage0.ru_utime) + (usage.ru_stime - usage0.ru_stime)
        if proc.returncode:
            raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return wall, cpu, proc.stdout

    def one(self, way: str, n: int) -> tuple[float, float]:
        from llmos.testing.model_server import ScriptedModelServer

        name = "".join(c if c.isalnum() else "-" for c in way)
        workspace = Path(tempfile.mkdtemp(prefix=f"{n}-{name}-", dir=self.home))
        cold = way.endswith(COLD_SUFFIX)
        kind = way.removesuffix(COLD_SUFFIX)
        with ScriptedModelServer(script()) as server:
            env = {**self.base, **server.env()}
            if cold:
                prefix = self.home / "pycache" / f"{n}-{kind}"
                env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=str(prefix))
            if kind in (DAEMON, IN_PROCESS, self.baseline_way):
                wall, cpu = self.llmos_run(kind, env, workspace, n)
            elif kind in (SDK, SDK_SANDBOX):
                argv = [sys.executable, "-c", SDK_ALONE, str(workspace), GOAL]
                if kind == SDK_SANDBOX:
                    argv.append(json.dumps(sandbox_settings()))
                wall, cpu, out = self.timed(argv, env, workspace)
                if n:
                    for key, value in json.loads(out.strip().splitlines()[-1]).items():
                        self.in_process.setdefault(f"{way} {key}", []).append(value)
            else:
                argv = [bundled_cli(), "-p", GOAL, "--output-format", "json",
                        "--allowedTools", "Write,Bash", "--setting-sources", ""]
                if kind == CLI_SANDBOX:
                    argv += ["--settings", json.dumps({"sandbox": sandbox_settings()})]
                wall, cpu, _ = self.timed(argv, env, workspace)
            assert (workspace / "hello.txt").read_text() == "hello\n", way
        if cold:
            shutil.rmtree(self.home / "pycache", ignore_errors=True)
        return wall, cpu

    def llmos_run(self, kind: str, env: dict[str, str], workspace: Path, n: int
                  ) -> tuple[float, float]:
        if kind != DAEMON:
            env["LLMOS_DAEMON"] = "0"
        if kind == self.baseline_way:
            assert self.baseline_path is not None
            env["PYTHONPATH"] = self.baseline_path
        setup = {**env, "LLMOS_DAEMON": "0"}
        setup.pop("PYTHONDONTWRITEBYTECODE", None)
        setup.pop("PYTHONPYCACHEPREFIX", None)
        # a revision from before the daemon has no llmos.client: its CLI, as its command ran
        exe = [self.llmos] if kind != self.baseline_way else [
            sys.executable, "-c", "import sys; from llmos.cli import main; sys.exit(main())"]
        subprocess.run([*exe, "--workspace", str(workspace), "budget", "set", "5"],
                       env=setup, check=True, capture_output=True)
        daemon = self.ensure_daemon() if kind == DAEMON else None
        daemon_cpu = process_cpu(daemon["pid"]) if daemon else None
        wall, cpu, out = self.timed([*exe, "--workspace", str(workspace), "run",
                                     "--json", GOAL], env, workspace)
        data = json.loads(out)
        assert data["mode"] == "LEARNER" and data["success"], data
        if kind == DAEMON:
            after = self.daemon_state()
            deadline = time.monotonic() + 5
            while after and after["running"] and time.monotonic() < deadline:
                time.sleep(0.02)  # until the daemon has waited for the command it forked
                after = self.daemon_state()
            served = bool(daemon and after and after["pid"] == daemon["pid"]
                          and after["requests"] > daemon["requests"])
            if served and daemon_cpu is not None:
                cpu += (process_cpu(daemon["pid"]) or daemon_cpu) - daemon_cpu
            self.last_served = served
            if n:
                self.daemon_runs += 1
                self.served += int(served)
        if n:
            cold = COLD_SUFFIX if "PYTHONPYCACHEPREFIX" in env else ""
            self.in_process.setdefault(f"{kind}{cold} duration_s", []).append(
                None if kind == DAEMON and not self.last_served else data["duration_s"])
        return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold", action="store_true",
                        help="add llmos (in process) and sdk runs with no bytecode cache")
    parser.add_argument("--baseline", help="also run llmos of this git revision")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" /
                                              "learner_overhead.json"))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="llmos-bench-learner-"))
    bench = Bench(home, args.baseline)
    ways = bench.way_names(args.cold)
    try:
        for way in ways:  # warm-up: OS file cache, bytecode cache, probe caches, daemon
            bench.one(way, 0)
        bench.one(DAEMON, 0)  # the daemon's first command
        load_before = os.getloadavg()
        samples: dict[str, list[tuple[float, float] | None]] = {w: [] for w in ways}
        for n in range(1, args.rounds + 1):
            for way in ways:
                sample: tuple[float, float] | None = bench.one(way, n)
                if way == DAEMON and not bench.last_served:
                    sample = None  # it ran in process: not a daemon figure
                samples[way].append(sample)
        load_after = os.getloadavg()
    finally:
        bench.stop_daemon()
    report = summarize(args, bench, ways, samples, load_before, load_after)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_report(report)
    shutil.rmtree(home, ignore_errors=True)


def summarize(args, bench: Bench, ways: list[str], samples, load_before, load_after) -> dict:
    def med(way: str, i: int) -> float | None:
        values = [s[i] for s in samples[way] if s is not None]
        return round(statistics.median(values) * 1e3, 1) if values else None

    def ratio(a: list[float | None], b: list[float | None]) -> float | None:
        values = [x / y for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        return round(statistics.median(values), 3) if values else None

    def column(way: str, i: int) -> list[float | None]:
        return [None if s is None else s[i] for s in samples[way]]

    llmos_ways = [DAEMON, IN_PROCESS] + ([bench.baseline_way] if args.baseline else [])
    pairs = [(a, b) for a in llmos_ways for b in (SDK, SDK_SANDBOX)]
    pairs += [(IN_PROCESS, CLI), (SDK, CLI), (SDK_SANDBOX, SDK), (CLI_SANDBOX, CLI)]
    if args.baseline:
        pairs.append((IN_PROCESS, bench.baseline_way))
    if args.cold:
        pairs += [(IN_PROCESS + COLD_SUFFIX, SDK + COLD_SUFFIX),
                  (IN_PROCESS + COLD_SUFFIX, IN_PROCESS)]
    paired = {f"{a} / {b}": {"wall": ratio(column(a, 0), column(b, 0)),
                             "cpu": ratio(column(a, 1), column(b, 1))}
              for a, b in pairs}
    inp = bench.in_process
    in_pairs = [(f"{DAEMON} duration_s", f"{SDK} query_s"),
                (f"{DAEMON} duration_s", f"{SDK_SANDBOX} query_s"),
                (f"{IN_PROCESS} duration_s", f"{SDK} import_query_s"),
                (f"{IN_PROCESS} duration_s", f"{SDK_SANDBOX} import_query_s")]
    if args.baseline:
        in_pairs.append((f"{bench.baseline_way} duration_s", f"{SDK_SANDBOX} import_query_s"))
    return {
        "load_average_before": load_before, "load_average_after": load_after,
        "rounds": args.rounds, "baseline": args.baseline, "cold": args.cold,
        "daemon_served": f"{bench.served}/{bench.daemon_runs}",
        "daemon_starts": bench.daemon_starts,
        "median_ms": {w: {"wall": med(w, 0), "cpu": med(w, 1)} for w in ways},
        "in_process_ms": {k: round(statistics.median(x for x in v if x is not None) * 1e3, 1)
                          for k, v in inp.items() if any(x is not None for x in v)},
        "paired_ratio": paired,
        "in_process_paired_ratio": {f"{a} / {b}": ratio(inp[a], inp[b])
                                    for a, b in in_pairs if a in inp and b in inp},
        "target": TARGET,
    }


def print_report(report: dict) -> None:
    before, after = report["load_average_before"], report["load_average_after"]
    print(f"load average {before[0]:.1f} -> {after[0]:.1f} on {os.cpu_count()} CPUs, "
          f"{report['rounds']} rounds; daemon runs served by the daemon: "
          f"{report['daemon_served']} (daemon started {report['daemon_starts']} times)\n")
    print("| way | wall ms | CPU ms |\n|---|---|---|")
    def ms(value: float | None, digits: int = 0) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for way, m in report["median_ms"].items():
        print(f"| {way} | {ms(m['wall'])} | {ms(m['cpu'])} |")
    print("\n| in process | ms |\n|---|---|")
    for name, value in report["in_process_ms"].items():
        print(f"| {name} | {value:.0f} |")
    print(f"\n| paired ratio (target <= {TARGET:.2f} for llmos / sdk) | wall | CPU |\n"
          "|---|---|---|")
    for name, r in report["paired_ratio"].items():
        print(f"| {name} | {ms(r['wall'], 2)} | {ms(r['cpu'], 2)} |")
    for name, r in report["in_process_paired_ratio"].items():
        print(f"| in process: {name} | {ms(r, 2)} | |")


if __name__ == "__main__":
    main()
