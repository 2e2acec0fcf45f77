"""The thin client: what it imports, how it reads the command line, and that a daemon
that started before a code change (an edited module, a ``pip install``) is not used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from llmos import client
from tests.daemon.conftest import alive, llmos, probe_plugin, served, status, wait_until


def test_the_client_imports_no_click_pluggy_or_pydantic():
    proc = subprocess.run(
        [sys.executable, "-c", "import json, sys; import llmos.client; "
         "print(json.dumps(sorted(sys.modules)))"], capture_output=True, text=True,
        timeout=60, check=True)
    modules = set(json.loads(proc.stdout))
    assert "llmos.client" in modules
    heavy = {m for m in modules if m.split(".")[0] in (
        "click", "pluggy", "pydantic", "rich", "llmos.cli", "socket", "subprocess",
        "typing", "asyncio")}
    assert heavy == set()


def test_llmos_hookimpl_still_works_both_ways():
    proc = subprocess.run(
        [sys.executable, "-c", "import llmos; from llmos import hookimpl; "
         "import pluggy; assert isinstance(hookimpl, pluggy.HookimplMarker); "
         "assert llmos.hookimpl is hookimpl; print('ok')"],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_the_client_knows_every_global_option_of_the_cli():
    from llmos.cli import cli

    table = {}
    for param in cli.params:
        for opt in (*param.opts, *param.secondary_opts):
            table[opt] = not getattr(param, "is_flag", False) and param.nargs != 0
    table.update({opt: False for opt in cli.get_help_option_names(cli.make_context(
        "llmos", [], resilient_parsing=True))})
    assert table == client.GLOBAL_OPTIONS


@pytest.mark.parametrize("args, command", [
    (["run", "x"], "run"),
    (["-w", "ws", "run", "x"], "run"),
    (["-wws", "route", "x"], "route"),
    (["--workspace=ws", "--set", "a.b=1", "-p", "p", "tools"], "tools"),
    (["--plugin", "x.py", "plugins"], "plugins"),
    (["--version"], None),
    (["-h"], None),
    (["--", "run"], None),
    (["--bogus", "run"], None),
    (["-w"], None),
    ([], None),
    (["shell"], "shell"),
])
def test_the_command_is_found_after_the_global_options(args, command):
    assert client.command_of(args) == command


@pytest.mark.parametrize("argv, environ, why", [
    (["llmos", "shell"], {}, "not served"),
    (["llmos", "worker"], {}, "not served"),
    (["llmos", "daemon", "status"], {}, "not served"),
    (["llmos", "frobnicate"], {}, "not served"),
    (["llmos", "run", "x"], {"LLMOS_DAEMON": "off"}, "LLMOS_DAEMON"),
    (["llmos", "run", "x"], {"LLMOS_DAEMON": "0"}, "LLMOS_DAEMON"),
    (["llmos", "run", "x"], {"PYTHONPATH": "/x"}, "PYTHONPATH"),
    (["llmos", "run", "x"], {"PYTHONPROFILEIMPORTTIME": "1"}, "PYTHONPROFILEIMPORTTIME"),
    (["llmos", "run", "x"], {"COVERAGE_PROCESS_START": "x"}, "COVERAGE"),
    (["llmos", "run", "x"], {"LLMOS_AGENT_PROCESS": "1"}, "agent"),
    (["llmos", "run", "x"], {"PYTHONUTF8": "1", "PYTHONUNBUFFERED": "1"}, None),
])
def test_what_runs_in_process(argv, environ, why):
    reason = client.refusal(argv, environ)
    if why is None:
        assert reason is None
    else:
        assert reason is not None and why in reason


def test_interpreter_options_run_in_process(env, replay):
    _, goal = replay
    for options in (["-X", "importtime"], ["-v"], ["-I"]):
        proc = subprocess.run([sys.executable, *options, "-c",
                               "import sys; from llmos import client; "
                               "print(client.refusal(sys.argv))", "route", goal],
                              capture_output=True, text=True, env=env, timeout=60,
                              check=False)
        assert "options" in proc.stdout, (options, proc.stdout, proc.stderr[-500:])


# --- staleness, in a virtualenv of its own with a plugin of its own --------------------


PLUGIN_V1 = "import llmos\n"
PLUGIN_V2 = probe_plugin("probe_tool", '"v2"')


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A virtualenv that sees the dev environment's packages and holds one more plugin
    (an ``llmos`` entry point); its own ``llmos`` console script."""
    root = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True,
                   timeout=120)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(root),
                                                     "platbase": str(root)}))
    assert site.is_dir(), site
    dev = sysconfig.get_path("purelib")
    (site / "aa_llmos_dev.pth").write_text(f"import site; site.addsitedir({dev!r})\n")
    (site / "daemon_probe.py").write_text(PLUGIN_V1)
    info = site / "daemon_probe-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: daemon-probe\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[llmos]\nprobe = daemon_probe\n")
    script = root / "bin" / "llmos"
    script.write_text(f"#!{root / 'bin' / 'python'}\nimport sys\nfrom llmos.client import "
                      "main\nif __name__ == '__main__':\n    sys.exit(main())\n")
    script.chmod(0o755)
    return root


def _site(venv: Path) -> Path:
    return next(venv.glob("lib/python*/site-packages"))


def test_an_edited_plugin_module_and_a_pip_install_are_noticed(env, venv, tmp_path):
    exe = venv / "bin" / "llmos"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    tools = ["-w", str(workspace), "tools", "--json"]
    first = served(tools, env, exe=exe)
    assert "probe_tool" not in first.stdout.decode()
    old = status(env, exe)["daemon"]["pid"]
    module = _site(venv) / "daemon_probe.py"
    module.write_text(PLUGIN_V2)
    st = module.stat()
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after = llmos(*tools, env=env, exe=exe)  # the stale daemon answers fallback
    assert after.returncode == 0, after.stderr
    assert "probe_tool" in after.stdout.decode()
    wait_until(lambda: not alive(old), 60, "the stale daemon to exit")
    fresh = served(tools, env, exe=exe)
    assert "probe_tool" in fresh.stdout.decode()
    new = status(env, exe)["daemon"]["pid"]
    assert new != old
    # pip install: a new distribution in a folder of sys.path
    (_site(venv) / "another-1.0.dist-info").mkdir()
    assert llmos(*tools, env=env, exe=exe).returncode == 0
    wait_until(lambda: not alive(new), 60, "the daemon to notice the install")
