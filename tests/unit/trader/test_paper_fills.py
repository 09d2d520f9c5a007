"""Paper fills against a known book: exact prices, fees, basis; the fallbacks say so."""

from __future__ import annotations

import asyncio
import logging

import pandas as pd
import pytest

from tradeflow.exchange.types import OrderBook
from trader.order_flow import LiveOrderFlow
from trader.paper_fills import BookPaperBroker, walk_book

BOOK = OrderBook("BTC/USDT", None, bids=((99.0, 1.0), (98.0, 2.0), (97.0, 5.0)),
                 asks=((101.0, 0.5), (102.0, 1.5), (104.0, 1.0)))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def broker(clock: Clock, *, book: OrderBook | None = BOOK) -> BookPaperBroker:
    flow = LiveOrderFlow(["BTC/USDT"], "1m", max_book_age_s=5.0, clock=clock)
    if book is not None:
        flow.on_book("BTC/USDT", book)
    return BookPaperBroker(flow, taker_bps=10.0, slippage_bps=20.0, quote="USDT")


def test_walk_book_takes_levels_in_order() -> None:
    fill = walk_book(BOOK.asks, 1.25)
    assert fill.levels == ((101.0, 0.5), (102.0, 0.75))
    assert fill.price == pytest.approx((101.0 * 0.5 + 102.0 * 0.75) / 1.25)
    assert fill.shortfall == 0.0
    deep = walk_book(BOOK.asks, 4.0)
    assert deep.shortfall == pytest.approx(1.0)
    with pytest.raises(ValueError, match="amount"):
        walk_book(BOOK.asks, 0.0)


def test_a_buy_walks_the_asks_and_pays_the_taker_fee_on_top() -> None:
    clock = Clock()
    b = broker(clock)
    clock.now += 1.5
    done = asyncio.run(b.execute("BTC/USDT", "buy", 1.25, "c1"))
    price = (101.0 * 0.5 + 102.0 * 0.75) / 1.25  # 101.6
    assert done.filled == 1.25 and done.average == pytest.approx(price)
    assert done.fee == pytest.approx(price * 1.25 * 10 / 1e4)
    assert done.fee_currency == "USDT" and done.exchange_order_id == "paper-c1"
    assert done.basis == {"source": "book", "book_age_s": 1.5,
                          "levels": [[101.0, 0.5], [102.0, 0.75]]}


def test_a_sell_walks_the_bids() -> None:
    done = asyncio.run(broker(Clock()).execute("BTC/USDT", "sell", 2.0, "c2"))
    assert done.average == pytest.approx((99.0 * 1.0 + 98.0 * 1.0) / 2.0)
    assert done.basis is not None and done.basis["levels"] == [[99.0, 1.0], [98.0, 1.0]]


def test_a_book_too_shallow_fills_the_rest_at_the_last_level_plus_slippage() -> None:
    done = asyncio.run(broker(Clock()).execute("BTC/USDT", "buy", 4.0, "c3"))
    worst = 104.0 * (1 + 20 / 1e4)
    visible = 101.0 * 0.5 + 102.0 * 1.5 + 104.0 * 1.0
    assert done.average == pytest.approx((visible + worst * 1.0) / 4.0)
    assert done.basis is not None
    assert done.basis["shortfall"] == pytest.approx(1.0)
    assert done.basis["shortfall_price"] == pytest.approx(worst)


def test_without_a_fresh_book_the_last_trade_plus_slippage_is_used_and_said(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    b = broker(clock)
    b.flow.on_trades("BTC/USDT", pd.DataFrame({"id": [7], "ts": [1_700_000_000_000],
                                               "price": [100.0], "amount": [0.1],
                                               "side": ["buy"]}))
    clock.now += 6.0  # the book is now older than max_book_age_s
    with caplog.at_level(logging.WARNING, logger="trader.paper_fills"):
        buy = asyncio.run(b.execute("BTC/USDT", "buy", 1.0, "c4"))
        sell = asyncio.run(b.execute("BTC/USDT", "sell", 1.0, "c5"))
    assert buy.average == pytest.approx(100.0 * 1.002)
    assert sell.average == pytest.approx(100.0 * 0.998)
    assert buy.basis == {"source": "last_trade", "price": 100.0, "slippage_bps": 20.0,
                         "note": "fallback: book older than 5s"}
    assert "book older than 5s; last_trade price + 20 bps slippage" in caplog.text


def test_with_no_book_and_no_trade_the_candle_close_is_the_last_resort() -> None:
    b = broker(Clock(), book=None)
    b.flow.candle_closed("BTC/USDT", 50.0)
    done = asyncio.run(b.execute("BTC/USDT", "buy", 1.0, "c6"))
    assert done.average == pytest.approx(50.0 * 1.002)
    assert done.basis is not None and done.basis["source"] == "candle_close"
    assert done.basis["note"] == "fallback: no book"
    assert asyncio.run(b.reconcile("BTC/USDT", "c6")) is None


def test_the_profile_chooses_book_fills_and_order_flow() -> None:
    from tradeflow.config import load_settings
    from tradeflow.strategy import StrategySettings
    from trader.app import order_flow_for

    settings = load_settings(env={})
    book = load_settings(env={"TRADEFLOW_TRADER__PAPER_FILLS": "book",
                              "TRADEFLOW_TRADER__MAX_BOOK_AGE_S": "3"})
    plain = StrategySettings.model_validate({"name": "p", "symbols": ["BTC/USDT"],
                                             "features": [{"name": "returns"}],
                                             "costs": {"taker_bps": 7,
                                                       "slippage": {"bps": 3}}})
    flowy = plain.model_copy(update={"features": [{"name": "book_spread"}]})
    assert order_flow_for(settings, plain, "paper", ()) == (None, None)
    flow, broker = order_flow_for(book, plain, "paper", ())
    assert isinstance(broker, BookPaperBroker) and broker.flow is flow
    assert (broker.taker_bps, broker.slippage_bps, broker.quote) == (7.0, 3.0, "USDT")
    assert flow.max_book_age_s == 3.0
    assert order_flow_for(book, plain, "live", ()) == (None, None)  # live: the exchange fills
    flow, broker = order_flow_for(settings, flowy, "paper", ())
    assert isinstance(flow, LiveOrderFlow) and broker is None
