"""The pack as users meet it: installed with pip, found through its entry point, seen by the CLI."""

from __future__ import annotations

import json
from importlib.metadata import distribution, entry_points

import pytest

import llmos_web


def _kernel_reports_distributions() -> bool:
    from llmos.plugins import build_plugin_manager

    _, infos = build_plugin_manager()
    return "web" in infos and infos["web"].distribution is not None


def test_the_distribution_declares_its_entry_point():
    dist = distribution("llmos-web")
    assert dist.version == llmos_web.__version__
    (ep,) = [ep for ep in entry_points(group="llmos") if ep.name == "web"]
    assert ep.value == "llmos_web.plugin" and ep.dist.name == "llmos-web"


@pytest.mark.xfail(
    not _kernel_reports_distributions(),
    reason="kernel bug: llmos.plugins reads ext.entry_point.dist, which stevedore's cached "
    "entry points leave as None; it should fall back to _distribution_of(name)",
    strict=True,
)
def test_llmos_plugins_shows_the_pack_with_its_distribution(llmos_cli):
    result = llmos_cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    (web,) = [p for p in json.loads(result.output) if p["name"] == "web"]
    assert web["distribution"] == "llmos-web"
    assert web["version"] == llmos_web.__version__
    assert web["error"] is None and web["builtin"] is False
    assert {"llmos_register_tools", "llmos_register_config", "llmos_pre_tool_use"} <= set(
        web["hooks"]
    )


def test_llmos_tools_lists_both_tools_with_their_schemas(llmos_cli):
    result = llmos_cli("tools", "--json")
    assert result.exit_code == 0, result.output
    tools = {t["name"]: t for t in json.loads(result.output)}
    fetch, links = tools["web_fetch"], tools["web_links"]
    assert fetch["plugin"] == links["plugin"] == "web"
    assert fetch["side_effects"] == links["side_effects"] == "read-only"
    props = fetch["input_schema"]["properties"]
    assert fetch["input_schema"]["required"] == ["url"]
    assert props["format"]["enum"] == ["markdown", "text", "html"]
    assert props["format"]["default"] == "markdown"
    assert props["max_bytes"]["anyOf"][0]["minimum"] == 1
    assert set(links["input_schema"]["properties"]) == {"url", "same_host", "max_links"}
    assert any("robots" in mode for mode in fetch["error_modes"])


def test_tools_call_runs_web_fetch_through_the_gate(llmos_cli, site):
    site.page("/hello", "<html><head><title>Hi</title></head><body><p>Hello from a real "
                        "server on the loopback interface.</p></body></html>")
    result = llmos_cli("tools", "call", "web_fetch", "--input",
                       json.dumps({"url": site.url("/hello"), "format": "text"}), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["ok"] is True and out["decision"]["verdict"] == "allow"
    assert out["output"]["title"] == "Hi"
    assert out["output"]["content"] == "Hello from a real server on the loopback interface."


def test_tools_call_to_a_private_address_is_refused_with_exit_4(llmos_cli, connects):
    result = llmos_cli("tools", "call", "web_fetch", "--input",
                       '{"url": "http://10.1.2.3/"}', "--json")
    assert result.exit_code == 4, result.output
    out = json.loads(result.output)
    assert out["decision"]["verdict"] == "deny"
    assert out["decision"]["rule"] == "web.private-address"
    assert "10.1.2.3 is a private-network address" in out["error"]
    assert connects() == []


def test_the_web_section_is_read_from_workspace_file_env_and_flags(
    llmos_cli, llmos_workspace, monkeypatch
):
    (llmos_workspace / "llmos.toml").write_text(
        '[web]\nrespect_robots = false\nuser_agent = "acme-research-bot/2.0"\n'
    )
    monkeypatch.setenv("LLMOS_WEB__TIMEOUT_S", "7.5")
    result = llmos_cli("--set", "web.max_redirects=2", "config", "show", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    web = shown["config"]["web"]
    assert web["respect_robots"] is False and web["user_agent"] == "acme-research-bot/2.0"
    assert web["timeout_s"] == 7.5 and web["max_redirects"] == 2
    assert web["allowed_hosts"] == ["127.0.0.1"] and web["cache_max_mb"] == 64
    assert shown["origins"]["web.respect_robots"].endswith("llmos.toml")
    assert shown["origins"]["web.timeout_s"] == "environment variable LLMOS_WEB__TIMEOUT_S"


def test_an_unknown_web_key_is_a_clear_config_error(llmos_cli):
    result = llmos_cli("--set", "web.allowed_host=localhost", "tools")
    assert result.exit_code == 2
    assert "unknown key web.allowed_host" in result.output
    assert "allowed_hosts" in result.output
