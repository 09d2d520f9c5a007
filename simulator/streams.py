"""Market streams: their names and what each pushes, as Binance's spot streams do.

``<symbol>@kline_<interval>`` (the open candle every ``ws_update_ms``, the final one as it
closes), ``@trade`` and ``@aggTrade`` (every trade since the last push), ``@ticker`` and
``@miniTicker`` (every ``ws_update_ms``), ``@bookTicker`` (every change of the best bid or ask,
with its update id), ``@avgPrice`` (every second), ``@depth`` / ``@depth@100ms`` (diffs of the
book with first and last update ids ``U``/``u`` that continue each other and the REST snapshot's
``lastUpdateId``), ``@depth5|10|20[@100ms]`` (the top of the book). Depth and avgPrice periods
are wall time, as Binance's; each push covers the simulated time since the one before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from simulator import orderflow, payloads
from simulator.candles import INTERVALS, floor_open
from simulator.market import MINUTE_MS, SymbolSpec
from simulator.venue import Venue

STREAM_RE = re.compile(
    r"^([a-z0-9]+)@(kline_(\w+)|trade|aggTrade|ticker|miniTicker|bookTicker|avgPrice"
    r"|depth(5|10|20)?(?:@(100|1000)ms)?)$"
)
TRADES_PER_PUSH = 1000  # a push never carries more (when the clock runs very fast)
BOOK_TICKS_PER_PUSH = 200


@dataclass(slots=True)
class Stream:
    """One subscribed stream and the state that makes its pushes incremental."""

    name: str
    spec: SymbolSpec
    kind: str  # kline, trade, aggTrade, ticker, miniTicker, bookTicker, avgPrice, depth, top
    interval: str = ""
    levels: int = 0  # top-of-book streams: 5, 10 or 20
    period_s: float = 0.0  # wall seconds between pushes (0: ws_update_ms)
    open_ms: int = -1
    cursor_ms: int = -1
    last_push: float = float("-inf")
    last_top: tuple[int, int, int, int] | None = None
    subscribers: set[Any] = field(default_factory=set)


def parse(venue: Venue, name: str) -> Stream | None:
    """The stream called ``name``, or None when it is not one the simulator serves."""
    m = STREAM_RE.match(name)
    if not m:
        return None
    spec = venue.spec(m.group(1).upper())
    interval = m.group(3) or ""
    if spec is None or (m.group(3) is not None and interval not in INTERVALS):
        return None
    kind = m.group(2)
    if interval:
        return Stream(name=name, spec=spec, kind="kline", interval=interval)
    if kind.startswith("depth"):
        period = 0.1 if m.group(5) == "100" else 1.0
        levels = int(m.group(4) or 0)
        return Stream(name, spec, "top" if levels else "depth", levels=levels, period_s=period)
    if kind == "avgPrice":
        return Stream(name=name, spec=spec, kind=kind, period_s=1.0)
    return Stream(name=name, spec=spec, kind=kind)


def start(stream: Stream, now: int) -> None:
    """Begin pushing from ``now``."""
    stream.cursor_ms = now
    if stream.kind == "kline":
        stream.open_ms = floor_open(now, stream.interval)


def produce(venue: Venue, s: Stream, now: int, wall: float) -> list[dict]:
    """The events of stream ``s`` due at simulated ``now`` (wall clock ``wall``, seconds)."""
    period = s.period_s or venue.settings.ws_update_ms / 1000
    due = wall - s.last_push >= period
    symbol = s.spec.symbol
    if s.kind == "kline":
        return _klines(venue, s, now, wall, due)
    if s.kind == "bookTicker":
        return _book_ticks(venue, s, now)
    if s.kind in ("trade", "aggTrade"):
        first, s.cursor_ms = s.cursor_ms + 1, now
        if first > now:
            return []
        if s.kind == "trade":
            rows = venue.trades_from(symbol, start=first, end=now, limit=TRADES_PER_PUSH,
                                     now_ms=now)  # fmt: skip
            return orderflow.trade_events(s.spec, rows, now)
        aggs = venue.agg_trades(symbol, start=first, end=now, limit=TRADES_PER_PUSH, now_ms=now)
        return orderflow.agg_trade_events(s.spec, aggs, now)
    if not due:
        return []
    s.last_push = wall
    if s.kind == "depth":
        diff = venue.books[symbol].diff(s.cursor_ms, now) if now > s.cursor_ms else None
        s.cursor_ms = now
        if diff is None:
            return []
        first_id, last_id, bids, asks = diff
        return [orderflow.depth_event(s.spec, first_id, last_id, bids, asks, now)]
    if s.kind == "top":
        bids, asks, update_id = venue.book(symbol, s.levels, now)
        return [orderflow.depth_rest(s.spec, bids, asks, update_id)]
    if s.kind == "avgPrice":
        price, last_ms = venue.avg_price(symbol, 5, now)
        return [orderflow.avg_price_event(s.spec, price, last_ms, now)]
    ticker = venue.ticker_24h(symbol, now)
    if ticker is None:
        return []
    if s.kind == "miniTicker":
        return [payloads.mini_ticker_event(s.spec, ticker, now)]
    bids, asks, _ = venue.book(symbol, 1, now)
    return [payloads.ticker_event(s.spec, ticker, bids[0], asks[0], now)]


def _klines(venue: Venue, s: Stream, now: int, wall: float, due: bool) -> list[dict]:
    symbol, events = s.spec.symbol, []
    current = floor_open(now, s.interval)
    if current != s.open_ms:
        done = venue.klines(symbol, s.interval, s.open_ms, current - 1, 1000, now)
        events += [
            payloads.kline_event(s.spec, s.interval, done, i, now)
            for i in range(len(done))
            if done.closed[i]
        ]
        s.open_ms, due = current, True
    if due:
        live = venue.klines(symbol, s.interval, current, current, 1, now)
        if len(live):
            events.append(payloads.kline_event(s.spec, s.interval, live, 0, now))
        s.last_push = wall
    return events


def _book_ticks(venue: Venue, s: Stream, now: int) -> list[dict]:
    """One event per change of the best bid or ask since the last push."""
    book, series = venue.books[s.spec.symbol], venue.series[s.spec.symbol]
    start_ms, s.cursor_ms = s.cursor_ms, now
    if now <= start_ms:
        return []
    k1, k2 = series.index_of(start_ms), series.index_of(now)
    k1 = max(k1, k2 - 2)  # a fast clock: the last two minutes are enough to find the latest
    events: list[dict] = []
    for k in range(k1, k2 + 1):
        t = book.touches(k)
        lo = t.index_at(start_ms) + 1 if k == series.index_of(start_ms) else 0
        hi = t.index_at(now) if k == k2 else t.offsets.size - 1
        for i in range(max(lo, hi + 1 - BOOK_TICKS_PER_PUSH), hi + 1):
            top = book.top(t, i, k)
            if top != s.last_top:
                s.last_top = top
                uid = t.first_update_id + i
                events.append(orderflow.book_ticker_event(s.spec, uid, top[:2], top[2:]))
    return events[-BOOK_TICKS_PER_PUSH:]


__all__ = ["MINUTE_MS", "STREAM_RE", "Stream", "parse", "produce", "start"]
