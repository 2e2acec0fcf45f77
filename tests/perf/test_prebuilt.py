"""What a process builds once and what a run builds only when it needs it (issue 12):
``prewarm()`` leaves a forked replay nothing to import or build, the redaction scanner
loads its keyword and entropy plugins only for a line that names a secret-ish word (and
still finds the secret there), and a config section no layer sets is made from its
defaults when first read, while a section that is set is still checked at start-up.
Asserted on ``sys.modules`` and on what users see; no timing here (bench/startup)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmos.config import ConfigError
from llmos.kernel import Kernel

ROOT = Path(__file__).resolve().parents[2]

FORKED_REPLAY = """
import atexit, json, os, sys
import llmos.cli
from llmos.cli._common import prewarm
failed = prewarm()
before = set(sys.modules)
pid = os.fork()
if pid == 0:
    atexit.register(lambda: print("NEW=" + json.dumps(sorted(set(sys.modules) - before)),
                                  file=sys.stderr))
    llmos.cli.main(sys.argv[1:])
print("FAILED=" + json.dumps(failed), file=sys.stderr)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.fixture
def env(llmos_env: Path) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _marked(stderr: str, mark: str) -> list[str]:
    line = next(x for x in stderr.splitlines() if x.startswith(mark))
    return json.loads(line.removeprefix(mark))


def test_a_replay_forked_after_prewarm_imports_nothing_of_llmos(env, tmp_path: Path) -> None:
    """What a fork server's parent does once (``llmos.cli._common.prewarm``) covers the
    whole replay path: the forked command imports no llmos module, no pack module and no
    secret detector, and still replays the trace."""
    workspace = tmp_path / "ws"
    setup = subprocess.run([sys.executable, str(ROOT / "bench" / "startup" /
                                                 "replay_workspace.py"), str(workspace)],
                           env=env, capture_output=True, text=True, timeout=300, check=True)
    proc = subprocess.run([sys.executable, "-c", FORKED_REPLAY, "--workspace", str(workspace),
                           "run", setup.stdout.strip(), "--json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ran = json.loads(proc.stdout)
    assert ran["mode"] == "FOLLOWER" and ran["success"] is True, ran
    assert (workspace / "primes.py").read_text() == "print([2, 3, 5, 7])\n"
    missing = [m for m in _marked(proc.stderr, "FAILED=")
               if importlib.util.find_spec(m.split(".")[0]) is not None]
    assert missing == [], "prewarm could not import installed modules"
    new = _marked(proc.stderr, "NEW=")
    ours = [m for m in new if m.split(".")[0] in ("llmos", "detect_secrets")
            or m.startswith("llmos_")]
    # a pack's own lazy imports (inside its hooks) are its business, not the kernel's
    assert [m for m in ours if not m.startswith("llmos_")] == [], new


SCANNER = """
import sys, llmos.cli
from llmos.memory.redaction import redact_text
print(redact_text("Create primes.py printing the first 4 primes and run it"))
print("detect_secrets.plugins.keyword" in sys.modules,
      "detect_secrets.plugins.high_entropy_strings" in sys.modules)
print(redact_text('db_password = "hunter2xyz42"'))
print("detect_secrets.plugins.keyword" in sys.modules)
"""


def test_the_scanner_loads_its_keyword_plugins_for_the_first_secret_ish_line(env, tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCANNER], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.splitlines() == [
        "Create primes.py printing the first 4 primes and run it", "False False",
        'db_password = "[REDACTED]"', "True"], proc.stdout


def test_prebuild_builds_every_part_and_redacts_the_same(env, tmp_path) -> None:
    code = """
import sys, llmos.cli
from llmos.memory import redaction
redaction.prebuild()
parts = ("context_patterns", "heuristic", "keyword", "entropy", "keyword_hit",
         "keyword_trigger")
print(all(p in vars(redaction._scanner()) for p in parts))
print(redaction.redact_text("aws AKIAEDT2SYWB3WKH5DNS, secret_key: 'Zm9vYmFyYmF6cXV4MTIzNDU2'"))
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.splitlines() == ["True", "aws [REDACTED], secret_key: '[REDACTED]'"]


def test_a_section_no_layer_sets_has_its_defaults_and_one_set_wrong_still_fails(
        llmos_env: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    kernel = Kernel(workspace)
    dispatch = kernel.config.section("dispatch")
    assert dispatch.follower_threshold == 0.92 and kernel.config.dispatch is dispatch
    assert kernel.config.as_dict()["budget"]["run_cap_usd"] == 1.0
    (workspace / "llmos.toml").write_text("[dispatch]\nfollower_threshold = 7\n")
    with pytest.raises(ConfigError, match=r"dispatch\.follower_threshold = 7"):
        Kernel(workspace)


def _strict_section() -> type:
    """A section whose model validator refuses its own defaults."""
    from pydantic import model_validator

    from llmos.config import Section

    class StrictConfig(Section):
        lower: int = 5
        upper: int = 1

        @model_validator(mode="after")
        def _ordered(self) -> StrictConfig:
            if self.lower > self.upper:
                raise ValueError("lower must not exceed upper")
            return self

    return StrictConfig


def test_a_section_whose_validator_refuses_its_defaults_fails_at_start_up(
        llmos_env: Path, tmp_path: Path) -> None:
    import llmos

    class Plugin:
        @llmos.hookimpl
        def llmos_register_config(self, register) -> None:
            register("strict", _strict_section())

    with pytest.raises(ConfigError, match="lower must not exceed upper"):
        Kernel(tmp_path / "ws", plugins={"strict-plugin": Plugin()})


def test_module_plugins_get_the_hooks_pluggy_itself_would_find(tmp_path: Path) -> None:
    """``llmos.plugins.PluginManager`` reads a module plugin's namespace directly (the
    cost of building a manager in every process); it must register exactly the hook
    implementations pluggy's own lookup finds: every built-in, and a module with a
    renamed implementation (``specname``), a staticmethod, a marked non-function and an
    unmarked function."""
    import importlib
    import types

    import pluggy

    from llmos import hookspecs, plugins

    odd = types.ModuleType("odd_plugin")
    exec("""
import llmos

@llmos.hookimpl(specname="llmos_register_tools")
def tools_under_another_name(register):
    pass

@llmos.hookimpl
def llmos_startup(kernel):
    pass

class _Holder:
    @staticmethod
    @llmos.hookimpl
    def llmos_shutdown(kernel):
        pass

llmos_shutdown = _Holder.__dict__["llmos_shutdown"]

class _Marked:
    llmos_impl = {}

llmos_register_config = _Marked()

def llmos_register_agents(register):
    pass
""", odd.__dict__)
    modules = [importlib.import_module(name) for name in plugins.DEFAULT_PLUGINS] + [odd]

    def hooks(manager_class: type) -> list[list[str]]:
        pm = manager_class("llmos")
        pm.add_hookspecs(hookspecs)
        found = []
        for module in modules:
            pm.register(module, name=module.__name__)
            found.append(sorted(h.name for h in pm.get_hookcallers(module) or []))
        return found

    ours, pluggys = hooks(plugins.PluginManager), hooks(pluggy.PluginManager)
    assert ours == pluggys
    assert ours[-1] == ["llmos_register_tools", "llmos_shutdown", "llmos_startup"]
