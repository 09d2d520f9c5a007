"""Backfill logic against an in-memory source with Binance's kline paging semantics."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from tradeflow import timeframes
from tradeflow.errors import UsageError
from tradeflow.exchange.types import BadSymbol, ExchangeUnavailable
from tradeflow.market.backfill import (
    EMPTY_TWICE,
    NO_PRICES,
    SeriesFailed,
    Window,
    backfill_many,
    backfill_series,
    parse_window,
)
from tradeflow.market.backfill_plan import forget_unfillable
from tradeflow.market.store import MarketStore, SeriesKey

MIN = 60_000
DAY = 86_400_000
NOW = 1_704_067_200_000 + 10 * DAY + 30 * MIN + 17_000  # mid-candle
KEY = SeriesKey("binance", "BTC/USDT", "1m")


class KlineSource:
    """Candles for open times in [listed, now]; outages have none. Pages like Binance."""

    def __init__(self, now: int, listed: int = 0, outages: tuple[tuple[int, int], ...] = (),
                 fail_after: int | None = None, no_prices: tuple[int, ...] = ()) -> None:
        self.now, self.listed, self.outages = now, listed, outages
        self.no_prices = no_prices  # open times sent with NaN prices
        self.calls: list[tuple[int | None, int | None]] = []
        self.fail_after = fail_after

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: int | None = None,
                          limit: int | None = None, until: int | None = None) -> pd.DataFrame:
        if symbol == "NOPE/USDT":
            raise BadSymbol("binance does not have market symbol NOPE/USDT")
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise ExchangeUnavailable("binance GET /api/v3/klines 503 Service Unavailable")
        self.calls.append((since, until))
        step = timeframes.duration_ms(timeframe)
        lo = max(since or 0, self.listed)
        lo = -(-lo // step) * step
        hi = min(until if until is not None else self.now, self.now)
        times = np.arange(lo, hi + 1, step, dtype=np.int64)
        for a, b in self.outages:
            times = times[(times < a) | (times > b)]
        times = times[: limit or 500]
        price = 100 + (times // step % 1000) / 10
        price[np.isin(times, self.no_prices)] = np.nan
        return pd.DataFrame({"open_time": times, "open": price, "high": price + 1,
                             "low": price - 1, "close": price, "volume": 1.0,
                             "quote_volume": price, "trades": pd.array(np.ones(len(times)),
                                                                       dtype="Int64")})


def run(source: KlineSource, store: MarketStore, window: Window, key: SeriesKey = KEY):  # noqa: ANN201
    return asyncio.run(backfill_series(source, store, key, window, source.now, page_limit=1000,
                                       empty_retry_delay=0))


def test_fresh_backfill_gets_every_closed_candle_and_not_the_open_one() -> None:
    store, src = MarketStore(":memory:"), KlineSource(NOW)
    window = Window(start=NOW - 3 * DAY)
    report = run(src, store, window)
    last_closed = timeframes.last_closed_open(NOW, "1m")
    first = timeframes.floor(NOW - 3 * DAY, "1m") + MIN
    assert (report.first, report.last) == (first, last_closed)
    assert report.count == (last_closed - first) // MIN + 1 == 4319
    assert report.missing == 0 and store.duplicate_count() == 0
    assert report.pages == 5  # 4 full pages and a short one


def test_second_run_fetches_at_most_one_page() -> None:
    store, src = MarketStore(":memory:"), KlineSource(NOW)
    run(src, store, Window(start=NOW - 2 * DAY))
    assert run(src, store, Window(start=NOW - 2 * DAY)).pages == 0
    src.now += 5 * MIN
    again = run(src, store, Window(start=NOW - 2 * DAY))
    assert again.pages == 1 and again.stored == 5


def test_outage_is_recorded_once_as_unfillable_and_not_asked_again() -> None:
    outage = (NOW - DAY, NOW - DAY + 59 * MIN)
    outage = (timeframes.floor(outage[0], "1m"), timeframes.floor(outage[1], "1m"))
    store, src = MarketStore(":memory:"), KlineSource(NOW, outages=(outage,))
    report = run(src, store, Window(start=NOW - 2 * DAY))
    gaps = store.unfillable(KEY)
    assert [(g.start_time, g.end_time, g.missing, g.reason) for g in gaps] == [
        (outage[0], outage[1], 60, EMPTY_TWICE)]
    assert report.missing == 0 and report.unfillable == 60
    calls = len(src.calls)
    again = run(src, store, Window(start=NOW - 2 * DAY))
    assert again.pages == 0 and len(src.calls) == calls
    assert len(store.unfillable(KEY)) == 1


def test_candles_without_prices_are_quarantined_and_not_asked_for_every_run() -> None:
    bad = timeframes.floor(NOW - DAY, "1m")
    store = MarketStore(":memory:")
    src = KlineSource(NOW, no_prices=(bad, bad + MIN, bad + 5 * MIN))
    report = run(src, store, Window(start=NOW - 2 * DAY))
    gaps = [(g.start_time, g.end_time, g.missing, g.reason) for g in store.unfillable(KEY)]
    assert gaps == [(bad, bad + MIN, 2, NO_PRICES), (bad + 5 * MIN, bad + 5 * MIN, 1, NO_PRICES)]
    assert report.missing == 0 and report.unfillable == 3
    assert set(store.quarantined(KEY)["open_time"]) == {bad, bad + MIN, bad + 5 * MIN}
    calls = len(src.calls)
    again = run(src, store, Window(start=NOW - 2 * DAY))
    assert again.pages == 0 and len(src.calls) == calls  # no refetch of the priceless candles


def test_recheck_unfillable_asks_again_and_fills_what_the_exchange_now_has() -> None:
    outage = (timeframes.floor(NOW - DAY, "1m"), timeframes.floor(NOW - DAY, "1m") + 9 * MIN)
    older = (timeframes.floor(NOW - 5 * DAY, "1m"), timeframes.floor(NOW - 5 * DAY, "1m"))
    store = MarketStore(":memory:")
    src = KlineSource(NOW, outages=(outage, older))
    window = Window(start=NOW - 6 * DAY)
    run(src, store, window)
    assert len(store.unfillable(KEY)) == 2
    src.outages = (older,)  # the exchange has since published the recent range
    recent = Window(start=NOW - 2 * DAY)
    assert forget_unfillable(store, [KEY], recent) == 1  # the older gap is outside the window
    report = run(src, store, recent)
    assert [(g.start_time, g.end_time) for g in store.unfillable(KEY)] == [older]
    assert report.missing == 0 and store.duplicate_count() == 0
    assert len(store.read(KEY, outage[0], outage[1])) == 10


def test_pair_listed_after_the_start_begins_at_its_first_candle() -> None:
    listed = timeframes.floor(NOW - DAY, "1m") + 7 * MIN
    store, src = MarketStore(":memory:"), KlineSource(NOW, listed=listed)
    report = run(src, store, Window(start=NOW - 5 * DAY))
    assert report.first == listed and report.missing == 0
    assert store.listed_from(KEY) == listed
    assert run(src, store, Window(start=NOW - 5 * DAY)).pages == 0


def test_reaching_further_back_extends_the_head() -> None:
    store, src = MarketStore(":memory:"), KlineSource(NOW)
    run(src, store, Window(start=NOW - DAY))
    report = run(src, store, Window(start=NOW - 2 * DAY))
    assert report.count == 2879 and report.missing == 0


def test_interior_gap_is_refetched_exactly() -> None:
    store, src = MarketStore(":memory:"), KlineSource(NOW)
    run(src, store, Window(start=NOW - DAY))
    first = store.bounds(KEY)[0]
    # Punch a hole, as a manual delete or a bad import could leave one.
    with store._connect(write=True) as con:  # noqa: SLF001 - surgery on the test's own store
        con.execute("DELETE FROM candles WHERE open_time BETWEEN ? AND ?",
                    [first + 100 * MIN, first + 149 * MIN])
    src.calls.clear()
    report = run(src, store, Window(start=NOW - DAY))
    assert src.calls == [(first + 100 * MIN, first + 149 * MIN)]
    assert report.missing == 0 and report.count == 1439


def test_failure_is_reported_with_progress_kept() -> None:
    store, src = MarketStore(":memory:"), KlineSource(NOW, fail_after=2)
    with pytest.raises(SeriesFailed) as err:
        run(src, store, Window(start=NOW - 3 * DAY))
    assert err.value.retryable and err.value.report.status == "failed"
    assert err.value.report.error.startswith("exchange unavailable: ")  # the kind, then why
    assert "503" in err.value.report.error
    # Nothing fetched is lost: the store keeps the first pages, a rerun resumes.
    assert err.value.report.count == 2000
    src.fail_after = None
    report = run(src, store, Window(start=NOW - 3 * DAY))
    assert report.count == 4319 and report.missing == 0


def test_unknown_symbol_fails_alone() -> None:
    store, src = MarketStore(":memory:"), KlineSource(NOW)
    keys = [KEY, SeriesKey("binance", "NOPE/USDT", "1m")]
    reports = asyncio.run(backfill_many(src, store, keys, Window(NOW - DAY), NOW,
                                        empty_retry_delay=0))
    assert [r.status for r in reports] == ["ok", "failed"]
    assert "does not have market symbol NOPE/USDT" in reports[1].error
    assert reports[0].count == 1439


def test_window_parsing() -> None:
    now = NOW
    assert parse_window(days=2, now_ms=now) == Window(now - 2 * DAY)
    assert parse_window(since="2024-01-05", now_ms=now) == Window(1_704_412_800_000)
    assert parse_window(timerange="20240101-20240102", now_ms=now) == Window(
        1_704_067_200_000, 1_704_153_600_000 - 1)
    assert parse_window(timerange="20240101-", now_ms=now) == Window(1_704_067_200_000)
    assert parse_window(timerange="-20240102", now_ms=now).start == 0
    for bad in ({"timerange": "2024-01-01"}, {"since": "yesterday"}, {"days": -1},
                {"days": 1, "since": "2024-01-01"}, {"timerange": "20240105-20240101"}):
        with pytest.raises(UsageError):
            parse_window(now_ms=now, **bad)


@pytest.mark.parametrize(("given", "message"), [
    ({"days": float("nan")}, "--days nan: must be a number of days above 0 and at most 19,733"),
    ({"days": float("inf")}, "--days inf: must be"),
    ({"days": 1e9}, "--days 1e+09: must be"),
    ({"days": 0.0}, "--days 0: must be"),
    ({"since": "2099-01-01"}, "--since 2099-01-01: starts in the future (now is 2024-01-11 "
                              "00:30 UTC); nothing to backfill"),
    ({"timerange": "20990101-"}, "--timerange 20990101-: starts in the future"),
])
def test_windows_that_cannot_be_backfilled_are_one_line(given: dict, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_window(now_ms=NOW, **given)
    assert str(err.value).startswith(message), str(err.value)
    assert parse_window(days=19_733, now_ms=NOW).start >= 0


class WatchedSource(KlineSource):
    """Notes, at every request, how many received candles the store does not hold yet."""

    def __init__(self, now: int, store: MarketStore) -> None:
        super().__init__(now)
        self.store, self.received, self.unstored = store, 0, [0]

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: int | None = None,
                          limit: int | None = None, until: int | None = None) -> pd.DataFrame:
        bounds = self.store.bounds(KEY)
        self.unstored.append(self.received - (bounds[2] if bounds else 0))
        page = await super().fetch_ohlcv(symbol, timeframe, since, limit, until)
        self.received += len(page)
        return page


def test_pages_are_stored_in_bounded_batches_as_they_arrive() -> None:
    """What a kill can lose: the batch being written and the one filling (issue 12, 5)."""
    store = MarketStore(":memory:")
    src = WatchedSource(NOW, store)
    report = asyncio.run(backfill_series(src, store, KEY, Window(NOW - 5 * DAY), NOW,
                                         page_limit=100, empty_retry_delay=0))
    assert report.pages > 60 and report.count == 5 * 1440 - 1
    assert 0 < max(src.unstored) <= 2 * 5 * 100, src.unstored  # two batches of 5 pages
