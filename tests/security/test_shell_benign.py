"""Everyday commands an agent runs must stay allowed; workspace code only in the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmos.security.shell import analyze_command

BENIGN = [
    "ls", "ls -la", "ls -lah src", "ls *.md", "ls src/*.py", "cat README.md",
    "cat src/app.py src/util.py", "cat -n README.md", "head README.md", "head -n 20 README.md",
    "head -5 README.md", "tail -n 3 notes.txt", "wc -l README.md", "wc -l src/*.py",
    "grep foo README.md", "grep -rn foo .", 'grep -rn "def main" src',
    "grep -ri --include='*.py' todo .", "grep -E 'a|b' README.md", "rg foo", "rg -n foo src",
    "find . -name '*.py'", "find . -type f -name \"*.md\" -not -path './.git/*'",
    "find src -maxdepth 1 -type d", "diff a.txt b.txt", "diff -u a.txt b.txt", "cmp a.txt b.txt",
    "git status", "git status --short", "git log", "git log --oneline -n 10",
    'git log --format="%h %s" -n 5', "git diff", "git diff HEAD~1 -- src",
    "git diff --stat main..HEAD", "git show HEAD", "git show HEAD:README.md", "git branch",
    "git branch -a", "git rev-parse HEAD", "git ls-files", "git blame README.md",
    "git log -p -- README.md", "mkdir build/out", "mkdir -p docs/api", "cp README.md docs/",
    "cp a.txt c.txt", "cp -r src build/src", "mv c.txt d.txt", "touch new.txt", "echo hello",
    'echo "hello world" > out.txt', "echo x >> notes.txt", "ls > /dev/null 2>&1", "pwd",
    "sort README.md", "sort README.md | uniq -c", "cut -d, -f1 notes.txt",
    "tr a-z A-Z < README.md", "cat README.md | grep foo | wc -l", "ls | head -3", "ls && pwd",
    "ls; pwd", "ls || echo none", "sed -n '1,5p' README.md", "sed 's/foo/bar/g' README.md",
    "sed -i 's/foo/bar/' notes.txt", "awk '{print $1}' README.md", "jq . package.json",
    "command -v python3", "which git", "basename src/app.py", "date +%Y-%m-%d", "uname -a",
    "tee out.txt < README.md", "cd src && ls", "cd src && cat app.py", "du -sh src",
    "stat README.md", "sha256sum README.md", "cat <<'EOF' > notes2.txt\nhello $world\nEOF",
    "grep -c foo < README.md", 'wc -w <<< "a b c"', "ls -la inner/", "cat inner/app.py",
    "mkdir -p build && cp -r src build/", "cat .git/config",
]

WORKSPACE_CODE = [
    "python3 src/app.py", "python src/app.py", "python3 -m pytest -q", "pytest",
    "pytest -x tests", "npm test", "npm run build", "make", "make test", "cargo test",
    "go test ./...", "bash build.sh", "./run.sh", "node src/index.js", "ruff check .",
    "uv run pytest", "git status && pytest -q", "python3 -m unittest",
]


@pytest.mark.parametrize("command", BENIGN)
def test_everyday_command_is_allowed(command: str, workspace: Path) -> None:
    verdict = analyze_command(command, sandboxed=False, workspace=workspace)
    assert verdict.decision == "allow", verdict.reason
    assert verdict.rule == "shell.allowlisted"


@pytest.mark.parametrize("command", WORKSPACE_CODE)
def test_workspace_code_runs_only_in_the_sandbox(command: str, workspace: Path) -> None:
    inside = analyze_command(command, sandboxed=True, workspace=workspace)
    outside = analyze_command(command, sandboxed=False, workspace=workspace)
    assert inside.decision == "allow", inside.reason
    assert outside.decision == "ask", outside.reason
    assert outside.rule == "shell.workspace_code"
