"""The budget ledger on PostgreSQL: the same rules as on SQLite, never overspent by racing
processes, and a dead owner's reservations settled whatever host it ran on."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from llmos.economy import MICRO, LowBatteryError, TokenEconomy


@pytest.fixture
def economy(llmos_postgres_db: str):
    economy = TokenEconomy.postgres(llmos_postgres_db)
    yield economy
    economy.close()


def test_reserve_commit_release_and_low_battery(economy: TokenEconomy) -> None:
    economy.set_balance(1.0)
    a = economy.reserve(0.30, run_id="r1")
    b = economy.reserve(0.50, run_id="r2")
    assert economy.available_micro == 200_000
    with pytest.raises(LowBatteryError, match=r"\$0\.2500 but only \$0\.2000"):
        economy.reserve(0.25, what="learner run")
    economy.commit(a, 0.12, input_tokens=100, output_tokens=20)
    economy.release(b)
    with pytest.raises(ValueError, match="not open"):
        economy.release(b)
    assert economy.balance_micro == 880_000 and economy.available_micro == 880_000
    assert economy.run_spent_micro("r1") == 120_000
    assert [e["kind"] for e in economy.history()] == ["release", "commit", "reserve",
                                                      "reserve", "set"]
    assert economy.history()[1]["input_tokens"] == 100
    assert economy.history()[0]["ts"].endswith("Z")
    assert economy.status()["available_usd"] == pytest.approx(0.88)


def test_two_handles_share_one_budget(economy: TokenEconomy, llmos_postgres_db: str) -> None:
    economy.set_balance(0.5)
    other = TokenEconomy.postgres(llmos_postgres_db)
    try:
        other.reserve(0.4)
        with pytest.raises(LowBatteryError):
            economy.reserve(0.2)
        # a live owner's reservation is not stale, from the other handle's point of view
        assert economy.release_stale() == 0
        assert len(economy.open_reservations()) == 1
    finally:
        other.close()


AMOUNT = 70_000  # micro-dollars per reservation
COST = 1_000  # what a committed one really cost
FITS = 3  # the balance fits this many at once: four processes want up to eight


def _race(dsn: str, count: int, start, results) -> None:
    """Reserve ``count`` times, holding up to two reservations; commit every third (at a
    small real cost, so the balance stays near the edge for the whole race) and release
    the others. Report what was committed and every moment this
    process saw more reserved than the balance."""
    economy = TokenEconomy.postgres(dsn)
    start.wait()
    held, committed, granted, overdrawn = [], 0, 0, 0
    for i in range(count):
        try:
            held.append(economy.reserve_micro(AMOUNT, run_id=f"p{os.getpid()}-{i}"))
            granted += 1
        except LowBatteryError:
            pass
        status = economy.status()
        if status["reserved_micro"] > status["balance_micro"]:
            overdrawn += 1
        if len(held) == 2 or (held and i == count - 1):
            reservation = held.pop(0)
            if i % 3 == 0:
                economy.commit_micro(reservation, COST)
                committed += COST
            else:
                economy.release(reservation)
    for reservation in held:
        economy.release(reservation)
    economy.close()
    results.put((granted, committed, overdrawn))


def test_racing_processes_never_overspend(economy: TokenEconomy, llmos_postgres_db: str
                                          ) -> None:
    budget = FITS * AMOUNT
    economy.set_balance(budget / MICRO)
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_race, args=(llmos_postgres_db, 100, start, results))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    reports = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    granted = sum(r[0] for r in reports)
    committed = sum(r[1] for r in reports)
    assert sum(r[2] for r in reports) == 0  # nobody ever saw more reserved than the balance
    assert 0 < committed <= budget
    assert granted < 4 * 100  # the balance fitted only some
    assert economy.balance_micro == budget - committed >= 0
    assert economy.open_reservations() == [] and economy.available_micro >= 0
    history = economy.history(limit=100_000)
    assert sum(1 for e in history if e["kind"] == "reserve") == granted
    assert sum(round(e["amount_usd"] * MICRO) for e in history
               if e["kind"] == "commit") == committed
    assert all(e["balance_usd"] >= 0 for e in history)


_OWNER = """
import sys, time
from llmos.economy import TokenEconomy
economy = TokenEconomy.postgres(sys.argv[1])
r = economy.reserve(0.25, run_id="killed-run")
print(r.id, flush=True)
time.sleep(600)
"""


def test_a_killed_owners_reservation_is_charged_in_full(economy: TokenEconomy,
                                                        llmos_postgres_db: str) -> None:
    economy.set_balance(1.0)
    mine = economy.reserve(0.1, run_id="mine")
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, llmos_postgres_db],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        reservation_id = owner.stdout.readline().strip()
        assert reservation_id
        # alive: its session holds its lock, so nothing is stale
        assert economy.release_stale() == 0
        # its reservation says another host: a pid cannot be checked there, the lock can
        with psycopg.connect(llmos_postgres_db, autocommit=True) as conn:
            conn.execute("UPDATE economy_reservations SET owner = 'elsewhere.invalid:1@1'"
                         " WHERE id = %s", (reservation_id,))
        assert economy.release_stale() == 0
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
    deadline = time.monotonic() + 60
    settled = 0
    while not settled and time.monotonic() < deadline:
        settled = economy.release_stale()  # the server drops the lock once it sees EOF
        if not settled:
            time.sleep(0.1)
    assert settled == 1
    assert economy.settled_runs == ["killed-run"]
    assert economy.run_spent_micro("killed-run") == 250_000
    assert economy.balance_micro == 750_000
    assert [r.id for r in economy.open_reservations()] == [mine.id]
    assert "owner process died" in economy.history()[0]["description"]
    assert economy.release_stale() == 0  # settled once


def test_a_broken_connection_keeps_its_reservations(economy: TokenEconomy,
                                                    llmos_postgres_db: str) -> None:
    economy.set_balance(1.0)
    held = economy.reserve(0.3, run_id="held")
    with psycopg.connect(llmos_postgres_db, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)",
                      (economy.store.conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        economy.status()  # the call that sees it break fails ...
    assert economy.available_micro == 700_000  # ... the next ones work, on a new connection
    other = TokenEconomy.postgres(llmos_postgres_db)
    try:
        assert other.release_stale() == 0  # its owner lock was taken again: not stale
    finally:
        other.close()
    economy.commit(held, 0.1)
    assert economy.balance_micro == 900_000
