"""Trades inside one 1m candle: the tape that candles, partial candles and streams come from.

Every minute's trades are a deterministic function of (symbol, minute). The aggTrades (groups)
come from :func:`simulator.tape.minute_groups`, the same kernel that summed the candle, so the
trades of a minute aggregate exactly to its candle: open, high, low, close, volume, quote
volume, count and taker-buy volumes. Here each group gets its time and its fills: consecutive
groups of one side that walk the book (a buy lifting one ask level after another) are one taker
order and share its time; taker orders arrive at sorted random milliseconds, the first at the
minute's start; a group's quantity is split over its fills. At any instant inside a candle the
trades so far give the partial candle.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from simulator.market import MINUTE_MS, QUOTE_DECIMALS, MinuteSeries
from simulator.tape import minute_groups

_CACHE_SIZE = 512
SWEEP_SHARE = 0.35  # share of eligible groups that continue the taker order before them


@dataclass(frozen=True, slots=True)
class CandleTrades:
    """The aggTrades (``g_*``) and trades of one minute, in time order."""

    open_time: int
    first_id: int
    first_agg_id: int
    first_update_id: int
    g_price: np.ndarray  # ticks
    g_buy: np.ndarray  # taker was the buyer
    g_fills: np.ndarray  # trades in the group
    g_qty: np.ndarray  # lots
    g_offset: np.ndarray  # ms after open_time
    g_sweep: np.ndarray  # continues the taker order of the group before
    offsets: np.ndarray  # per trade: ms after open_time, ascending, offsets[0] == 0
    prices: np.ndarray
    qty: np.ndarray
    buyer_maker: np.ndarray

    @property
    def times(self) -> np.ndarray:
        return self.open_time + self.offsets

    @property
    def ids(self) -> np.ndarray:
        return self.first_id + np.arange(self.offsets.size, dtype=np.int64)

    @property
    def g_first(self) -> np.ndarray:
        """Index (in this minute) of the first trade of each group."""
        return np.cumsum(self.g_fills) - self.g_fills

    def count_until(self, now_ms: int) -> int:
        """Number of trades with time <= ``now_ms``."""
        return int(np.searchsorted(self.offsets, now_ms - self.open_time, side="right"))

    def groups_until(self, now_ms: int) -> int:
        """Number of aggTrades with time <= ``now_ms``."""
        return int(np.searchsorted(self.g_offset, now_ms - self.open_time, side="right"))


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


def _empty_minute(series: MinuteSeries, k: int) -> CandleTrades:
    e = np.empty(0, dtype=np.int64)
    b = np.empty(0, dtype=bool)
    return CandleTrades(
        series.anchor_ms + k * MINUTE_MS, int(series.first_trade_id[k]),
        int(series.first_agg_id[k]), int(series.first_update_id[k]),
        e, b, e, e, e, b, e, e, e, b,
    )  # fmt: skip


def generate_minute(series: MinuteSeries, k: int) -> CandleTrades:
    """The trades of minute index ``k`` (no cache)."""
    s = series
    s.ensure(k)
    g, n = int(s.groups[k]), int(s.trades[k])
    if g == 0:
        return _empty_minute(s, k)
    price = np.empty(g, np.int64)
    buy = np.empty(g, np.bool_)
    fills = np.empty(g, np.int64)
    gqty = np.empty(g, np.int64)
    minute_groups(np.uint64(s.spec.key), k, int(s.open[k]), int(s.high[k]), int(s.low[k]),
                  int(s.close[k]), n, g, int(s.volume[k]), float(s.step[k]), s.prev_close(k),
                  price, buy, fills, gqty)  # fmt: skip
    rng = np.random.default_rng([s.spec.key, 1_000_003, k])
    # a group continues the taker order before it when it walked further into the book
    moved_on = np.zeros(g, dtype=bool)
    moved_on[1:] = (buy[1:] == buy[:-1]) & np.where(buy[1:], price[1:] > price[:-1],
                                                    price[1:] < price[:-1])  # fmt: skip
    sweep = moved_on & (rng.random(g) < SWEEP_SHARE)
    orders = int(g - sweep.sum())
    order_offsets = np.sort(rng.integers(1, MINUTE_MS, orders))
    order_offsets[0] = 0
    g_offset = order_offsets[np.cumsum(~sweep) - 1].astype(np.int64)
    # each group's quantity over its fills: every fill at least one lot
    owner = np.repeat(np.arange(g), fills)
    weights = rng.lognormal(0.0, 0.8, n)
    starts = np.cumsum(fills) - fills
    csum = np.cumsum(weights)
    before = np.repeat(csum[starts] - weights[starts], fills)
    total = np.repeat(np.add.reduceat(weights, starts), fills)
    extra = np.repeat(gqty - fills, fills)
    cum = np.minimum(np.floor(extra * (csum - before) / total), extra).astype(np.int64)
    ends = starts + fills - 1
    cum[ends] = gqty - fills
    prev = np.concatenate([[0], cum[:-1]])
    prev[starts] = 0
    qty = 1 + cum - prev
    return CandleTrades(
        open_time=s.anchor_ms + k * MINUTE_MS,
        first_id=int(s.first_trade_id[k]),
        first_agg_id=int(s.first_agg_id[k]),
        first_update_id=int(s.first_update_id[k]),
        g_price=price,
        g_buy=buy,
        g_fills=fills,
        g_qty=gqty,
        g_offset=g_offset,
        g_sweep=sweep,
        offsets=g_offset[owner],
        prices=price[owner],
        qty=qty,
        buyer_maker=~buy[owner],
    )


class TradeBook:
    """Generates and caches the trades of the minutes of one :class:`MinuteSeries`."""

    def __init__(self, series: MinuteSeries):
        self.series = series
        self._cache: OrderedDict[int, CandleTrades] = OrderedDict()
        self._lock = threading.Lock()
        spec = series.spec
        self.quote_unit = 10 ** (QUOTE_DECIMALS - spec.price_decimals - spec.qty_decimals)

    def minute(self, k: int) -> CandleTrades:
        """Trades of minute index ``k`` (generated on first use, then cached)."""
        with self._lock:
            cached = self._cache.get(k)
            if cached is not None:
                self._cache.move_to_end(k)
                return cached
        trades = generate_minute(self.series, k)
        with self._lock:
            self._cache[k] = trades
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return trades

    def partial(self, k: int, now_ms: int) -> PartialMinute:
        """Minute ``k`` as it stands at ``now_ms`` (the final candle once all trades are in)."""
        s = self.series
        s.ensure(k)
        t = self.minute(k)
        m = t.count_until(now_ms)
        if m == 0:
            last = s.prev_close(k) if t.offsets.size else int(s.close[k])
            return PartialMinute(last, last, last, last, 0, 0, 0, 0, 0, t.first_id - 1)
        prices, qty = t.prices[:m], t.qty[:m]
        taker = ~t.buyer_maker[:m]
        notional = prices * qty
        return PartialMinute(
            open=int(prices[0]),
            high=int(prices.max()),
            low=int(prices.min()),
            close=int(prices[-1]),
            volume=int(qty.sum()),
            quote=int(notional.sum()) * self.quote_unit,
            trades=m,
            taker_base=int(qty[taker].sum()),
            taker_quote=int(notional[taker].sum()) * self.quote_unit,
            last_trade_id=t.first_id + m - 1,
        )
