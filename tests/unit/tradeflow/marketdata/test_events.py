"""Updates into buffer rows without repeats; callbacks that raise are counted, never fatal."""

from __future__ import annotations

import asyncio
import math
import random

import numpy as np
import pandas as pd

from tradeflow.exchange.types import OrderBook, StreamCandle, Ticker
from tradeflow.marketdata.events import Callbacks, Cursor, new_rows


def trades(ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "ts": [1000 + i for i in ids],
                         "price": [10.0 + i for i in ids], "amount": [0.5] * len(ids),
                         "side": ["buy" if i % 2 else "sell" for i in ids]})


def test_trades_seen_before_are_dropped_and_the_rest_sorted() -> None:
    cursor = Cursor()
    fresh, rows = new_rows("trades", trades([3, 1, 2, 2]), cursor, 0)
    assert fresh["id"].tolist() == [1, 2, 3] and cursor.last_id == 3
    assert rows[0] == (1001, (1.0, 11.0, 0.5, 1.0))
    assert rows[1][1][3] == -1.0
    fresh, rows = new_rows("trades", trades([2, 3, 4]), cursor, 0)
    assert fresh["id"].tolist() == [4] and [r[0] for r in rows] == [1004]
    fresh, rows = new_rows("trades", trades([4]), cursor, 0)
    assert fresh.empty and rows == []


def twin_new_trades(frame: pd.DataFrame, last_id: int | None) -> pd.DataFrame:
    """The obvious rule: ids newer than the last seen, in id order, each once."""
    if last_id is not None:
        frame = frame[frame["id"] > last_id]
    return frame.sort_values("id", kind="stable").drop_duplicates("id").reset_index(drop=True)


def test_trades_equal_the_obvious_twin_in_and_out_of_order() -> None:
    rng = random.Random(5)
    cursor, last = Cursor(), None
    for step in range(400):
        base = (last or 0) + 1 - rng.randrange(0, 3)
        ids = list(range(base, base + rng.randrange(0, 6)))
        if step % 3 == 0:  # out of order, repeated
            ids = rng.sample(ids + ids[:1], len(ids) + 1) if ids else ids
        frame = trades(ids)
        if step % 7 == 0:
            frame.index = frame.index + 10  # not a plain 0..n-1 index
        frame["side"] = pd.array([rng.choice(["buy", "sell", None]) for _ in ids], dtype="str")
        expected = twin_new_trades(frame, last)
        fresh, rows = new_rows("trades", frame, cursor, 0)
        pd.testing.assert_frame_equal(fresh, expected)
        side = np.where(expected["side"] == "buy", 1.0,
                        np.where(expected["side"] == "sell", -1.0, 0.0))
        assert rows == [(int(r.ts), (float(r.id), r.price, r.amount, float(s)))
                        for r, s in zip(expected.itertuples(), side, strict=True)]
        if not expected.empty:
            last = int(expected["id"].iloc[-1])
        assert cursor.last_id == last


def test_candles_keep_the_open_one_and_newer() -> None:
    def candle(t: int, close: float) -> StreamCandle:
        return StreamCandle("BTC/USDT", "1m", t, 1.0, 2.0, 0.5, close, 3.0)

    cursor = Cursor()
    fresh, rows = new_rows("candles", [candle(60, 1.0), candle(0, 1.0)], cursor, 0)
    assert [c.open_time for c in fresh] == [0, 60] and cursor.last_ts == 60
    fresh, rows = new_rows("candles", [candle(0, 9.0), candle(60, 1.5)], cursor, 0)
    assert rows == [(60, (1.0, 2.0, 0.5, 1.5, 3.0))]


def test_ticker_and_book_rows_fill_missing_values_with_nan() -> None:
    _, rows = new_rows("ticker", Ticker("BTC/USDT", 0, 100.0, bid=99.0), Cursor(), 5_000)
    assert rows[0][0] == 5_000 and rows[0][1][:2] == (100.0, 99.0)
    assert math.isnan(rows[0][1][2])
    book = OrderBook("BTC/USDT", 7, ((99.0, 1.0),), ((101.0, 2.0),))
    assert new_rows("book", book, Cursor(), 0)[1] == [(7, (99.0, 101.0, 1.0, 2.0))]
    empty = new_rows("book", OrderBook("BTC/USDT", 7, (), ()), Cursor(), 0)[1]
    assert all(math.isnan(v) for v in empty[0][1])


def test_raising_callbacks_are_counted_and_the_others_still_run() -> None:
    seen: list[int] = []

    def broken(value: int) -> None:
        raise RuntimeError("boom")

    async def broken_async(value: int) -> None:
        await asyncio.sleep(0)
        raise KeyError(value)

    async def good_async(value: int) -> None:
        seen.append(-value)

    callbacks = Callbacks()
    callbacks.add(broken)
    callbacks.add(broken_async)
    callbacks.add(seen.append)
    callbacks.add(good_async, channels={"trades"})

    async def body() -> None:
        for i in range(3):
            await callbacks.fire(i, "trades", "BTC/USDT")
        await callbacks.fire(9, "ticker", "BTC/USDT")

    asyncio.run(body())
    assert seen == [0, 0, 1, -1, 2, -2, 9]
    assert callbacks.errors == {
        "test_raising_callbacks_are_counted_and_the_others_still_run.<locals>.broken": 4,
        "test_raising_callbacks_are_counted_and_the_others_still_run.<locals>.broken_async": 4}
    assert callbacks.error_count == 8
