"""The trader's live order flow hands the model what training computes from recorded data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.order_flow import BOOK_INPUTS, TRADE_INPUTS, book_inputs, trade_inputs
from tradeflow.exchange.types import OrderBook
from trader.order_flow import LiveOrderFlow
from trader.window import CandleWindow

T0 = 1_699_920_000_000
MIN = 60_000
NAMES = TRADE_INPUTS + BOOK_INPUTS


def trades(*rows: tuple[int, int, float, float, str]) -> pd.DataFrame:
    """A stream's frame: id, ts, price, amount, side."""
    return pd.DataFrame(list(rows), columns=["id", "ts", "price", "amount", "side"])


def test_live_inputs_equal_the_recorded_computation() -> None:
    now = [0.0]
    flow = LiveOrderFlow(["BTC/USDT"], "1m", max_book_age_s=5.0, clock=lambda: now[0])
    rng = np.random.default_rng(4)
    ts = np.sort(T0 + 30_000 + rng.integers(0, 2 * MIN, 200))
    recorded = trades(*((i + 1, int(t), 100 + rng.normal(), rng.uniform(0.1, 1),
                         "buy" if i % 3 else "sell") for i, t in enumerate(ts)))
    book = OrderBook("BTC/USDT", None, ((99.5, 1.0), (99.0, 2.0)), ((100.5, 3.0),))
    flow.on_trades("BTC/USDT", recorded.iloc[:60])
    flow.on_trades("BTC/USDT", recorded.iloc[50:])  # an overlapping batch: repeats dropped
    flow.on_book("BTC/USDT", book)
    snapshot = pd.DataFrame({"ts": [T0 + 2 * MIN], "bid_price": [[99.5, 99.0]],
                             "bid_amount": [[1.0, 2.0]], "ask_price": [[100.5]],
                             "ask_amount": [[3.0]]})
    open_time = np.array([T0 + MIN])
    expected = trade_inputs(open_time, "1m", recorded) | book_inputs(open_time, "1m", snapshot)
    live = flow.inputs("BTC/USDT", T0 + MIN, NAMES)
    np.testing.assert_allclose(live, [expected[n][0] for n in NAMES], rtol=1e-12)
    # The candle the stream entered mid-way is not wholly seen: NaN, never a partial sum.
    assert all(np.isnan(flow.inputs("BTC/USDT", T0, TRADE_INPUTS)))
    now[0] += 6.0  # the book went stale
    assert all(np.isnan(flow.inputs("BTC/USDT", T0 + MIN, BOOK_INPUTS)))


def test_a_lost_trade_makes_the_candle_missing_and_status_shows_ages() -> None:
    now = [10.0]
    flow = LiveOrderFlow(["BTC/USDT"], "1m", max_book_age_s=5.0, clock=lambda: now[0])
    flow.on_trades("BTC/USDT", trades((1, T0 - 1, 100.0, 1.0, "buy"),
                                      (2, T0 + 10, 101.0, 1.0, "buy")))
    assert flow.inputs("BTC/USDT", T0, ("trade_count",)) == (1.0,)
    flow.on_trades("BTC/USDT", trades((5, T0 + 20, 102.0, 1.0, "sell")))  # ids 3, 4 lost
    assert np.isnan(flow.inputs("BTC/USDT", T0, ("trade_count",))[0])
    now[0] += 2.5
    status = flow.status()["BTC/USDT"]
    assert status == {"last_price": 102.0, "price_age_s": 2.5, "book_age_s": None,
                      "depth": None}


def test_the_window_carries_order_flow_columns_and_warm_up_rows_are_nan() -> None:
    window = CandleWindow(3, ("trade_qty",))
    history = pd.DataFrame({"open_time": [T0, T0 + MIN], "open": [1.0, 2.0],
                            "high": [1.0, 2.0], "low": [1.0, 2.0], "close": [1.0, 2.0],
                            "volume": [1.0, 1.0]})
    window.extend(history)
    window.append((T0 + 2 * MIN, 3.0, 3.0, 3.0, 3.0, 1.0, 0.5))
    cols = window.columns()
    assert list(cols) == ["open_time", "open", "high", "low", "close", "volume", "trade_qty"]
    np.testing.assert_array_equal(cols["trade_qty"], [np.nan, np.nan, 0.5])
    assert cols["open_time"].dtype == np.int64
