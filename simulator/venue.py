"""The simulated venue: symbols, clock, candles, trades, tickers and the order book."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.book import OrderBook
from simulator.candles import Candles, Span, query_klines
from simulator.clock import SimClock
from simulator.faults import FaultState
from simulator.history import AggRows, History, TradeRows, trade_rows
from simulator.market import DAY_MS, MINUTE_MS, MinuteSeries, SymbolSpec, make_spec
from simulator.settings import MarketSettings, SimulatorSettings
from simulator.trades import TradeBook

__all__ = ["AggRows", "Ticker24h", "TradeRows", "Venue"]


@dataclass(frozen=True, slots=True)
class Ticker24h:
    """Rolling-window statistics of one symbol (24 hours by default), in the candle units."""

    open: int
    high: int
    low: int
    last: int
    prev_close: int
    volume: int
    quote: int
    count: int
    first_id: int
    last_id: int
    last_qty: int
    open_time: int
    close_time: int


class Venue:
    """Everything the servers answer from; safe to query from tests in another thread."""

    def __init__(self, settings: SimulatorSettings, clock: SimClock | None = None):
        self.settings = settings
        self.clock = clock or SimClock(settings.start_time_ms, settings.speed)
        self.faults = FaultState(settings.faults)
        # server-side accounting read by /admin/stats (and the benchmark)
        self.stats: dict[str, float] = {
            "requests": 0,
            "handler_s": 0.0,
            "klines": 0,
            "ws_messages": 0,
            "ws_connections": 0,
        }
        start_min = self.clock.start_ms // MINUTE_MS * MINUTE_MS
        history_ms = int(settings.history_days * DAY_MS) // MINUTE_MS * MINUTE_MS
        self.history_start_ms = start_min - history_ms
        self.anchor_ms = self.history_start_ms // DAY_MS * DAY_MS
        self.specs: dict[str, SymbolSpec] = {}
        self.by_id: dict[str, SymbolSpec] = {}
        self.series: dict[str, MinuteSeries] = {}
        self.tapes: dict[str, TradeBook] = {}
        self.books: dict[str, OrderBook] = {}
        self.history: dict[str, History] = {}
        self.listing_ms: dict[str, int] = {}
        # USDⓈ-M perpetuals by market id: one per USDT-quoted symbol, on its price path
        self.perpetuals: dict[str, SymbolSpec] = {}
        delays = settings.listing_delays_days
        for symbol in settings.symbols:
            spec = make_spec(symbol, settings.seed)
            self.specs[symbol] = spec
            self.by_id[spec.market_id] = spec
            market = settings.markets.get(symbol) or settings.markets.get(spec.market_id)
            market = market or MarketSettings()
            series = MinuteSeries(
                spec,
                self.anchor_ms,
                settings.signal_strength,
                settings.volatility,
                liquidity=market.liquidity,
                quiet_hours=market.quiet_hours,
                open_jump_share=settings.open_jump_share,
            )
            self.series[symbol] = series
            tape = TradeBook(series)
            self.tapes[symbol] = tape
            self.books[symbol] = OrderBook(series, tape, settings.book_levels, market.liquidity)
            self.history[symbol] = History(series, tape)
            delay = delays.get(symbol, delays.get(spec.market_id, 0.0))
            listing = self.history_start_ms + int(delay * DAY_MS)
            self.listing_ms[symbol] = -(-listing // MINUTE_MS) * MINUTE_MS
            if settings.perpetuals and spec.quote == "USDT":
                self.perpetuals[spec.market_id] = spec

    def now_ms(self) -> int:
        """Simulated now."""
        return self.clock.now_ms()

    def spec(self, market_id: str) -> SymbolSpec | None:
        """The market with Binance id ``market_id`` (e.g. ``BTCUSDT``), or None."""
        return self.by_id.get(market_id)

    def perpetual(self, market_id: str) -> SymbolSpec | None:
        """The spot market whose perpetual has id ``market_id`` (``/fapi``), or None."""
        return self.perpetuals.get(market_id)

    def span(self, symbol: str, now_ms: int | None = None) -> Span:
        """Where candles of ``symbol`` exist at ``now_ms``."""
        now = self.now_ms() if now_ms is None else now_ms
        return Span(self.listing_ms[symbol], now, self.faults.settings.outages)

    def klines(
        self,
        symbol: str,
        interval: str = "1m",
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
        now_ms: int | None = None,
    ) -> Candles:
        """Candles exactly as ``GET /api/v3/klines`` serves them (the open one included)."""
        span = self.span(symbol, now_ms)
        return query_klines(
            self.series[symbol], self.tapes[symbol], span, interval, start, end, limit
        )

    def last_price(self, symbol: str, now_ms: int | None = None) -> int:
        """Price of the last trade at or before ``now_ms`` in ticks."""
        now = self.now_ms() if now_ms is None else now_ms
        k = self.series[symbol].index_of(now)
        return self.tapes[symbol].partial(k, now).close

    def _minute_trades(self, symbol: str, k: int, now: int) -> TradeRows:
        return trade_rows(self.tapes[symbol].minute(k), now)

    def _valid_minute(self, span: Span, k: int, anchor: int) -> bool:
        return bool(span.valid(np.array([anchor + k * MINUTE_MS], dtype=np.int64))[0])

    def recent_trades(self, symbol: str, limit: int, now_ms: int | None = None) -> TradeRows:
        """The latest ``limit`` trades at ``now_ms``, oldest first."""
        return self.history[symbol].trades(self.span(symbol, now_ms), limit)

    def trades_from(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
        now_ms: int | None = None,
    ) -> TradeRows:
        """Trades with id >= ``from_id`` or time in [start, end], oldest first, up to now."""
        span = self.span(symbol, now_ms)
        return self.history[symbol].trades(span, limit, from_id=from_id, start=start, end=end)

    def agg_trades(
        self,
        symbol: str,
        *,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
        now_ms: int | None = None,
    ) -> AggRows:
        """aggTrades as ``GET /api/v3/aggTrades`` selects them (see History.agg_trades)."""
        span = self.span(symbol, now_ms)
        return self.history[symbol].agg_trades(span, limit, from_id=from_id, start=start, end=end)

    def avg_price(
        self, symbol: str, minutes: int = 5, now_ms: int | None = None
    ) -> tuple[int, int]:
        """Binance's avgPrice: the volume-weighted price of the last ``minutes`` minutes in 1e-8
        quote per base unit (the last price when nothing traded) and the last trade's time."""
        now = self.now_ms() if now_ms is None else now_ms
        c = self.klines(symbol, "1m", now - minutes * MINUTE_MS + 1, now, minutes, now)
        last = self.recent_trades(symbol, 1, now)
        when = int(last.times[-1]) if len(last) else now
        spec = self.specs[symbol]
        volume = int(c.volume.sum()) if len(c) else 0
        if volume:
            scaled = int(c.quote.sum()) * 10**spec.qty_decimals
            return (2 * scaled + volume) // (2 * volume), when
        return self.last_price(symbol, now) * 10 ** (8 - spec.price_decimals), when

    def ticker_24h(
        self, symbol: str, now_ms: int | None = None, window_min: int = 1440
    ) -> Ticker24h | None:
        """Rolling statistics of the last ``window_min`` minutes (the open one included) at
        ``now_ms``; None when no candle exists in the window."""
        now = self.now_ms() if now_ms is None else now_ms
        first = now // MINUTE_MS * MINUTE_MS - (window_min - 1) * MINUTE_MS
        c = self.klines(symbol, "1m", start=first, end=now, limit=window_min, now_ms=now)
        if not len(c):
            return None
        prev = self.klines(symbol, "1m", end=int(c.open_time[0]) - 1, limit=1, now_ms=now)
        last_trades = self.recent_trades(symbol, 1, now)
        return Ticker24h(
            open=int(c.open[0]),
            high=int(c.high.max()),
            low=int(c.low.min()),
            last=int(c.close[-1]),
            prev_close=int(prev.close[-1]) if len(prev) else 0,
            volume=int(c.volume.sum()),
            quote=int(c.quote.sum()),
            count=int(c.trades.sum()),
            first_id=int(c.first_id[0]),
            last_id=int(c.last_id[-1]),
            last_qty=int(last_trades.qty[-1]) if len(last_trades) else 0,
            open_time=now - window_min * MINUTE_MS if window_min == 1440 else first,
            close_time=now,
        )

    def book(
        self, symbol: str, limit: int, now_ms: int | None = None
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]], int]:
        """The order book ``(bids, asks, lastUpdateId)`` at ``now_ms``, best first, in ticks and
        lots, at most ``limit`` levels a side (see :mod:`simulator.book`)."""
        now = self.now_ms() if now_ms is None else now_ms
        return self.books[symbol].snapshot(now, limit)

    def first_cross(self, symbol: str, t0: int, t1: int, price: int, buy: bool) -> int | None:
        """Time of the first trade in (t0, t1] at or through ``price`` (<= for buy, >= for sell)."""
        series = self.series[symbol]
        span = self.span(symbol, t1)
        k0, k1 = series.index_of(t0), series.index_of(t1)
        series.ensure(k1)

        def in_minute(k: int) -> int | None:
            if not self._valid_minute(span, k, series.anchor_ms):
                return None
            rows = self._minute_trades(symbol, k, t1)
            hit = (rows.prices <= price) if buy else (rows.prices >= price)
            hit &= rows.times > t0
            idx = np.flatnonzero(hit)
            return int(rows.times[idx[0]]) if idx.size else None

        found = in_minute(k0)
        if found is not None or k1 == k0:
            return found
        if k1 > k0 + 1:
            ks = np.arange(k0 + 1, k1, dtype=np.int64)
            ok = span.valid(series.anchor_ms + ks * MINUTE_MS)
            ok &= (series.low[ks] <= price) if buy else (series.high[ks] >= price)
            idx = np.flatnonzero(ok)
            if idx.size:
                return in_minute(int(ks[idx[0]]))
        return in_minute(k1)
