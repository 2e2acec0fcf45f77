"""The token economy: reservations never overspend, and the ledger is durable."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import threading

import pytest

from llmos.economy import MICRO, LowBatteryError, Reservation, TokenEconomy
from llmos.storage import open_database


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "ledger.db"


def economy_at(path) -> TokenEconomy:
    return TokenEconomy(open_database(path))


def test_reserve_commit_release_move_the_balance(db_path):
    economy = economy_at(db_path)
    economy.set_balance(1.0)
    a = economy.reserve(0.30, run_id="r1")
    b = economy.reserve(0.50, run_id="r2")
    assert economy.available_micro == 200_000
    economy.commit(a, 0.12, input_tokens=100, output_tokens=20)
    economy.release(b)
    assert economy.balance_micro == 880_000
    assert economy.available_micro == 880_000
    with pytest.raises(ValueError, match="not open"):
        economy.release(b)


def test_low_battery_names_what_is_needed_and_the_fix(db_path):
    economy = economy_at(db_path)
    economy.set_balance(0.10)
    with pytest.raises(LowBatteryError) as caught:
        economy.reserve(0.25, what="learner run")
    message = str(caught.value)
    assert "learner run" in message and "$0.2500" in message and "$0.1000" in message
    assert "llmos budget set" in message
    assert economy.available_micro == 100_000


def test_many_concurrent_async_reservations_never_exceed_the_budget(db_path):
    economy = economy_at(db_path)
    economy.set_balance(1.0)

    async def try_reserve(i: int):
        await asyncio.sleep(0)
        try:
            return economy.reserve(0.07, run_id=f"r{i}")
        except LowBatteryError:
            return None

    async def main():
        return await asyncio.gather(*(try_reserve(i) for i in range(100)))

    granted = [r for r in asyncio.run(main()) if r]
    assert len(granted) == 14  # floor(1.00 / 0.07)
    assert economy.available_micro == MICRO - 14 * 70_000


def _reserve_many(path: str, count: int, results) -> None:
    economy = TokenEconomy(open_database(path))
    granted = 0
    for _ in range(count):
        try:
            economy.reserve(0.01)
            granted += 1
        except LowBatteryError:
            pass
    results.put(granted)


def test_reservations_from_several_processes_never_overspend(db_path):
    economy = economy_at(db_path)
    economy.set_balance(0.50)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_reserve_many, args=(str(db_path), 40, results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    granted = sum(results.get(timeout=5) for _ in procs)
    assert granted == 50
    assert economy.available_micro == 0


def test_threads_with_their_own_connections_never_overspend(db_path):
    economy_at(db_path).set_balance(0.20)
    granted: list[int] = []

    def worker():
        economy = economy_at(db_path)
        n = 0
        for _ in range(20):
            try:
                economy.reserve(0.01)
                n += 1
            except LowBatteryError:
                pass
        granted.append(n)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 20


def test_the_ledger_survives_a_restart(db_path):
    economy = economy_at(db_path)
    economy.set_balance(2.0)
    r = economy.reserve(0.5, run_id="run-1")
    economy.commit(r, 0.25, description="learner run", input_tokens=1000, output_tokens=50)
    economy.db.conn.close()

    reopened = economy_at(db_path)
    assert reopened.balance_micro == 1_750_000
    kinds = [e["kind"] for e in reopened.history()]
    assert kinds == ["commit", "reserve", "set"]
    commit = reopened.history()[0]
    assert commit["run_id"] == "run-1" and commit["input_tokens"] == 1000
    # the raw file is a plain SQLite database anyone can read
    rows = sqlite3.connect(db_path).execute("SELECT count(*) FROM economy_ledger").fetchone()
    assert rows[0] == 3


def test_reservations_of_a_dead_process_are_charged_what_it_may_have_spent(db_path):
    economy = economy_at(db_path)
    economy.set_balance(1.0)
    r = economy.reserve(0.6, run_id="killed")
    live = economy.reserve(0.1, run_id="alive")
    economy.db.execute(
        "UPDATE economy_reservations SET owner = ? WHERE id = ?",
        (economy._owner.rsplit(":", 1)[0] + ":999999999", r.id),
    )
    assert economy.release_stale() == 1
    # the dead run is charged its whole reservation, not $0; the live one stays open
    assert economy.balance_micro == 400_000
    assert economy.available_micro == 300_000
    assert economy.run_spent_micro("killed") == 600_000
    assert [x.id for x in economy.open_reservations()] == [live.id]
    assert "owner process died" in economy.history()[0]["description"]
    assert isinstance(r, Reservation)


@pytest.mark.parametrize("usd", [float("nan"), float("inf"), -1.0, 1e20])
def test_a_budget_must_be_a_finite_amount(db_path, usd):
    economy = economy_at(db_path)
    with pytest.raises(ValueError, match="a budget must be a number of dollars"):
        economy.set_balance(usd)


@pytest.mark.parametrize("usd", ["-5", "nan", "inf", "1e20", "five"])
def test_budget_set_refuses_what_is_not_a_budget(llmos_cli, usd):
    result = llmos_cli("budget", "set", usd)
    assert result.exit_code == 2
    assert "Invalid value for USD" in result.output and "Traceback" not in result.output
    assert "No such option" not in result.output
    assert llmos_cli("budget", "--json").stdout.count('"balance_micro": 0') == 1


def test_reserve_micro_refuses_a_negative_amount(db_path):
    with pytest.raises(ValueError):
        economy_at(db_path).reserve_micro(-1)


def test_a_reservation_whose_pid_was_reused_is_charged(db_path):
    import os
    import socket

    economy = economy_at(db_path)
    economy.set_balance(1.0)
    r = economy.reserve(0.2, run_id="old")
    assert "@" in economy._owner  # host:pid@start
    economy.db.execute("UPDATE economy_reservations SET owner = ? WHERE id = ?",
                       (f"{socket.gethostname()}:{os.getpid()}@1", r.id))
    assert economy.release_stale() == 1
    assert economy.run_spent_micro("old") == 200_000
    mine = economy.reserve(0.1)
    assert economy.release_stale() == 0  # a live owner's reservation stays open
    assert [x.id for x in economy.open_reservations()] == [mine.id]
