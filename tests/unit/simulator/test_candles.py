"""Kline queries, aggregation, partial candles, trades, outages and listings of the venue."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from simulator.candles import Candles, group_open
from tests.fixtures.simulator import START_MS, frozen_venue

MIN = 60_000
SYM = "BTC/USDT"


def aggregate(one_minute: Candles, interval: str) -> dict[str, np.ndarray]:
    keys = group_open(one_minute.open_time, interval)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], keys.size] - 1
    return {
        "open_time": keys[starts],
        "open": one_minute.open[starts],
        "close": one_minute.close[ends],
        "high": np.maximum.reduceat(one_minute.high, starts),
        "low": np.minimum.reduceat(one_minute.low, starts),
        "volume": np.add.reduceat(one_minute.volume, starts),
        "quote": np.add.reduceat(one_minute.quote, starts),
        "trades": np.add.reduceat(one_minute.trades, starts),
    }


@pytest.mark.parametrize("interval", ["3m", "15m", "1h", "4h", "12h", "1d", "3d", "1w", "1M"])
def test_higher_timeframes_aggregate_1m_exactly(interval: str) -> None:
    venue = frozen_venue(history_days=45)
    venue.clock.advance(7 * 3_600_000 + 13 * MIN + 5_000)  # inside an open candle of every size
    minutes = venue.klines(SYM, "1m", venue.history_start_ms, limit=10**6)
    expected = aggregate(minutes, interval)
    got = venue.klines(SYM, interval, limit=1000)
    assert len(got) == min(1000, expected["open_time"].size)
    for name, values in expected.items():
        np.testing.assert_array_equal(getattr(got, name), values[-len(got) :], err_msg=name)
    assert got.closed[:-1].all() and not got.closed[-1]


def test_weeks_open_on_monday_and_months_on_the_first() -> None:
    venue = frozen_venue(history_days=70)
    weeks = venue.klines(SYM, "1w", 0, limit=100)
    months = venue.klines(SYM, "1M", 0, limit=100)
    assert {datetime.fromtimestamp(t / 1000, UTC).weekday() for t in weeks.open_time} == {0}
    opens = [datetime.fromtimestamp(t / 1000, UTC) for t in months.open_time]
    assert all(d.day == 1 and d.hour == 0 for d in opens)
    closes = [datetime.fromtimestamp((t + 1) / 1000, UTC) for t in months.close_time]
    assert all(d.day == 1 for d in closes)


def test_klines_follow_binance_start_end_limit_semantics() -> None:
    venue = frozen_venue()
    start = venue.history_start_ms
    # start only: the first `limit` candles opening at or after start (unaligned start skips one)
    got = venue.klines(SYM, "1m", start + 1, limit=5)
    np.testing.assert_array_equal(got.open_time, start + MIN * np.arange(1, 6))
    # end only: the last `limit` candles opening at or before end (inclusive)
    got = venue.klines(SYM, "1m", end=start + 100 * MIN, limit=3)
    np.testing.assert_array_equal(got.open_time, start + MIN * np.array([98, 99, 100]))
    # both: [start, end], first `limit`
    got = venue.klines(SYM, "1m", start + 10 * MIN, start + 12 * MIN, limit=500)
    np.testing.assert_array_equal(got.open_time, start + MIN * np.array([10, 11, 12]))
    # neither: the latest `limit`, ending with the candle open now
    got = venue.klines(SYM, "1m", limit=4)
    np.testing.assert_array_equal(got.open_time, START_MS - MIN * np.array([3, 2, 1, 0]))
    assert got.closed.tolist() == [True, True, True, False]
    # nothing before the history start, nothing after now
    assert len(venue.klines(SYM, "1m", end=start - 1)) == 0
    assert len(venue.klines(SYM, "1m", START_MS + MIN)) == 0


def test_open_candle_grows_into_the_final_one() -> None:
    venue = frozen_venue()
    snapshots = []
    for step in range(6):
        snapshots.append(venue.klines(SYM, "1m", START_MS, START_MS, limit=1))
        venue.clock.advance(10_000 if step < 5 else 50_000)
    final = venue.klines(SYM, "1m", START_MS, START_MS, limit=1)
    assert final.closed[0] and not any(s.closed[0] for s in snapshots)
    assert all(s.open[0] == final.open[0] for s in snapshots)
    for earlier, later in zip(snapshots, [*snapshots[1:], final], strict=True):
        assert later.high[0] >= earlier.high[0] and later.low[0] <= earlier.low[0]
        assert later.volume[0] >= earlier.volume[0] and later.trades[0] >= earlier.trades[0]
    trades = venue.tapes[SYM].minute(venue.series[SYM].index_of(START_MS))
    assert final.close[0] == trades.prices[-1] and final.trades[0] == trades.offsets.size


def test_trades_of_a_minute_make_its_candle() -> None:
    venue = frozen_venue()
    candles = venue.klines(SYM, "1m", venue.history_start_ms, limit=50)
    book, series = venue.tapes[SYM], venue.series[SYM]
    for i in range(len(candles)):
        t = book.minute(series.index_of(int(candles.open_time[i])))
        assert t.prices[0] == candles.open[i] and t.prices[-1] == candles.close[i]
        assert t.prices.max() == candles.high[i] and t.prices.min() == candles.low[i]
        assert t.qty.sum() == candles.volume[i] and t.offsets.size == candles.trades[i]
        assert t.ids[0] == candles.first_id[i] and t.ids[-1] == candles.last_id[i]
        assert (np.diff(t.offsets) >= 0).all() and t.offsets[-1] < MIN


def test_outages_leave_true_gaps() -> None:
    venue = frozen_venue()
    gap_start = venue.history_start_ms + 120 * MIN
    venue.faults.add_outage(gap_start + 30_000, gap_start + 10 * MIN)  # cuts into minute 0
    got = venue.klines(SYM, "1m", gap_start - 5 * MIN, limit=10)
    expected = np.r_[np.arange(-5, 0), np.arange(10, 15)] * MIN + gap_start
    np.testing.assert_array_equal(got.open_time, expected)
    assert len(venue.klines(SYM, "1m", gap_start, gap_start + 9 * MIN)) == 0
    # a 5m candle partly inside the outage is built from the minutes that exist
    five = venue.klines(SYM, "5m", gap_start - 5 * MIN, gap_start + 10 * MIN)
    np.testing.assert_array_equal(five.open_time, gap_start + MIN * np.array([-5, 10]))
    assert len(venue.trades_from(SYM, start=gap_start, end=gap_start + 9 * MIN)) == 0


def test_listing_delay_hides_earlier_candles() -> None:
    venue = frozen_venue(listing_delays_days={"SOL/USDT": 1.0})
    listing = venue.history_start_ms + 86_400_000
    got = venue.klines("SOL/USDT", "1m", 0, limit=3)
    np.testing.assert_array_equal(got.open_time, listing + MIN * np.arange(3))
    assert venue.klines("BTC/USDT", "1m", 0, limit=1).open_time[0] == venue.history_start_ms


def test_book_is_deterministic_and_straddles_the_last_trade() -> None:
    venue, twin = frozen_venue(), frozen_venue()
    bids, asks, uid = venue.book(SYM, 50)
    assert (bids, asks, uid) == twin.book(SYM, 50)
    last = venue.last_price(SYM)
    assert bids[0][0] <= last <= asks[0][0] and bids[0][0] < asks[0][0]
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)


def test_ticker_summarises_the_last_24_hours() -> None:
    venue = frozen_venue()
    ticker = venue.ticker_24h(SYM)
    day = venue.klines(SYM, "1m", START_MS - 1439 * MIN, START_MS, limit=1440)
    assert ticker is not None and len(day) == 1440
    assert ticker.open == day.open[0] and ticker.last == day.close[-1]
    assert ticker.high == day.high.max() and ticker.volume == day.volume.sum()
    assert ticker.count == day.trades.sum() == ticker.last_id - ticker.first_id + 1
