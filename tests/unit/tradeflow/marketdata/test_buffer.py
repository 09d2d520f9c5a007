"""The columnar buffer against an obvious twin (a plain list of rows): latest-N, time ranges,
count and age bounds through growth and wrap-around; outputs; clear; price, age, volatility."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tradeflow.marketdata.buffer import COLUMNS, MarketBuffer, Series


class Twin:
    """The slow, obvious buffer: a list of (ts, values), trimmed after every append."""

    def __init__(self, max_rows: int | None, max_age_ms: int | None, replace: bool) -> None:
        self.rows: list[tuple[int, tuple[float, ...]]] = []
        self.max_rows, self.max_age_ms, self.replace = max_rows, max_age_ms, replace

    def append(self, ts: int, values: tuple[float, ...]) -> None:
        if self.rows and ts < self.rows[-1][0]:
            return
        if self.rows and self.replace and ts == self.rows[-1][0]:
            self.rows[-1] = (ts, values)
            return
        self.rows.append((ts, values))
        if self.max_rows is not None:
            self.rows = self.rows[-self.max_rows:]
        if self.max_age_ms is not None:
            self.rows = [r for r in self.rows if r[0] >= ts - self.max_age_ms]

    def frame(self, rows: list[tuple[int, tuple[float, ...]]], columns: tuple[str, ...]
              ) -> pd.DataFrame:
        frame = pd.DataFrame([v for _, v in rows], columns=list(columns), dtype="float64")
        frame.index = pd.Index([t for t, _ in rows], dtype="int64", name="ts")
        return frame


@pytest.mark.parametrize(("max_rows", "max_age_ms", "replace"), [
    (50, None, False), (3000, None, False), (None, 5_000, False), (700, 20_000, True),
    (1, None, False)])
def test_queries_equal_the_obvious_twin_through_growth_and_wraparound(
        max_rows: int | None, max_age_ms: int | None, replace: bool) -> None:
    rng = random.Random(7)
    columns = COLUMNS["trades"]
    series = Series(columns, max_rows=max_rows, max_age_ms=max_age_ms, replace_same_ts=replace)
    twin = Twin(max_rows, max_age_ms, replace)
    ts = 1_000_000
    for step in range(5_000):
        ts += rng.choice((0, 1, 3, 10, 50)) - (20 if step % 97 == 0 else 0)  # some go back
        values = (float(step), rng.random(), rng.random(), float(rng.choice((-1, 0, 1))))
        series.append(ts, values)
        twin.append(ts, values)
        if step % 499 == 0 or step == 4_999:
            assert len(series) == len(twin.rows)
            for limit in (0, 1, 100, 10_000):
                pd.testing.assert_frame_equal(series.latest(limit),
                                              twin.frame(twin.rows[-limit:] if limit else [],
                                                         columns))
            lo, hi = ts - rng.randrange(0, 4_000), ts - rng.randrange(0, 500)
            expected = [r for r in twin.rows if lo <= r[0] <= hi]
            pd.testing.assert_frame_equal(series.between(lo, hi), twin.frame(expected, columns))
    if max_rows is not None:
        assert series.capacity <= max_rows


def test_outputs_agree_and_are_copies() -> None:
    series = Series(COLUMNS["ticker"], max_rows=8)
    for i in range(12):
        series.append(i * 10, (100.0 + i, 99.0 + i, 101.0 + i, float(i)))
    frame, batch, arrays = (series.latest(5, out) for out in ("pandas", "arrow", "numpy"))
    assert isinstance(batch, pa.RecordBatch)
    assert batch.schema.names == ["ts", "last", "bid", "ask", "volume"]
    assert batch.column("ts").to_pylist() == frame.index.tolist() == [70, 80, 90, 100, 110]
    assert batch.column("last").to_pylist() == frame["last"].tolist() == arrays["last"].tolist()
    series.append(120, (1.0, 1.0, 1.0, 1.0))
    assert frame["last"].iloc[-1] == 111.0  # what was handed out does not change
    with pytest.raises(ValueError, match="must be one of pandas, arrow, numpy"):
        series.latest(5, "polars")  # type: ignore[arg-type]


def _slow_arrow(arrays: dict[str, np.ndarray]) -> pa.RecordBatch:
    """The obvious Arrow twin of a NumPy result: one ``pa.array`` per column."""
    return pa.RecordBatch.from_arrays([pa.array(v) for v in arrays.values()],
                                      names=list(arrays))


@pytest.mark.parametrize("channel", ["ticker", "trades", "candles"])
def test_arrow_equals_numpy_across_the_ring_wrap(channel: str) -> None:
    rng = random.Random(11)
    width = len(COLUMNS[channel])
    series = Series(COLUMNS[channel], max_rows=50)
    for i in range(137):  # the newest rows start at 137 % 50 = 37: most queries wrap
        series.append(i * 7, tuple(rng.uniform(-1e6, 1e6) for _ in range(width)))
        for limit in (0, 1, 13, 50, 80):
            batch, arrays = series.latest(limit, "arrow"), series.latest(limit, "numpy")
            batch.validate(full=True)
            assert batch.equals(_slow_arrow(arrays))
            assert batch.schema.types == [pa.int64(), *[pa.float64()] * width]
        lo, hi = sorted((rng.randrange(0, i * 7 + 1), rng.randrange(0, i * 7 + 1)))
        assert series.between(lo, hi, "arrow").equals(_slow_arrow(series.between(lo, hi,
                                                                                 "numpy")))
    assert series.between(10_000, 20_000, "arrow").num_rows == 0


def test_an_arrow_result_owns_its_rows() -> None:
    series = Series(COLUMNS["book"], max_rows=4)
    for i in range(6):
        series.append(i, (float(i), 1.0, 2.0, 3.0))
    batch = series.latest(4, "arrow")
    for i in range(6, 20):  # overwrites every slot of the ring the batch was copied from
        series.append(i, (-1.0, -1.0, -1.0, -1.0))
    assert batch.column("ts").to_pylist() == [2, 3, 4, 5]
    assert batch.column("bid").to_pylist() == [2.0, 3.0, 4.0, 5.0]


def test_memory_is_eight_bytes_per_column_and_row() -> None:
    buffer = MarketBuffer(max_rows=10_000)
    for i in range(20_000):
        buffer.add("BTC/USDT", "ticker", i, (1.0, 1.0, 1.0, 1.0), received=0.0)
    assert len(buffer.series("BTC/USDT", "ticker")) == 10_000
    assert buffer.nbytes() == 10_000 * 5 * 8


def test_clear_by_symbol_and_channel() -> None:
    buffer = MarketBuffer(max_rows=100)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        for channel in ("ticker", "trades"):
            buffer.add(symbol, channel, 1, (1.0, 2.0, 3.0, 4.0), received=0.0)
    buffer.clear("BTC/USDT", "trades")
    assert len(buffer.get_latest("BTC/USDT", channel="trades")) == 0
    assert len(buffer.get_latest("BTC/USDT", channel="ticker")) == 1
    buffer.clear()
    assert buffer.symbols() == []
    with pytest.raises(ValueError, match="channel 'quotes': must be one of"):
        buffer.get_latest("BTC/USDT", channel="quotes")
    with pytest.raises(ValueError, match="max_rows and/or max_age_ms"):
        MarketBuffer(max_rows=None)


def test_current_price_is_the_newest_received_with_its_age_and_volatility() -> None:
    buffer = MarketBuffer()
    assert buffer.current_price("BTC/USDT", now=10.0) is None
    prices = [100.0 * math.exp(0.01 * ((-1) ** i) * (1 + i % 3)) for i in range(30)]
    for i, p in enumerate(prices):
        buffer.add("BTC/USDT", "trades", 1_000 + i, (float(i), p, 0.1, 1.0), received=5.0)
    buffer.add("BTC/USDT", "ticker", 2_000, (101.5, 101.0, 102.0, 9.0), received=6.0)
    price = buffer.current_price("BTC/USDT", now=8.5)
    assert price is not None and (price.price, price.channel, price.age_s) == (101.5, "ticker",
                                                                               2.5)
    window = 10
    expected = float(np.std(np.diff(np.log(prices[-window - 1:])), ddof=1))
    assert buffer.volatility("BTC/USDT", window=window) == pytest.approx(expected)
    assert buffer.volatility("ETH/USDT") is None
