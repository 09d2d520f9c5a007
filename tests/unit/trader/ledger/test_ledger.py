"""The ledger API on a SQLite file: idempotency, accounting, status changes, self-checks.

Every scenario takes only a ``Ledger``, so ``tests/integration/trader/ledger/test_postgres.py`` runs
the same functions against PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from trader.ledger import (
    InvalidTransition,
    Ledger,
    NewDecision,
    NewOrder,
    OrderStatus,
    UnknownOrder,
    UnknownStrategy,
    client_order_id,
)

S, BTC, ETH = "momentum", "BTC/USDT", "ETH/USDT"
MIN = 60_000


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as led:
        led.init_strategy(S, 10_000.0)
        yield led


def decision(candle: int, action: str = "buy", *, kind: str = "signal", symbol: str = BTC,
             price: float = 100.0, strategy: str = S) -> NewDecision:
    return NewDecision(strategy=strategy, symbol=symbol, candle_open_time=candle, kind=kind,
                       action=action, price=price, reason="test", model_version="m1",
                       probability=0.7, target=0.5, risk_state="active")


def order_for(ledger: Ledger, side: str, amount: float, candle: int, *, symbol: str = BTC,
              price: float = 100.0, strategy: str = S) -> str:
    """Record a one-order decision and return the order's client id."""
    (order,) = ledger.record_decision(
        decision(candle, side, symbol=symbol, price=price, strategy=strategy),
        [NewOrder(side, amount)])
    return order.client_order_id


def trade(ledger: Ledger, side: str, amount: float, price: float, candle: int, *,
          fee: float = 0.0, fee_currency: str | None = None, symbol: str = BTC,
          strategy: str = S) -> str:
    cid = order_for(ledger, side, amount, candle, symbol=symbol, price=price, strategy=strategy)
    ledger.mark_submitted(cid, f"x-{cid}")
    assert ledger.apply_fill(cid, "t1", price, amount, fee, fee_currency, candle + MIN)
    return cid


@pytest.mark.parametrize("make", [
    lambda: NewDecision("x" * 65, BTC, 0, "signal", "hold", 1.0),  # longer than its column
    lambda: NewDecision(S, "BTCUSDT", 0, "signal", "hold", 1.0),  # base and quote unknown
    lambda: NewDecision(S, BTC, 0, "entry", "hold", 1.0),
    lambda: NewDecision(S, BTC, 0, "signal", "hold", 0.0),
    lambda: NewOrder("buy", 1.0, type="limit"),  # no limit price
    lambda: NewOrder("buy", -1.0),
    lambda: NewOrder("short", 1.0),
])
def test_inputs_are_checked_at_the_border(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_recording_a_decision_twice_yields_one_decision_and_the_same_orders(
        ledger: Ledger) -> None:
    intents = [NewOrder("buy", 1.0), NewOrder("buy", 0.5, type="limit", limit_price=99.0)]
    first = ledger.record_decision(decision(MIN), intents)
    again = ledger.record_decision(decision(MIN), intents)
    assert again == first
    assert [o.client_order_id for o in first] == [
        client_order_id(S, BTC, MIN, "signal", seq) for seq in (0, 1)]
    assert [o.status for o in first] == [OrderStatus.NEW, OrderStatus.NEW]
    assert first[0].intended_price == 100.0 and first[1].limit_price == 99.0
    assert len(ledger.decisions(S)) == 1 and len(ledger.orders(S)) == 2
    # A restart that decides differently still gets the recorded orders back.
    assert ledger.record_decision(decision(MIN, "sell"), [NewOrder("sell", 3.0)]) == first
    assert len(ledger.orders(S)) == 2


def test_signal_decisions_advance_the_last_candle_atomically(ledger: Ledger) -> None:
    assert ledger.last_candle(S, BTC) is None
    ledger.record_decision(decision(5 * MIN, "hold"))
    ledger.record_decision(decision(6 * MIN, "exit_stop", kind="exit"), [NewOrder("sell", 1.0)])
    ledger.record_decision(decision(3 * MIN, "hold"))  # late: recorded, never moves back
    ledger.record_decision(decision(7 * MIN, "hold", symbol=ETH))
    assert ledger.last_candle(S, BTC) == 5 * MIN and ledger.last_candle(S, ETH) == 7 * MIN
    assert [d.kind for d in ledger.decisions(S, limit=2)] == ["signal", "signal"]
    assert len(ledger.decisions(S, limit=None)) == 4
    assert ledger.check_consistency(S) == []


def test_a_strategy_must_be_initialised_once(ledger: Ledger) -> None:
    with pytest.raises(UnknownStrategy):
        ledger.record_decision(decision(MIN, strategy="nobody"))
    with pytest.raises(UnknownStrategy):
        ledger.trader_state("nobody")
    state = ledger.init_strategy(S, 99.0)  # idempotent: the first balance stands
    assert state.starting_balance == 10_000.0 and state.cash == 10_000.0
    with pytest.raises(UnknownOrder):
        ledger.apply_fill("tf-missing", "t1", 1.0, 1.0, 0.0, None, 0)


def test_a_fill_applied_twice_counts_once(ledger: Ledger) -> None:
    cid = order_for(ledger, "buy", 2.0, MIN)
    assert ledger.apply_fill(cid, "t1", 100.0, 1.0, 0.1, "USDT", 1)
    assert not ledger.apply_fill(cid, "t1", 100.0, 1.0, 0.1, "USDT", 1)
    assert ledger.apply_fill(cid, "t2", 102.0, 1.0, 0.1, "USDT", 2)
    assert not ledger.apply_fill(cid, "t2", 102.0, 1.0, 0.1, "USDT", 2)
    order = ledger.order(cid)
    assert order is not None and order.status is OrderStatus.FILLED
    assert order.filled == 2.0 and order.average_price == pytest.approx(101.0)
    assert order.fee_paid == pytest.approx(0.2)
    assert len(ledger.fills(S)) == 2 and ledger.position(S, BTC).qty == 2.0
    assert ledger.trader_state(S).cash == pytest.approx(10_000 - 202 - 0.2)
    assert ledger.check_consistency(S) == []


def test_buy_buy_sell_sell_with_fees_in_quote(ledger: Ledger) -> None:
    trade(ledger, "buy", 1.0, 100.0, MIN, fee=0.1, fee_currency="USDT")
    trade(ledger, "buy", 3.0, 200.0, 2 * MIN, fee=0.6, fee_currency="USDT")
    pos = ledger.position(S, BTC)
    assert (pos.qty, pos.avg_price, pos.realized_pnl) == (4.0, 175.0, 0.0)
    assert pos.opened_at_candle == MIN
    trade(ledger, "sell", 2.0, 250.0, 3 * MIN, fee=0.5, fee_currency="USDT")
    pos = ledger.position(S, BTC)
    assert (pos.qty, pos.avg_price, pos.realized_pnl) == (2.0, 175.0, 150.0)
    assert ledger.trader_state(S).cash == pytest.approx(9_798.8)
    trade(ledger, "sell", 2.0, 150.0, 4 * MIN, fee=0.3, fee_currency="USDT")
    pos = ledger.position(S, BTC)
    assert pos.is_flat and pos.avg_price == 0.0 and pos.opened_at_candle is None
    assert pos.realized_pnl == pytest.approx(100.0) and pos.fees_paid == pytest.approx(1.5)
    assert ledger.trader_state(S).cash == pytest.approx(10_000 + 100 - 1.5)
    assert ledger.check_consistency(S) == []


def test_buy_buy_sell_sell_with_buyer_fees_in_base(ledger: Ledger) -> None:
    # Binance's default: a buyer pays in the coin bought, a seller in the quote received.
    trade(ledger, "buy", 1.0, 100.0, MIN, fee=0.01, fee_currency="BTC")
    trade(ledger, "buy", 1.0, 200.0, 2 * MIN, fee=0.01, fee_currency="BTC")
    pos = ledger.position(S, BTC)
    avg = 299.0 / 1.99  # 0.99 coins at 100 and 1 at 200, before the second fee
    assert pos.qty == pytest.approx(1.98) and pos.avg_price == pytest.approx(avg)
    assert pos.fees_paid == pytest.approx(3.0)  # 0.01 * 100 + 0.01 * 200
    assert ledger.trader_state(S).cash == pytest.approx(9_700.0)  # coins paid the fees
    trade(ledger, "sell", 1.0, 300.0, 3 * MIN, fee=0.3, fee_currency="USDT")
    trade(ledger, "sell", 0.98, 100.0, 4 * MIN, fee=0.098, fee_currency="USDT")
    pos = ledger.position(S, BTC)
    assert pos.qty == pytest.approx(0.0, abs=1e-12)
    assert pos.realized_pnl == pytest.approx(101.0) and pos.fees_paid == pytest.approx(3.398)
    assert ledger.trader_state(S).cash == pytest.approx(10_000 + 101 - 3.398)
    assert ledger.check_consistency(S) == []


def test_fees_in_a_third_currency_touch_neither_cash_nor_coins(ledger: Ledger) -> None:
    trade(ledger, "buy", 1.0, 100.0, MIN, fee=0.002, fee_currency="BNB")
    assert ledger.position(S, BTC).qty == 1.0 and ledger.position(S, BTC).fees_paid == 0.0
    assert ledger.trader_state(S).cash == 9_900.0
    assert ledger.fills(S)[0].fee_currency == "BNB"
    assert ledger.check_consistency(S) == []


def test_order_status_machine(ledger: Ledger) -> None:
    a, b, c = (order_for(ledger, "buy", 2.0, n * MIN) for n in (1, 2, 3))
    assert ledger.mark_submitted(a, "ex-a").status is OrderStatus.SUBMITTED
    assert ledger.mark_submitted(a, "ex-a").status is OrderStatus.SUBMITTED  # repeat: no-op
    with pytest.raises(InvalidTransition):
        ledger.mark_submitted(a, "ex-other")
    with pytest.raises(InvalidTransition):  # exchange ids are unique within a strategy
        ledger.mark_submitted(b, "ex-a")
    ledger.apply_fill(a, "t1", 100.0, 0.5, 0.0, None, 1)
    assert ledger.order(a).status is OrderStatus.PARTIALLY_FILLED  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition):
        ledger.mark_rejected(a, "too late")
    canceled = ledger.mark_canceled(a, "expired")
    assert canceled.status is OrderStatus.CANCELED and canceled.filled == 0.5
    assert canceled.remaining == 0.0 and not canceled.is_open and canceled.error == "expired"
    ledger.apply_fill(a, "t2", 100.0, 0.5, 0.0, None, 2)  # a late fill is still a fact
    assert ledger.order(a).status is OrderStatus.CANCELED  # type: ignore[union-attr]

    # A fill can be booked before the acknowledgement (a crash in between).
    ledger.apply_fill(b, "t1", 100.0, 2.0, 0.0, None, 3)
    filled = ledger.mark_submitted(b, "ex-b")
    assert filled.status is OrderStatus.FILLED and filled.exchange_order_id == "ex-b"
    with pytest.raises(InvalidTransition):
        ledger.mark_canceled(b)

    assert ledger.mark_rejected(c, "insufficient balance").status is OrderStatus.REJECTED
    assert ledger.mark_rejected(c, "again").error == "insufficient balance"
    with pytest.raises(InvalidTransition):
        ledger.mark_submitted(c, "ex-c")
    with pytest.raises(UnknownOrder):
        ledger.mark_canceled("tf-nope")
    assert ledger.check_consistency(S) == []


def test_pending_orders_are_the_ones_that_may_still_fill(ledger: Ledger) -> None:
    ids = [order_for(ledger, "buy", 1.0, n * MIN) for n in range(1, 6)]
    ledger.mark_submitted(ids[1], "x1")
    ledger.apply_fill(ids[2], "t", 100.0, 0.5, 0.0, None, 0)
    ledger.apply_fill(ids[3], "t", 100.0, 1.0, 0.0, None, 0)
    ledger.mark_rejected(ids[4], "no")
    pending = ledger.pending_orders(S)
    assert [o.client_order_id for o in pending] == ids[:3]
    assert [o.status for o in pending] == [OrderStatus.NEW, OrderStatus.SUBMITTED,
                                           OrderStatus.PARTIALLY_FILLED]
    assert pending[2].remaining == 0.5


def test_strategies_sharing_a_ledger_are_isolated(ledger: Ledger) -> None:
    ledger.init_strategy("meanrev", 500.0)
    trade(ledger, "buy", 1.0, 100.0, MIN)
    trade(ledger, "buy", 2.0, 100.0, MIN, strategy="meanrev")
    assert ledger.position(S, BTC).qty == 1.0 and ledger.position("meanrev", BTC).qty == 2.0
    assert ledger.trader_state("meanrev").cash == 300.0
    assert ledger.strategies() == ["meanrev", S]
    assert len(ledger.orders(S)) == 1 and len(ledger.fills("meanrev")) == 1
    assert ledger.check_consistency(S) == [] and ledger.check_consistency("meanrev") == []


def test_the_consistency_check_catches_writes_made_behind_its_back(ledger: Ledger) -> None:
    cid = trade(ledger, "buy", 1.0, 100.0, MIN, fee=0.1, fee_currency="USDT")
    trade(ledger, "buy", 1.0, 100.0, 2 * MIN, symbol=ETH)
    assert ledger.check_consistency(S) == []
    with ledger.engine.begin() as con:  # a fill nobody booked: order, position, cash disagree
        con.execute(sa.text(
            "INSERT INTO fills (client_order_id, trade_id, strategy, symbol, side, price, "
            "amount, fee, fee_currency, ts, created_at) VALUES (:cid, 'planted', :s, :sym, "
            "'buy', 100.0, 0.5, 0.0, NULL, 0, CURRENT_TIMESTAMP)"),
            {"cid": cid, "s": S, "sym": BTC})
        con.execute(sa.text("UPDATE positions SET qty = qty * 2 WHERE symbol = :sym"),
                    {"sym": ETH})
        con.execute(sa.text("UPDATE trader_state SET last_candles = :lc"),
                    {"lc": '{"BTC/USDT": 60000}'})
    problems = "\n".join(ledger.check_consistency(S))
    assert f"order {cid}: filled 1.0 != 1.5" in problems
    assert "BTC/USDT: position qty 1.0 != 1.5" in problems
    assert "ETH/USDT: position qty 2.0 != 1.0" in problems
    assert "cash" in problems
    assert "ETH/USDT: last candle None != latest signal decision 120000" in problems


def test_equity_snapshots_track_the_peak_and_drawdown(ledger: Ledger) -> None:
    first = ledger.snapshot_equity(S, MIN, 10_500.0, 10_500.0, 0.0)
    assert (first.peak, first.drawdown) == (10_500.0, 0.0)
    dip = ledger.snapshot_equity(S, 2 * MIN, 9_450.0, 5_000.0, 0.47)
    assert dip.peak == 10_500.0 and dip.drawdown == pytest.approx(0.1)
    redo = ledger.snapshot_equity(S, 2 * MIN, 9_975.0, 5_000.0, 0.5)  # restart: replaces
    assert redo.id == dip.id and redo.drawdown == pytest.approx(0.05)
    ledger.snapshot_equity(S, 3 * MIN, 11_000.0, 11_000.0, 0.0)
    history = ledger.equity_history(S)
    assert [h.ts for h in history] == [MIN, 2 * MIN, 3 * MIN]
    assert [h.peak for h in history] == [10_500.0, 10_500.0, 11_000.0]
    assert ledger.trader_state(S).peak_equity == 11_000.0


def test_trader_owned_state_round_trips(ledger: Ledger) -> None:
    exit_state = {"stop": 95.5, "tiers_done": [1], "high_water": 110.0, "entry_candle": MIN}
    ledger.set_exit_state(S, BTC, exit_state)
    exit_state["stop"] = 0.0  # the ledger kept its own copy
    assert ledger.position(S, BTC).exit_state["stop"] == 95.5
    assert ledger.position(S, BTC).is_flat
    ledger.save_risk_state(S, {"mode": "reducing", "order_times": [1, 2]})
    ledger.set_model_version(S, "models:/btc/7")
    state = ledger.trader_state(S)
    assert state.risk_state == {"mode": "reducing", "order_times": [1, 2]}
    assert state.model_version == "models:/btc/7"
    assert state.updated_at.tzinfo is not None
    assert ledger.position(S, "DOGE/USDT").qty == 0.0  # never traded: a flat record


def test_summary_for_status(ledger: Ledger) -> None:
    trade(ledger, "buy", 2.0, 100.0, MIN, fee=0.2, fee_currency="USDT")
    trade(ledger, "sell", 1.0, 120.0, 2 * MIN, fee=0.12, fee_currency="USDT")
    trade(ledger, "buy", 10.0, 10.0, 3 * MIN, symbol=ETH)
    order_for(ledger, "buy", 1.0, 4 * MIN)
    ledger.set_model_version(S, "m7")
    summary = ledger.summary(S, {BTC: 130.0})
    cash = 10_000 - 200.2 + 119.88 - 100
    assert summary["cash"] == pytest.approx(cash)
    assert summary["equity"] == pytest.approx(cash + 130.0 + 100.0)  # ETH marked at cost
    assert summary["unpriced"] == [ETH]
    assert summary["realized_pnl"] == pytest.approx(20.0)
    assert summary["unrealized_pnl"] == pytest.approx(30.0)
    assert summary["fees_paid"] == pytest.approx(0.32)
    assert summary["equity"] == pytest.approx(10_000 + 20 + 30 - 0.32)
    assert summary["orders"] == {"total": 4, "by_status": {"FILLED": 3, "NEW": 1}, "pending": 1}
    assert summary["fills"] == 3 and summary["model_version"] == "m7"
    assert summary["last_candles"] == {BTC: 4 * MIN, ETH: 3 * MIN}


# The scenarios tests/integration/trader/ledger/test_postgres.py runs against PostgreSQL.
SCENARIOS = [
    test_recording_a_decision_twice_yields_one_decision_and_the_same_orders,
    test_signal_decisions_advance_the_last_candle_atomically,
    test_a_strategy_must_be_initialised_once,
    test_a_fill_applied_twice_counts_once,
    test_buy_buy_sell_sell_with_fees_in_quote,
    test_buy_buy_sell_sell_with_buyer_fees_in_base,
    test_fees_in_a_third_currency_touch_neither_cash_nor_coins,
    test_order_status_machine,
    test_pending_orders_are_the_ones_that_may_still_fill,
    test_strategies_sharing_a_ledger_are_isolated,
    test_the_consistency_check_catches_writes_made_behind_its_back,
    test_equity_snapshots_track_the_peak_and_drawdown,
    test_trader_owned_state_round_trips,
    test_summary_for_status,
]


def test_transaction_groups_writes_all_or_nothing(tmp_path) -> None:  # noqa: ANN001
    from trader.ledger import Ledger, NewDecision, NewOrder

    ledger = Ledger(f"sqlite:///{tmp_path / 'tx.db'}")
    ledger.init_strategy("tx", 1000.0)
    decision = NewDecision(strategy="tx", symbol="BTC/USDT", candle_open_time=60_000,
                           kind="signal", action="buy", price=100.0)
    try:
        with ledger.transaction():
            orders = ledger.record_decision(decision, [NewOrder(side="buy", amount=1.0)])
            ledger.apply_fill(orders[0].client_order_id, "t1", 100.0, 1.0, 0.1, "USDT", 60_000)
            assert ledger.order(orders[0].client_order_id).status == "FILLED"  # seen inside
            raise RuntimeError("killed mid-candle")
    except RuntimeError:
        pass
    assert ledger.orders("tx") == [] and ledger.fills("tx") == []
    assert ledger.trader_state("tx").cash == 1000.0
    with ledger.transaction():
        orders = ledger.record_decision(decision, [NewOrder(side="buy", amount=1.0)])
        ledger.apply_fill(orders[0].client_order_id, "t1", 100.0, 1.0, 0.1, "USDT", 60_000)
    assert ledger.trader_state("tx").cash == 1000.0 - 100.0 - 0.1
    assert ledger.check_consistency("tx") == []
