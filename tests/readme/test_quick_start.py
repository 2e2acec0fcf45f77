"""The README's quick start: two one-line commands that work on a stock Debian 12 / Ubuntu
24.04 (a virtual environment, since the system's Python refuses pip: PEP 668), the Python
versions it states, and ``.ci/run`` taking the same steps as the test command."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
QUICK_START = README[README.index("## Quick start\n"):README.index("\n## ", README.index(
    "## Quick start\n") + 1)]


def commands() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", QUICK_START, re.S)


def steps(command: str) -> list[list[str]]:
    """The command's steps (split at && and ;), each as its words; braces dropped."""
    words = [w for w in shlex.split(command) if w not in ("{", "}")]
    found, step = [], []
    for word in words:
        if word in ("&&", "||", ";") or word.endswith(";"):
            if word.endswith(";") and word != ";":
                step.append(word[:-1])
            if step:
                found.append(step)
            step = []
        else:
            step.append(word)
    if step:
        found.append(step)
    return found


def apt_packages(step_list: list[list[str]]) -> set[str]:
    return {w for s in step_list if s[:2] == ["apt-get", "install"] for w in s[2:]
            if not w.startswith("-")}


def test_two_commands_each_one_line():
    found = commands()
    assert len(found) == 2
    assert all("\n" not in c for c in found)


@pytest.mark.parametrize("which", [0, 1])
def test_each_command_installs_into_a_venv_never_the_system_python(which):
    command = commands()[which]
    parts = steps(command)
    assert {"python3-venv", "python3-pip", "bubblewrap", "socat"} <= apt_packages(parts)
    assert ["python3", "-m", "venv", ".venv"] in parts
    for step in parts:
        if "pip" in step or step[0].endswith("pip"):
            assert step[0] == ".venv/bin/pip", step  # never `python3 -m pip` or a bare pip


def test_the_main_command_installs_llmos_and_runs_a_goal_twice_able():
    parts = steps(commands()[0])
    assert [".venv/bin/pip", "install", "-e", "."] in parts
    assert [".venv/bin/llmos", "--workspace", "workspace", "budget", "set", "1"] in parts
    assert parts[-1][:4] == [".venv/bin/llmos", "--workspace", "workspace", "run"]


def test_the_test_command_runs_tox_from_the_venv_with_what_the_tests_need():
    parts = steps(commands()[1])
    # postgresql: the PostgreSQL backend's tests; g++/python3-dev: pybullet on CPython 3.12+
    assert {"postgresql", "g++", "python3-dev", "chromium", "chromium-driver"} <= apt_packages(
        parts)
    assert [".venv/bin/pip", "install", "tox>=4.10"] in parts
    assert parts[-1] == [".venv/bin/tox"]


def test_ci_takes_the_same_steps_as_the_test_command():
    readme_steps = steps(commands()[1])
    script = (ROOT / ".ci" / "run").read_text()
    lines = [line.split("#")[0].strip() for line in script.replace("\\\n", " ").splitlines()]
    ci_steps = [shlex.split(line) for line in lines if line]
    installed = {w for s in ci_steps if s[:2] == ["apt-get", "install"] for w in s[2:]
                 if not w.startswith("-") and w[0].isalnum()}
    assert apt_packages(readme_steps) <= installed
    assert ["python3", "-m", "venv", ".venv"] in ci_steps
    assert any(s[:2] == [".venv/bin/pip", "install"] and "tox>=4.10" in s for s in ci_steps)
    assert [".venv/bin/tox", "$@"] in ci_steps


def test_the_readme_states_the_supported_pythons():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f'`requires-python = "{project["requires-python"]}"`' in QUICK_START
    robo = tomllib.loads((ROOT / "packages/llmos-robo/pyproject.toml").read_text())["project"]
    pin = next(d for d in robo["dependencies"] if d.startswith("pybullet"))
    assert f"pybullet {pin.split('==')[1]}" in QUICK_START
    assert "only for CPython 3.11" in QUICK_START


def test_tox_leaves_no_venv_file_and_git_ignores_one(tmp_path):
    tox = (ROOT / "tox.ini").read_text()
    assert re.search(r"^venv_redirect = false$", tox, re.M)  # no PEP 832 .venv redirect file
    if not shutil.which("git"):
        pytest.skip("needs git")
    repo = tmp_path / "clone"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    (repo / ".venv").write_text(".tox/kernel\n")  # what tox writes without venv_redirect
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, check=True,
                            capture_output=True, text=True).stdout
    assert status.split() == ["??", ".gitignore"]
    (repo / ".venv").unlink()
    (repo / ".venv" / "bin").mkdir(parents=True)  # the quick start's virtual environment
    (repo / ".venv" / "bin" / "python").write_text("")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, check=True,
                            capture_output=True, text=True).stdout
    assert status.split() == ["??", ".gitignore"]


SYSTEM_PYTHON = Path("/usr/bin/python3")


def externally_managed() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    stdlib = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sysconfig; print(sysconfig."
                             "get_paths()['stdlib'])"], capture_output=True, text=True).stdout
    return (Path(stdlib.strip()) / "EXTERNALLY-MANAGED").exists()


@pytest.mark.skipif(not externally_managed(),
                    reason="needs a Debian/Ubuntu /usr/bin/python3 marked EXTERNALLY-MANAGED")
def test_the_system_pip_refuses_and_a_venvs_pip_installs(tmp_path):
    """Why the quick start makes a venv: the system's pip refuses, the venv's does not."""
    wheel = tmp_path / "tiny_quick_start_check-1.0-py3-none-any.whl"
    info = "tiny_quick_start_check-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:  # the smallest wheel: no build step
        archive.writestr("tiny_quick_start_check.py", "")
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\n"
                         "Name: tiny-quick-start-check\nVersion: 1.0\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                         "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    install = ["-m", "pip", "install", "--dry-run", "--no-index", "--no-deps", str(wheel)]
    refused = subprocess.run([str(SYSTEM_PYTHON), *install], capture_output=True, text=True)
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr
    venv = tmp_path / ".venv"
    made = subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        pytest.skip(f"python3-venv is not installed: {made.stderr.strip()[-200:]}")
    done = subprocess.run([str(venv / "bin" / "python"), *install], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Would install tiny-quick-start-check-1.0" in done.stdout

