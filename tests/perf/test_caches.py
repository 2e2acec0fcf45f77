"""The checks that are remembered between runs (issue 12) are remembered for exactly the
code, binaries and kernel they were made with: a changed rules file, another bwrap binary
or a foreign cache entry makes them run again (``llmos.security.probecache``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import llmos
from llmos.security import probecache, rules, sandbox

PACKAGE = Path(llmos.__file__).resolve().parent


@pytest.fixture
def cache(llmos_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("LLMOS_CACHE_DIR", str(path))
    return path


def entry(cache: Path, kind: str) -> dict:
    """The newest entry of ``kind``."""
    newest = max(cache.glob(f"{kind}-*.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(newest.read_text())


def test_rule_examples_pass_once_and_are_remembered_by_the_rules_hash(cache: Path) -> None:
    assert rules.check_rule_examples_cached() > 400
    stored = entry(cache, "rule-examples")
    assert stored["key"] == rules.rules_fingerprint()
    assert stored["value"]["checked"] > 400


def test_the_rules_hash_covers_every_security_source_file(tmp_path: Path) -> None:
    copy = tmp_path / "security"
    shutil.copytree(PACKAGE / "security", copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert rules.rules_fingerprint(copy) == rules.rules_fingerprint()
    for name in ("shellrules.py", "urls.py", "programs/git.py"):
        target = copy / name
        original = target.read_bytes()
        target.write_bytes(original + b"\n# one more comment\n")
        assert rules.rules_fingerprint(copy) != rules.rules_fingerprint(), name
        target.write_bytes(original)
    (copy / "programs" / "new_family.py").write_text("RULES = ()\n")
    assert rules.rules_fingerprint(copy) != rules.rules_fingerprint()


def _break_a_rule(package: Path) -> None:
    urls = package / "security" / "urls.py"
    text = urls.read_text()
    broken = text.replace('match=("https://93.184.215.14/",',
                          'match=("https://93.184.215.14/", "http://127.0.0.1/",', 1)
    assert broken != text, "the url.allowed rule changed: update this test"
    urls.write_text(broken)


def test_a_changed_rules_file_is_checked_again_not_trusted_from_the_cache(
        cache: Path, tmp_path: Path) -> None:
    rules.check_rule_examples_cached()  # the real rules pass and are remembered
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "llmos", ignore=shutil.ignore_patterns("__pycache__"))
    _break_a_rule(copy / "llmos")
    env = {**os.environ, "PYTHONPATH": str(copy), "LLMOS_CACHE_DIR": str(cache)}
    code = (f"import llmos.security.rules as r; assert r.__file__.startswith({str(copy)!r}); "
            "r.check_rule_examples_cached()")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode != 0
    assert "RuleExampleError" in proc.stderr and "url.allowed" in proc.stderr, proc.stderr
    # the failure was not remembered: the entry still holds the real rules' verdict
    assert entry(cache, "rule-examples")["key"] == rules.rules_fingerprint()


def test_a_foreign_or_corrupt_cache_entry_is_not_trusted(cache: Path) -> None:
    cache.mkdir(parents=True)
    ours = probecache.entry_path("rule-examples", rules.rules_fingerprint())
    assert ours.parent == cache
    ours.write_text(json.dumps(  # in our file, but made for another key
        {"format": probecache.FORMAT, "key": "0" * 64, "value": {"checked": 1}}))
    assert rules.check_rule_examples_cached() > 400  # ran again: the key was not ours
    ours.write_text("{not json")
    assert rules.check_rule_examples_cached() > 400
    assert json.loads(ours.read_text())["key"] == rules.rules_fingerprint()


def test_answers_for_several_keys_are_kept_side_by_side(cache: Path) -> None:
    """Two llmos versions used by turns (a benchmark's baseline, two checkouts) each keep
    their answer: storing one key's answer does not evict another's; the oldest beyond
    ``KEEP`` are removed."""
    probecache.store("demo", "a" * 64, {"n": 1})
    probecache.store("demo", "b" * 64, {"n": 2})
    assert probecache.lookup("demo", "a" * 64) == {"n": 1}
    assert probecache.lookup("demo", "b" * 64) == {"n": 2}
    assert probecache.lookup("demo", "c" * 64) is None
    keys = [probecache.digest([str(i)]) for i in range(probecache.KEEP + 3)]
    for i, key in enumerate(keys):
        probecache.store("demo", key, {"n": i})
    assert len(list(cache.glob("demo-*.json"))) == probecache.KEEP
    assert probecache.lookup("demo", keys[-1]) == {"n": len(keys) - 1}


@pytest.fixture
def fresh_status(cache: Path):
    sandbox._status.cache_clear()
    yield
    sandbox._status.cache_clear()


def test_the_sandbox_probe_is_remembered_for_this_bwrap_and_kernel(cache: Path,
                                                                   fresh_status) -> None:
    probed = sandbox.available()
    stored = entry(cache, "sandbox")
    assert stored["key"] == sandbox.probe_fingerprint(sandbox.find_bwrap())
    assert stored["value"]["mechanism"] == probed.mechanism
    sandbox._status.cache_clear()
    assert sandbox.available() == probed  # read back from the cache, same answer


def test_the_cached_sandbox_answer_is_the_one_used_while_its_key_holds(cache: Path,
                                                                       fresh_status) -> None:
    """The cache really is consulted (so the invalidation tests below mean something)."""
    bwrap = sandbox.find_bwrap()
    key = sandbox.probe_fingerprint(bwrap)
    planted = {"mechanism": "bwrap", "reason": "planted", "bwrap_path": bwrap,
               "bwrap_reason": "planted", "landlock_abi": 0, "landlock_reason": "planted"}
    probecache.store("sandbox", key, planted)
    assert sandbox.available().reason == "planted"
    # refresh probes again and replaces the entry
    assert sandbox.available(refresh=True).reason != "planted"
    assert entry(cache, "sandbox")["value"]["reason"] != "planted"


@pytest.mark.parametrize("mechanism", ["none", "landlock"])
def test_a_cached_weaker_answer_is_probed_again_never_a_downgrade(cache: Path, fresh_status,
                                                                  mechanism: str) -> None:
    """Whoever can write the cache cannot make llmos settle for less than what works."""
    bwrap = sandbox.find_bwrap()
    real = sandbox._probe(bwrap)
    planted = {"mechanism": mechanism, "reason": "planted", "bwrap_path": bwrap,
               "bwrap_reason": "planted", "landlock_abi": 1, "landlock_reason": "planted"}
    probecache.store("sandbox", sandbox.probe_fingerprint(bwrap), planted)
    status = sandbox.available()
    assert status.reason != "planted" and status.mechanism == real.mechanism


def test_a_planted_answer_for_another_key_is_ignored(cache: Path, fresh_status) -> None:
    planted = {"mechanism": "none", "reason": "planted", "bwrap_path": None,
               "bwrap_reason": "planted", "landlock_abi": 0, "landlock_reason": "planted"}
    probecache.store("sandbox", "f" * 64, planted)
    assert sandbox.available().reason != "planted"


def test_another_bwrap_binary_changes_the_probe_key(tmp_path: Path) -> None:
    real = sandbox.find_bwrap()
    if real is None:
        pytest.skip("no bwrap on this machine")
    copy = tmp_path / "bwrap"
    shutil.copy2(real, copy)
    before = sandbox.probe_fingerprint(str(copy))
    assert before != sandbox.probe_fingerprint(real)  # another path
    assert sandbox.probe_fingerprint(str(copy)) == before  # stable while nothing changes
    copy.write_bytes(b"#!/bin/sh\nexit 1\n")  # replaced in place by another program
    assert sandbox.probe_fingerprint(str(copy)) != before
    assert sandbox.probe_fingerprint(None) != before


def test_a_replaced_bwrap_is_probed_again_and_reported_broken(cache: Path, tmp_path: Path,
                                                              fresh_status,
                                                              monkeypatch) -> None:
    real = shutil.which("bwrap")  # a system build: a copy of it finds its libraries
    if real is None or sandbox._probe_bwrap(real) is not None:
        pytest.skip("no working bwrap on PATH")
    copy = tmp_path / "bwrap"
    shutil.copy2(real, copy)
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: str(copy))
    sandbox._status.cache_clear()
    assert sandbox.available().mechanism == "bwrap"
    copy.write_bytes(b"#!/bin/sh\necho broken >&2\nexit 1\n")
    sandbox._status.cache_clear()  # a new process, same cache
    status = sandbox.available()
    assert status.mechanism != "bwrap" and "broken" in status.bwrap_reason
