"""Market store: idempotent bulk upserts, range reads, coverage, unfillable gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tradeflow.market.gaps import find_gaps, subtract_ranges
from tradeflow.market.store import MarketStore, SeriesKey

KEY = SeriesKey("binance", "BTC/USDT", "1m")


def candles(times: np.ndarray, price: float = 100.0) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({
        "open_time": np.asarray(times, dtype=np.int64),
        "open": np.full(n, price), "high": np.full(n, price + 1), "low": np.full(n, price - 1),
        "close": np.full(n, price), "volume": np.arange(n, dtype=float),
        "quote_volume": np.full(n, 5.0), "trades": np.arange(n),
    })


def put(store: MarketStore, frame: pd.DataFrame | pa.Table, key: SeriesKey = KEY) -> int:
    return store.upsert(frame, exchange=key.exchange, symbol=key.symbol, timeframe=key.timeframe)


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MarketStore:
    path = ":memory:" if request.param == "memory" else tmp_path / "m.duckdb"
    s = MarketStore(path)
    yield s
    s.close()


def test_upsert_is_idempotent_and_replaces(store: MarketStore) -> None:
    times = np.arange(100) * 60_000
    assert put(store, candles(times)) == 100
    assert put(store, candles(times[50:], price=200.0)) == 50
    assert store.bounds(KEY) == (0, 99 * 60_000, 100)
    assert store.duplicate_count() == 0
    frame = store.read(KEY)
    assert frame["close"].iloc[49] == 100.0 and frame["close"].iloc[50] == 200.0
    assert frame["trades"].iloc[-1] == 49


def test_duplicate_keys_within_a_batch_keep_the_last(store: MarketStore) -> None:
    times = np.array([0, 60_000, 60_000, 120_000])
    frame = candles(times)
    frame.loc[2, "close"] = 123.0
    assert put(store, frame) == 3
    assert store.read(KEY)["close"].tolist() == [100.0, 123.0, 100.0]
    assert store.duplicate_count() == 0


def test_arrow_tables_and_series_isolation(store: MarketStore) -> None:
    times = np.arange(10) * 60_000
    put(store, pa.Table.from_pandas(candles(times)))
    other = SeriesKey("binance", "ETH/USDT", "1m")
    put(store, candles(times[:5], price=3.0), other)
    assert store.bounds(KEY)[2] == 10 and store.bounds(other)[2] == 5
    assert store.series() == [KEY, other]
    assert store.read(other, start=60_000, end=180_000)["open_time"].tolist() == [
        60_000, 120_000, 180_000]


def test_missing_optional_columns_are_null(store: MarketStore) -> None:
    frame = candles(np.arange(3) * 60_000).drop(columns=["quote_volume", "trades"])
    put(store, frame)
    read = store.read(KEY)
    assert read["quote_volume"].isna().all() and read["trades"].isna().all()


def test_failed_write_leaves_nothing(store: MarketStore) -> None:
    put(store, candles(np.arange(5) * 60_000))
    bad = candles(np.arange(5, 10) * 60_000)
    bad.loc[3, "open"] = None  # NOT NULL violation inside the transaction
    with pytest.raises(Exception, match="NOT NULL"):
        put(store, bad)
    assert store.bounds(KEY) == (0, 4 * 60_000, 5)


def test_gap_ranges_and_unfillable_bookkeeping(store: MarketStore) -> None:
    times = np.delete(np.arange(200) * 60_000, [10, 11, 12, 150])
    put(store, candles(times))
    gaps = find_gaps(store, KEY)
    assert gaps.values.tolist() == [[600_000, 720_000, 3], [9_000_000, 9_000_000, 1]]
    store.record_unfillable(KEY, 600_000, 720_000, 3, "outage")
    store.record_unfillable(KEY, 600_000, 720_000, 3, "outage")  # recorded once
    known = [(g.start_time, g.end_time) for g in store.unfillable(KEY)]
    assert known == [(600_000, 720_000)]
    assert subtract_ranges(gaps, known).values.tolist() == [[9_000_000, 9_000_000, 1]]


def test_gap_scan_reports_head_and_tail_of_a_window(store: MarketStore) -> None:
    put(store, candles(np.arange(5, 10) * 60_000))
    gaps = find_gaps(store, KEY, start=0, end=12 * 60_000)
    assert gaps.values.tolist() == [[0, 240_000, 5], [600_000, 720_000, 3]]
    empty = find_gaps(store, SeriesKey("binance", "XRP/USDT", "1m"), start=0, end=120_000)
    assert empty.values.tolist() == [[0, 120_000, 3]]


def test_threads_reading_while_another_writes_share_the_file(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "threads.duckdb"
    writer_store, reader_store = MarketStore(path), MarketStore(path)
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for i in range(40):
                put(writer_store, candles(np.arange(i * 50, (i + 1) * 50) * 60_000))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                reader_store.bounds(KEY)
                find_gaps(reader_store, KEY)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=read),
               threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert reader_store.bounds(KEY) == (0, 1999 * 60_000, 2000)
    assert writer_store.duplicate_count() == 0
