"""The simulated venue: symbols, clock, candles, trades, tickers and a synthetic order book."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.candles import Candles, Span, query_klines
from simulator.clock import SimClock
from simulator.faults import FaultState
from simulator.market import DAY_MS, MINUTE_MS, MinuteSeries, SymbolSpec, make_spec
from simulator.settings import SimulatorSettings
from simulator.trades import TradeBook

# how far back/forward trade searches scan before giving up (minutes)
_SCAN_LIMIT = 3 * 1440


@dataclass(frozen=True, slots=True)
class TradeRows:
    """Public trades as parallel arrays in id order (prices in ticks, qty in lot steps)."""

    ids: np.ndarray
    times: np.ndarray
    prices: np.ndarray
    qty: np.ndarray
    buyer_maker: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)

    def take(self, sel: slice | np.ndarray) -> TradeRows:
        return TradeRows(
            self.ids[sel], self.times[sel], self.prices[sel], self.qty[sel], self.buyer_maker[sel]
        )


@dataclass(frozen=True, slots=True)
class Ticker24h:
    """Rolling 24-hour statistics of one symbol, integers in the candle units."""

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


def _concat(parts: list[TradeRows]) -> TradeRows:
    if not parts:
        e = np.empty(0, dtype=np.int64)
        return TradeRows(e, e, e, e, np.empty(0, dtype=bool))
    return TradeRows(*(np.concatenate([getattr(p, f) for p in parts]) for f in TradeRows.__slots__))


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
        self.books: dict[str, TradeBook] = {}
        self.listing_ms: dict[str, int] = {}
        delays = settings.listing_delays_days
        for symbol in settings.symbols:
            spec = make_spec(symbol, settings.seed)
            self.specs[symbol] = spec
            self.by_id[spec.market_id] = spec
            series = MinuteSeries(
                spec, self.anchor_ms, settings.signal_strength, settings.volatility
            )
            self.series[symbol] = series
            self.books[symbol] = TradeBook(series)
            delay = delays.get(symbol, delays.get(spec.market_id, 0.0))
            listing = self.history_start_ms + int(delay * DAY_MS)
            self.listing_ms[symbol] = -(-listing // MINUTE_MS) * MINUTE_MS

    def now_ms(self) -> int:
        """Simulated now."""
        return self.clock.now_ms()

    def spec(self, market_id: str) -> SymbolSpec | None:
        """The market with Binance id ``market_id`` (e.g. ``BTCUSDT``), or None."""
        return self.by_id.get(market_id)

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
            self.series[symbol], self.books[symbol], span, interval, start, end, limit
        )

    def last_price(self, symbol: str, now_ms: int | None = None) -> int:
        """Price of the last trade at or before ``now_ms`` in ticks."""
        now = self.now_ms() if now_ms is None else now_ms
        k = self.series[symbol].index_of(now)
        return self.books[symbol].partial(k, now).close

    def _minute_trades(self, symbol: str, k: int, now: int) -> TradeRows:
        t = self.books[symbol].minute(k)
        m = t.count_until(now)
        return TradeRows(t.ids[:m], t.times[:m], t.prices[:m], t.qty[:m], t.buyer_maker[:m])

    def _valid_minute(self, span: Span, k: int, anchor: int) -> bool:
        return bool(span.valid(np.array([anchor + k * MINUTE_MS], dtype=np.int64))[0])

    def recent_trades(self, symbol: str, limit: int, now_ms: int | None = None) -> TradeRows:
        """The latest ``limit`` trades at ``now_ms``, oldest first."""
        now = self.now_ms() if now_ms is None else now_ms
        series, span = self.series[symbol], self.span(symbol, now)
        k = series.index_of(now)
        parts: list[TradeRows] = []
        got = 0
        for kk in range(k, max(k - _SCAN_LIMIT, 0) - 1, -1):
            if not self._valid_minute(span, kk, series.anchor_ms):
                if series.anchor_ms + kk * MINUTE_MS < span.lo_ms:
                    break
                continue
            rows = self._minute_trades(symbol, kk, now)
            parts.append(rows)
            got += len(rows)
            if got >= limit:
                break
        rows = _concat(parts[::-1])
        return rows.take(slice(max(0, len(rows) - limit), None))

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
        now = self.now_ms() if now_ms is None else now_ms
        series, span = self.series[symbol], self.span(symbol, now)
        stop = min(now, end) if end is not None else now
        if from_id is not None:
            series.ensure(series.index_of(now))
            k = int(np.searchsorted(series.first_trade_id, from_id, side="right")) - 1
        else:
            k = series.index_of(start if start is not None else now)
        k, k_end = max(k, 0), series.index_of(stop)
        parts: list[TradeRows] = []
        got = 0
        for kk in range(k, min(k_end, k + _SCAN_LIMIT) + 1):
            if not self._valid_minute(span, kk, series.anchor_ms):
                continue
            rows = self._minute_trades(symbol, kk, stop)
            sel = np.ones(len(rows), dtype=bool)
            if from_id is not None:
                sel &= rows.ids >= from_id
            if start is not None:
                sel &= rows.times >= start
            rows = rows.take(sel)
            parts.append(rows)
            got += len(rows)
            if got >= limit:
                break
        return _concat(parts).take(slice(0, limit))

    def ticker_24h(self, symbol: str, now_ms: int | None = None) -> Ticker24h | None:
        """Rolling 24h statistics at ``now_ms``; None when no candle exists in the window."""
        now = self.now_ms() if now_ms is None else now_ms
        first = now // MINUTE_MS * MINUTE_MS - (1440 - 1) * MINUTE_MS
        c = self.klines(symbol, "1m", start=first, end=now, limit=1440, now_ms=now)
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
            open_time=now - DAY_MS,
            close_time=now,
        )

    def book(
        self, symbol: str, limit: int, now_ms: int | None = None
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]], int]:
        """Synthetic depth ``(bids, asks, last_update_id)`` around the last price, in ticks/lots.

        Deterministic per (seed, symbol, simulated second): levels are ``spacing`` ticks apart,
        the best bid and ask straddle the last trade, sizes grow away from the touch.
        """
        now = self.now_ms() if now_ms is None else now_ms
        spec = self.specs[symbol]
        last = self.last_price(symbol, now)
        spacing = max(1, round(1e-5 * last))
        bid0 = max(1, last - spacing // 2)
        ask0 = bid0 + spacing
        rng = np.random.default_rng([spec.key, 2, now // 1000])
        base = max(1.0, spec.volume_per_min * 10**spec.qty_decimals / 20)
        i = np.arange(limit)
        sizes = np.maximum(1, np.rint(base * (1 + 0.05 * i) * rng.lognormal(0, 0.5, (2, limit))))
        sizes = sizes.astype(np.int64)
        bid_prices = bid0 - i * spacing
        bids = [(int(p), int(q)) for p, q in zip(bid_prices, sizes[0], strict=True) if p > 0]
        asks = [(int(ask0 + j * spacing), int(sizes[1][j])) for j in range(limit)]
        return bids, asks, now // 100

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
