"""The live broker's look-up before sending: only where an earlier run may have sent the order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tradeflow.exchange.types import Order, OrderNotFound, TransientError
from tradeflow.strategy import StrategySettings
from trader.bookings import LedgerBook
from trader.brokers import Execution, LiveBroker
from trader.execution import LiveExecution
from trader.ledger import Ledger, NewDecision, NewOrder, OrderRecord
from trader.run_summary import RunSummary


class FakeExchange:
    """create_order / fetch_order by client id, with calls recorded and errors to inject."""

    def __init__(self, failures: int = 0, reached_anyway: bool = False) -> None:
        self.calls: list[str] = []
        self.orders: dict[str, Order] = {}
        self.failures = failures
        self.reached_anyway = reached_anyway

    async def create_order(self, symbol: str, side: str, type: str, amount: float, *,
                           client_order_id: str, **_: Any) -> Order:
        self.calls.append("create")
        order = Order(f"x{len(self.orders)}", client_order_id, symbol, side, type, amount, None,
                      amount, 100.0, "closed", 0)
        if self.failures:
            self.failures -= 1
            if self.reached_anyway:  # the request reached the exchange; the answer was lost
                self.orders[client_order_id] = order
            raise TransientError("timed out")
        self.orders[client_order_id] = order
        return order

    async def fetch_order(self, symbol: str, *, client_order_id: str) -> Order:
        self.calls.append("lookup")
        if client_order_id not in self.orders:
            raise OrderNotFound(client_order_id)
        return self.orders[client_order_id]


def run(ex: FakeExchange, **kw: Any) -> Any:
    broker = LiveBroker(ex, {})
    return asyncio.run(broker.execute("BTC/USDT", "buy", 0.5, "cid-1", **kw))


def test_an_order_that_may_have_been_sent_is_looked_up_first() -> None:
    ex = FakeExchange()
    ex.orders["cid-1"] = Order("x9", "cid-1", "BTC/USDT", "buy", "market", 0.5, None, 0.5,
                               99.0, "closed", 0)
    execution = run(ex)
    assert ex.calls == ["lookup"] and execution.exchange_order_id == "x9"


def test_an_order_this_run_never_sent_goes_out_without_a_lookup() -> None:
    ex = FakeExchange()
    execution = run(ex, may_exist=False)
    assert ex.calls == ["create"] and execution.filled == 0.5


def test_after_an_error_it_looks_before_sending_again_and_never_doubles() -> None:
    ex = FakeExchange(failures=1, reached_anyway=True)
    execution = run(ex, may_exist=False)  # one 0.2 s back-off before the look-up
    assert ex.calls == ["create", "lookup"]
    assert len(ex.orders) == 1 and execution.exchange_order_id == "x0"


class RecordingBroker:
    """What LiveExecution asks of a broker: each execute's ``may_exist``."""

    def __init__(self) -> None:
        self.may_exist: dict[str, bool] = {}

    def tradable_amount(self, symbol: str, amount: float, price: float) -> float:
        return amount

    async def execute(self, symbol: str, side: str, amount: float, client_order_id: str, *,
                      may_exist: bool = True) -> Execution:
        self.may_exist[client_order_id] = may_exist
        return Execution(client_order_id, f"x-{client_order_id}", amount, 100.0, 0.0, "USDT")

    async def reconcile(self, symbol: str, client_order_id: str) -> Execution | None:
        return None


def test_only_orders_open_before_this_run_can_have_been_sent(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.init_strategy("s", 10_000)

    def record(t: int) -> OrderRecord:
        (order,) = ledger.record_decision(NewDecision(
            strategy="s", symbol="BTC/USDT", candle_open_time=t, kind="signal", action="buy",
            price=100.0), [NewOrder(side="buy", amount=1.0)])
        return order

    earlier = record(120_000)  # an earlier run recorded it, then died (sent or not: unknown)
    settings = StrategySettings.model_validate({
        "name": "s", "symbols": ["BTC/USDT"], "features": [{"name": "returns"}],
        "signal": {"enter_above": 0.55, "exit_below": 0.5}})
    book = LedgerBook(settings, ledger, RunSummary("s", "live"), [], "USDT", lambda: "1")
    broker = RecordingBroker()
    execution = LiveExecution(book, broker)
    engine = SimpleNamespace(time=60_000)  # its candle is not finished: it is settled later
    asyncio.run(execution.reconcile(engine))  # type: ignore[arg-type]
    fresh = record(180_000)
    for order in (earlier, fresh):
        asyncio.run(execution._settle("BTC/USDT", "buy", order, 1.0, 0))
    assert broker.may_exist == {earlier.client_order_id: True, fresh.client_order_id: False}
    assert ledger.check_consistency("s") == []
