"""Write/Read tool path attacks against real files, with openat2 and with the O_PATH walk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmos.security import beneath
from llmos.security.paths import PathDenied, check_path_tool, open_beneath, resolve_beneath

STRATEGIES = [pytest.param(True, id="openat2"), pytest.param(False, id="walk")]


@pytest.fixture(params=STRATEGIES)
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run the test once through openat2 and once through the component walk."""
    use = bool(request.param)
    if use and not beneath.openat2_available():
        pytest.skip("openat2 is not available on this kernel")
    monkeypatch.setattr(beneath, "_openat2_works", use)
    return use


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "app.py").write_text("print(1)\n")
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    (workspace / "notes.txt").write_text("n\n")
    (workspace / "out_link").symlink_to(outside)
    (workspace / "out_file").symlink_to(outside / "secret.txt")
    (workspace / "up").symlink_to("..")
    (workspace / "in_link").symlink_to("src")
    (workspace / "in_file").symlink_to("notes.txt")
    (workspace / "dangling_in").symlink_to("missing/file.txt")
    (workspace / "dangling_out").symlink_to("/nonexistent-llmos/x")
    (workspace / "loop").symlink_to("loop")
    (workspace / "proc_link").symlink_to("/proc/self/root")
    (workspace / "hook_link").symlink_to(".git/hooks")
    os.link(outside / "secret.txt", workspace / "hard.txt")
    os.mkfifo(workspace / "fifo")
    return workspace


def write(workspace: Path, file_path: object, tool: str = "Write"):  # type: ignore[no-untyped-def]
    return check_path_tool(tool, {"file_path": file_path, "content": "x"}, workspace)


def read(workspace: Path, file_path: object):  # type: ignore[no-untyped-def]
    return check_path_tool("Read", {"file_path": file_path}, workspace)


@pytest.mark.usefixtures("strategy")
class TestResolution:
    def test_plain_paths_resolve_inside(self, ws: Path) -> None:
        real = ws.resolve()
        assert resolve_beneath(ws, "notes.txt") == real / "notes.txt"
        assert resolve_beneath(ws, "./src/../notes.txt") == real / "notes.txt"
        assert resolve_beneath(ws, str(ws / "src" / "app.py")) == real / "src" / "app.py"
        assert resolve_beneath(ws, "new/deep/file.txt", for_write=True) == (
            real / "new" / "deep" / "file.txt")

    @pytest.mark.parametrize("attack", ["../x", "src/../../x", "../ws/notes.txt",
                                        "/etc/passwd", "/", "//etc/passwd"])
    def test_traversal_and_absolute_paths_are_denied(self, ws: Path, attack: str) -> None:
        with pytest.raises(PathDenied) as denied:
            resolve_beneath(ws, attack, for_write=True)
        assert denied.value.code == "outside"
        assert write(ws, attack).decision == "deny"

    @pytest.mark.parametrize("attack", ["out_link/secret.txt", "out_file", "up/outside/x",
                                        "up/ws/notes.txt", "loop", "proc_link/etc/passwd",
                                        "dangling_out", "out_link/new.txt"])
    def test_symlinks_out_are_denied(self, ws: Path, attack: str) -> None:
        with pytest.raises(PathDenied) as denied:
            resolve_beneath(ws, attack, for_write=True)
        assert denied.value.code in ("symlink", "outside")
        verdict = write(ws, attack)
        assert (verdict.decision, verdict.rule) in (("deny", "path.symlink"),
                                                    ("deny", "path.outside"))
        assert read(ws, attack).decision == "deny"

    def test_symlinks_inside_are_followed(self, ws: Path) -> None:
        assert resolve_beneath(ws, "in_link/app.py") == ws.resolve() / "src" / "app.py"
        assert write(ws, "in_file").decision == "allow"
        assert write(ws, "in_link/new.py").decision == "allow"

    def test_dangling_link_is_denied_for_writes(self, ws: Path) -> None:
        verdict = write(ws, "dangling_in")
        assert (verdict.decision, verdict.rule) == ("deny", "path.symlink")
        assert read(ws, "dangling_in").decision == "allow"  # reading it just fails

    def test_hard_link_is_denied_for_writes(self, ws: Path) -> None:
        verdict = write(ws, "hard.txt")
        assert (verdict.decision, verdict.rule) == ("deny", "path.hardlink")
        assert write(ws, "hard.txt", tool="Edit").decision == "deny"

    def test_fifo_and_directory_are_not_writable_files(self, ws: Path) -> None:
        assert write(ws, "fifo").rule == "path.special"
        assert read(ws, "fifo").rule == "path.special"
        assert write(ws, "src").rule == "path.special"

    def test_symlink_into_protected_directory_is_denied(self, ws: Path) -> None:
        verdict = write(ws, "hook_link/pre-commit")
        assert (verdict.decision, verdict.rule) == ("deny", "path.protected")

    def test_missing_directory_then_dotdot_is_not_trusted(self, ws: Path) -> None:
        assert write(ws, "missing/../notes.txt").decision == "deny"

    def test_open_beneath_writes_inside_and_creates_parents(self, ws: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = open_beneath(ws, "made/deep/file.txt", flags, make_parents=True)
        with os.fdopen(fd, "w") as handle:
            handle.write("ok")
        assert (ws / "made" / "deep" / "file.txt").read_text() == "ok"

    @pytest.mark.parametrize(("attack", "code"), [
        ("out_file", "symlink"), ("in_file", "symlink"), ("out_link/new.txt", "symlink"),
        ("up/x", "symlink"), ("hard.txt", "hardlink"), ("../x", "outside"),
        ("/etc/passwd", "outside"),
    ])
    def test_open_beneath_refuses_escapes(self, ws: Path, attack: str, code: str) -> None:
        with pytest.raises(PathDenied) as denied:
            open_beneath(ws, attack, os.O_WRONLY | os.O_CREAT, make_parents=True)
        assert denied.value.code == code
        assert (ws.parent / "outside" / "secret.txt").read_text() == "secret\n"


@pytest.mark.parametrize(("attack", "rule"), [
    ("a\x00b", "path.invalid"),
    ("x" * 5000, "path.invalid"),
    ("d/" + "y" * 300, "path.invalid"),
    ("bad\u202ename.txt", "path.invalid"),
    ("line\nbreak", "path.invalid"),
    ("", "path.invalid"),
    ("~/.bashrc", "path.expansion"),
    ("~root/x", "path.expansion"),
    ("$HOME/x", "path.expansion"),
    ("${HOME}/x", "path.expansion"),
    ("/proc/self/environ", "path.outside"),
    ("/proc/self/cwd/notes.txt", "path.outside"),
    ("/proc/self/root/etc/passwd", "path.outside"),
])
def test_malformed_and_expanding_paths_are_denied(ws: Path, attack: str, rule: str) -> None:
    verdict = write(ws, attack)
    assert (verdict.decision, verdict.rule) == ("deny", rule), verdict.reason


@pytest.mark.parametrize(("target", "decision"), [
    (".git/hooks/pre-commit", "deny"), (".git/config", "deny"), (".bashrc", "deny"),
    ("sub/.zshrc", "deny"), (".profile", "deny"), (".envrc", "deny"),
    (".vscode/settings.json", "deny"), (".idea/workspace.xml", "deny"),
    (".claude/settings.json", "deny"), (".mcp.json", "deny"), (".llmos/state.db", "deny"),
    (".ssh/authorized_keys", "deny"), (".Git/HOOKS/x", "deny"),
    ("CLAUDE.md", "ask"), ("AGENTS.md", "ask"), (".github/workflows/ci.yml", "ask"),
    ("src/claude_md.py", "allow"), ("docs/bashrc.txt", "allow"),
])
def test_protected_paths(ws: Path, target: str, decision: str) -> None:
    assert write(ws, target).decision == decision


def test_reads_of_protected_config_are_fine_but_secrets_ask(ws: Path) -> None:
    assert read(ws, ".git/config").decision == "allow"
    (ws / ".env").write_text("TOKEN=1\n")
    assert read(ws, ".env").rule == "path.secret_read"
    assert read(ws, "keys/server.key").decision == "ask"


def test_tool_input_shapes(ws: Path) -> None:
    assert check_path_tool("NotebookEdit", {"notebook_path": "../x.ipynb"}, ws).decision == "deny"
    assert check_path_tool("Grep", {"pattern": "x", "path": "src"}, ws).decision == "allow"
    assert check_path_tool("Grep", {"pattern": "x", "path": "/etc"}, ws).decision == "deny"
    assert check_path_tool("Glob", {"pattern": "**/*.py"}, ws).decision == "allow"
    assert check_path_tool("Glob", {"pattern": "../**"}, ws).rule == "path.glob_pattern"
    assert check_path_tool("Glob", {"pattern": "/etc/*"}, ws).rule == "path.glob_pattern"
    assert check_path_tool("Write", {"content": "x"}, ws).rule == "path.malformed_input"
    assert check_path_tool("Write", {"file_path": 3}, ws).rule == "path.malformed_input"
    assert check_path_tool("Write", ["x"], ws).rule == "path.malformed_input"  # type: ignore[arg-type]
    # an unknown plugin tool taking a path is treated as a writer
    assert check_path_tool("acme_export", {"path": ".git/config"}, ws).decision == "deny"


def test_workspace_reached_through_a_symlink(ws: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(ws)
    assert write(alias, str(alias / "notes.txt")).decision == "allow"
    assert write(alias, str(ws / "notes.txt")).decision == "allow"
    assert write(alias, "out_link/x").decision == "deny"


def test_missing_workspace_fails_closed(tmp_path: Path) -> None:
    verdict = write(tmp_path / "missing", "a.txt")
    assert verdict.decision == "deny"
