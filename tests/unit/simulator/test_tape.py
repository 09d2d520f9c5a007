"""The trade tape behind the candles: exact aggregates, aggTrades, opens, illiquid markets."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.market import MINUTE_MS
from tests.fixtures.simulator import START_MS, frozen_venue

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
FIELDS = ("open", "high", "low", "close", "volume", "quote", "trades", "taker_base", "taker_quote")


def plain_candle(venue, symbol: str, k: int) -> dict[str, int]:
    """The slow, obvious aggregation of one minute's trades, one trade at a time."""
    t = venue.tapes[symbol].minute(k)
    spec = venue.specs[symbol]
    unit = 10 ** (8 - spec.price_decimals - spec.qty_decimals)
    prices, qty, maker = t.prices.tolist(), t.qty.tolist(), t.buyer_maker.tolist()
    if not prices:
        last = int(venue.series[symbol].close[k - 1])
        return dict.fromkeys(FIELDS[:4], last) | dict.fromkeys(FIELDS[4:], 0)
    out = {"open": prices[0], "high": max(prices), "low": min(prices), "close": prices[-1]}
    out["volume"] = sum(qty)
    out["quote"] = sum(p * q * unit for p, q in zip(prices, qty, strict=True))
    out["trades"] = len(prices)
    out["taker_base"] = sum(q for q, m in zip(qty, maker, strict=True) if not m)
    out["taker_quote"] = sum(p * q * unit for p, q, m in zip(prices, qty, maker, strict=True)
                             if not m)  # fmt: skip
    return out


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_candle_is_the_exact_aggregate_of_its_trades(symbol: str) -> None:
    venue = frozen_venue()
    candles = venue.klines(symbol, "1m", venue.history_start_ms, limit=3000)
    series = venue.series[symbol]
    # every 7th minute over two days, each field of the candle against the trades
    for i in range(0, len(candles) - 1, 7):
        k = series.index_of(int(candles.open_time[i]))
        expected = plain_candle(venue, symbol, k)
        got = {name: int(getattr(candles, name)[i]) for name in FIELDS}
        assert got == expected, (symbol, i)
        t = venue.tapes[symbol].minute(k)
        assert t.ids[0] == candles.first_id[i] and t.ids[-1] == candles.last_id[i]


def test_agg_trades_group_fills_of_one_taker_order() -> None:
    venue = frozen_venue()
    sym = "BTC/USDT"
    aggs = venue.agg_trades(sym, start=venue.history_start_ms, limit=5000)
    trades = venue.trades_from(sym, start=venue.history_start_ms, limit=20_000)
    assert (np.diff(aggs.ids) == 1).all()
    # trade ids f..l of consecutive aggTrades tile the trade ids without hole or overlap
    assert (aggs.first[1:] == aggs.last[:-1] + 1).all() and (aggs.last >= aggs.first).all()
    assert (aggs.last - aggs.first + 1).mean() > 1.5  # several fills per aggTrade
    by_id = {int(i): j for j, i in enumerate(trades.ids)}
    for a in range(0, len(aggs), 37):
        rows = [by_id[i] for i in range(int(aggs.first[a]), int(aggs.last[a]) + 1)]
        assert set(trades.prices[rows].tolist()) == {int(aggs.prices[a])}
        assert set(trades.times[rows].tolist()) == {int(aggs.times[a])}
        assert set(trades.buyer_maker[rows].tolist()) == {bool(aggs.buyer_maker[a])}
        assert int(trades.qty[rows].sum()) == int(aggs.qty[a])
    # the agg id space is not the trade id space
    assert aggs.ids[0] != aggs.first[0]


def test_opens_differ_from_the_previous_close_now_and_then() -> None:
    venue = frozen_venue()
    c = venue.klines("BTC/USDT", "1m", venue.history_start_ms, limit=2000)
    share = float(np.mean(c.open[1:] != c.close[:-1]))
    assert 0.2 < share < 0.45
    gap = np.abs(c.open[1:] - c.close[:-1]) / c.close[:-1]
    assert gap.max() < 0.002  # a move between two trades, not a new price level
    flat = frozen_venue(open_jump_share=0.0).klines("BTC/USDT", "1m", venue.history_start_ms,
                                                    limit=2000)  # fmt: skip
    np.testing.assert_array_equal(flat.open[1:], flat.close[:-1])
    np.testing.assert_array_equal(flat.close, c.close)  # the closes (and the signal) are kept


def test_an_illiquid_market_has_forward_filled_candles_and_quiet_hours() -> None:
    markets = {"SOL/USDT": {"liquidity": 0.004, "quiet_hours": [0, 1, 2, 3]}}
    venue = frozen_venue(markets=markets)
    c = venue.klines("SOL/USDT", "1m", venue.history_start_ms, limit=2880)
    empty = c.volume == 0
    assert 0.2 < empty.mean() < 0.9
    idx = np.flatnonzero(empty[1:]) + 1
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(c, name)[idx], c.close[idx - 1])
    assert (c.trades[empty] == 0).all() and (c.quote[empty] == 0).all()
    hours = (c.open_time // 3_600_000) % 24
    assert c.trades[hours < 4].mean() < 0.1 * c.trades[hours >= 4].mean()
    # the liquid markets beside it are untouched
    assert (venue.klines("BTC/USDT", "1m", venue.history_start_ms, limit=2880).volume > 0).all()


def test_one_second_klines_aggregate_to_the_minute() -> None:
    venue = frozen_venue()
    venue.clock.advance(25_500)  # inside an open minute
    minutes = venue.klines("ETH/USDT", "1m", START_MS - 3 * MINUTE_MS, limit=4)
    for i in range(len(minutes)):
        t0 = int(minutes.open_time[i])
        s = venue.klines("ETH/USDT", "1s", t0, t0 + MINUTE_MS - 1, limit=1000)
        assert s.open[0] == minutes.open[i] and s.close[-1] == minutes.close[i]
        assert s.high.max() == minutes.high[i] and s.low.min() == minutes.low[i]
        for name in ("volume", "quote", "trades", "taker_base", "taker_quote"):
            assert getattr(s, name).sum() == getattr(minutes, name)[i], name
        quiet = s.trades == 0
        np.testing.assert_array_equal(s.open[1:][quiet[1:]], s.close[:-1][quiet[1:]])
    assert not minutes.closed[-1] and len(s) == 26 and not s.closed[-1]


def test_tape_and_book_do_not_depend_on_the_order_of_requests() -> None:
    a, b = frozen_venue(), frozen_venue()
    t0 = START_MS - 90 * MINUTE_MS
    a.book("ETH/USDT", 50, t0)
    first = a.trades_from("ETH/USDT", start=t0, limit=3000)
    later = b.trades_from("ETH/USDT", start=START_MS - 10 * MINUTE_MS, limit=100)
    again = b.trades_from("ETH/USDT", start=t0, limit=3000)
    for name in ("ids", "times", "prices", "qty", "buyer_maker"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert len(later) == 100
    assert a.book("ETH/USDT", 100, t0 + 30_000) == b.book("ETH/USDT", 100, t0 + 30_000)
