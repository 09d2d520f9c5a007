"""The streamed write of new history (one INSERT fed while batches are still being made)
against its slow, obvious twin: each batch written alone by ``MarketStore.write``, one
transaction and one replace (delete what differs, insert what is missing) each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeflow.market.store import CandleBatch, MarketStore, SeriesKey, check_batch

BTC = SeriesKey("binance", "BTC/USDT", "1m")
ETH = SeriesKey("binance", "ETH/USDT", "1m")
MIN = 60_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def candles(first: int, n: int, price: float = 100.0, *, bad_high: int | None = None,
            source: str | None = None) -> pd.DataFrame:
    """``n`` 1m candles from minute ``first``; ``bad_high``: that one's high below its body
    (stored and quarantined); ``source``: a per-row source column."""
    high = np.full(n, price + 1)
    if bad_high is not None:
        high[bad_high] = price - 2
    frame = pd.DataFrame({
        "open_time": T0 + (first + np.arange(n, dtype=np.int64)) * MIN,
        "open": np.full(n, price), "high": high, "low": np.full(n, price - 1),
        "close": np.full(n, price), "volume": np.arange(n, dtype=float),
        "quote_volume": np.full(n, np.nan), "trades": np.arange(n),
    })
    return frame.assign(source=source) if source else frame


def scenario() -> list[tuple[SeriesKey, pd.DataFrame, str]]:
    """Files as an import meets them: new months, one overlapping an earlier file with
    other prices, one overlapping history stored before, another series in the middle, a
    quarantined candle, rows that name their own source, a file below all the others."""
    return [
        (BTC, candles(1000, 300), "import:a"),
        (BTC, candles(1300, 200, bad_high=5), "import:b"),
        (BTC, candles(1450, 100, price=101.0), "import:c"),   # overlaps b: replaces it
        (ETH, candles(2010, 50, price=98.0), "import:d"),        # another series, stored
        (BTC, candles(1550, 100), "import:e"),
        (BTC, candles(0, 20, price=99.0), "import:f"),        # overlaps the stored history
        (BTC, candles(1650, 30, source="import:g-rows"), "import:g"),
        (BTC, candles(500, 10), "import:h"),                  # below earlier files, new
    ]


def stored_history(store: MarketStore) -> None:
    for key, first in ((BTC, 0), (ETH, 2000)):
        store.write(candles(first, 40), exchange=key.exchange, symbol=key.symbol,
                    timeframe=key.timeframe, source="rest")


def contents(store: MarketStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = store.sql("SELECT * EXCLUDE (ingested_at) FROM candles ORDER BY ALL")
    entries = store.sql("SELECT * EXCLUDE (found_at) FROM candles_quarantine ORDER BY ALL")
    return rows, entries


@pytest.fixture(params=["memory", "file"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    made: list[MarketStore] = []

    def make(name: str) -> MarketStore:
        path = ":memory:" if request.param == "memory" else tmp_path / f"{name}.duckdb"
        made.append(MarketStore(path))
        return made[-1]

    yield make
    for store in made:
        store.close()


def test_a_streamed_write_stores_what_writing_each_batch_alone_stores(make_store) -> None:  # noqa: ANN001
    fast, slow = make_store("fast"), make_store("slow")
    for store in (fast, slow):
        stored_history(store)
    made: list[str] = []

    def batches() -> Iterator[CandleBatch]:
        for key, frame, source in scenario():
            made.append(source)  # made only as the writer asks for it
            yield check_batch(frame, key, source=source)

    written = fast.write_batches(batches())
    for key, frame, source in scenario():
        slow.write(frame, exchange=key.exchange, symbol=key.symbol, timeframe=key.timeframe,
                   source=source)

    assert made == [s for _, _, s in scenario()]
    got, want = contents(fast), contents(slow)
    pd.testing.assert_frame_equal(got[0], want[0])
    pd.testing.assert_frame_equal(got[1], want[1])
    assert fast.duplicate_count() == 0
    assert written.candles == sum(len(f) for _, f, _ in scenario())
    assert [sum(c.values()) for c in written.per_batch] == [0, 1, 0, 0, 0, 0, 0, 0]
    # The overlapping file's prices won, and the other series' candles are all there.
    assert fast.read(BTC, T0 + 1450 * MIN, T0 + 1549 * MIN)["close"].eq(101.0).all()
    assert fast.bounds(ETH) == (T0 + 2000 * MIN, T0 + 2059 * MIN, 60)
    assert fast.read(ETH, T0 + 2010 * MIN)["close"].eq(98.0).all()


def test_writing_the_same_batches_again_changes_nothing(make_store) -> None:  # noqa: ANN001
    store = make_store("again")
    batches = [check_batch(f, k, source=s) for k, f, s in scenario()]
    store.write_batches(iter(batches))
    before = store.sql("SELECT * FROM candles ORDER BY ALL")
    store.write_batches(iter(batches))
    after = store.sql("SELECT * FROM candles ORDER BY ALL")
    pd.testing.assert_frame_equal(after.drop(columns="ingested_at"),
                                  before.drop(columns="ingested_at"))
    # Only where two files of the write overlap is a candle replaced (b's, then c's again).
    renewed = after.loc[after["ingested_at"] != before["ingested_at"], "open_time"]
    assert renewed.tolist() == (T0 + np.arange(1450, 1500) * MIN).tolist()
    assert contents(store)[1]["rule"].tolist() == ["high_ge_body"]


def test_a_failing_batch_maker_writes_nothing(make_store) -> None:  # noqa: ANN001
    store = make_store("fails")

    def batches() -> Iterator[CandleBatch]:
        yield check_batch(candles(0, 100), BTC, source="import:a")
        raise RuntimeError("the third file's reader broke")

    threads = store.sql("SELECT current_setting('threads') AS n")["n"].iloc[0]
    with pytest.raises(RuntimeError, match="^the third file's reader broke$"):
        store.write_batches(batches())
    assert store.bounds(BTC) is None
    # The stream ran DuckDB on one thread; the instance has its threads back.
    assert store.sql("SELECT current_setting('threads') AS n")["n"].iloc[0] == threads
