"""Market store: idempotent bulk upserts, range reads, coverage, unfillable gaps, and the
candle contract on every write (refusals, quarantine at write, migration of older files)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tradeflow.contracts.schemas import CandlesRefused
from tradeflow.market.gaps import find_gaps, subtract_ranges
from tradeflow.market.store import MarketStore, SeriesKey

KEY = SeriesKey("binance", "BTC/USDT", "1m")
MIN = 60_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def at(i: int | np.ndarray) -> int | np.ndarray:
    """The open time of the i-th minute after T0."""
    return T0 + np.asarray(i, dtype=np.int64) * MIN if not isinstance(i, int) else T0 + i * MIN


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
    times = at(np.arange(100))
    assert put(store, candles(times)) == 100
    assert put(store, candles(times[50:], price=200.0)) == 50
    assert store.bounds(KEY) == (at(0), at(99), 100)
    assert store.duplicate_count() == 0
    frame = store.read(KEY)
    assert frame["close"].iloc[49] == 100.0 and frame["close"].iloc[50] == 200.0
    assert frame["trades"].iloc[-1] == 49


def test_duplicate_keys_within_a_batch_keep_the_last(store: MarketStore) -> None:
    times = at(np.array([0, 1, 1, 2]))
    frame = candles(times)
    frame.loc[2, "close"] = 123.0
    assert put(store, frame) == 3
    assert store.read(KEY)["close"].tolist() == [100.0, 123.0, 100.0]
    assert store.duplicate_count() == 0


def test_arrow_tables_and_series_isolation(store: MarketStore) -> None:
    times = at(np.arange(10))
    put(store, pa.Table.from_pandas(candles(times)))
    other = SeriesKey("binance", "ETH/USDT", "1m")
    put(store, candles(times[:5], price=3.0), other)
    assert store.bounds(KEY)[2] == 10 and store.bounds(other)[2] == 5
    assert store.series() == [KEY, other]
    assert store.read(other, start=at(1), end=at(3))["open_time"].tolist() == [
        at(1), at(2), at(3)]


def test_missing_optional_columns_are_null(store: MarketStore) -> None:
    frame = candles(at(np.arange(3))).drop(columns=["quote_volume", "trades"])
    put(store, frame)
    read = store.read(KEY)
    assert read["quote_volume"].isna().all() and read["trades"].isna().all()


def test_failed_write_leaves_nothing(store: MarketStore) -> None:
    put(store, candles(at(np.arange(5))))
    bad = candles(at(np.arange(5, 10)))
    bad.loc[3, "open"] = None  # no price: the store refuses the whole frame
    with pytest.raises(CandlesRefused, match="price_not_nan 1"):
        put(store, bad)
    assert store.bounds(KEY) == (at(0), at(4), 5)


def test_gap_ranges_and_unfillable_bookkeeping(store: MarketStore) -> None:
    times = at(np.delete(np.arange(200), [10, 11, 12, 150]))
    put(store, candles(times))
    gaps = find_gaps(store, KEY)
    assert gaps.values.tolist() == [[at(10), at(12), 3], [at(150), at(150), 1]]
    store.record_unfillable(KEY, at(10), at(12), 3, "outage")
    store.record_unfillable(KEY, at(10), at(12), 3, "outage")  # recorded once
    known = [(g.start_time, g.end_time) for g in store.unfillable(KEY)]
    assert known == [(at(10), at(12))]
    assert subtract_ranges(gaps, known).values.tolist() == [[at(150), at(150), 1]]


def test_gap_scan_reports_head_and_tail_of_a_window(store: MarketStore) -> None:
    put(store, candles(at(np.arange(5, 10))))
    gaps = find_gaps(store, KEY, start=at(0), end=at(12))
    assert gaps.values.tolist() == [[at(0), at(4), 5], [at(10), at(12), 3]]
    empty = find_gaps(store, SeriesKey("binance", "XRP/USDT", "1m"), start=at(0), end=at(2))
    assert empty.values.tolist() == [[at(0), at(2), 3]]


def test_threads_reading_while_another_writes_share_the_file(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "threads.duckdb"
    writer_store, reader_store = MarketStore(path), MarketStore(path)
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for i in range(40):
                put(writer_store, candles(at(np.arange(i * 50, (i + 1) * 50))))
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
    assert reader_store.bounds(KEY) == (at(0), at(1999), 2000)
    assert writer_store.duplicate_count() == 0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.__setitem__("open_time", f["open_time"] - T0),
         r"plausible_time 5; first: open_time 0 \(1970-01-01"),
        (lambda f: f.__setitem__("open_time", (f["open_time"] // 1000).astype("int64")),
         "plausible_time 5"),  # seconds read as milliseconds
        (lambda f: f.loc.__setitem__((2, "open_time"), at(2) + 7), "on_grid 1"),
        (lambda f: f.loc.__setitem__((1, "close"), 0.0),
         "price_positive 1; first: close 0 in the candle at 2024-01-01 00:01"),
        (lambda f: f.loc.__setitem__((4, "high"), np.inf), "price_positive 1"),
        (lambda f: f.loc.__setitem__((3, "low"), np.nan), "low empty"),
    ],
    ids=["1970", "seconds", "off-grid", "zero-price", "infinite", "empty-price"],
)
def test_a_frame_breaking_the_contract_is_refused_whole(store: MarketStore, mutate: object,
                                                        message: str) -> None:
    put(store, candles(at(np.arange(20, 25))))
    frame = candles(at(np.arange(5)))
    mutate(frame)  # type: ignore[operator]
    with pytest.raises(CandlesRefused, match=message) as err:
        put(store, frame)
    assert "nothing written" in str(err.value) and "\n" not in str(err.value)
    assert store.bounds(KEY) == (at(20), at(24), 5)  # the earlier write is untouched
    assert store.quarantined(KEY).empty


def test_inconsistent_candles_are_stored_and_quarantined_in_the_same_write(
        store: MarketStore) -> None:
    frame = candles(at(np.arange(6)))
    frame.loc[1, "high"] = 90.0       # below the body
    frame.loc[2, "low"] = 150.0       # above the body
    frame.loc[3, "volume"] = np.nan   # no volume: stored NULL, quarantined
    frame.loc[4, "volume"] = -1.0
    written = store.write(frame, exchange=KEY.exchange, symbol=KEY.symbol,
                          timeframe=KEY.timeframe, source="test")
    assert written.candles == 6
    assert written.quarantined == {"high_ge_body": 1, "low_le_body": 1, "volume_not_nan": 1,
                                   "volume_non_negative": 1}
    entries = store.quarantined(KEY)
    assert entries[["open_time", "rule", "source"]].values.tolist() == [
        [at(1), "high_ge_body", "test"], [at(2), "low_le_body", "test"],
        [at(3), "volume_not_nan", "test"], [at(4), "volume_non_negative", "test"]]
    assert len(store.read(KEY)) == 6 and len(store.read(KEY, usable_only=True)) == 2
    again = store.write(frame, exchange=KEY.exchange, symbol=KEY.symbol,
                        timeframe=KEY.timeframe, source="test")
    assert again.quarantined == {} and len(store.quarantined(KEY)) == 4


def test_a_candle_written_again_unchanged_keeps_its_row(store: MarketStore) -> None:
    put(store, candles(at(np.arange(4))))
    first = store.sql("SELECT open_time, ingested_at FROM candles ORDER BY open_time")
    changed = candles(at(np.arange(4)))
    changed.loc[3, "close"] = 100.5
    put(store, changed)
    later = store.sql("SELECT open_time, ingested_at FROM candles ORDER BY open_time")
    assert later["ingested_at"].iloc[:3].tolist() == first["ingested_at"].iloc[:3].tolist()
    assert later["ingested_at"].iloc[3] >= first["ingested_at"].iloc[3]
    assert store.read(KEY)["close"].tolist() == [100.0, 100.0, 100.0, 100.5]
    assert store.duplicate_count() == 0
    # A value that only gains a field (NULL before) is a change too.
    fuller = changed.assign(taker_buy_base=1.5)
    put(store, fuller)
    assert store.read(KEY, columns=("taker_buy_base",))["taker_buy_base"].tolist() == [1.5] * 4


def test_taker_volumes_are_stored_and_absent_fields_stay_null(store: MarketStore) -> None:
    frame = candles(at(np.arange(3))).assign(taker_buy_base=[1.0, 2.0, np.nan],
                                            taker_buy_quote=[10.0, 20.0, np.nan])
    frame["trades"] = pd.array([5, None, 7], dtype="Int64")
    put(store, frame)
    read = store.read(KEY, columns=("trades", "taker_buy_base", "taker_buy_quote"))
    assert read["trades"].tolist()[0] == 5 and pd.isna(read["trades"].iloc[1])
    assert read["taker_buy_base"].tolist()[:2] == [1.0, 2.0]
    assert read["taker_buy_quote"].isna().tolist() == [False, False, True]


def test_a_store_file_of_an_older_release_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(  # the candles table as the first release created it
        "CREATE TABLE candles (exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL, "
        "timeframe VARCHAR NOT NULL, open_time BIGINT NOT NULL, open DOUBLE NOT NULL, "
        "high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL, volume DOUBLE, "
        "quote_volume DOUBLE, trades BIGINT, ingested_at TIMESTAMPTZ NOT NULL, "
        "source VARCHAR NOT NULL)")
    con.execute(f"INSERT INTO candles VALUES ('binance', 'BTC/USDT', '1m', {T0}, 1, 2, 0.5, "
                "1.5, 3, 4, 5, now(), 'rest')")
    con.close()
    store = MarketStore(path)
    put(store, candles(at(np.arange(1, 3))).assign(taker_buy_base=0.25))
    read = store.read(KEY, columns=("open_time", "close", "taker_buy_base"))
    assert read["open_time"].tolist() == [T0, at(1), at(2)]
    assert pd.isna(read["taker_buy_base"].iloc[0]) and read["taker_buy_base"].iloc[1] == 0.25
    store.close()
    MarketStore(path).close()  # opening it again migrates nothing twice


@pytest.mark.parametrize("timeframe", ["1m", "1h", "1w", "1M"])
def test_gap_runs_from_times_equal_the_sql_gap_scan(store: MarketStore, timeframe: str) -> None:
    from tradeflow import timeframes
    from tradeflow.market.gaps import gap_runs

    key = SeriesKey("binance", "BTC/USDT", timeframe)
    grid = timeframes.grid(T0, T0 + 400 * timeframes.duration_ms(timeframe), timeframe)[:200]
    rng = np.random.default_rng(len(timeframe))
    times = np.delete(grid, rng.choice(np.arange(1, 199), 60, replace=False))
    put(store, candles(times), key)
    pd.testing.assert_frame_equal(gap_runs(times, timeframe), find_gaps(store, key))
