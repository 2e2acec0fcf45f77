"""``llmos shell``: goals typed at a prompt, with history and line editing.

Each goal runs as ``llmos run`` runs it (``runner.execute`` with the same live progress,
stopped by Ctrl-C through the same watchdog), and is followed by its mode, cost, savings
and the balance left. Lines starting with ``/`` run the existing commands (``/budget set
5`` is ``llmos budget set 5``). History lives in the user's state directory, never in the
agent-writable workspace. prompt-toolkit is imported here only.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from llmos.cli._common import console, kernel_from, styled

# /name -> (the llmos command it runs, whether the rest of the line is one argument, what it
# runs with nothing after it, its line in /help)
SLASH_COMMANDS: dict[str, tuple[str, bool, list[str], str]] = {
    "route": ("route", True, [], "/route GOAL      which mode would run GOAL, and why"),
    "stats": ("stats", False, [], "/stats           replay hit rate, spend and savings"),
    "budget": ("budget", False, [], "/budget [set N]  the balance (or set it to $N)"),
    "runs": ("runs", False, ["list"], "/runs            the run log (/runs show ID, ...)"),
    "traces": ("traces", False, ["list"],
               "/traces          execution traces (/traces show ID, ...)"),
}
LEAVE = ("quit", "exit")


def history_path() -> Path:
    """The shell's history file, under the user's state directory (platformdirs)."""
    from platformdirs import user_state_path

    return user_state_path("llmos") / "shell_history"


@click.command(short_help="Type goals and commands at an interactive prompt.")
@click.pass_context
def shell(ctx: click.Context) -> None:
    """Type goals and commands at an interactive prompt, with history and line editing.

    Each goal runs as with llmos run and is followed by its mode, cost, savings and the
    balance left. /help lists the commands (/route GOAL, /stats, /budget [set N], /runs,
    /traces, /quit). Ctrl-C stops the goal that is running; Ctrl-C twice or Ctrl-D at the
    prompt leaves. History: the user's state directory (llmos/shell_history).
    """
    Shell(ctx).loop()


class Shell:
    def __init__(self, ctx: click.Context) -> None:
        self.ctx = ctx
        self.out = console()

    # ------------------------------------------------------------------ the prompt

    def _session(self):
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        path = history_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
            history = FileHistory(str(path))
        except OSError as exc:
            self.out.print(f"warning: history is not kept ({path}: {exc.strerror})",
                           markup=False)
            history = InMemoryHistory()
        return PromptSession(history=history)

    def _reader(self):
        """The line reader: prompt-toolkit on a terminal, plain lines from a pipe or file
        (``llmos shell < goals.txt``), where line editing has nothing to edit."""
        import sys

        if sys.stdin.isatty():
            return self._session().prompt

        lines = enumerate(iter(sys.stdin.buffer.readline, b""), 1)

        def read(_prompt: str) -> str:
            for number, raw in lines:
                try:
                    return raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    self.out.print(f"line {number} skipped: not UTF-8 ({exc.reason} at byte "
                                   f"{exc.start}); save the goals as UTF-8", markup=False)
            raise EOFError

        return read

    def loop(self) -> None:
        read = self._reader()
        self.out.print("llmos shell · type a goal, /help for commands, Ctrl-D to leave")
        self._print_balance()
        armed = False  # a Ctrl-C at the prompt was just pressed
        while True:
            try:
                line = read("llmos> ")
            except KeyboardInterrupt:
                if armed:
                    break
                armed = True
                self.out.print("(Ctrl-C again or Ctrl-D to leave)")
                continue
            except EOFError:
                break
            armed = False
            line = line.strip()
            if not line:
                self.out.print("type a goal to run it, or /help for commands")
                continue
            try:
                if line.startswith("/"):
                    if not self.slash(line):
                        break
                else:
                    self.goal(line)
            except KeyboardInterrupt:  # outside a goal's run (opening the workspace, ...)
                self.out.print("cancelled")
        self.out.print("bye")

    # ------------------------------------------------------------------ goals

    def goal(self, goal: str) -> None:
        """Run ``goal`` as ``llmos run`` does; a Ctrl-C stops it and records it as interrupted."""
        from llmos.cli.run import LiveProgress, _report_interrupted, _terminal_asker
        from llmos.errors import exit_code_for
        from llmos.runner import execute
        from llmos.watchdog import Interrupted, run_interruptible

        out = self.out
        runs = None
        _quiet_sdk_while_stopping()
        try:
            kernel = kernel_from(self.ctx)
            progress = LiveProgress(out)
            if kernel.interactive:
                kernel.gateway.asker = _terminal_asker(out)

            async def go():
                nonlocal runs
                async with kernel:
                    runs = kernel.bus.subscribe("run.*")
                    return await execute(kernel, goal, progress=progress)

            result = run_interruptible(go())
        except Interrupted as stop:
            _report_interrupted(stop, runs, out, as_json=False)
            self._print_balance()
            return
        except Exception as exc:
            self._error(exc, exit_code_for(exc))
            return
        if progress.in_text:
            out.print()
        status = ("done", "green") if result.success else ("failed", "red")
        out.print(styled("\n", status, f" · {result.mode} · ${result.cost_usd:.4f} · "
                         f"saved ${result.saved_usd:.4f} · {result.tool_calls} tool calls · "
                         f"{result.duration_s:.1f} s · run {result.run_id}"))
        if result.error:
            out.print(styled(("error:", "red"), " "), end="")
            out.print(result.error, markup=False)
        self._print_balance()

    def _print_balance(self) -> None:
        try:
            status = kernel_from(self.ctx).economy.status()
        except Exception as exc:
            from llmos.errors import exit_code_for

            self._error(exc, exit_code_for(exc))
            return
        self.out.print(f"balance ${status['balance_usd']:.4f} · available "
                       f"${status['available_usd']:.4f}")

    def _error(self, exc: BaseException, code: int | None) -> None:
        self.out.print(styled(("error:", "red"), " "), end="")
        if code is None:  # a bug: say what it was, without a traceback in the shell
            self.out.print(f"{type(exc).__name__}: {exc}", markup=False)
        else:
            self.out.print(str(exc), markup=False)

    # ------------------------------------------------------------------ slash commands

    def slash(self, line: str) -> bool:
        """Run one slash command; False when the shell should end."""
        name, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        name = name.lower()
        if name in LEAVE:
            return False
        if name in ("help", "?", ""):
            self.help()
            return True
        if name not in SLASH_COMMANDS:
            self.out.print(f"unknown command /{name}; /help lists the commands", markup=False)
            return True
        command, whole, default, _ = SLASH_COMMANDS[name]
        if whole:
            if not rest:
                self.out.print(f"usage: /{name} GOAL", markup=False)
                return True
            args = [rest]
        else:
            try:
                args = shlex.split(rest) or default
            except ValueError as exc:
                self.out.print(f"cannot read the arguments: {exc}", markup=False)
                return True
        self.invoke([command, *args])
        return True

    def invoke(self, args: list[str]) -> int:
        """Run ``llmos ARGS`` (the real click command, with this shell's --workspace,
        --set and --project) and return its exit code."""
        from llmos.cli import cli

        obj: dict[str, Any] = self.ctx.find_root().obj or {}
        root: list[str] = []
        if obj.get("workspace"):
            root += ["--workspace", obj["workspace"]]
        for setting in obj.get("settings") or ():
            root += ["--set", setting]
        if obj.get("project"):
            root += ["--project", obj["project"]]
        try:
            code = cli.main(args=[*root, *args], prog_name="llmos", standalone_mode=False)
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except click.Abort:
            self.out.print("cancelled")
            code = 130
        except KeyboardInterrupt:
            self.out.print("cancelled")
            code = 130
        except Exception as exc:
            from llmos.errors import exit_code_for

            code = exit_code_for(exc)
            self._error(exc, code)
            code = code or 1
        code = code if isinstance(code, int) else 0
        if code:
            self.out.print(f"(exit code {code})")
        return code

    def help(self) -> None:
        self.out.print("Type a goal to run it (as llmos run does). Commands:", markup=False)
        for *_, text in SLASH_COMMANDS.values():
            self.out.print(f"  {text}", markup=False)
        self.out.print("  /help            this list\n  /quit            leave (or Ctrl-D)\n"
                       "Ctrl-C stops the running goal; at the prompt, Ctrl-C twice leaves.",
                       markup=False)


def _quiet_sdk_while_stopping() -> None:
    """The SDK logs "Fatal error in message reader" when the Claude Code it reads from is
    stopped; after a Ctrl-C that is the stop the user asked for, not news."""
    import logging

    from llmos.watchdog import interruption

    sdk = logging.getLogger("claude_agent_sdk._internal.query")
    if not any(isinstance(f, _WhileStopping) for f in sdk.filters):
        sdk.addFilter(_WhileStopping(interruption))


class _WhileStopping:
    def __init__(self, interruption) -> None:
        self.interruption = interruption

    def filter(self, record) -> bool:
        return self.interruption() is None
