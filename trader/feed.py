"""Live market data for the trader: closed candles only, each exactly once, in order.

Warm-up history comes over REST. Then one ccxt.pro ``watch_ohlcv`` stream per symbol (REST
polling where the exchange has no websocket). A candle is final when the exchange marks it
closed (Binance's kline flag, surfaced by the adapter) or, failing that, once a newer candle
has started and a short grace has passed for the closing update to arrive; then the closed
candles are fetched over REST, the source of truth. Duplicated and out-of-order messages are
harmless: anything at or before the last emitted candle is ignored, and a jump forward first
fetches the candles in between. The streams are the market-data API's
(:class:`tradeflow.marketdata.MarketDataStream`, a candles subscription per symbol): a stream
that errors or goes silent is reconnected there with exponential backoff and jitter, and the
closed candles it missed are fetched here over REST.

Candles of all symbols are handed to the trader one timestamp at a time; a symbol with no
candle at that time (an outage, a later listing) is simply absent from the batch.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from tradeflow import timeframes
from tradeflow.backtest.live_engine import Candle
from tradeflow.exchange.types import ConnectionState, ExchangeError, StreamCandle
from tradeflow.market.backfill import iter_pages
from tradeflow.marketdata import MarketBuffer, MarketDataStream, Update

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SymbolFeed:
    """Per-symbol stream bookkeeping (also what ``status`` reports)."""

    symbol: str
    emitted: int | None
    state: ConnectionState = ConnectionState.CONNECTING
    last_message: float | None = None
    last_price: float | None = None
    reconnects: int = 0
    rest_catchups: int = 0
    deadline: float | None = None
    fresh: bool = True  # no message yet since the stream (re)connected
    queue: asyncio.Queue[Candle] = field(default_factory=asyncio.Queue)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True, slots=True)
class FeedStatus:
    symbol: str
    state: str
    last_message_age_s: float | None
    last_price: float | None
    last_closed: int | None
    reconnects: int
    rest_catchups: int


class CandleFeed:
    """Closed candles of several symbols on one timeframe, from one exchange client."""

    def __init__(self, client: object, symbols: tuple[str, ...], timeframe: str, *,
                 use_websocket: bool = True, stale_after_s: float = 90.0,
                 reconnect_max_s: float = 30.0, grace_s: float = 0.5,
                 rest_poll_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.client = client
        self.symbols = symbols
        self.timeframe = timeframe
        self.use_websocket = use_websocket and bool(getattr(client, "has_websocket", False))
        self.stale_after_s = stale_after_s
        self.reconnect_max_s = reconnect_max_s
        self.grace_s = grace_s
        self.rest_poll_s = rest_poll_s
        self.clock = clock
        self.rng = rng or random.Random()
        self.feeds: dict[str, SymbolFeed] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.on_message: Callable[[str, StreamCandle], None] | None = None
        self.stream: MarketDataStream | None = None

    # -- REST --------------------------------------------------------------------------------
    async def history(self, symbol: str, start: int, end: int) -> pd.DataFrame:
        """Closed candles with open times in [start, end], over REST."""
        pages = [page async for _, page in iter_pages(self.client, symbol, self.timeframe,
                                                       start, end) if not page.empty]
        if not pages:
            return pd.DataFrame(columns=["open_time", "open", "high", "low", "close", "volume"])
        return pd.concat(pages, ignore_index=True).drop_duplicates("open_time")

    async def last_closed(self) -> int:
        """Open time of the newest closed candle, by the exchange's clock."""
        now = await self.client.fetch_time()  # type: ignore[attr-defined]
        return timeframes.last_closed_open(now, self.timeframe)

    # -- streaming ---------------------------------------------------------------------------
    async def candles(self, since: Mapping[str, int | None]) -> AsyncIterator[
            tuple[int, dict[str, Candle]]]:
        """Closed candles after ``since[symbol]`` (its last processed open time), batched by
        open time, forever. Candles missed before the streams started are fetched first."""
        self.feeds = {s: SymbolFeed(s, since.get(s)) for s in self.symbols}
        for feed in self.feeds.values():
            await self._catch_up(feed)
            if not self.use_websocket:
                self.tasks.append(asyncio.create_task(self._poll(feed),
                                                      name=f"feed:{feed.symbol}"))
        if self.use_websocket:
            await self._start_stream()
        self.tasks.append(asyncio.create_task(self._watchdog(), name="feed:watchdog"))
        heads: dict[str, Candle | None] = dict.fromkeys(self.symbols)
        while True:
            for s in self.symbols:
                if heads[s] is None:
                    heads[s] = await self._next(s)
            t = min(c.open_time for c in heads.values() if c is not None)
            batch = {s: c for s, c in heads.items() if c is not None and c.open_time == t}
            for s in batch:
                heads[s] = None
            yield t, batch

    async def _next(self, symbol: str) -> Candle:
        feed = self.feeds[symbol]
        while True:
            for task in self.tasks:  # surface a crashed stream task instead of waiting forever
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            try:
                return await asyncio.wait_for(feed.queue.get(), timeout=1.0)
            except TimeoutError:
                continue

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
        for feed in self.feeds.values():
            feed.state = ConnectionState.DISCONNECTED

    def status(self) -> list[FeedStatus]:
        now = self.clock()
        return [
            FeedStatus(f.symbol, f.state.value,
                       None if f.last_message is None else round(now - f.last_message, 3),
                       f.last_price, f.emitted, f.reconnects, f.rest_catchups)
            for f in self.feeds.values()
        ]

    async def _start_stream(self) -> None:
        """The candle streams: the market-data API's (one stream, a candles subscription per
        symbol), which owns reconnects, backoff and the silence timeout."""
        settings = self.client.settings  # type: ignore[attr-defined]
        self.stream = MarketDataStream(
            settings.id, settings=settings, client=self.client, timeframe=self.timeframe,
            buffer=MarketBuffer(max_rows=64), heartbeat_s=self.stale_after_s,
            reconnect_max_s=self.reconnect_max_s, rng=self.rng)
        self.stream.add_callback(self._on_update)
        await self.stream.subscribe(self.symbols, "candles")
        await self.stream.connect()

    def _note_reconnects(self) -> None:
        """A subscription that began a reconnect: its symbol is RECONNECTING, the next message
        is a new subscription's first, and the closed candles it misses are fetched now."""
        if self.stream is None:
            return
        for (symbol, _), sub in self.stream.subscriptions.items():
            feed = self.feeds[symbol]
            if sub.reconnects > feed.reconnects:
                feed.reconnects = sub.reconnects
                feed.state = ConnectionState.RECONNECTING
                feed.fresh = True
                feed.deadline = self.clock()

    async def _on_update(self, update: Update) -> None:
        if update.catch_up:  # the stream's own REST catch-up: ours runs from the watchdog
            return
        feed = self.feeds[update.symbol]
        feed.state = ConnectionState.CONNECTED
        feed.last_message = self.clock()
        await self._on_rows(feed, update.data)

    async def _on_rows(self, feed: SymbolFeed, rows: list[StreamCandle]) -> None:
        if not rows:
            return
        feed.last_price = rows[-1].close
        for row in rows:
            if self.on_message is not None:
                self.on_message(feed.symbol, row)
            if row.closed and (feed.emitted is None or row.open_time > feed.emitted):
                async with feed.lock:
                    await self._emit_through(feed, row)
        newest = max(r.open_time for r in rows)
        fresh, feed.fresh = feed.fresh, False
        if feed.emitted is not None and feed.deadline is None and \
                newest > timeframes.next_open(feed.emitted, self.timeframe):
            # A newer candle has started; wait briefly for the closing update, then ask REST.
            # On a stream's first message that update was sent before it subscribed and will
            # never come: ask REST at once.
            feed.deadline = self.clock() + (0.0 if fresh else self.grace_s)

    async def _emit_through(self, feed: SymbolFeed, candle: StreamCandle) -> None:
        """Emit ``candle`` (closed), first fetching any closed candles missed before it."""
        if feed.emitted is not None:
            expected = timeframes.next_open(feed.emitted, self.timeframe)
            if candle.open_time > expected:
                await self._rest_emit(feed, expected,
                                      timeframes.previous_open(candle.open_time, self.timeframe))
        if feed.emitted is None or candle.open_time > feed.emitted:
            self._emit(feed, Candle(candle.open_time, candle.open, candle.high, candle.low,
                                    candle.close, candle.volume))
        if feed.deadline is not None and not self._behind(feed, candle.open_time):
            feed.deadline = None

    def _behind(self, feed: SymbolFeed, newest_closed: int) -> bool:
        return feed.emitted is None or feed.emitted < newest_closed

    def _emit(self, feed: SymbolFeed, candle: Candle) -> None:
        feed.emitted = candle.open_time
        feed.queue.put_nowait(candle)

    async def _rest_emit(self, feed: SymbolFeed, start: int, end: int) -> None:
        if end < start:
            return
        feed.rest_catchups += 1
        frame = await self.history(feed.symbol, start, end)
        for row in frame.itertuples(index=False):
            if feed.emitted is None or row.open_time > feed.emitted:
                self._emit(feed, Candle(int(row.open_time), float(row.open), float(row.high),
                                        float(row.low), float(row.close), float(row.volume)))

    async def _catch_up(self, feed: SymbolFeed) -> None:
        """Fetch every closed candle after the last emitted one, by the exchange's clock."""
        async with feed.lock:
            last = await self.last_closed()
            if feed.emitted is None:  # nothing processed yet: start with the next candle
                feed.emitted = last
                return
            await self._rest_emit(feed, timeframes.next_open(feed.emitted, self.timeframe),
                                  last)
            feed.deadline = None

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            self._note_reconnects()
            now = self.clock()
            for feed in self.feeds.values():
                if feed.deadline is not None and now >= feed.deadline:
                    feed.deadline = None
                    try:
                        await self._catch_up(feed)
                    except ExchangeError as exc:
                        log.warning("%s: REST catch-up failed: %s", feed.symbol, exc)
                        feed.deadline = now + self.grace_s * 4

    async def _poll(self, feed: SymbolFeed) -> None:
        """REST polling for exchanges without a websocket."""
        feed.state = ConnectionState.CONNECTED
        while True:
            try:
                await self._catch_up(feed)
                feed.last_message = self.clock()
                feed.state = ConnectionState.CONNECTED
            except ExchangeError as exc:
                feed.state = ConnectionState.RECONNECTING
                log.warning("%s: polling failed: %s", feed.symbol, exc)
            await asyncio.sleep(self.rest_poll_s)
