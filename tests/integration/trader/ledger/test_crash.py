"""Crash safety: a trader loop killed with SIGKILL at random moments, restarted each time.

The loop (:func:`run_trader`) is a miniature trader with a deterministic market and a paper
venue kept in its own SQLite file (the venue stands in for the exchange: it remembers every
placement attempt by client order id). On every start it reconciles pending orders, resumes
at the newest candle it recorded a decision for and re-records that candle's decisions
(idempotent), as the real trader must. After every kill the ledger must be consistent; at the
end the venue must have seen each client order id once, and the ledger must equal that of an
uninterrupted run, field by field.

Workers are forked from a forkserver that has already imported the ledger, so a restart costs
milliseconds. Each kill comes 5-80 ms after the worker reports a milestone: for every fourth
kill the process start (so kills land while opening and migrating the ledger), otherwise the
moment the ledger is open (so they land in the restart path and in the trading loop, in the
middle of order placement included, rather than always in start-up on a slower server).
"""

from __future__ import annotations

import math
import random
import sqlite3
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.forkserver import forkserver_context
from trader.ledger import (
    LATEST_VERSION,
    Ledger,
    NewDecision,
    NewOrder,
    OrderRecord,
    OrderStatus,
)
from trader.ledger.tables import Base

S, SYM, MIN = "crashy", "BTC/USDT", 60_000
CANDLES = 50
KILLS = 20
TARGETS = (0.0, 1.0, 1.5, 0.5, 0.0, 2.0, 2.0, 0.25)


class PaperVenue:
    """The exchange's memory: orders by client id, and every placement attempt."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, "
                        "client_order_id TEXT UNIQUE NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS attempts (id INTEGER PRIMARY KEY, "
                        "client_order_id TEXT NOT NULL)")

    def lookup(self, client_order_id: str) -> str | None:
        row = self.db.execute("SELECT id FROM orders WHERE client_order_id = ?",
                              (client_order_id,)).fetchone()
        return None if row is None else f"ex-{row[0]}"

    def place(self, client_order_id: str) -> str:
        with self.db:  # one venue transaction: the attempt and the order, or neither
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO attempts (client_order_id) VALUES (?)",
                            (client_order_id,))
            self.db.execute("INSERT OR IGNORE INTO orders (client_order_id) VALUES (?)",
                            (client_order_id,))
        found = self.lookup(client_order_id)
        assert found is not None
        return found

    def close(self) -> None:
        self.db.close()


def price_at(i: int) -> float:
    return round(100.0 + 8.0 * math.sin(i / 5.0) + 0.05 * i, 4)


def behaviour(client_order_id: str) -> int:
    """A deterministic per-order roll: how the venue treats this order."""
    return int(client_order_id[3:11], 16)


def execute(ledger: Ledger, venue: PaperVenue, order: OrderRecord, ts: int) -> None:
    """Place (unless the venue already has it), then book the venue's fills; idempotent."""
    if not order.is_open:
        return
    cid, roll = order.client_order_id, behaviour(order.client_order_id)
    if order.status is OrderStatus.NEW:
        exchange_id = venue.lookup(cid)  # a kill may have come after placing, before marking
        if exchange_id is None:
            if roll % 13 == 0:
                ledger.mark_rejected(cid, "venue: insufficient balance")
                return
            exchange_id = venue.place(cid)
        order = ledger.mark_submitted(cid, exchange_id)
    parts = 1 if roll % 7 == 0 else 2  # one order in seven fills half and is then canceled
    base_fee = order.side == "buy" and roll % 2 == 0  # Binance: buyers pay in the coin
    for k in range(parts):
        amount = order.amount / 2
        fee, currency = ((amount * 0.001, "BTC") if base_fee
                         else (amount * order.intended_price * 0.001, "USDT"))
        ledger.apply_fill(cid, f"{cid}-{k}", order.intended_price, amount, fee, currency, ts)
    if parts == 1:
        ledger.mark_canceled(cid, "venue: expired")


def run_trader(url: str, venue_path: Path, candles: int, report: Connection | None = None
               ) -> None:
    """The restartable loop; every step is idempotent or guarded by the ledger's progress.

    ``report`` receives "started" on entry and "ready" once the ledger is open.
    """
    if report is not None:
        report.send("started")
    with Ledger(url) as ledger:
        ledger.init_strategy(S, 100_000.0)
        if report is not None:
            report.send("ready")
        venue = PaperVenue(venue_path)
        try:
            trade(ledger, venue, candles)
        finally:
            venue.close()


def trade(ledger: Ledger, venue: PaperVenue, candles: int) -> None:
    """Reconcile what a kill left in flight, then trade the remaining candles."""
    for order in ledger.pending_orders(S):
        execute(ledger, venue, order, ts=0)
    last = ledger.last_candle(S, SYM)
    # Resume at the newest candle anything was recorded for: its decisions are re-recorded
    # (idempotent) and its remaining steps redone. That is the last signal's candle, or
    # the next one when the kill came between that candle's exit and its signal.
    newest = ledger.decisions(S, limit=1)
    resume = newest[0].candle_open_time // MIN if newest else 0
    for i in range(resume, candles):
        t, price = i * MIN, price_at(i)
        qty = ledger.position(S, SYM).qty
        # The exit check comes before the signal, so it was done already when the signal
        # decision of this candle is recorded (a restart redoing the candle skips it).
        if last != t and qty > 0 and i % 9 == 4:
            exit_decision = NewDecision(S, SYM, t, "exit", "exit_stop", price, reason="stop")
            for order in ledger.record_decision(exit_decision, [NewOrder("sell", qty)]):
                execute(ledger, venue, order, t + MIN)
            qty = ledger.position(S, SYM).qty
        target = TARGETS[(i * 7) % len(TARGETS)]
        diff = target - qty
        side = "buy" if diff > 0 else "sell"
        intents = [] if abs(diff) < 0.01 else (
            [NewOrder(side, abs(diff) / 2)] * 2 if i % 4 == 0 else [NewOrder(side, abs(diff))])
        signal = NewDecision(S, SYM, t, "signal", side if intents else "hold", price,
                             reason="test", model_version="m1", probability=0.5 + diff / 10,
                             target=target, risk_state="active")
        for order in ledger.record_decision(signal, intents):
            execute(ledger, venue, order, t + MIN)
        position = ledger.position(S, SYM)
        ledger.set_exit_state(S, SYM, {"high_water": price, "candle": t})
        state = ledger.trader_state(S)
        equity = state.cash + position.qty * price
        ledger.snapshot_equity(S, t, equity, state.cash, position.qty * price / equity)
        last = t


def ledger_contents(ledger: Ledger) -> dict[str, Any]:
    """Everything the two runs must agree on.

    Left out: wall-clock times, row ids, and fill times (a fill booked while reconciling after
    a restart is stamped 0 here, as the worker does not look the candle up).
    """
    def strip(record: Any, *drop: str) -> dict[str, Any]:
        return {k: v for k, v in asdict(record).items() if k not in drop}

    return {
        "decisions": [strip(d, "id", "created_at") for d in ledger.decisions(S, limit=None)],
        "orders": [strip(o, "decision_id", "created_at", "updated_at")
                   for o in ledger.orders(S)],
        "fills": [strip(f, "id", "ts") for f in ledger.fills(S)],
        "positions": [strip(p, "updated_at") for p in ledger.positions(S)],
        "state": strip(ledger.trader_state(S), "updated_at"),
        "equity": [strip(e, "id") for e in ledger.equity_history(S)],
    }


def venue_attempts(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT client_order_id FROM attempts ORDER BY id")]


@dataclass(frozen=True, slots=True)
class Reference:
    contents: dict[str, Any]
    attempts: list[str]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One uninterrupted run, which every crashed run must reproduce exactly."""
    path = tmp_path_factory.mktemp("reference")
    url = f"sqlite:///{path / 'ledger.db'}"
    run_trader(url, path / "venue.db", CANDLES)
    with Ledger(url) as ledger:
        assert ledger.check_consistency(S) == []
        contents = ledger_contents(ledger)
    assert contents["fills"] and contents["positions"]
    return Reference(contents, venue_attempts(path / "venue.db"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def crash_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'crash.db'}"


@dataclass(slots=True)
class Worker:
    """A forked worker and the pipe it reports milestones on (kept open until it dies)."""

    process: Any
    reports: Connection

    def kill(self, after: float) -> None:
        """SIGKILL the worker ``after`` seconds from now (unless it finished by then)."""
        self.process.join(after)
        self.process.kill()
        self.process.join()
        self.reports.close()
        code = self.process.exitcode
        assert code in (-9, 0), f"worker failed (exit code {code})"


def start_worker(ctx: Any, target: Any, args: tuple[Any, ...], milestone: str) -> Worker:
    """Start ``target(*args, report)`` and return once it reported ``milestone``."""
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=target, args=(*args, send))
    process.start()
    send.close()
    while True:
        assert receive.poll(30), f"worker never reported {milestone!r}"
        if receive.recv() == milestone:
            return Worker(process, receive)


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_or_doubles_anything(
        crash_url: str, tmp_path: Path, reference: Reference) -> None:
    ctx = forkserver_context()
    rng = random.Random(20240601)
    venue = tmp_path / "venue.db"
    in_flight = 0
    checker: Ledger | None = None  # opened after the first kill, which may hit the migration
    try:
        for n in range(KILLS):
            milestone = "started" if n % 4 == 0 else "ready"
            worker = start_worker(ctx, run_trader, (crash_url, venue, CANDLES), milestone)
            worker.kill(after=rng.uniform(0.005, 0.080))
            checker = checker or Ledger(crash_url)
            if S not in checker.strategies():
                continue  # killed before the strategy was set up: nothing to check yet
            assert checker.check_consistency(S) == []
            in_flight += bool(checker.pending_orders(S))
    finally:
        if checker is not None:
            checker.close()

    run_trader(crash_url, venue, CANDLES)  # the last restart runs to the end
    attempts = venue_attempts(venue)
    assert len(attempts) == len(set(attempts)), "an order was placed twice"
    assert attempts == reference.attempts
    assert in_flight >= 1, "no kill landed while orders were in flight"
    with Ledger(crash_url) as crashed:
        assert crashed.check_consistency(S) == []
        assert crashed.last_candle(S, SYM) == (CANDLES - 1) * MIN
        signals = [d for d in crashed.decisions(S, limit=None) if d.kind == "signal"]
        assert sorted(d.candle_open_time for d in signals) == [
            i * MIN for i in range(CANDLES)], "a candle was skipped or repeated"
        assert ledger_contents(crashed) == reference.contents


def open_ledger(url: str, report: Connection) -> None:
    report.send("started")
    Ledger(url).close()


def test_a_migration_killed_midway_leaves_nothing_or_everything(tmp_path: Path) -> None:
    ctx = forkserver_context()
    # Time undisturbed opens of fresh files (the first may include starting the forkserver),
    # then kill others anywhere in twice that span.
    spans = []
    for n in range(2):
        worker = start_worker(ctx, open_ledger, (f"sqlite:///{tmp_path / f't{n}.db'}",),
                              "started")
        began = time.perf_counter()
        worker.kill(after=30)
        spans.append(time.perf_counter() - began)
    span = min(spans)
    rng = random.Random(5)
    outcomes = set()
    for n in range(12):
        path = tmp_path / f"m{n}.db"
        worker = start_worker(ctx, open_ledger, (f"sqlite:///{path}",), "started")
        worker.kill(after=rng.uniform(0.0, 2 * span))
        with sqlite3.connect(path) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master "
                                               "WHERE type = 'table'")}
        outcomes.add(frozenset(tables))
        with Ledger(f"sqlite:///{path}") as ledger:  # and it can always be finished
            assert ledger.schema_version == LATEST_VERSION
    assert outcomes == {frozenset(), frozenset(Base.metadata.tables)}
