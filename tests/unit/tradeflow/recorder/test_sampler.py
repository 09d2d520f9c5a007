"""Book snapshots on exchange time: the last book before each cadence and candle-close
boundary, stamped with its own time; tickers as store rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeflow.exchange.book import LocalBook
from tradeflow.exchange.types import OrderBook, Ticker
from tradeflow.recorder.sampler import BookSampler, ticker_row

T0 = 1_767_225_600_000  # a minute boundary


def book(ts: int | None, uid: int) -> OrderBook:
    bids = tuple((100.0 - i, 1.0 + i) for i in range(5))
    asks = tuple((101.0 + i, 2.0 + i) for i in range(5))
    return OrderBook("BTC/USDT", ts, bids, asks, update_id=uid)


def test_snapshots_at_cadence_and_close_are_the_last_book_before_each_boundary() -> None:
    sampler = BookSampler(depth=3, interval_ms=10_000, close_timeframe="1m")
    assert sampler.update(book(None, 1)) == []  # the bare REST snapshot has no time
    rows = []
    for i, ts in enumerate([T0 + 1_000, T0 + 9_999, T0 + 10_000, T0 + 25_000, T0 + 59_000,
                            T0 + 61_000]):
        rows += sampler.update(book(ts, 10 + i))
    assert [(r["kind"], r["ts"], r["update_id"]) for r in rows] == [
        ("cadence", T0 + 9_999, 11), ("cadence", T0 + 10_000, 12),
        ("cadence", T0 + 25_000, 13), ("cadence", T0 + 59_000, 14),
        ("close", T0 + 59_000, 14)]
    assert rows[0]["bid_price"] == [100.0, 99.0, 98.0] and rows[0]["ask_amount"] == [2.0, 3.0,
                                                                                      4.0]
    assert sampler.taken == 5


def test_snapshots_can_be_switched_off_and_tickers_become_rows() -> None:
    sampler = BookSampler(depth=3, interval_ms=None, close_timeframe=None)
    assert sampler.update(book(T0, 1)) == [] and sampler.update(book(T0 + 120_000, 2)) == []
    row = ticker_row(Ticker("BTC/USDT", T0, 100.5, bid=100.0, ask=101.0, bid_volume=3.0,
                            ask_volume=4.0, update_id=9))
    assert row == {"ts": T0, "bid": 100.0, "bid_qty": 3.0, "ask": 101.0, "ask_qty": 4.0,
                   "last": 100.5, "update_id": 9}


def test_a_local_book_is_sampled_just_before_the_diff_that_crosses_a_boundary() -> None:
    sampler = BookSampler(depth=2, interval_ms=10_000, close_timeframe="1m")
    local = LocalBook.from_binance({"lastUpdateId": 5, "bids": [["100.0", "1.0"], ["99.0", "2.0"],
                                                                ["98.0", "3.0"]],
                                    "asks": [["101.0", "4.0"]]}, "BTC/USDT")
    rows: list[dict] = []

    def before(book: LocalBook, diff: Mapping[str, Any]) -> None:
        rows.extend(sampler.before_diff(book, diff))

    def diff(uid: int, ts: int, bids: list) -> dict:
        return {"e": "depthUpdate", "E": ts, "U": uid, "u": uid, "b": bids, "a": []}

    # the snapshot has no time: the first diff after it gives none
    assert local.apply_diff(diff(6, T0 + 9_000, [["100.0", "0"]]), before) == "applied"
    assert local.apply_diff(diff(7, T0 + 59_000, [["99.5", "5.0"]]), before) == "applied"
    assert local.apply_diff(diff(8, T0 + 61_000, [["99.0", "0"]]), before) == "applied"
    assert [(r["kind"], r["ts"], r["update_id"]) for r in rows] == [
        ("cadence", T0 + 9_000, 6), ("cadence", T0 + 59_000, 7), ("close", T0 + 59_000, 7)]
    # each row is the book before the crossing diff: 99.5 arrived at 59 s, 99.0 left at 61 s
    assert rows[0]["bid_price"] == [99.0, 98.0] and rows[0]["ask_amount"] == [4.0]
    assert rows[1]["bid_price"] == [99.5, 99.0] and rows[1]["bid_amount"] == [5.0, 2.0]
    assert sampler.taken == 3
