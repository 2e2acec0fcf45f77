"""Variables and the builtins that set or print them: assignments, env, printenv, set, read, let."""

from __future__ import annotations

import re

from llmos.security import shellrules as R
from llmos.security.programs.common import Handler, report_unknown, run_inner, suffixes
from llmos.security.secrets import is_secret_name
from llmos.security.shellargs import Context, Invocation, parse_flags, spec
from llmos.security.shellwords import Word

#: Variables that make a shell or program run code or trust files of the attacker's choosing.
DANGEROUS_VARIABLES = frozenset({
    "PS0", "PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND", "BASH_ENV", "ENV", "IFS", "PATH",
    "CDPATH", "GLOBIGNORE", "SHELLOPTS", "BASHOPTS", "BASH_XTRACEFD", "HISTFILE", "HOME",
    "SHELL", "EDITOR", "VISUAL", "PAGER", "MANPAGER", "BROWSER", "TERMINFO", "INPUTRC",
    "ZDOTDIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "LESSOPEN", "LESSCLOSE", "LESSKEY",
    "SSH_ASKPASS", "SUDO_ASKPASS", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES",
    "RESOLV_HOST_CONF", "OPENSSL_CONF", "OPENSSL_ENGINES", "SSLKEYLOGFILE", "VIMINIT", "EXINIT",
    "MYVIMRC", "EMACSLOADPATH", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS",
    "MAVEN_OPTS", "GRADLE_OPTS", "CLASSPATH", "RIPGREP_CONFIG_PATH", "GREP_OPTIONS",
    "TAR_OPTIONS", "WGETRC", "CURL_HOME", "http_proxy", "https_proxy", "HTTP_PROXY",
    "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "MAKEFLAGS", "MAKEFILES",
    "TMPDIR", "LC_ALL", "SHLVL",
})


_DANGEROUS_PREFIXES = ("LD_", "DYLD_", "GIT_", "BASH_FUNC_", "PYTHON", "PERL", "RUBY", "NODE_",
                       "NPM_CONFIG_", "npm_config_", "PIP_", "UV_", "CARGO_", "RUSTC",
                       "RUSTFLAGS", "GOFLAGS", "CGO_", "GEM_", "BUNDLE_", "LUA_", "TCL",
                       "KUBE", "DOCKER_", "CC", "CXX", "CFLAGS", "LDFLAGS", "CPPFLAGS")


def dangerous_variable(name: str) -> bool:
    """Whether setting ``name`` can make a shell or program run code it would not run."""
    return name in DANGEROUS_VARIABLES or name.startswith(_DANGEROUS_PREFIXES) or bool(
        re.match(r"^PS\d$", name))


def check_assignment(ctx: Context, name: str, value: Word | None, how: str) -> None:
    """Judge ``name=value`` (prefix, env argument or export)."""
    if dangerous_variable(name):
        ctx.add(R.ENV_INJECTION.verdict(f"{how} {name}=... changes what programs run or trust"))
    elif "[" in name:
        ctx.add(R.COMPLEX_EXPANSION.verdict(f"{how} {name}: array subscripts are evaluated as "
                                            "arithmetic and can run commands"))
    else:
        ctx.add(R.ASSIGNMENT.verdict(f"{how} {name}=..."))
    if value is not None and value.text is not None and re.search(r"\$\(|`", value.text):
        ctx.add(R.COMPLEX_EXPANSION.verdict(f"value of {name} holds command-substitution text "
                                            "that arithmetic or prompt evaluation would run"))


def _env(ctx: Context, inv: Invocation) -> None:
    flags = spec("i0v", "uCS", "ignore-environment null debug help version",
                 "unset chdir split-string block-signal default-signal ignore-signal",
                 "list-signal-handling", roles={"-C": "read", "--chdir": "read"}, posix=True)
    parsed = parse_flags(flags, inv.args)
    report_unknown(ctx, inv, parsed)
    for split in parsed.values("-S", "--split-string"):
        if split.text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict("env -S splits a string that comes from an expansion"))
        else:
            ctx.analyze_source(split.text, label="env -S")
    operands = list(parsed.operands)
    while operands and operands[0].text is not None and re.match(
            r"^[A-Za-z_][A-Za-z0-9_]*=", operands[0].text):
        name, _, value = operands.pop(0).text.partition("=")  # type: ignore[union-attr]
        check_assignment(ctx, name, Word.literal(value), "env")
    if operands and operands[0].text is not None and "=" in operands[0].text:
        ctx.add(R.ENV_INJECTION.verdict(f"env sets the unusual variable {operands[0].raw}"))
    if not operands:
        ctx.add(R.ENV_DUMP.verdict("env without a command prints every variable, secrets "
                                   "included"))
        inv.programs.add("env-dump")
        return
    ctx.add(R.WRAPPER.verdict("env runs another command"))
    run_inner(ctx, inv, operands)
    suffixes(ctx, operands[1:], inv)


def _printenv(ctx: Context, inv: Invocation) -> None:
    names = [w.text for w in inv.args if w.text is not None and not w.text.startswith("-")]
    if any(is_secret_name(name) for name in names):
        ctx.add(R.SECRET_ACCESS.verdict("printenv of a secret variable"))
    inv.programs.add("env-dump")
    ctx.add(R.ENV_DUMP.verdict(f"{inv.name} prints environment variables"))


def _set(ctx: Context, inv: Invocation) -> None:
    if not inv.args:
        inv.programs.add("env-dump")
        ctx.add(R.ENV_DUMP.verdict("set without arguments prints every variable"))
    else:
        ctx.add(R.ASSIGNMENT.verdict("set changes shell options or positional parameters"))


def _assigning_builtin(ctx: Context, inv: Invocation) -> None:
    for word in inv.args:
        text = word.text or ""
        if "[" in text and re.search(r"\$|`", text):
            ctx.add(R.COMPLEX_EXPANSION.verdict(f"{inv.name} {text[:30]}: subscripts are "
                                                "evaluated and can run commands"))
    ctx.add(R.ASSIGNMENT.verdict(f"{inv.name} assigns shell variables"))


def _let(ctx: Context, inv: Invocation) -> None:
    ctx.add(R.COMPLEX_EXPANSION.verdict("let evaluates arithmetic, which can run commands "
                                        "through array subscripts"))


HANDLERS: dict[str, Handler] = {
    "env": _env, "printenv": _printenv, "set": _set, "let": _let,
    **{name: _assigning_builtin for name in ("read", "mapfile", "readarray", "shopt", "unset")},
}
