"""Interpreters, test runners, build tools and package managers: workspace code and downloads."""

from __future__ import annotations

import re

from llmos.security import shellrules as R
from llmos.security.programs.common import (
    Handler,
    approve,
    reads_program_from_stdin,
    run_script,
    workspace_code,
)
from llmos.security.shellargs import Context, Invocation
from llmos.security.shellwords import Word

_PYTHON = re.compile(r"^(python[0-9.]*|pypy[0-9.]*)$")


_PY_SAFE_MODULES = frozenset({
    "pytest", "unittest", "doctest", "py_compile", "compileall", "json.tool", "mypy",
    "pyflakes", "pylint", "black", "ruff", "isort", "flake8", "coverage", "timeit", "tabnanny",
    "pycodestyle", "pydocstyle", "tox", "nox", "build", "hypothesis",
})


_PY_NETWORK_MODULES = frozenset({"pip", "http.server", "smtpd", "ensurepip", "venv", "uv",
                                 "twine", "webbrowser", "ftplib"})


def _python(ctx: Context, inv: Invocation) -> None:
    args = inv.args
    index = 0
    while index < len(args):
        text = args[index].text
        if text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict(f"{inv.name} option comes from an expansion"))
            return
        if not text.startswith("-") or text == "-":
            break
        index += 1
        letters = text[1:]
        if text.startswith("--"):
            if text in ("--version", "--help"):
                approve(ctx, inv)
                return
            ctx.add(R.UNKNOWN_FLAG.verdict(f"{inv.name} {text} is not on the allowlist"))
            continue
        for pos, letter in enumerate(letters):
            rest = letters[pos + 1:]
            if letter == "c":
                ctx.add(R.INTERPRETER_INLINE.verdict(f"{inv.name} -c runs code given on the "
                                                     "command line"))
                code = Word.literal(rest) if rest else (args[index] if index < len(args)
                                                        else Word.literal(""))
                if code.text is None:
                    ctx.add(R.DYNAMIC_VALUE.verdict(f"{inv.name} -c code is computed at run "
                                                    "time"))
                inv.programs.add("interpreter")
                return
            if letter == "m":
                module = rest or (args[index].text if index < len(args) else None)
                _python_module(ctx, inv, module)
                return
            if letter in "WX":
                if not rest:
                    index += 1
                break
            if letter == "i":
                ctx.add(R.INTERACTIVE.verdict(f"{inv.name} -i starts an interactive session"))
            elif letter not in "bBdEhIOPqsSuvVx":
                ctx.add(R.UNKNOWN_FLAG.verdict(f"{inv.name} -{letter} is not on the allowlist"))
    operands = args[index:]
    inv.programs.add("interpreter")
    if not operands or operands[0].text == "-":
        reads_program_from_stdin(ctx, inv)
        return
    run_script(ctx, inv, operands[0])


def _python_module(ctx: Context, inv: Invocation, module: str | None) -> None:
    inv.programs.add("interpreter")
    if module is None:
        ctx.add(R.DYNAMIC_VALUE.verdict(f"{inv.name} -m module comes from an expansion"))
    elif module in _PY_SAFE_MODULES or module.split(".")[0] in _PY_SAFE_MODULES:
        workspace_code(ctx, inv, f"{inv.name} -m {module}")
    elif module in _PY_NETWORK_MODULES:
        ctx.add(R.NETWORK.verdict(f"{inv.name} -m {module} uses the network or installs code"))
    else:
        ctx.add(R.UNKNOWN_FLAG.verdict(f"{inv.name} -m {module} is not an allowlisted module"))


_INLINE_FLAGS: dict[str, tuple[str, ...]] = {
    "node": ("-e", "--eval", "-p", "--print"), "nodejs": ("-e", "--eval", "-p", "--print"),
    "perl": ("-e", "-E"), "ruby": ("-e",), "php": ("-r", "--run", "-B", "-E", "-R", "-F"),
    "lua": ("-e",), "luajit": ("-e",), "Rscript": ("-e", "--expr"), "R": ("-e",),
    "julia": ("-e", "--eval", "-E", "--print"), "expect": ("-c",), "tclsh": (),
    "osascript": ("-e",), "bun": ("-e", "--eval", "-p", "--print"), "deno": ("eval",),
    "gawk": (), "jshell": (), "irb": (), "groovy": ("-e",), "scala": ("-e",),
    "kotlin": ("-e",), "elixir": ("-e", "--eval"), "erl": ("-eval",), "guile": ("-c",),
    "racket": ("-e",), "sbcl": ("--eval",), "clojure": ("-e",), "swift": ("-e",),
}


_NEVER_SCRIPT = frozenset({"irb", "jshell"})


def _interpreter(ctx: Context, inv: Invocation) -> None:
    inv.programs.add("interpreter")
    inline = _INLINE_FLAGS.get(inv.name, ())
    for word in inv.args:
        text = word.text
        if text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict(f"{inv.name} argument comes from an expansion"))
            return
        if text in inline or any(text.startswith(flag) and len(flag) == 2 and flag[1] != "-"
                                 and len(text) > 2 and text[1] == flag[1] for flag in inline):
            ctx.add(R.INTERPRETER_INLINE.verdict(f"{inv.name} {text[:2]} runs code given on "
                                                 "the command line"))
            return
        if inv.name == "perl" and re.match(r"^-[a-zA-Z]*[eE]", text):
            ctx.add(R.INTERPRETER_INLINE.verdict("perl -e runs code given on the command line"))
            return
    operands = [w for w in inv.args if w.text is not None and not w.text.startswith("-")]
    flags = [w for w in inv.args if w.text is not None and w.text.startswith("-")]
    if inv.name in _NEVER_SCRIPT or not operands:
        reads_program_from_stdin(ctx, inv)
        return
    if inv.name in ("deno", "bun") and operands[0].text in ("run", "test", "bench"):
        operands = operands[1:] or [Word.literal(".")]
    elif inv.name in ("deno", "bun") and operands[0].text in ("install", "add", "x", "upgrade"):
        ctx.add(R.NETWORK.verdict(f"{inv.name} {operands[0].text} downloads code"))
        return
    for flag in flags:
        if flag.text in ("-r", "--require", "--import", "--loader", "--experimental-loader",
                         "-M", "-I", "--inspect", "--inspect-brk") or (
                flag.text or "").startswith(("-M", "-I", "--require=", "--import=",
                                             "--loader=", "--inspect")):
            ctx.add(R.UNKNOWN_FLAG.verdict(f"{inv.name} {flag.text} loads extra code or opens "
                                           "a debugger"))
    run_script(ctx, inv, operands[0])


_RUNNERS = frozenset({
    "pytest", "py.test", "tox", "nox", "ruff", "mypy", "black", "isort", "flake8", "pylint",
    "pyright", "eslint", "tsc", "prettier", "jest", "vitest", "mocha", "make", "gmake",
    "cmake", "ctest", "ninja", "meson", "gradle", "gradlew", "mvn", "ant", "rake", "rspec",
    "phpunit", "just", "bazel", "coverage", "hatch", "pdm", "nosetests", "ward",
})


_PACKAGE_MANAGERS = frozenset({"npm", "yarn", "pnpm", "cargo", "go", "uv", "poetry", "pip",
                               "pip3", "pipx", "gem", "bundle", "composer", "dotnet", "swift",
                               "conda", "mamba", "brew", "apt", "apt-get", "dnf", "yum", "apk",
                               "pacman", "npx", "bunx", "uvx", "cpan", "cpanm", "nix", "snap",
                               "flatpak"})


_RUN_SUBCOMMANDS = frozenset({"test", "t", "run", "run-script", "start", "build", "check",
                              "clippy", "fmt", "vet", "bench", "doc", "exec", "lint",
                              "typecheck", "tsc"})


_NETWORK_SUBCOMMANDS = frozenset({"install", "i", "ci", "add", "update", "upgrade", "get",
                                  "download", "publish", "login", "sync", "lock", "fetch",
                                  "remove", "uninstall", "dlx", "create", "init", "x", "tool",
                                  "audit", "outdated", "search", "link"})


_RUNNER_PATH_FLAGS = {"--basetemp": "destroy", "--junitxml": "write", "--junit-xml": "write",
                      "--rootdir": "read", "--confcutdir": "read", "--cov-report": "text",
                      "--result-log": "write", "-o": "write", "--output": "write",
                      "--outfile": "write", "-C": "read", "--directory": "read", "-f": "read",
                      "--file": "read", "--makefile": "read", "-I": "read"}


def _check_runner_args(ctx: Context, inv: Invocation, args: list[Word]) -> None:
    for index, word in enumerate(args):
        text = word.text
        if text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict(f"{inv.name} argument comes from an expansion"))
            continue
        name, eq, value = text.partition("=")
        role = _RUNNER_PATH_FLAGS.get(name)
        if role in ("read", "write", "destroy"):
            target = Word.literal(value) if eq else (args[index + 1] if index + 1 < len(args)
                                                     else None)
            if target is not None:
                ctx.check_path(target, role)  # type: ignore[arg-type]
        elif name in ("--eval", "-E") and inv.name in ("make", "gmake"):
            ctx.add(R.INTERPRETER_INLINE.verdict("make --eval runs makefile text from the "
                                                 "command line"))
        elif text.startswith(("/", "~")) or ".." in text.split("/"):
            ctx.check_path(word, "read")


def _runner(ctx: Context, inv: Invocation) -> None:
    _check_runner_args(ctx, inv, inv.args)
    workspace_code(ctx, inv, inv.name)


def _package_manager(ctx: Context, inv: Invocation) -> None:
    positional = [w for w in inv.args if w.text is None or not w.text.startswith("-")]
    if inv.name in ("npx", "bunx", "uvx", "pipx"):
        ctx.add(R.NETWORK.verdict(f"{inv.name} downloads and runs packages"))
        return
    if not positional:
        ctx.add(R.UNKNOWN_PROGRAM.verdict(f"{inv.name} without a subcommand"))
        return
    sub = positional[0].text
    if sub is None:
        ctx.add(R.DYNAMIC_VALUE.verdict(f"{inv.name} subcommand comes from an expansion"))
    elif inv.name in ("uv", "poetry", "pdm", "hatch") and sub == "run":
        _check_runner_args(ctx, inv, inv.args)
        workspace_code(ctx, inv, f"{inv.name} run")
        rest = positional[1:]
        if rest:
            sub_inv = Invocation(name=rest[0].text or "?", args=rest[1:])
            ctx.analyze_argv(rest, sub_inv, escalate_only=True)
    elif sub in _RUN_SUBCOMMANDS and inv.name not in ("pip", "pip3", "apt", "apt-get", "gem",
                                                      "brew", "dnf", "yum", "apk", "pacman"):
        _check_runner_args(ctx, inv, inv.args)
        workspace_code(ctx, inv, f"{inv.name} {sub}")
    elif sub in _NETWORK_SUBCOMMANDS or (inv.name == "pip" and sub in ("install", "download")):
        ctx.add(R.NETWORK.verdict(f"{inv.name} {sub} downloads or publishes packages"))
        inv.programs.add("network")
    else:
        ctx.add(R.UNKNOWN_PROGRAM.verdict(f"{inv.name} {sub} is not on the allowlist"))


HANDLERS: dict[str, Handler] = {
    **{name: _interpreter for name in _INLINE_FLAGS},
    **{name: _runner for name in _RUNNERS},
    **{name: _package_manager for name in _PACKAGE_MANAGERS},
}


def handler_for(name: str) -> Handler | None:
    """The handler for versioned interpreter names (python3.12, pypy3)."""
    return _python if _PYTHON.match(name) else None
