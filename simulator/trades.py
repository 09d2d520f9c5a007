"""Trades inside one 1m candle: the sub-minute path that partial candles and streams follow.

Every minute's trades are a deterministic function of (symbol, minute): ``trades[k]`` trades at
sorted millisecond offsets (the first at offset 0), prices on a Brownian bridge from the open
through the high and the low to the close (clipped into [low, high]), and integer quantities
that sum exactly to the candle volume. Hence, at any instant inside a candle, the trades so far
give the partial candle (open, running high/low, last price, volume and count so far), and once
all trades are in they give the final candle exactly. Taker sides are drawn with the candle's
taker-buy share, so the taker volumes of trades match the candle's only on average.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from simulator.market import MINUTE_MS, MinuteSeries

_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class CandleTrades:
    """The trades of one minute, in time order."""

    open_time: int
    first_id: int
    offsets: np.ndarray  # ms after open_time, int64, ascending, offsets[0] == 0
    prices: np.ndarray  # ticks
    qty: np.ndarray  # lot steps
    buyer_maker: np.ndarray  # bool

    @property
    def times(self) -> np.ndarray:
        return self.open_time + self.offsets

    @property
    def ids(self) -> np.ndarray:
        return self.first_id + np.arange(self.offsets.size, dtype=np.int64)

    def count_until(self, now_ms: int) -> int:
        """Number of trades with time <= ``now_ms``."""
        return int(np.searchsorted(self.offsets, now_ms - self.open_time, side="right"))


@dataclass(frozen=True, slots=True)
class PartialMinute:
    """A 1m candle as it stands at some instant: the same fields as the final one."""

    open: int
    high: int
    low: int
    close: int
    volume: int
    quote: int
    trades: int
    taker_base: int
    taker_quote: int
    last_trade_id: int


class TradeBook:
    """Generates and caches the trades of the minutes of one :class:`MinuteSeries`."""

    def __init__(self, series: MinuteSeries):
        self.series = series
        self._cache: OrderedDict[int, CandleTrades] = OrderedDict()
        self._lock = threading.Lock()

    def minute(self, k: int) -> CandleTrades:
        """Trades of minute index ``k`` (generated on first use, then cached)."""
        with self._lock:
            cached = self._cache.get(k)
            if cached is not None:
                self._cache.move_to_end(k)
                return cached
        trades = self._generate(k)
        with self._lock:
            self._cache[k] = trades
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return trades

    def _generate(self, k: int) -> CandleTrades:
        s = self.series
        s.ensure(k)
        n = int(s.trades[k])
        o, h, lo, c = int(s.open[k]), int(s.high[k]), int(s.low[k]), int(s.close[k])
        rng = np.random.default_rng([s.spec.key, 1_000_003, k])
        offsets = np.sort(rng.integers(1, MINUTE_MS, n))
        offsets[0] = 0
        # the high and the low are each hit by one trade strictly between the first and last
        i_high, i_low = rng.choice(np.arange(1, n - 1), size=2, replace=False)
        anchors = sorted([(0, o), (int(i_high), h), (int(i_low), lo), (n - 1, c)])
        steps = rng.standard_normal(n) * (float(s.sigma[k]) * o / np.sqrt(n))
        walk = np.cumsum(steps)
        path = np.empty(n, dtype=np.float64)
        for (ia, pa), (ib, pb) in zip(anchors[:-1], anchors[1:], strict=True):
            idx = np.arange(ia, ib + 1)
            frac = (idx - ia) / max(ib - ia, 1)
            bridge = walk[idx] - walk[ia] - frac * (walk[ib] - walk[ia])
            path[idx] = pa + frac * (pb - pa) + bridge
        prices = np.clip(np.rint(path), lo, h).astype(np.int64)
        for i, p in anchors:
            prices[i] = p
        weights = rng.lognormal(0.0, 1.0, n)
        extra = int(s.volume[k]) - n
        cum = np.minimum(np.floor(extra * np.cumsum(weights) / weights.sum()), extra)
        cum[-1] = extra
        qty = 1 + np.diff(np.concatenate([[0.0], cum])).astype(np.int64)
        taker_share = s.taker_base[k] / max(int(s.volume[k]), 1)
        buyer_maker = rng.random(n) >= taker_share
        return CandleTrades(
            open_time=s.anchor_ms + k * MINUTE_MS,
            first_id=int(s.first_trade_id[k]),
            offsets=offsets.astype(np.int64),
            prices=prices,
            qty=qty,
            buyer_maker=buyer_maker,
        )

    def partial(self, k: int, now_ms: int) -> PartialMinute:
        """Minute ``k`` as it stands at ``now_ms`` (the final candle once all trades are in)."""
        s = self.series
        s.ensure(k)
        t = self.minute(k)
        m = max(1, t.count_until(now_ms))
        total = int(s.volume[k])
        if m == t.offsets.size:
            vol, quote, tb, tq = total, int(s.quote[k]), int(s.taker_base[k]), int(s.taker_quote[k])
        else:
            vol = int(t.qty[:m].sum())
            share = vol / total
            quote = round(int(s.quote[k]) * share)
            tb = round(int(s.taker_base[k]) * share)
            tq = round(int(s.taker_quote[k]) * share)
        prices = t.prices[:m]
        return PartialMinute(
            open=int(prices[0]),
            high=int(prices.max()),
            low=int(prices.min()),
            close=int(prices[-1]),
            volume=vol,
            quote=quote,
            trades=m,
            taker_base=tb,
            taker_quote=tq,
            last_trade_id=t.first_id + m - 1,
        )
