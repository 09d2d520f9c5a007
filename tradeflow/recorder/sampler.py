"""Which books and tickers the recorder keeps: rows for the store, from typed updates.

A book snapshot is taken on exchange time, never on the recorder's clock: ``cadence`` every
``interval`` ms and ``close`` at every close of a timeframe's candle. At each boundary the last
book seen before it is kept, stamped with its own time (always before the boundary), so a
feature of the candle that closes there can use it without looking ahead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeflow import timeframes
from tradeflow.exchange.book import LocalBook
from tradeflow.exchange.types import OrderBook, Ticker


class BookSampler:
    """Snapshot rows of one symbol's local book at cadence and candle-close boundaries."""

    def __init__(self, depth: int, interval_ms: int | None, close_timeframe: str | None) -> None:
        self.depth = depth
        self.interval_ms = interval_ms
        self.close_timeframe = close_timeframe
        self.last: OrderBook | None = None
        self.taken = 0

    def update(self, book: OrderBook) -> list[dict[str, Any]]:
        """Rows (ts, kind, update_id, level lists) for the boundaries ``book`` crosses."""
        if book.timestamp is None:  # a bare REST snapshot: no time to place it at
            return []
        rows: list[dict[str, Any]] = []
        last = self.last
        if last is not None and last.timestamp is not None:
            rows = [self.row(last, kind) for kind in self.crossed(last.timestamp,
                                                                   book.timestamp)]
        self.last = book
        self.taken += len(rows)
        return rows

    def before_diff(self, book: LocalBook, diff: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Rows of a local book just before ``diff`` (time ``E``) is applied to it: the book
        as it stood up to each boundary that the diff's time crosses."""
        since = book["timestamp"]
        kinds = [] if since is None else self.crossed(since, diff["E"])
        if not kinds:
            return []
        bids, asks = book.top(self.depth)
        row = {"ts": int(since), "update_id": book.last_update_id,
               "bid_price": [p for p, _ in bids], "bid_amount": [a for _, a in bids],
               "ask_price": [p for p, _ in asks], "ask_amount": [a for _, a in asks]}
        self.taken += len(kinds)
        return [{**row, "kind": kind} for kind in kinds]

    def crossed(self, before: int, now: int) -> list[str]:
        """The snapshot kinds whose boundaries lie in ``(before, now]``."""
        before, now = int(before), int(now)
        if now <= before:
            return []
        kinds = []
        if self.interval_ms and now // self.interval_ms > before // self.interval_ms:
            kinds.append("cadence")
        tf = self.close_timeframe
        if tf and timeframes.floor(now, tf) > timeframes.floor(before, tf):
            kinds.append("close")
        return kinds

    def row(self, book: OrderBook, kind: str) -> dict[str, Any]:
        bids, asks = book.bids[: self.depth], book.asks[: self.depth]
        return {"ts": int(book.timestamp or 0), "kind": kind, "update_id": book.update_id,
                "bid_price": [p for p, _ in bids], "bid_amount": [a for _, a in bids],
                "ask_price": [p for p, _ in asks], "ask_amount": [a for _, a in asks]}


def ticker_row(ticker: Ticker) -> dict[str, Any]:
    """A ticker as a row of the store's ``tickers`` table."""
    return {"ts": ticker.timestamp, "bid": ticker.bid, "bid_qty": ticker.bid_volume,
            "ask": ticker.ask, "ask_qty": ticker.ask_volume, "last": ticker.last,
            "update_id": ticker.update_id}
