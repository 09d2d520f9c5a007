"""What a market-data stream hands to callbacks, and how an update becomes buffer rows.

An :class:`Update` carries one channel's new data as the adapter types it: a list of
``StreamCandle`` (the candles that changed), a trades frame (id, ts, price, amount, side; only
trades not seen before), a ``Ticker`` or an ``OrderBook``. :func:`new_rows` drops what a
subscription has already seen (repeated trade ids, candles older than the newest) and turns the
rest into rows of the buffer's columns.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tradeflow.exchange.types import ConnectionState, OrderBook, StreamCandle, Ticker

log = logging.getLogger(__name__)
NAN = math.nan


@dataclass(frozen=True, slots=True)
class Update:
    """New data of one subscription. ``catch_up`` marks data fetched over REST after a
    reconnect; ``received`` is ``time.time()`` on arrival."""

    exchange: str
    symbol: str
    channel: str
    data: Any
    received: float
    catch_up: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of a stream's connection state, with why it happened."""

    exchange: str
    at: float
    old: ConnectionState
    new: ConnectionState
    reason: str


@dataclass(slots=True)
class Cursor:
    """What a subscription has seen: the newest candle open time or trade id."""

    last_ts: int | None = None
    last_id: int | None = None


def _num(value: float | None) -> float:
    return NAN if value is None else float(value)


def _unseen_in_order(ids: np.ndarray, last_id: int | None) -> bool:
    """True when every id is newer than ``last_id`` and the ids strictly increase: the
    usual message, which then needs no filtering, sorting or de-duplication."""
    if not len(ids):
        return True
    if last_id is not None and ids[0] <= last_id:
        return False
    return len(ids) == 1 or bool((ids[1:] > ids[:-1]).all())


def _plain_index(frame: pd.DataFrame) -> bool:
    index = frame.index
    return type(index) is pd.RangeIndex and index.start == 0 and index.step == 1


def new_rows(channel: str, data: Any, cursor: Cursor,
             now_ms: int) -> tuple[Any, list[tuple[int, tuple[float, ...]]]]:
    """The unseen part of ``data`` and its buffer rows ``(ts, values)``; advances ``cursor``."""
    if channel == "candles":
        fresh: list[StreamCandle] = [c for c in data if cursor.last_ts is None
                                     or c.open_time >= cursor.last_ts]
        fresh.sort(key=lambda c: c.open_time)
        if fresh:
            cursor.last_ts = fresh[-1].open_time
        return fresh, [(c.open_time, (c.open, c.high, c.low, c.close, c.volume)) for c in fresh]
    if channel == "trades":
        frame: pd.DataFrame = data
        ids = frame["id"].to_numpy()
        if not _unseen_in_order(ids, cursor.last_id) or not _plain_index(frame):
            if cursor.last_id is not None:
                frame = frame[frame["id"] > cursor.last_id]
            if len(frame) > 1 and not frame["id"].is_monotonic_increasing:
                frame = frame.sort_values("id", kind="stable")
            frame = frame.drop_duplicates("id").reset_index(drop=True)
            ids = frame["id"].to_numpy()
        if not len(ids):
            return frame, []
        cursor.last_id = int(ids[-1])
        side = [1.0 if s == "buy" else -1.0 if s == "sell" else 0.0
                for s in frame["side"].tolist()]
        rows = list(zip(frame["ts"].tolist(), zip(ids.astype(np.float64).tolist(),
                                                  frame["price"].tolist(),
                                                  frame["amount"].tolist(), side,
                                                  strict=True), strict=True))
        return frame, rows
    if channel == "ticker":
        tick: Ticker = data
        return tick, [(int(tick.timestamp or now_ms), (tick.last, _num(tick.bid), _num(tick.ask),
                                                         _num(tick.base_volume)))]
    book: OrderBook = data
    bid = book.bids[0] if book.bids else (NAN, NAN)
    ask = book.asks[0] if book.asks else (NAN, NAN)
    return book, [(int(book.timestamp or now_ms), (bid[0], ask[0], bid[1], ask[1]))]


@dataclass(slots=True)
class _Callback:
    fn: Callable[..., Any]
    channels: frozenset[str] | None
    symbols: frozenset[str] | None


@dataclass(slots=True)
class Callbacks:
    """Registered callbacks, sync or async. A callback that raises is logged and counted
    (``errors``, by callback name) and never stops the stream."""

    items: list[_Callback] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    calls: int = 0

    def add(self, fn: Callable[..., Any], channels: Iterable[str] | None = None,
            symbols: Iterable[str] | None = None) -> None:
        self.items.append(_Callback(fn, None if channels is None else frozenset(channels),
                                    None if symbols is None else frozenset(symbols)))

    def remove(self, fn: Callable[..., Any]) -> None:
        self.items = [c for c in self.items if c.fn is not fn]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    async def fire(self, value: Any, channel: str | None = None,
                   symbol: str | None = None) -> None:
        for cb in self.items:
            if (cb.channels is not None and channel not in cb.channels) or \
                    (cb.symbols is not None and symbol not in cb.symbols):
                continue
            self.calls += 1
            try:
                result = cb.fn(value)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a user's callback: anything can go wrong in it
                name = getattr(cb.fn, "__qualname__", repr(cb.fn))
                self.errors[name] = self.errors.get(name, 0) + 1
                log.warning("callback %s failed (%d so far): %s: %s", name, self.errors[name],
                            type(exc).__name__, exc)


Listener = Callable[[Transition], None | Awaitable[None]]
