"""A config section whose plugin is not installed, disabled or failed is a warning (config
show, plugins), never a failure of other commands; a near-miss section is an error; config
show credits each key to its own source and lists the files it looked for."""

from __future__ import annotations

import json
import os
import site
import sys
from pathlib import Path

import pytest

from tests.plugins.conftest import run_llmos, tool_plugin, write_plugin

OTHER_COMMANDS = (("tools", "--json"), ("plugins", "--json"), ("config", "show", "--json"),
                  ("policy", "rules"), ("budget", "--json"))


def section_plugin(name: str) -> str:
    """A local plugin with a tool ``<name>_now``, a config section ``[<name>]`` (key
    ``city``) and a command ``llmos <name>``: what a pack adds, without installing one."""
    return tool_plugin(f"{name}_now", extra=f"""
        import click


        class Settings(llmos.config.Section):
            city: str = "Paris"


        @llmos.hookimpl
        def llmos_register_config(register):
            register({name!r}, Settings)


        @llmos.hookimpl
        def llmos_register_commands(cli):
            @cli.command({name!r})
            def command():
                \"\"\"Say where it is.\"\"\"
                click.echo({name!r})
        """)


def local_plugins(tmp_path: Path, monkeypatch, *names: str) -> Path:
    plugin_dir = tmp_path / "user-plugins"
    plugin_dir.mkdir(exist_ok=True)
    monkeypatch.setenv("LLMOS_PLUGIN_DIR", str(plugin_dir))
    for name in names:
        write_plugin(plugin_dir, name, section_plugin(name))
    return plugin_dir


def assert_only_warned(llmos_cli, expected: str) -> None:
    """Every command works, and config show and plugins print the warning."""
    for args in OTHER_COMMANDS:
        result = llmos_cli(*args)
        assert result.exit_code == 0, (args, result.output)
        assert "Traceback" not in result.output
    shown = llmos_cli("config", "show", "--json")
    assert expected in json.loads(shown.stdout)["warnings"]
    assert f"warning: {expected}" in shown.stderr
    assert f"warning: {expected}" in llmos_cli("config", "show").stderr
    assert f"warning: {expected}" in llmos_cli("plugins").stderr
    assert f"warning: {expected}" in llmos_cli("plugins", "--json").stderr


def test_a_section_of_a_disabled_plugin_is_a_warning(llmos_cli, llmos_workspace, tmp_path,
                                                     monkeypatch):
    local_plugins(tmp_path, monkeypatch, "weather")
    (llmos_workspace / "llmos.toml").write_text("[weather]\ncity = 'Oslo'\n")
    monkeypatch.setenv("LLMOS_DISABLE_PLUGINS", "weather")
    assert_only_warned(llmos_cli, (
        f"{llmos_workspace / 'llmos.toml'}: section [weather] is ignored: plugin 'weather' is "
        "disabled by LLMOS_DISABLE_PLUGINS; enable it (remove 'weather' from "
        "LLMOS_DISABLE_PLUGINS) or remove the section"))
    weather = {p["name"]: p for p in json.loads(llmos_cli("plugins", "--json").stdout)}["weather"]
    assert (weather["state"], weather["disabled_by"], weather["kind"]) == (
        "disabled", "LLMOS_DISABLE_PLUGINS", "local")
    assert "disabled by LLMOS_DISABLE_PLUGINS" in llmos_cli("plugins").stdout


def test_a_section_of_a_plugin_left_out_by_load_plugins_is_a_warning(llmos_cli, tmp_path,
                                                                      monkeypatch):
    local_plugins(tmp_path, monkeypatch, "weather", "almanac")
    monkeypatch.setenv("LLMOS_LOAD_PLUGINS", "almanac")
    monkeypatch.setenv("LLMOS_WEATHER__CITY", "Oslo")
    assert_only_warned(llmos_cli, (
        "environment variable LLMOS_WEATHER__CITY: section [weather] is ignored: plugin "
        "'weather' is disabled by LLMOS_LOAD_PLUGINS (not listed); enable it (add 'weather' "
        "to LLMOS_LOAD_PLUGINS) or remove the section"))


def test_a_section_of_a_failed_plugin_is_a_warning(llmos_cli, llmos_workspace, tmp_path,
                                                   monkeypatch):
    plugin_dir = tmp_path / "user-plugins"
    plugin_dir.mkdir()
    monkeypatch.setenv("LLMOS_PLUGIN_DIR", str(plugin_dir))
    write_plugin(plugin_dir, "weather", "raise ImportError('weather needs pyowm')\n")
    (llmos_workspace / "llmos.toml").write_text("[weather]\ncity = 'Oslo'\n")
    assert_only_warned(llmos_cli, (
        f"{llmos_workspace / 'llmos.toml'}: section [weather] is ignored: plugin 'weather' "
        "failed to load (ImportError: weather needs pyowm); fix it (llmos plugins -v shows "
        "the traceback) or remove the section"))


def _fake_entry_point(root: Path, name: str, module_source: str) -> Path:
    dist = root / f"llmos_fake_{name}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: llmos-fake-{name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[llmos]\n{name} = llmos_fake_{name}\n")
    (root / f"llmos_fake_{name}.py").write_text(module_source)
    return root


def test_an_entry_point_plugin_whose_import_raises_is_isolated(llmos_workspace, tmp_path):
    path = _fake_entry_point(tmp_path / "site", "weather",
                             "raise RuntimeError('weather: no API key in this module')\n")
    (llmos_workspace / "llmos.toml").write_text("[weather]\ncity = 'Oslo'\n")
    env = {"PYTHONPATH": str(path)}
    for args in (("tools", "--json"), ("config", "show", "--json")):
        result = run_llmos(llmos_workspace, *args, env=env)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    result = run_llmos(llmos_workspace, "plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    info = {p["name"]: p for p in json.loads(result.stdout)}["weather"]
    assert (info["state"], info["kind"], info["distribution"]) == (
        "failed", "entry-point", "llmos-fake-weather")
    assert info["error"] == "RuntimeError: weather: no API key in this module"
    assert ("section [weather] is ignored: plugin 'weather' failed to load (RuntimeError: "
            "weather: no API key in this module)") in result.stderr


@pytest.fixture
def without_llmos_web(tmp_path: Path) -> list[str]:
    """An interpreter command line whose environment lacks the llmos-web distribution: the
    venv's site-packages, less llmos-web's metadata and path file, as a site directory."""
    real = Path(next(p for p in site.getsitepackages() if p.endswith("site-packages")))
    fake = tmp_path / "site-without-web"
    fake.mkdir()
    for entry in real.iterdir():
        if "llmos_web" in entry.name:
            continue
        (fake / entry.name).symlink_to(entry)
    bootstrap = (f"import site, sys; site.addsitedir({str(fake)!r}); "
                 "from llmos.cli import main; main()")
    return [sys.executable, "-S", "-c", bootstrap]


def test_a_section_of_a_pack_that_is_not_installed_is_a_warning(llmos_workspace,
                                                                 without_llmos_web):
    (llmos_workspace / "llmos.toml").write_text("[web]\nfetch_timeout_s = 5\n")
    listed = run_llmos(llmos_workspace, "plugins", "--json", python=without_llmos_web)
    assert listed.returncode == 0, listed.stderr
    assert "web" not in {p["name"] for p in json.loads(listed.stdout)}  # really absent
    warning = (f"{llmos_workspace / 'llmos.toml'}: section [web] is ignored: plugin 'web' is "
               "not installed; install it (pip install llmos-web) or remove the section")
    assert f"warning: {warning}" in listed.stderr
    for args in (("tools", "--json"), ("policy", "rules"), ("budget", "--json")):
        result = run_llmos(llmos_workspace, *args, python=without_llmos_web)
        assert result.returncode == 0, result.stderr
    shown = run_llmos(llmos_workspace, "config", "show", "--json", python=without_llmos_web)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["warnings"] == [warning]


@pytest.mark.parametrize(("section", "meant"), [("webb", "web"), ("budgte", "budget"),
                                                ("memroy", "memory")])
def test_a_near_miss_section_is_an_error_with_did_you_mean(llmos_cli, llmos_workspace,
                                                          section, meant):
    (llmos_workspace / "llmos.toml").write_text(f"[{section}]\nx = 1\n")
    for args in (("tools",), ("config", "show")):
        result = llmos_cli(*args)
        assert result.exit_code == 2, result.output
        assert f"unknown section [{section}]; did you mean [{meant}]?" in result.stderr
        assert "Traceback" not in result.output


def test_a_section_no_plugin_ever_offered_is_a_warning(llmos_cli, llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text("[zyxwv]\nx = 1\n")
    assert_only_warned(llmos_cli, (
        f"{llmos_workspace / 'llmos.toml'}: unknown section [zyxwv] is ignored: no installed "
        "plugin provides it; install the plugin it belongs to, or remove the section"))


def test_a_loaded_local_plugins_section_is_validated(llmos_cli, llmos_workspace, tmp_path,
                                                     monkeypatch):
    plugin_dir = tmp_path / "user-plugins"
    plugin_dir.mkdir()
    monkeypatch.setenv("LLMOS_PLUGIN_DIR", str(plugin_dir))
    write_plugin(plugin_dir, "weather", tool_plugin("forecast", extra="""
        class WeatherConfig(llmos.config.Section):
            city: str = "Paris"


        @llmos.hookimpl
        def llmos_register_config(register):
            register("weather", WeatherConfig)
        """))
    (llmos_workspace / "llmos.toml").write_text("[weather]\ncity = 'Oslo'\n")
    shown = json.loads(llmos_cli("config", "show", "--json").stdout)
    assert shown["config"]["weather"] == {"city": "Oslo"}
    assert shown["warnings"] == []
    (llmos_workspace / "llmos.toml").write_text("[weather]\ncountry = 'NO'\n")
    result = llmos_cli("tools")
    assert result.exit_code == 2
    assert "unknown key weather.country; allowed keys in [weather]: city" in result.stderr


def test_config_show_credits_each_key_to_its_own_source(llmos_cli, llmos_workspace, llmos_env,
                                                        monkeypatch):
    user_file = llmos_env / "config" / "llmos" / "config.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[budget]\nlow_balance_usd = 0.25\n[dispatch]\nmixed_threshold = 0.7\n")
    workspace_file = llmos_workspace / "llmos.toml"
    workspace_file.write_text("[budget]\nrun_cap_usd = 0.2\n[kernel]\nmax_output_bytes = 5000\n")
    monkeypatch.setenv("LLMOS_CORTEX__MAX_TURNS", "7")
    result = llmos_cli("--set", "kernel.tool_timeout_s=9", "config", "show", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    origins = shown["origins"]
    assert origins["budget.run_cap_usd"] == str(workspace_file)
    assert origins["budget.low_balance_usd"] == str(user_file)
    assert origins["dispatch.mixed_threshold"] == str(user_file)
    assert origins["dispatch.follower_threshold"] == "defaults"  # untouched, same section
    assert origins["kernel.max_output_bytes"] == str(workspace_file)
    assert origins["kernel.tool_timeout_s"] == "--set kernel.tool_timeout_s=9"
    assert origins["kernel.event_queue_size"] == "defaults"
    assert origins["cortex.max_turns"] == "environment variable LLMOS_CORTEX__MAX_TURNS"
    assert origins["cortex.timeout_s"] == "defaults"
    assert shown["files"] == [{"path": str(user_file), "exists": True},
                              {"path": str(workspace_file), "exists": True}]
    text = llmos_cli("config", "show").stdout
    assert "event_queue_size = 10000  # defaults" in text
    assert f"run_cap_usd = 0.2  # {workspace_file}" in text


def test_config_show_lists_the_files_it_looked_for(llmos_cli, llmos_workspace, llmos_env):
    shown = json.loads(llmos_cli("config", "show", "--json").stdout)
    user_file = llmos_env / "config" / "llmos" / "config.toml"
    assert shown["files"] == [{"path": str(user_file), "exists": False},
                              {"path": str(llmos_workspace.resolve() / "llmos.toml"),
                               "exists": False}]
    (llmos_workspace / "llmos.toml").write_text("[budget]\nrun_cap_usd = 0.3\n")
    text = llmos_cli("config", "show").stdout
    assert f"  {user_file}  (not found)" in text
    assert f"  {llmos_workspace.resolve() / 'llmos.toml'}  (read)" in text
    assert os.path.exists(llmos_workspace / "llmos.toml")


def test_plugins_disable_in_the_config_disables_and_says_so(llmos_cli, llmos_workspace,
                                                           tmp_path, monkeypatch):
    plugin_dir = local_plugins(tmp_path, monkeypatch, "weather", "almanac")
    write_plugin(plugin_dir, "forecaster", tool_plugin("forecast"))
    config_file = llmos_workspace / "llmos.toml"
    config_file.write_text('[plugins]\ndisable = ["forecaster", "weather", '
                           '"llmos.modes.mixed"]\n[weather]\ncity = \'Oslo\'\n')
    listed = {p["name"]: p for p in json.loads(llmos_cli("plugins", "--json").stdout)}
    for name in ("forecaster", "weather", "llmos.modes.mixed"):
        assert listed[name]["state"] == "disabled"
        assert listed[name]["disabled_by"] == f"plugins.disable ({config_file})"
    assert listed["almanac"]["state"] == "loaded"
    tools = {t["name"] for t in json.loads(llmos_cli("tools", "--json").stdout)}
    assert {"forecast", "weather_now"}.isdisjoint(tools) and "almanac_now" in tools
    assert llmos_cli("weather", "--help").exit_code == 2  # its commands are gone too
    assert llmos_cli("almanac").stdout.strip() == "almanac"
    assert_only_warned(llmos_cli, (
        f"{config_file}: section [weather] is ignored: plugin 'weather' is disabled by "
        f"plugins.disable ({config_file}); enable it (remove 'weather' from plugins.disable) "
        "or remove the section"))
    # the environment adds to it, and names itself
    monkeypatch.setenv("LLMOS_DISABLE_PLUGINS", "almanac,forecaster")
    listed = {p["name"]: p for p in json.loads(llmos_cli("plugins", "--json").stdout)}
    assert listed["almanac"]["disabled_by"] == "LLMOS_DISABLE_PLUGINS"
    assert listed["forecaster"]["disabled_by"] == "LLMOS_DISABLE_PLUGINS"
    assert listed["weather"]["disabled_by"] == f"plugins.disable ({config_file})"


def test_a_bad_plugins_disable_is_a_config_error(llmos_cli, llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text('[plugins]\ndisable = "robo"\n')
    result = llmos_cli("plugins")
    assert result.exit_code == 2
    assert "plugins.disable = 'robo' is invalid" in result.stderr


def test_config_show_in_a_project_lists_its_three_files(llmos_cli, llmos_workspace, llmos_env):
    assert llmos_cli("projects", "new", "demo").exit_code == 0
    project_file = llmos_workspace.resolve() / "projects" / "demo" / "llmos.toml"
    project_file.write_text("[budget]\nrun_cap_usd = 0.1\n")
    shown = json.loads(llmos_cli("--project", "demo", "config", "show", "--json").stdout)
    assert shown["files"] == [
        {"path": str(llmos_env / "config" / "llmos" / "config.toml"), "exists": False},
        {"path": str(llmos_workspace.resolve() / "llmos.toml"), "exists": False},
        {"path": str(project_file), "exists": True},
    ]
    assert shown["origins"]["budget.run_cap_usd"] == str(project_file)
    assert shown["origins"]["budget.low_balance_usd"] == "defaults"
