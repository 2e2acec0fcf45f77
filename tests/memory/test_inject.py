"""Memory injection: relevant facts and past successful runs, within the size limit."""

from __future__ import annotations

from llmos.memory.inject import memory_context
from llmos.testing.memory_conformance import make_trace


def injected(kernel, goal: str) -> list[str]:
    ctx = kernel.context()
    return [p for p in kernel.pm.hook.llmos_user_prompt_submit(goal=goal, context=ctx) if p]


async def test_relevant_facts_and_traces_are_added(kernel) -> None:
    memory = kernel.memory
    memory.add_fact("Primes scripts must be tested with python3 -m pytest", tags=["primes"])
    memory.add_fact("The deploy key lives in vault", tags=["deploy"])
    memory.save_trace(make_trace("Create primes.py printing the first 10 primes"))
    memory.save_trace(make_trace("Deploy the web app to staging"))
    [text] = injected(kernel, "Create primes.py printing the first 50 primes")
    assert text.startswith("Relevant facts from memory:\n- Primes scripts")
    assert "vault" not in text
    assert "Past successful runs of similar goals:" in text
    assert '"Create primes.py printing the first 10 primes"' in text
    assert "Write primes.py → Bash python primes.py" in text
    assert "files: primes.py" in text and "Deploy" not in text


async def test_nothing_is_added_when_nothing_is_relevant(kernel) -> None:
    kernel.memory.add_fact("Unrelated fact about zebras")
    assert injected(kernel, "Compile the kernel module") == []


async def test_demoted_traces_are_not_offered(kernel) -> None:
    trace = kernel.memory.save_trace(make_trace("Create primes.py printing 10 primes",
                                                demoted=True))
    assert injected(kernel, "Create primes.py printing 10 primes") == []
    kernel.memory.save_trace(trace.model_copy(update={"demoted": False}))
    assert len(injected(kernel, "Create primes.py printing 10 primes")) == 1


async def test_the_text_is_bounded(workspace, kernel_factory) -> None:
    async with kernel_factory(workspace, "memory.inject_max_chars=150") as kernel:
        for i in range(20):
            kernel.memory.add_fact(f"Fact {i} about primes " + "and more words " * 10)
            kernel.memory.save_trace(make_trace(f"Create primes_{i}.py with primes"))
        [text] = injected(kernel, "primes")
        assert len(text) <= 150
        assert text.startswith("Relevant facts from memory:\n- Fact")
        assert text.endswith("…")
    async with kernel_factory(workspace, "memory.inject_max_chars=0") as kernel:
        assert injected(kernel, "primes") == []


def test_the_limit_is_respected_for_any_size(tmp_path) -> None:
    from llmos.testing.memory_conformance import open_sqlite

    memory = open_sqlite(tmp_path)
    memory.add_fact("short fact about primes")
    memory.save_trace(make_trace("Create primes.py printing the first 10 primes"))
    full = memory_context(memory, "primes", 10_000)
    assert full is not None
    for limit in range(0, len(full) + 5):
        text = memory_context(memory, "primes", limit)
        assert text is None or len(text) <= limit
        if text:
            assert not text.endswith(":")  # never a header without an item
    assert memory_context(memory, "primes", len(full)) == full
