"""Several processes on one ledger database at once, on SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fixtures.forkserver import forkserver_context
from trader.ledger import LATEST_VERSION, Ledger, NewDecision, NewOrder

SYM, MIN = "BTC/USDT", 60_000
CANDLES = 40


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'shared.db'}"


def run_together(target: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``target(*a, go, result)`` in one process per ``a``.

    ``go`` is a barrier over the workers: each waits on it once set up, so their timed work
    starts at the same moment however long each took to start.
    """
    ctx = forkserver_context()
    go = ctx.Barrier(len(args), timeout=60)
    pipes, processes = [], []
    for a in args:
        receive, send = ctx.Pipe(duplex=False)
        process = ctx.Process(target=target, args=(*a, go, send))
        process.start()
        send.close()
        pipes.append(receive)
        processes.append(process)
    try:
        results = []
        for receive, process in zip(pipes, processes, strict=True):
            deadline = time.monotonic() + 60
            while not receive.poll(0.05):
                assert process.is_alive(), f"a worker died (exit code {process.exitcode})"
                assert time.monotonic() < deadline, "a worker did not finish"
            try:
                results.append(receive.recv())
            except EOFError:
                process.join(5)
                pytest.fail(f"a worker died (exit code {process.exitcode})")
    finally:
        for process in processes:
            process.join(10)
            if process.exitcode is None:
                process.kill()
    return results


def trade_candles(url: str, strategy: str, go: Any, result: Connection) -> None:
    """Decide, place, fill and snapshot every candle; report timing."""
    ledger = Ledger(url)
    ledger.init_strategy(strategy, 10_000.0)
    go.wait()
    began, slowest = time.monotonic(), 0.0
    for i in range(CANDLES):
        t0 = time.monotonic()
        side = "buy" if i % 3 else "sell"
        (order,) = ledger.record_decision(
            NewDecision(strategy, SYM, i * MIN, "signal", side, 100.0 + i), [NewOrder(side, 0.1)])
        ledger.mark_submitted(order.client_order_id, f"{strategy}-{i}")
        ledger.apply_fill(order.client_order_id, "t", 100.0 + i, 0.1, 0.01, "USDT", i * MIN)
        ledger.snapshot_equity(strategy, i * MIN, 10_000.0, 10_000.0, 0.0)
        slowest = max(slowest, time.monotonic() - t0)
    result.send((began, time.monotonic(), slowest))
    ledger.close()


def test_two_strategies_write_one_database_at_once(shared_url: str) -> None:
    results = run_together(trade_candles, [(shared_url, "alpha"), (shared_url, "beta")])
    (a_start, a_end, a_slowest), (b_start, b_end, b_slowest) = results
    assert a_start < b_end and b_start < a_end, "the writers did not overlap"
    # Neither waited long for the other: the slowest candle (4 transactions) stays short.
    assert max(a_slowest, b_slowest) < 2.0
    with Ledger(shared_url) as ledger:
        for strategy in ("alpha", "beta"):
            assert ledger.check_consistency(strategy) == []
            assert len(ledger.fills(strategy)) == CANDLES
            assert ledger.last_candle(strategy, SYM) == (CANDLES - 1) * MIN
            assert all(o.strategy == strategy for o in ledger.orders(strategy))


def book_the_same_fills(url: str, go: Any, result: Connection) -> None:
    """Race another process to record the same decisions and book the same fills."""
    ledger = Ledger(url)
    go.wait()
    booked = 0
    for i in range(CANDLES):
        (order,) = ledger.record_decision(
            NewDecision("solo", SYM, i * MIN, "signal", "buy", 100.0), [NewOrder("buy", 1.0)])
        for k in range(2):
            booked += ledger.apply_fill(order.client_order_id, f"t{k}", 100.0 + k, 0.5, 0.0005,
                                        "BTC", i * MIN)
    result.send(booked)
    ledger.close()


def test_racing_processes_of_one_strategy_book_each_fill_once(shared_url: str) -> None:
    with Ledger(shared_url) as ledger:
        ledger.init_strategy("solo", 100_000.0)
    booked = run_together(book_the_same_fills, [(shared_url,), (shared_url,)])
    assert sum(booked) == 2 * CANDLES  # every fill booked by exactly one of the two
    with Ledger(shared_url) as ledger:
        assert ledger.check_consistency("solo") == []
        assert len(ledger.decisions("solo", limit=None)) == CANDLES
        assert ledger.position("solo", SYM).qty == pytest.approx(CANDLES * (1.0 - 0.001))


def open_ledger(url: str, go: Any, result: Connection) -> None:
    go.wait()
    with Ledger(url) as ledger:
        result.send(ledger.schema_version)


def test_processes_starting_together_migrate_once(shared_url: str) -> None:
    versions = run_together(open_ledger, [(shared_url,)] * 4)
    assert versions == [LATEST_VERSION] * 4
    engine = sa.create_engine(shared_url)
    try:
        with engine.connect() as con:
            rows = con.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
    finally:
        engine.dispose()
    assert sorted(rows) == list(range(1, LATEST_VERSION + 1))
