"""The trader's live order flow: the latest book and recent trades of each symbol.

Fed by the adapter's order-flow streams (aggregated trades, as the recorder stores them, so
trade counts mean the same live and in training; ccxt.pro's local book, or ``fetch_order_book``
polled every ``book_poll_s`` without websockets), it serves two readers:

* the model, at each closed candle: the per-candle order-flow inputs computed by the same
  functions training uses on recorded data (:mod:`models.order_flow`): trades stamped within
  the candle, and the book held at the decision instant (the recorder's close snapshot). A
  book older than ``max_book_age_s`` (wall clock) or a candle the trade stream did not wholly
  see (started mid-way, a reconnect that lost trades) gives NaN, as in training;
* the paper broker, at decision time: the book to fill against and the last trade price.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.order_flow import BOOK_INPUTS, TRADE_INPUTS, book_row, trade_inputs
from tradeflow import timeframes
from tradeflow.exchange.types import ExchangeError, OrderBook

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Trade:
    id: int
    ts: int
    price: float
    amount: float
    buy: bool


@dataclass(frozen=True, slots=True)
class LiveBook:
    """A book as received: levels best first, and when it arrived (wall clock, s)."""

    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]
    received: float


class LiveOrderFlow:
    """Latest book, last trade and the recent trade tape per symbol."""

    def __init__(self, symbols: Sequence[str], timeframe: str, *, max_book_age_s: float,
                 book_poll_s: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self.symbols = tuple(symbols)
        self.timeframe = timeframe
        self.period = timeframes.duration_ms(timeframe)
        self.max_book_age_s = max_book_age_s
        self.book_poll_s = book_poll_s
        self.clock = clock
        self.books: dict[str, LiveBook] = {}
        self.tapes: dict[str, deque[_Trade]] = {s: deque() for s in self.symbols}
        # Exchange time of the first trade seen since the stream last (re)started: candles
        # opening before it were not wholly seen.
        self.since: dict[str, int | None] = dict.fromkeys(self.symbols)
        self.last_trade: dict[str, tuple[float, int, float]] = {}  # price, ts, received
        self.last_id: dict[str, int] = {}
        self.closes: dict[str, float] = {}  # the last closed candle's close per symbol

    # -- updates -----------------------------------------------------------------------------
    def on_book(self, symbol: str, book: OrderBook) -> None:
        """A new book (snapshot or the stream's updated local book)."""
        self.books[symbol] = LiveBook(tuple(book.bids), tuple(book.asks), self.clock())

    def on_trades(self, symbol: str, trades: pd.DataFrame) -> None:
        """New trades of ``symbol``: a stream's frame (id, ts, price, amount, side); repeats
        are dropped by id, a jump in the ids marks a hole (what follows it is not whole)."""
        tape = self.tapes[symbol]
        columns = (trades["id"].to_numpy(dtype=np.int64), trades["ts"].to_numpy(dtype=np.int64),
                   trades["price"].to_numpy(dtype=np.float64),
                   trades["amount"].to_numpy(dtype=np.float64),
                   (trades["side"].to_numpy() == "buy"))
        for number, ts, price, amount, buy in zip(*columns, strict=True):
            last = self.last_id.get(symbol)
            if last is not None:
                if number <= last:
                    continue  # a repeat
                if number > last + 1:
                    self.since[symbol] = None  # trades were lost: a hole, as in training
            if tape and ts < tape[-1].ts:
                continue
            self.last_id[symbol] = int(number)
            if self.since[symbol] is None:
                self.since[symbol] = int(ts)
            tape.append(_Trade(int(number), int(ts), float(price), float(amount), bool(buy)))
        if tape:
            newest = tape[-1]
            self.last_trade[symbol] = (newest.price, newest.ts, self.clock())
            # Keep two candles: the one closing next and the one being formed.
            horizon = newest.ts - 2 * self.period
            while tape and tape[0].ts < horizon:
                # Candles before a dropped trade can no longer be summed: not seen wholly.
                dropped = tape.popleft().ts
                self.since[symbol] = max(self.since[symbol] or dropped, dropped + 1)

    def candle_closed(self, symbol: str, close: float) -> None:
        """The trader's latest closed candle (the price of last resort for paper fills)."""
        self.closes[symbol] = close

    def restarted(self, symbol: str) -> None:
        """The trade stream reconnected: what it missed is unknown until the next candle."""
        self.since[symbol] = None

    async def settle(self, close: int, timeout_s: float = 0.3) -> None:
        """Wait (up to ``timeout_s``) until every symbol has a trade stamped at or after
        ``close``: the candle's last trades may arrive just after its kline."""
        deadline = self.clock() + timeout_s
        while self.clock() < deadline and any(
                self.last_trade.get(s, (0.0, -1, 0.0))[1] < close for s in self.symbols):
            await asyncio.sleep(0.02)

    # -- readers -----------------------------------------------------------------------------
    def fresh_book(self, symbol: str) -> LiveBook | None:
        """The book if it is younger than ``max_book_age_s``, else None."""
        book = self.books.get(symbol)
        if book is None or self.clock() - book.received > self.max_book_age_s:
            return None
        return book

    def inputs(self, symbol: str, open_time: int, names: Sequence[str]) -> tuple[float, ...]:
        """The order-flow ``names`` of the candle opening at ``open_time`` (just closed)."""
        values: dict[str, float] = {}
        close = open_time + self.period
        if any(n in TRADE_INPUTS for n in names):
            tape = [t for t in self.tapes[symbol] if open_time <= t.ts < close]
            frame = pd.DataFrame({"ts": np.array([t.ts for t in tape], dtype=np.int64),
                                  "price": np.array([t.price for t in tape], dtype=float),
                                  "amount": np.array([t.amount for t in tape], dtype=float),
                                  "side": ["buy" if t.buy else "sell" for t in tape]})
            since = self.since[symbol]
            sums = trade_inputs(np.array([open_time]), self.timeframe, frame,
                                covered=(since if since is not None else close + 1, close))
            values |= {k: float(v[0]) for k, v in sums.items()}
        if any(n in BOOK_INPUTS for n in names):
            book = self.fresh_book(symbol)
            row = book_row(*_levels(book)) if book is not None else \
                np.full(len(BOOK_INPUTS), np.nan)
            values |= dict(zip(BOOK_INPUTS, row.tolist(), strict=True))
        return tuple(values[n] for n in names)

    def status(self, depth_levels: int = 10) -> dict[str, dict[str, Any]]:
        """Per symbol: last trade price, its age, the book's age (s; None if never seen) and
        the book's cumulative base quantity over its best ``depth_levels`` bids and asks."""
        now = self.clock()
        out = {}
        for s in self.symbols:
            trade, book = self.last_trade.get(s), self.books.get(s)
            out[s] = {"last_price": trade[0] if trade else None,
                      "price_age_s": round(now - trade[2], 1) if trade else None,
                      "book_age_s": round(now - book.received, 1) if book else None,
                      "depth": {side: cumulative(levels, depth_levels) for side, levels in
                                (("bids", book.bids), ("asks", book.asks))} if book else None}
        return out

    # -- streams -----------------------------------------------------------------------------
    async def run(self, source: Any, *, poll: Any = None, depth: int = 50,
                  retry_s: float = 1.0) -> None:
        """Stream trades and books of every symbol until cancelled.

        ``source`` has ``watch_trades(symbol)`` (a frame) and ``watch_order_book(symbol,
        depth)`` (:class:`tradeflow.exchange.orderflow.OrderFlowClient`); with ``poll`` (an
        exchange client) the book is fetched every ``book_poll_s`` instead of streamed.
        """
        tasks = [asyncio.create_task(self._trades(source, s, retry_s), name=f"flow:trades:{s}")
                 for s in self.symbols]
        tasks += [asyncio.create_task(self._books(source, poll, s, depth, retry_s),
                                      name=f"flow:book:{s}") for s in self.symbols]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _trades(self, source: Any, symbol: str, retry_s: float) -> None:
        while True:
            try:
                self.on_trades(symbol, await source.watch_trades(symbol))
            except ExchangeError as exc:
                log.warning("trades of %s: %s; reconnecting", symbol, exc)
                self.restarted(symbol)
                await asyncio.sleep(retry_s)

    async def _books(self, source: Any, poll: Any, symbol: str, depth: int,
                     retry_s: float) -> None:
        while True:
            try:
                if poll is None:
                    self.on_book(symbol, await source.watch_order_book(symbol, depth))
                    continue
                self.on_book(symbol, await poll.fetch_order_book(symbol, depth))
                await asyncio.sleep(self.book_poll_s)
            except ExchangeError as exc:
                log.warning("order book of %s: %s; retrying", symbol, exc)
                await asyncio.sleep(retry_s)


def _levels(book: LiveBook) -> tuple[list[float], list[float], list[float], list[float]]:
    return ([p for p, _ in book.bids], [q for _, q in book.bids],
            [p for p, _ in book.asks], [q for _, q in book.asks])


def cumulative(levels: Sequence[tuple[float, float]], n: int) -> list[float]:
    """Running totals of the quantities of the best ``n`` levels (fewer if the book is thin)."""
    return [float(q) for q in np.cumsum([level[1] for level in levels[:n]])]
