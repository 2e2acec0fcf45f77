"""The attack corpus: none of these may ever be allowed, sandboxed or not."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmos.security.shell import analyze_command

CORPUS = yaml.safe_load((Path(__file__).parent / "attacks.yaml").read_text(encoding="utf-8"))


def _cases() -> list[pytest.param]:
    cases = []
    for technique, entries in CORPUS.items():
        for index, entry in enumerate(entries):
            command = entry if isinstance(entry, str) else entry["cmd"]
            expect = None if isinstance(entry, str) else entry.get("expect")
            cases.append(pytest.param(command, expect, id=f"{technique}-{index}"))
    return cases


CASES = _cases()


def test_corpus_is_large_and_covers_every_technique() -> None:
    techniques = {
        "flag_variants", "quoting_the_verb", "ansi_c_strings", "path_qualified_and_wrapped",
        "chaining_and_grouping", "command_and_process_substitution",
        "control_flow_and_functions", "variable_ifs_brace_glob_expansion",
        "eval_and_nested_shells", "heredocs_and_herestrings", "interpreters_with_inline_code",
        "exec_flags", "base64_hex_rev_encodings", "unicode_lookalikes_and_invisible",
        "curl_wget_piped_to_shell", "writes_outside_the_workspace", "exfiltration_of_secrets",
        "environment_injection", "wildcard_injection", "fork_bombs",
        "llmos_state_and_unbounded_producers",
    }
    assert set(CORPUS) == techniques
    assert len(CASES) >= 150
    assert all(len(entries) >= 5 for entries in CORPUS.values())


@pytest.mark.parametrize("sandboxed", [False, True], ids=["host", "sandboxed"])
@pytest.mark.parametrize(("command", "expect"), CASES)
def test_attack_is_never_allowed(command: str, expect: str | None, sandboxed: bool,
                                 injection_workspace: Path) -> None:
    verdict = analyze_command(command, sandboxed=sandboxed, workspace=injection_workspace)
    assert verdict.decision != "allow", verdict.reason
    if expect is not None:
        assert verdict.decision == expect, verdict.reason
    assert verdict.reason.startswith(f"rule {verdict.rule}: ")
