"""Config: layered precedence, plugin sections, and errors that name file, key and fix."""

from __future__ import annotations

import pytest

import llmos
from llmos.config import ConfigError, Section
from llmos.kernel import Kernel


def write_user_config(env_home, text: str):
    path = env_home / "config" / "llmos" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults(llmos_workspace):
    kernel = Kernel(llmos_workspace, load_entry_points=False)
    assert kernel.config.budget.run_cap_usd == 1.0
    assert kernel.config.origin("budget", "run_cap_usd") == "defaults"


def test_precedence_user_then_workspace_then_env_then_flags(
    llmos_env, llmos_workspace, monkeypatch
):
    user = write_user_config(
        llmos_env,
        "[budget]\nrun_cap_usd = 2.0\nlow_balance_usd = 0.1\n[cortex]\nmax_turns = 5\n"
        "[dispatch]\nmixed_threshold = 0.5\n",
    )
    (llmos_workspace / "llmos.toml").write_text(
        "[budget]\nrun_cap_usd = 3.0\n[cortex]\nmax_turns = 7\n"
    )
    monkeypatch.setenv("LLMOS_CORTEX__MAX_TURNS", "9")
    monkeypatch.setenv("LLMOS_DISPATCH__MIXED_THRESHOLD", "0.6")
    kernel = Kernel(
        llmos_workspace, flags=["dispatch.mixed_threshold=0.7"], load_entry_points=False
    )
    cfg = kernel.config
    assert cfg.budget.low_balance_usd == 0.1  # user file only
    assert cfg.origin("budget", "low_balance_usd") == str(user)
    assert cfg.budget.run_cap_usd == 3.0  # workspace beats user
    assert cfg.origin("budget", "run_cap_usd") == str(llmos_workspace.resolve() / "llmos.toml")
    assert cfg.cortex.max_turns == 9  # env beats workspace
    assert cfg.origin("cortex", "max_turns") == "environment variable LLMOS_CORTEX__MAX_TURNS"
    assert cfg.dispatch.mixed_threshold == 0.7  # flags beat env
    assert cfg.origin("dispatch", "mixed_threshold") == "--set dispatch.mixed_threshold=0.7"


def test_unknown_key_names_the_file_the_key_and_the_allowed_keys(llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text("[budget]\nrun_cap = 3\n")
    with pytest.raises(ConfigError) as caught:
        Kernel(llmos_workspace, load_entry_points=False)
    message = str(caught.value)
    assert str(llmos_workspace.resolve() / "llmos.toml") in message
    assert "budget.run_cap" in message
    assert "low_balance_usd, run_cap_usd" in message


def test_wrong_type_names_the_source_key_and_value(llmos_workspace, monkeypatch):
    monkeypatch.setenv("LLMOS_CORTEX__MAX_TURNS", "many")
    with pytest.raises(ConfigError) as caught:
        Kernel(llmos_workspace, load_entry_points=False)
    message = str(caught.value)
    assert "environment variable LLMOS_CORTEX__MAX_TURNS" in message
    assert "cortex.max_turns = 'many'" in message
    assert "integer" in message


def test_literal_errors_list_the_allowed_values(llmos_workspace):
    with pytest.raises(ConfigError) as caught:
        Kernel(llmos_workspace, flags=["kernel.interactive=sometimes"], load_entry_points=False)
    assert "'auto', 'always' or 'never'" in str(caught.value)


def test_unknown_section_lists_known_sections(llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text("[memroy]\nbackend = 'sqlite'\n")
    with pytest.raises(ConfigError, match=r"unknown section \[memroy\]; did you mean \[memory\]"):
        Kernel(llmos_workspace, load_entry_points=False)


def test_invalid_toml_names_the_file(llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text("[budget\n")
    with pytest.raises(ConfigError, match=r"llmos\.toml is not valid TOML"):
        Kernel(llmos_workspace, load_entry_points=False)


def test_a_config_path_that_is_a_directory_is_an_error_naming_it(llmos_workspace):
    (llmos_workspace / "llmos.toml").mkdir()
    with pytest.raises(ConfigError, match=r"llmos\.toml is a directory: remove it"):
        Kernel(llmos_workspace, load_entry_points=False)


def test_bad_set_flag_explains_the_form(llmos_workspace):
    with pytest.raises(ConfigError, match=r"expected SECTION\.KEY=VALUE"):
        Kernel(llmos_workspace, flags=["run_cap_usd=3"], load_entry_points=False)


def test_unknown_backend_lists_the_available_ones(llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text("[security]\nbackend = 'paranoid'\n")
    with pytest.raises(ConfigError) as caught:
        Kernel(llmos_workspace, load_entry_points=False)
    message = str(caught.value)
    assert "security.backend = 'paranoid' is not a known security backend" in message
    assert "layered" in message and "strict" in message and "trusted" in message
    assert "llmos.toml" in message


class GreeterConfig(Section):
    greeting: str = "hello"
    loud: bool = False


class GreeterPlugin:
    @llmos.hookimpl
    def llmos_register_config(self, register):
        register("greeter", GreeterConfig)


def test_plugins_contribute_sections_with_the_same_rules(llmos_workspace):
    (llmos_workspace / "llmos.toml").write_text("[greeter]\ngreeting = 'ahoy'\n")
    kernel = Kernel(
        llmos_workspace, flags=["greeter.loud=true"], plugins={"greeter": GreeterPlugin()},
        load_entry_points=False,
    )
    section = kernel.config.section("greeter")
    assert (section.greeting, section.loud) == ("ahoy", True)

    (llmos_workspace / "llmos.toml").write_text("[greeter]\ngreting = 'ahoy'\n")
    with pytest.raises(ConfigError, match="unknown key greeter.greting; allowed keys in "
                                          r"\[greeter\]: greeting, loud"):
        Kernel(llmos_workspace, plugins={"greeter": GreeterPlugin()}, load_entry_points=False)


def test_a_plugin_cannot_take_a_core_section(llmos_workspace):
    class Hijack:
        @llmos.hookimpl
        def llmos_register_config(self, register):
            register("budget", GreeterConfig)

    kernel = Kernel(llmos_workspace, plugins={"hijack": Hijack()}, load_entry_points=False)
    info = kernel.plugins["hijack"]
    assert info.state == "loaded"  # only the section is refused
    assert "config section [budget], which already exists" in " ".join(info.warnings)
    assert kernel.config.budget.run_cap_usd == 1.0
