"""Candles from trades: the simulator's trades aggregate to its klines; stored candles are
judged against stored trades (consistent data passes, planted mismatches are flagged)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.market import MINUTE_MS
from tests.fixtures.simulator import START_MS, frozen_venue
from tests.fixtures.tape import exchange_klines, exchange_trades
from tradeflow.market.trade_candles import (
    TRADE_CANDLE_COLUMNS,
    candles_from_trades,
    judged_span,
    trades_vs_candles,
)

T0 = START_MS - 6 * 60 * MINUTE_MS


@pytest.mark.parametrize(("symbol", "interval"), [("ETH/USDT", "1m"), ("SOL/USDT", "1m"),
                                                  ("BTC/USDT", "5m"), ("ETH/USDT", "1h")])
def test_the_simulators_trades_aggregate_to_its_klines(symbol: str, interval: str) -> None:
    venue = frozen_venue()
    end = T0 + 3 * 60 * MINUTE_MS - 1
    klines = exchange_klines(venue, symbol, interval, T0, end)
    built = candles_from_trades(exchange_trades(venue, symbol, T0, end), interval)
    assert len(klines) == len(built) > 2
    for col in ("open_time", "open", "high", "low", "close", "trades"):
        assert (built[col].to_numpy() == klines[col].to_numpy()).all(), col
    spec = venue.specs[symbol]
    for col in ("volume", "taker_buy_base"):  # base sums: exact at the exchange's lot size
        scale = 10**spec.qty_decimals
        assert (np.rint(built[col] * scale) == np.rint(klines[col] * scale)).all(), col
    for col in ("volume", "quote_volume", "taker_buy_base", "taker_buy_quote"):
        assert np.allclose(built[col], klines[col], rtol=1e-12, atol=0), col
    # what the validation rule says of the same data: every covered candle agrees
    verdict = trades_vs_candles(klines, exchange_trades(venue, symbol, T0, end), interval)
    assert np.nansum(verdict) == 0 and np.isfinite(verdict).sum() >= len(klines) - 2


def test_trades_out_of_id_order_and_empty_input() -> None:
    trades = pd.DataFrame({"id": [3, 1, 2, 4], "ts": [T0 + 5, T0 + 1, T0 + 5, T0 + 60_000],
                           "price": [12.0, 10.0, 11.0, 9.0], "amount": [1.0, 2.0, 3.0, 4.0],
                           "side": ["buy", "sell", "buy", "sell"]})
    built = candles_from_trades(trades.sample(frac=1.0, random_state=1), "1m")
    assert built.to_dict("records") == [
        {"open_time": T0, "open": 10.0, "high": 12.0, "low": 10.0, "close": 12.0,
         "volume": 6.0, "quote_volume": 65.0, "trades": 3, "taker_buy_base": 4.0,
         "taker_buy_quote": 45.0},
        {"open_time": T0 + 60_000, "open": 9.0, "high": 9.0, "low": 9.0, "close": 9.0,
         "volume": 4.0, "quote_volume": 36.0, "trades": 1, "taker_buy_base": 0.0,
         "taker_buy_quote": 0.0}]
    empty = candles_from_trades(trades.iloc[:0], "1m")
    assert list(empty.columns) == list(TRADE_CANDLE_COLUMNS) and empty.empty
    assert judged_span(trades.iloc[:0], "1m") is None


def test_planted_mismatches_are_flagged_and_nothing_else() -> None:
    venue, symbol = frozen_venue(), "SOL/USDT"
    end = T0 + 60 * MINUTE_MS - 1
    klines = exchange_klines(venue, symbol, "1m", T0, end)
    trades = exchange_trades(venue, symbol, T0 - MINUTE_MS, end + MINUTE_MS)
    # the tape's first trade of a minute prints at its start: the first candle is whole
    assert judged_span(trades, "1m") == (T0 - MINUTE_MS, end + 1 - MINUTE_MS)
    clean = trades_vs_candles(klines, trades, "1m")
    assert (clean == 0).all()
    bad = klines.copy()
    bad.loc[3, "high"] += 0.01                  # a price
    bad.loc[10, "trades"] += 1                  # the count
    bad.loc[20, "quote_volume"] *= 1 + 1e-6     # a sum, far beyond float noise
    lost = trades[trades["ts"] // MINUTE_MS != (T0 // MINUTE_MS + 30)]
    lost = pd.concat([lost, trades[trades["ts"] // MINUTE_MS == T0 // MINUTE_MS + 30].iloc[1:]])
    flagged = trades_vs_candles(bad, lost, "1m")
    assert np.flatnonzero(flagged == 1).tolist() == [3, 10, 20, 30]
    # columns a source lacks (NULL) are not compared; candles beyond the trades not judged
    bad.loc[[3, 10], ["high", "trades"]] = np.nan
    flagged = trades_vs_candles(bad, lost[lost["ts"] < T0 + 40 * MINUTE_MS], "1m")
    assert np.flatnonzero(flagged == 1).tolist() == [20, 30]
    assert np.isnan(flagged[39:]).all() and not np.isnan(flagged[:39]).any()
