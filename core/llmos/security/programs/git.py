"""git: read-only subcommands are allowed; config and transports that run programs deny."""

from __future__ import annotations

import re

from llmos.security import shellrules as R
from llmos.security.programs.common import Handler, approve
from llmos.security.shellargs import Context, Invocation, long_prefix_of
from llmos.security.shellwords import Word

_GIT_DANGEROUS_CONFIG = re.compile(
    r"^(core\.(fsmonitor|hookspath|sshcommand|pager|editor|askpass|gitproxy|worktree)|"
    r"diff\..*\.(textconv|command)|diff\.external|merge\..*\.driver|filter\..*|"
    r"credential\..*|sequence\.editor|gpg\..*program|alias\..*|uploadpack\..*|"
    r"receivepack\..*|remote\..*\.(uploadpack|receivepack|proxy)|protocol\..*allow|"
    r"include\.path|includeif\..*|pager\..*|web\.browser|browser\..*|man\..*|"
    r"init\.templatedir|http\..*proxy|ssh\.variant|instaweb\..*|sendemail\..*|guitool\..*|"
    r"difftool\..*|mergetool\..*|submodule\..*)",
    re.IGNORECASE,
)


_GIT_EXEC_OPTIONS = ("--upload-pack", "--receive-pack", "--exec", "--ext-diff", "--textconv",
                     "--open-files-in-pager", "--config-env", "--exec-path", "--template",
                     "--extcmd", "--tool")


_GIT_READ = frozenset(["status", "log", "diff", "show", "rev-parse", "ls-files", "blame",
                       "shortlog", "describe", "cat-file", "ls-tree", "show-ref",
                       "rev-list", "merge-base", "name-rev", "whatchanged", "count-objects",
                       "version", "help", "grep", "diff-tree", "diff-files", "diff-index",
                       "for-each-ref", "check-ignore", "check-attr"])


_GIT_LISTING = {"branch": ("--list", "-l", "-a", "--all", "-r", "--remotes", "-v", "-vv",
                           "--verbose", "--show-current", "--merged", "--no-merged",
                           "--contains", "--no-contains", "--sort", "--format", "--color",
                           "--no-color", "--column", "--no-column", "--points-at"),
                "tag": ("--list", "-l", "-n", "--sort", "--contains", "--no-contains",
                        "--merged", "--no-merged", "--points-at", "--format", "--column"),
                "remote": ("-v", "--verbose", "show", "get-url"),
                "stash": ("list", "show")}


_GIT_NETWORK = frozenset(["clone", "fetch", "pull", "push", "ls-remote", "submodule", "archive",
                          "request-pull", "send-email"])


def _git_config_value(ctx: Context, word: Word | None, how: str) -> None:
    if word is None or word.text is None:
        ctx.add(R.DYNAMIC_VALUE.verdict(f"git {how} value comes from an expansion"))
        return
    key = word.text.split("=", 1)[0].strip()
    if _GIT_DANGEROUS_CONFIG.match(key):
        ctx.add(R.EXEC_FLAG.verdict(f"git {how} {key} can make git run a program"))
    else:
        ctx.add(R.GIT_MUTATING.verdict(f"git {how} {key} overrides configuration"))


def _git_scan(ctx: Context, args: list[Word], subcommand: str) -> None:
    for index, word in enumerate(args):
        text = word.text
        if text is None:
            continue
        if "ext::" in text or text.startswith("fd::"):
            ctx.add(R.EXEC_FLAG.verdict(f"git transport {text.split(':', 1)[0]}:: runs commands"))
        option = long_prefix_of(text, _GIT_EXEC_OPTIONS)
        if option is not None:
            ctx.add(R.EXEC_FLAG.verdict(f"git {option} runs an external program"))
        if text in ("-u",) and subcommand in ("clone", "fetch", "pull", "ls-remote", "archive"):
            ctx.add(R.EXEC_FLAG.verdict(f"git {subcommand} -u is --upload-pack"))
        if subcommand == "grep" and text.startswith("-O"):
            ctx.add(R.EXEC_FLAG.verdict("git grep -O opens matches in a pager program"))
        if text in ("-c", "--config") and subcommand == "clone" and index + 1 < len(args):
            _git_config_value(ctx, args[index + 1], text)
        if text.startswith("--config=") and subcommand == "clone":
            _git_config_value(ctx, Word.literal(text.partition("=")[2]), "--config")
        if text.startswith(("--output=", "--output-directory=")) or text == "--output" or (
                text == "-o" and subcommand in ("archive", "format-patch")):
            value = text.partition("=")[2] if "=" in text else (
                args[index + 1].text if index + 1 < len(args) else None)
            ctx.check_path(Word(text=value, raw=word.raw), "write")


def _git(ctx: Context, inv: Invocation) -> None:
    args = list(inv.args)
    index = 0
    while index < len(args):
        word = args[index]
        text = word.text
        if text is None:
            ctx.add(R.DYNAMIC_VALUE.verdict("git option comes from an expansion and could be -c"))
            index += 1
            continue
        if not text.startswith("-"):
            break
        index += 1
        if text in ("-c", "--config-env"):
            _git_config_value(ctx, args[index] if index < len(args) else None, text)
            index += 1
        elif text.startswith("--config-env="):
            _git_config_value(ctx, Word.literal(text.partition("=")[2]), "--config-env")
        elif text == "-C":
            if index < len(args):
                ctx.check_path(args[index], "read")
            index += 1
        elif text in ("--no-pager", "-P", "--no-replace-objects", "--literal-pathspecs",
                      "--glob-pathspecs", "--noglob-pathspecs", "--icase-pathspecs",
                      "--no-optional-locks", "--version", "--help", "-p", "--paginate",
                      "--no-advice"):
            continue
        elif text.startswith("--exec-path") and text != "--exec-path":
            ctx.add(R.EXEC_FLAG.verdict("git --exec-path=DIR runs git programs from DIR"))
        elif long_prefix_of(text, _GIT_EXEC_OPTIONS) is not None:
            ctx.add(R.EXEC_FLAG.verdict(f"git {text.partition('=')[0]} runs an external program"))
        else:
            ctx.add(R.UNKNOWN_FLAG.verdict(f"git {text} is not on the allowlist"))
    rest = args[index:]
    if not rest:
        approve(ctx, inv)
        return
    sub_word, sub_args = rest[0], rest[1:]
    subcommand = sub_word.text or ""
    _git_scan(ctx, sub_args, subcommand)
    _git_runs_commands(ctx, subcommand, sub_args)
    for word in sub_args:
        _git_operand_path(ctx, word)
    if subcommand in _GIT_READ:
        approve(ctx, inv, f"git {subcommand} only reads the repository")
    elif subcommand == "reflog" and any(w.text in ("expire", "delete", "drop")
                                        for w in sub_args):
        ctx.add(R.GIT_MUTATING.verdict("git reflog expire/delete rewrites the reflog"))
    elif subcommand == "reflog":
        approve(ctx, inv, "git reflog only lists")
    elif subcommand == "stash" and not sub_args:
        ctx.add(R.GIT_MUTATING.verdict("git stash saves and resets the working tree"))
    elif subcommand in _GIT_LISTING:
        allowed = _GIT_LISTING[subcommand]
        extra = [w.raw for w in sub_args
                 if w.text is None or w.text.partition("=")[0] not in allowed]
        if subcommand in ("branch", "tag") and any(w.text in ("--list", "-l") for w in sub_args):
            extra = [e for e in extra if e.startswith("-")]
        if extra:
            ctx.add(R.GIT_MUTATING.verdict(f"git {subcommand} {' '.join(extra)} changes refs"))
        else:
            approve(ctx, inv, f"git {subcommand} only lists")
    elif subcommand in _GIT_NETWORK:
        ctx.add(R.NETWORK.verdict(f"git {subcommand} talks to a remote"))
        inv.programs.add("git-network")
    else:
        ctx.add(R.GIT_MUTATING.verdict(f"git {subcommand or sub_word.raw} is not a read-only "
                                       "subcommand"))


def _git_runs_commands(ctx: Context, subcommand: str, args: list[Word]) -> None:
    """Subcommands that run commands or store configuration that will."""
    texts = [w.text for w in args]
    if subcommand == "config":
        for word in args:
            if word.text is None or _GIT_DANGEROUS_CONFIG.match(word.text.partition("=")[0]):
                ctx.add(R.EXEC_FLAG.verdict(f"git config {word.raw} sets a key that makes git "
                                            "run a program"))
    elif subcommand == "filter-branch" and any(
            t is None or (t.startswith("--") and t.endswith("-filter")) for t in texts):
        ctx.add(R.EXEC_FLAG.verdict("git filter-branch filters are shell code"))
    elif subcommand in ("rebase", "difftool", "mergetool") and any(
            t in ("-x", "-t", "--tool", "--extcmd") or t is None for t in texts):
        ctx.add(R.EXEC_FLAG.verdict(f"git {subcommand} -x/--tool runs a program"))
    elif subcommand == "bisect" and "run" in texts:
        inner = args[texts.index("run") + 1:]
        if inner:
            ctx.analyze_argv(inner, Invocation(name=inner[0].text or "?", args=inner[1:]))
    elif subcommand == "submodule" and "foreach" in texts:
        rest = [w for w in args[texts.index("foreach") + 1:] if w.text != "--recursive"]
        if any(w.text is None for w in rest):
            ctx.add(R.DYNAMIC_VALUE.verdict("git submodule foreach command is computed"))
        elif rest:
            ctx.analyze_source(" ".join(w.text or "" for w in rest),
                               label="git submodule foreach")


def _git_operand_path(ctx: Context, word: Word) -> None:
    """Check git operands that look like paths leaving the workspace."""
    text = word.text
    if text is None:
        return
    if text.startswith("-"):
        if "=" not in text:
            return
        text = text.partition("=")[2]  # --contents=FILE, --exclude-from=FILE, ...
    candidate = text.split(":", 1)[1] if re.match(r"^[^/:]+:", text) else text
    if candidate.startswith(("/", "~")) or ".." in candidate.split("/"):
        ctx.check_path(Word(text=candidate, raw=word.raw), "read")


HANDLERS: dict[str, Handler] = {
    "git": _git,
}
