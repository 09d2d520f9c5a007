"""Kline intervals, exact aggregation of 1m candles, and Binance's klines query semantics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.market import MINUTE_MS, MinuteSeries
from simulator.trades import TradeBook

_DAY = 86_400_000
# Binance opens weekly candles on Monday 00:00 UTC; the epoch was a Thursday
_WEEK_OFFSET = 4 * _DAY
INTERVAL_MS: dict[str, int] = {
    "1s": 1000,
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": _DAY,
    "3d": 3 * _DAY,
    "1w": 7 * _DAY,
    "1M": 31 * _DAY,  # calendar months; this is only an upper bound on their length
}
INTERVALS = tuple(INTERVAL_MS)


def floor_open(ts_ms: int, interval: str) -> int:
    """Open time of the ``interval`` candle that contains ``ts_ms``."""
    return int(group_open(np.array([ts_ms], dtype=np.int64), interval)[0])


def next_open(open_ms: int, interval: str) -> int:
    """Open time of the candle after the one opening at ``open_ms``."""
    if interval == "1M":
        month = np.array([open_ms], dtype="datetime64[ms]").astype("datetime64[M]") + 1
        return int(month.astype("datetime64[ms]").astype(np.int64)[0])
    return open_ms + INTERVAL_MS[interval]


def group_open(times: np.ndarray, interval: str) -> np.ndarray:
    """Open time of the ``interval`` candle containing each of ``times`` (int64 ms)."""
    if interval == "1M":
        months = times.astype("datetime64[ms]").astype("datetime64[M]")
        return months.astype("datetime64[ms]").astype(np.int64)
    step = INTERVAL_MS[interval]
    offset = _WEEK_OFFSET if interval == "1w" else 0
    return (times - offset) // step * step + offset


@dataclass(frozen=True, slots=True)
class Candles:
    """Klines as integer arrays: prices in ticks, volumes in lot steps, quote in 1e-8 units."""

    open_time: np.ndarray
    close_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote: np.ndarray
    trades: np.ndarray
    taker_base: np.ndarray
    taker_quote: np.ndarray
    first_id: np.ndarray
    last_id: np.ndarray
    price_decimals: int
    qty_decimals: int
    closed: np.ndarray  # bool: False only for the candle that is still open

    def __len__(self) -> int:
        return int(self.open_time.size)

    def ohlcv(self) -> np.ndarray:
        """``[timestamp, open, high, low, close, volume]`` floats, as ccxt's fetch_ohlcv gives."""
        p, q = 10.0**self.price_decimals, 10.0**self.qty_decimals
        cols = [self.open_time.astype(np.float64)]
        cols += [a / p for a in (self.open, self.high, self.low, self.close)]
        cols.append(self.volume / q)
        return np.column_stack(cols)


@dataclass(frozen=True, slots=True)
class Span:
    """Where candles exist: from ``lo_ms`` to the minute containing ``now_ms``, minus outages."""

    lo_ms: int
    now_ms: int
    outages: tuple[tuple[int, int], ...]

    def valid(self, times: np.ndarray) -> np.ndarray:
        """Mask of the 1m open ``times`` that have a candle."""
        ok = (times >= self.lo_ms) & (times <= self.now_ms)
        for start, end in self.outages:
            ok &= ~((times < end) & (times + MINUTE_MS > start))
        return ok


def _minute_columns(series: MinuteSeries, book: TradeBook, ks: np.ndarray, now_ms: int) -> dict:
    cols = {
        "open": series.open[ks],
        "high": series.high[ks],
        "low": series.low[ks],
        "close": series.close[ks],
        "volume": series.volume[ks],
        "quote": series.quote[ks],
        "trades": series.trades[ks],
        "taker_base": series.taker_base[ks],
        "taker_quote": series.taker_quote[ks],
        "first_id": series.first_trade_id[ks],
    }
    cols["last_id"] = cols["first_id"] + cols["trades"] - 1
    now_k = series.index_of(now_ms)
    if ks.size and ks[-1] == now_k:
        part = book.partial(now_k, now_ms)
        for name in ("open", "high", "low", "close", "volume", "quote", "trades"):
            cols[name][-1] = getattr(part, name)
        cols["taker_base"][-1] = part.taker_base
        cols["taker_quote"][-1] = part.taker_quote
        cols["last_id"][-1] = part.last_trade_id
    return cols


def _aggregate(cols: dict, keys: np.ndarray) -> tuple[np.ndarray, dict]:
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    ends = np.concatenate([starts[1:], [keys.size]]) - 1
    out = {
        "open": cols["open"][starts],
        "close": cols["close"][ends],
        "high": np.maximum.reduceat(cols["high"], starts),
        "low": np.minimum.reduceat(cols["low"], starts),
        "first_id": cols["first_id"][starts],
        "last_id": cols["last_id"][ends],
    }
    for name in ("volume", "quote", "trades", "taker_base", "taker_quote"):
        out[name] = np.add.reduceat(cols[name], starts)
    return keys[starts], out


def query_klines(
    series: MinuteSeries,
    book: TradeBook,
    span: Span,
    interval: str,
    start: int | None,
    end: int | None,
    limit: int,
) -> Candles:
    """Binance semantics: open_time in [start, end]; the first ``limit`` if start, else the last."""
    if interval == "1s":
        return query_seconds(series, book, span, start, end, limit)
    now_open = span.now_ms // MINUTE_MS * MINUTE_MS
    # outages remove candles, so a window of `limit` candles must reach past them
    reach = (limit + 1) * INTERVAL_MS[interval] + sum(
        e - s + 2 * MINUTE_MS for s, e in span.outages
    )
    hi = now_open
    if end is not None:
        hi = min(hi, next_open(floor_open(end, interval), interval) - MINUTE_MS)
    if start is not None:
        lo = max(span.lo_ms, floor_open(start, interval))
        # only the first `limit` candles are needed; finish the last group so none is cut short
        hi = min(hi, next_open(floor_open(lo + reach, interval), interval) - MINUTE_MS)
    else:
        lo = max(span.lo_ms, floor_open(hi - reach, interval))
    lo = max(lo, series.anchor_ms)
    if lo > hi:
        return _empty(series)
    k_lo, k_hi = series.index_of(lo), series.index_of(hi)
    series.ensure(k_hi)
    ks = np.arange(k_lo, k_hi + 1, dtype=np.int64)
    times = series.anchor_ms + ks * MINUTE_MS
    keep = span.valid(times)
    ks, times = ks[keep], times[keep]
    if not ks.size:
        return _empty(series)
    cols = _minute_columns(series, book, ks, span.now_ms)
    if interval == "1m":
        keys = times
    else:
        keys, cols = _aggregate(cols, group_open(times, interval))
    sel = np.ones(keys.size, dtype=bool)
    if start is not None:
        sel &= keys >= start
    if end is not None:
        sel &= keys <= end
    idx = np.flatnonzero(sel)
    idx = idx[:limit] if start is not None else idx[-limit:]
    keys = keys[idx]
    closes = np.array([next_open(int(t), interval) for t in keys[-1:]], dtype=np.int64)
    if interval == "1M":
        close_time = np.array([next_open(int(t), "1M") for t in keys], dtype=np.int64) - 1
    else:
        close_time = keys + INTERVAL_MS[interval] - 1
    closed = np.ones(keys.size, dtype=bool)
    if keys.size and closes[0] > span.now_ms:
        closed[-1] = False
    return Candles(
        open_time=keys,
        close_time=close_time,
        price_decimals=series.spec.price_decimals,
        qty_decimals=series.spec.qty_decimals,
        closed=closed,
        **{name: values[idx] for name, values in cols.items()},
    )


def _empty(series: MinuteSeries) -> Candles:
    e = np.empty(0, dtype=np.int64)
    return Candles(
        open_time=e,
        close_time=e,
        open=e,
        high=e,
        low=e,
        close=e,
        volume=e,
        quote=e,
        trades=e,
        taker_base=e,
        taker_quote=e,
        first_id=e,
        last_id=e,
        price_decimals=series.spec.price_decimals,
        qty_decimals=series.spec.qty_decimals,
        closed=np.empty(0, dtype=bool),
    )


def query_seconds(
    series: MinuteSeries,
    tape: TradeBook,
    span: Span,
    start: int | None,
    end: int | None,
    limit: int,
) -> Candles:
    """1s klines aggregated from the tape; a second without trades repeats the last price."""
    now = span.now_ms
    hi = now // 1000 * 1000 if end is None else min(now, end) // 1000 * 1000
    if start is not None:
        lo = max(-(-start // 1000) * 1000, span.lo_ms, series.anchor_ms)
        hi = min(hi, lo + (limit - 1) * 1000)
    else:
        lo = max(hi - (limit - 1) * 1000, span.lo_ms, series.anchor_ms)
    if lo > hi:
        return _empty(series)
    secs = np.arange(lo, hi + 1000, 1000, dtype=np.int64)
    secs = secs[span.valid(secs // MINUTE_MS * MINUTE_MS)]
    if not secs.size:
        return _empty(series)
    k_lo, k_hi = series.index_of(int(secs[0])), series.index_of(int(secs[-1]))
    series.ensure(k_hi)
    parts = [tape.minute(k) for k in range(k_lo, k_hi + 1)]
    times = np.concatenate([t.times for t in parts])
    keep = (times >= secs[0]) & (times < secs[-1] + 1000) & (times <= now)
    price = np.concatenate([t.prices for t in parts])[keep]
    qty = np.concatenate([t.qty for t in parts])[keep]
    taker = ~np.concatenate([t.buyer_maker for t in parts])[keep]
    ids = np.concatenate([t.ids for t in parts])[keep]
    times = times[keep]
    edges = np.searchsorted(times, secs)
    count = np.diff(np.append(edges, times.size))
    notional = price * qty * tape.quote_unit

    def sums(values: np.ndarray) -> np.ndarray:
        csum = np.concatenate([[0], np.cumsum(values)])
        return csum[edges + count] - csum[edges]

    first = tape.minute(k_lo)
    before = first.count_until(int(secs[0]) - 1)
    last = int(first.prices[before - 1]) if before else series.prev_close(k_lo)
    traded = count > 0
    close = np.full(secs.size, -1, dtype=np.int64)
    close[traded] = price[edges[traded] + count[traded] - 1]
    idx = np.maximum.accumulate(np.where(traded, np.arange(secs.size), -1))
    close = np.where(idx >= 0, close[np.maximum(idx, 0)], last)
    prev = np.concatenate([[last], close[:-1]])
    open_ = np.where(traded, price[np.minimum(edges, max(times.size - 1, 0))], prev)
    high, low = close.copy(), close.copy()
    if times.size:
        starts = edges[traded]
        high[traded] = np.maximum.reduceat(price, starts)
        low[traded] = np.minimum.reduceat(price, starts)
    first_id = np.where(traded, ids[np.minimum(edges, max(ids.size - 1, 0))] if ids.size else 0,
                        0)  # fmt: skip
    id_before = int(first.first_id + before - 1)
    last_id = np.maximum.accumulate(np.where(traded, first_id + count - 1, id_before))
    first_id = np.where(traded, first_id, last_id + 1)
    return Candles(
        open_time=secs,
        close_time=secs + 999,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=sums(qty),
        quote=sums(notional),
        trades=count.astype(np.int64),
        taker_base=sums(np.where(taker, qty, 0)),
        taker_quote=sums(np.where(taker, notional, 0)),
        first_id=first_id.astype(np.int64),
        last_id=last_id.astype(np.int64),
        price_decimals=series.spec.price_decimals,
        qty_decimals=series.spec.qty_decimals,
        closed=secs + 1000 <= now,
    )
