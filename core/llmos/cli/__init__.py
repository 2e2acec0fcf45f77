"""The ``llmos`` command line. Thin: every command calls the kernel's API.

Start-up stays cheap: subcommand modules, the kernel and rich are imported only when a
command runs, and plugin commands are looked up only for names that are not built in.
"""

from __future__ import annotations

import importlib
import sys

import click

from llmos import __version__, cheap_imports

# The command line installs the cheap third-party imports before anything imports them
# (a library user's process is left alone: ``llmos.cheap_imports.install()`` to opt in).
cheap_imports.install()

# name -> "module:attribute"
BUILTIN_COMMANDS = {
    "plugins": "llmos.cli.plugins:plugins",
    "tools": "llmos.cli.tools:tools",
    "config": "llmos.cli.config:config",
    "budget": "llmos.cli.budget:budget",
    "run": "llmos.cli.run:run",
    "route": "llmos.cli.learning:route",
    "stats": "llmos.cli.learning:stats",
    "policy": "llmos.cli.policy:policy",
    "traces": "llmos.cli.traces:traces",
    "memory": "llmos.cli.memory:memory",
    "runs": "llmos.cli.runs:runs",
    "agents": "llmos.cli.agents:agents",
    "projects": "llmos.cli.projects:projects",
    "insights": "llmos.cli.insights:insights",
    "crystals": "llmos.cli.crystals:crystals", "crystallize": "llmos.cli.crystals:crystallize",
    "export": "llmos.cli.export:export",
    "ui": "llmos.cli.ui:ui",
    "worker": "llmos.cli.worker:worker", "submit": "llmos.cli.worker:submit",
    "schedule": "llmos.cli.schedule:schedule",
    "shell": "llmos.cli.shell:shell",
    "daemon": "llmos.cli.daemon:daemon",
}


class LlmosGroup(click.Group):
    """Loads built-in subcommands lazily and plugin subcommands on demand, and turns the
    kernel's errors into clear messages with the documented exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*BUILTIN_COMMANDS, *super().list_commands(ctx), *self._plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in BUILTIN_COMMANDS:
            module, _, attr = BUILTIN_COMMANDS[name].partition(":")
            return _whole_summaries(getattr(importlib.import_module(module), attr))
        command = super().get_command(ctx, name)
        if command is None:
            command = self._plugin_commands().get(name)
        return _whole_summaries(command) if command is not None else None

    def _plugin_commands(self) -> dict[str, click.Command]:
        # cached per plugin selection: one process may run several commands (CliRunner)
        selection = _plugin_selection()
        key = repr(sorted(selection.items()))
        cache = self.__dict__.setdefault("_from_plugins", {})
        if key not in cache:
            from llmos.plugins import build_plugin_manager, collect_commands

            pm, _ = build_plugin_manager(workspace=selection["workspace"],
                                         disabled=selection["disabled"])
            commands, warnings = collect_commands(pm)  # one plugin's failure spares the rest
            for warning in warnings:
                click.echo(f"warning: {warning}", err=True)
            cache[key] = commands
        return cache[key]

    def invoke(self, ctx: click.Context):
        from llmos.errors import exit_code_for

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            code = exit_code_for(exc)
            if code is None:
                raise
            raise CommandError(str(exc), code, _error_type(exc)) from exc

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        """click's ``main``, with every failure reported the same way: a message on
        stderr and, when ``--json`` was asked for, one ``{"error": {type, message,
        exit_code}}`` object on stdout; a bug is one line, exit 70 (the traceback only
        with ``LLMOS_DEBUG=1``)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            done = super().main(argv, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            _report(argv, exc.format_message(), exc.exit_code,
                    getattr(exc, "kind", "usage"), show=exc.show)
        except click.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):
                _report(argv, "interrupted by Ctrl-C", 130, "interrupted")
            _report(argv, "aborted", 1, "aborted")
        except Exception as exc:
            _internal_error(argv, exc)
        sys.exit(done if isinstance(done, int) else 0)


EXIT_INTERNAL = 70
"""A bug in llmos (EX_SOFTWARE): one line, the traceback with LLMOS_DEBUG=1."""


class CommandError(click.ClickException):
    """A known error of the kernel, with its documented exit code and kind."""

    def __init__(self, message: str, exit_code: int, kind: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.kind = kind

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _error_type(exc: BaseException) -> str:
    """The ``type`` of a known error in ``--json`` output (stable names)."""
    from llmos.config import ConfigError
    from llmos.economy import LowBatteryError
    from llmos.gateway import UnknownTool
    from llmos.tools import ToolInputError

    for cls, name in ((LowBatteryError, "low_battery"), (ToolInputError, "invalid_input"),
                      (UnknownTool, "unknown_tool"), (ConfigError, "config")):
        if isinstance(exc, cls):
            return name
    return "usage" if isinstance(exc, NotADirectoryError) else "failed"


def _wants_json(argv: list[str]) -> bool:
    """Whether ``--json`` was given (before a ``--`` that ends the options)."""
    options = argv[:argv.index("--")] if "--" in argv else argv
    return "--json" in options


def _report(argv: list[str], message: str, code: int, kind: str, show=None):
    """Say what went wrong (stderr; also JSON on stdout with --json) and exit ``code``."""
    if show is not None:
        show()
    else:
        click.echo(f"error: {message}", err=True)
    if _wants_json(argv):
        import json

        click.echo(json.dumps({"error": {"type": kind, "message": message,
                                         "exit_code": code}}, ensure_ascii=False))
    sys.exit(code)


def _internal_error(argv: list[str], exc: BaseException):
    import os

    if os.environ.get("LLMOS_DEBUG") == "1":
        import traceback

        traceback.print_exception(exc)
    text = str(exc).strip().splitlines()
    what = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    _report(argv, f"internal error: {what} (run with LLMOS_DEBUG=1 for the traceback and "
            "please report it)", EXIT_INTERNAL, "internal")


def _whole_summaries(command: click.Command) -> click.Command:
    """Give ``command`` (and a group's subcommands) the whole first sentence of its help as
    its summary in a group's command list, wrapped at the terminal's width; click would
    cut it to the space left on one line and end it with "..."."""
    if command.short_help is None and command.help:
        command.short_help = command.get_short_help_str(limit=sys.maxsize)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _whole_summaries(sub)
    return command


@click.group(cls=LlmosGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="llmos")
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False),
    envvar="LLMOS_WORKSPACE",
    help="Workspace directory (default: LLMOS_WORKSPACE or a per-user data directory).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a config key for this command (highest precedence). Repeatable.",
)
@click.option(
    "--project",
    "-p",
    envvar="LLMOS_PROJECT",
    help="Work inside projects/NAME of the workspace: its folder, agents and memory "
    "(llmos projects new NAME creates one).",
)
@click.option(
    "--plugin",
    "plugin_paths",
    multiple=True,
    metavar="PATH",
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, paths: _add_plugin_paths(ctx, paths),
    help="Load a local plugin file (outside the workspace) for this command. Repeatable; "
    "also LLMOS_PLUGINS=path1:path2.",
)
@click.pass_context
def cli(ctx: click.Context, workspace: str | None, settings: tuple[str, ...],
        project: str | None) -> None:
    """llmos: an operating system for LLM agents that get cheaper every time they run.

    Without a command: the interactive shell (llmos shell) on a terminal, else this help.
    """
    ctx.obj = {"workspace": workspace, "settings": list(settings), "project": project}
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            ctx.invoke(ctx.command.get_command(ctx, "shell"))
            return
        click.echo(ctx.get_help(), err=True)
        ctx.exit(2)


def _plugin_selection() -> dict:
    """The workspace and the config's ``plugins.disable`` for the plugins that add commands
    (a config error is left to the command, which reports it)."""
    import os
    from pathlib import Path

    from llmos.config import ConfigError, disabled_plugins, load_layers
    from llmos.workspace import default_workspace

    ctx = click.get_current_context(silent=True)
    params = ctx.find_root().params if ctx is not None else {}
    root = Path(params.get("workspace") or default_workspace()).expanduser().resolve()
    try:
        disabled = disabled_plugins(load_layers(root, list(params.get("settings") or ())))
    except ConfigError:
        disabled = {}
    environment = {name: os.environ.get(name) for name in (
        "LLMOS_PLUGINS", "LLMOS_PLUGIN_DIR", "LLMOS_LOAD_PLUGINS", "LLMOS_DISABLE_PLUGINS",
        "XDG_CONFIG_HOME")}
    return {"workspace": root, "disabled": disabled, "environment": environment}


def _add_plugin_paths(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """``--plugin PATH``: put the files first in ``LLMOS_PLUGINS`` for this command (and
    the processes it starts), restored when the command ends (in-process callers)."""
    if not paths:
        return
    import os

    previous = os.environ.get("LLMOS_PLUGINS")
    os.environ["LLMOS_PLUGINS"] = os.pathsep.join(
        [os.path.abspath(p) for p in paths] + ([previous] if previous else []))

    def restore() -> None:
        if previous is None:
            os.environ.pop("LLMOS_PLUGINS", None)
        else:
            os.environ["LLMOS_PLUGINS"] = previous

    ctx.call_on_close(restore)


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point.

    Once the command is done (its databases closed, its run settled), the process leaves
    with ``os._exit`` after flushing its output and running the ``atexit`` handlers: the
    interpreter's teardown (freeing every module, 0.05 s quiet and up to a second on a busy
    machine) would only return memory to a process about to end. Not when a non-daemon
    thread is still running (a normal exit waits for it), nor for ``sys.exit("message")``;
    library users and ``CliRunner`` call ``cli`` and keep the normal exit.
    """
    _printable_streams()
    try:
        code = cli.main(args=argv, prog_name="llmos")
    except SystemExit as done:
        code = done.code
    if not (code is None or isinstance(code, int)) or _threads_still_running():
        sys.exit(code)
    _leave(code or 0)


def _printable_streams() -> None:
    """Any text can be printed: a file name that is not UTF-8 (decoded with surrogateescape)
    goes out as its own bytes, a lone surrogate or a character the terminal's encoding
    lacks as a backslash escape, never a UnicodeEncodeError."""
    import codecs

    def escape(error: UnicodeError) -> tuple[str, int]:
        if not isinstance(error, UnicodeEncodeError):
            raise error
        escaped_bytes = all(0xDC80 <= ord(c) <= 0xDCFF
                            for c in error.object[error.start:error.end])
        if escaped_bytes and codecs.lookup(error.encoding).name == "utf-8":
            return codecs.lookup_error("surrogateescape")(error)
        return codecs.backslashreplace_errors(error)

    codecs.register_error("llmos.print", escape)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="llmos.print")


def _threads_still_running() -> bool:
    import threading

    main_thread = threading.main_thread()
    return any(t is not main_thread and not t.daemon and t.is_alive()
               for t in threading.enumerate())


def _leave(code: int) -> None:
    import atexit
    import logging
    import os

    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to write
            code = code or 1
    os._exit(code)
