"""The order book: a deterministic function of time that the trade tape walks through.

Levels rest at absolute prices. A price tick holds resting orders when a hash of (symbol,
price) says so (about half of the ticks away from the touch), with a seeded, irregular size that
is redrawn every few minutes, staggered per price. The touch follows the tape: before each
aggTrade the book shows a best ask at its price (for a buy; the best bid for a sell) holding at
least its quantity, with the other side one or two ticks away; the aggTrade then takes its
quantity from that level, which either keeps a rest or is gone (the next level becomes the
touch). A taker order that walks several levels consumes each of them. Between aggTrades the
book stands still; at each minute's start the redrawn sizes take effect.

Every change has an update id: minute ``k`` owns the ids from ``first_update_id[k]``: one for
the refresh at its start, then two per aggTrade (the quote that it hits, then the trade). So the
book and its ``lastUpdateId`` at any instant are computed, not simulated, and a diff between two
instants lists every level that changed in between (with the level's quantity at the end, 0 when
it is gone) - a superset is harmless, as on Binance - which is what the diff-depth streams send.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from simulator.market import MINUTE_MS, MinuteSeries
from simulator.trades import TradeBook

PRESENT_SHARE = 0.5  # share of ticks beyond the touch that hold resting orders
EPOCH_MINUTES = 5  # a level's size is redrawn every 5 minutes, staggered by price
CONSUMED_SHARE = 0.3  # share of aggTrades that take their whole level
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_C1, _C2 = np.uint64(0xD1B54A32D192ED03), np.uint64(0x8CB92BA72F3D8DD7)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_CACHE = 256

Levels = list[tuple[int, int]]


def hash_uniform(stream: int, a: np.ndarray, b: np.ndarray | int = 0) -> np.ndarray:
    """Uniforms in (0, 1), a fixed function of (stream, a, b) (splitmix64 of the three)."""
    with np.errstate(over="ignore"):
        z = (np.uint64(stream) + np.asarray(a).astype(np.uint64) * _C1
             + np.asarray(b).astype(np.uint64) * _C2 + _GOLDEN)  # fmt: skip
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z ^= z >> np.uint64(31)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 2**53)


@dataclass(frozen=True, slots=True)
class Touches:
    """The touch of every book state of one minute (state 0: at its start, carried over)."""

    open_time: int
    first_update_id: int
    offsets: np.ndarray  # ms after open_time of each state
    bid: np.ndarray
    bid_qty: np.ndarray  # 0: no order of its own at ``bid``; bids are the levels below it
    ask: np.ndarray
    ask_qty: np.ndarray

    def index_at(self, now_ms: int) -> int:
        return int(np.searchsorted(self.offsets, now_ms - self.open_time, side="right")) - 1


class OrderBook:
    """The book of one market over time (thread-safe, cached per minute)."""

    def __init__(self, series: MinuteSeries, tape: TradeBook, levels: int, liquidity: float):
        self.series, self.tape, self.levels = series, tape, levels
        spec = series.spec
        self._present_key = spec.key ^ 0x5A5A
        self._size_key = spec.key ^ 0xA5A5
        self.unit = max(1.0, spec.volume_per_min * 10**spec.qty_decimals * liquidity / 30)
        self._cache: OrderedDict[int, Touches] = OrderedDict()
        self._lock = threading.Lock()

    # the resting orders beyond the touch -------------------------------------------------
    def present(self, prices: np.ndarray) -> np.ndarray:
        """Which ticks hold resting orders (prices above 0 only)."""
        return (hash_uniform(self._present_key, prices) < PRESENT_SHARE) & (prices > 0)

    def sizes(self, prices: np.ndarray, k: int) -> np.ndarray:
        """Resting lots at ``prices`` during minute ``k``."""
        phase = (hash_uniform(self._present_key, prices, 1) * EPOCH_MINUTES).astype(np.int64)
        epoch = (k + phase) // EPOCH_MINUTES
        u = hash_uniform(self._size_key, prices, epoch)
        wall = hash_uniform(self._size_key ^ 1, prices, epoch) < 0.03
        return np.maximum(1, np.rint(self.unit * -np.log(u) * np.where(wall, 8.0, 1.0))).astype(
            np.int64
        )

    def rolled(self, prices: np.ndarray, k1: int, k2: int) -> np.ndarray:
        """Which levels got a new size between minutes ``k1`` and ``k2``."""
        phase = (hash_uniform(self._present_key, prices, 1) * EPOCH_MINUTES).astype(np.int64)
        return (k1 + phase) // EPOCH_MINUTES != (k2 + phase) // EPOCH_MINUTES

    def beyond(self, price: int, count: int, up: bool) -> np.ndarray:
        """The first ``count`` resting prices strictly above (``up``) or below ``price``."""
        found: list[np.ndarray] = []
        have, start = 0, price
        width = int(count / PRESENT_SHARE * 1.3) + 64
        while have < count:
            cand = start + np.arange(1, width + 1) if up else start - np.arange(1, width + 1)
            cand = cand[cand > 0]
            if not cand.size:
                break
            hit = cand[self.present(cand)]
            found.append(hit)
            have += hit.size
            start = int(cand[-1])
        out = np.concatenate(found) if found else np.empty(0, np.int64)
        return out[:count]

    # the touch over time -----------------------------------------------------------------
    def touches(self, k: int) -> Touches:
        """The book states of minute ``k`` (generated on first use, then cached)."""
        with self._lock:
            hit = self._cache.get(k)
            if hit is not None:
                self._cache.move_to_end(k)
                return hit
        made = self._make_touches(k)
        with self._lock:
            self._cache[k] = made
            if len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return made

    def _carried(self, k: int) -> tuple[int, int, int, int]:
        """The touch left by the last aggTrade before minute ``k``."""
        s = self.series
        traded = np.flatnonzero(s.groups[:k] > 0)
        if not traded.size:
            last = s.prev_close(k)
            return max(1, last - 1), int(self.unit), last, int(self.unit)
        kk = int(traded[-1])
        with self._lock:
            hit = self._cache.get(kk)
        if hit is not None:
            return int(hit.bid[-1]), int(hit.bid_qty[-1]), int(hit.ask[-1]), int(hit.ask_qty[-1])
        _, bid, bid_qty, ask, ask_qty = self._group_states(kk)
        return int(bid[-1]), int(bid_qty[-1]), int(ask[-1]), int(ask_qty[-1])

    def _group_states(self, k: int) -> tuple[np.ndarray, ...]:
        """Offsets and touches of the two states of every aggTrade of minute ``k``."""
        s = self.series
        t = self.tape.minute(k)
        g = t.g_price.size
        rng = np.random.default_rng([s.spec.key, 2_000_003, k])
        spread = 1 + (rng.random(g) < 0.3)
        other = np.maximum(1, np.rint(self.unit * rng.exponential(1.0, g))).astype(np.int64)
        rest = np.maximum(1, np.rint(self.unit * rng.exponential(1.0, g))).astype(np.int64)
        gone = rng.random(g) < CONSUMED_SHARE
        gone[:-1] |= t.g_sweep[1:]  # a taker order walking on took the whole level
        rest = np.where(gone, 0, rest)
        p, buy = t.g_price, t.g_buy
        hit_pre = t.g_qty + rest

        def pairs(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
            return np.column_stack([pre, post]).ravel().astype(np.int64)

        bid = np.where(buy, np.maximum(p - spread, 1), p)
        ask = np.where(buy, p, p + spread)
        return (
            np.repeat(t.g_offset, 2).astype(np.int64),
            pairs(bid, bid),
            pairs(np.where(buy, other, hit_pre), np.where(buy, other, rest)),
            pairs(ask, ask),
            pairs(np.where(buy, hit_pre, other), np.where(buy, rest, other)),
        )

    def _make_touches(self, k: int) -> Touches:
        s = self.series
        s.ensure(k)
        first = self._carried(k)
        offsets, *sides = self._group_states(k)
        bid, bid_qty, ask, ask_qty = (
            np.concatenate([[v], arr]).astype(np.int64) for v, arr in zip(first, sides, strict=True)
        )
        return Touches(
            open_time=s.anchor_ms + k * MINUTE_MS,
            first_update_id=int(s.first_update_id[k]),
            offsets=np.concatenate([[0], offsets]).astype(np.int64),
            bid=bid,
            bid_qty=bid_qty,
            ask=ask,
            ask_qty=ask_qty,
        )

    def state(self, now_ms: int) -> tuple[Touches, int, int]:
        """``(touches, state index, last update id)`` at ``now_ms``."""
        k = self.series.index_of(now_ms)
        t = self.touches(k)
        i = t.index_at(now_ms)
        return t, i, t.first_update_id + i

    def update_id(self, now_ms: int) -> int:
        """Binance's ``lastUpdateId`` of the book at ``now_ms``."""
        return self.state(now_ms)[2]

    # materialised books -----------------------------------------------------------------
    def _side(self, touch: int, own: int, k: int, up: bool, depth: int) -> tuple[np.ndarray, ...]:
        rest = self.beyond(touch, depth - (own > 0), up)
        sizes = self.sizes(rest, k)
        if own > 0:
            return np.concatenate([[touch], rest]), np.concatenate([[own], sizes])
        return rest, sizes

    def snapshot(self, now_ms: int, depth: int | None = None) -> tuple[Levels, Levels, int]:
        """``(bids, asks, lastUpdateId)`` at ``now_ms``: best first, at most ``depth`` a side."""
        t, i, uid = self.state(now_ms)
        k = self.series.index_of(now_ms)
        depth = min(depth or self.levels, self.levels)
        bp, bq = self._side(int(t.bid[i]), int(t.bid_qty[i]), k, False, depth)
        ap, aq = self._side(int(t.ask[i]), int(t.ask_qty[i]), k, True, depth)
        bids = list(zip(bp.tolist(), bq.tolist(), strict=True))
        asks = list(zip(ap.tolist(), aq.tolist(), strict=True))
        return bids, asks, uid

    def top(self, t: Touches, i: int, k: int) -> tuple[int, int, int, int]:
        """Best bid, its lots, best ask, its lots of state ``i``."""
        bp, bq = self._side(int(t.bid[i]), int(t.bid_qty[i]), k, False, 1)
        ap, aq = self._side(int(t.ask[i]), int(t.ask_qty[i]), k, True, 1)
        return int(bp[0]), int(bq[0]), int(ap[0]), int(aq[0])

    def diff(self, t1: int, t2: int) -> tuple[int, int, Levels, Levels] | None:
        """``(U, u, bids, asks)`` taking the book at ``t1`` to the book at ``t2``, or None."""
        k1, k2 = self.series.index_of(t1), self.series.index_of(t2)
        parts = []
        for k in range(k1, k2 + 1):
            t = self.touches(k)
            lo = t.index_at(t1) if k == k1 else 0
            hi = t.index_at(t2) if k == k2 else t.offsets.size - 1
            parts.append((t, lo, hi))
        first_t, first_i = parts[0][0], parts[0][1]
        last_t, last_i = parts[-1][0], parts[-1][2]
        U = first_t.first_update_id + first_i + 1
        u = last_t.first_update_id + last_i
        if u < U:
            return None
        bid_touch = np.concatenate([p[0].bid[p[1] : p[2] + 1] for p in parts])
        ask_touch = np.concatenate([p[0].ask[p[1] : p[2] + 1] for p in parts])
        bids, asks, _ = self.snapshot(t2)
        return (
            U,
            u,
            self._changed(bids, bid_touch, k1, k2, up=False),
            self._changed(asks, ask_touch, k1, k2, up=True),
        )

    def _changed(self, now: Levels, touch: np.ndarray, k1: int, k2: int, up: bool) -> Levels:
        """Levels of one side that may have changed while the touch visited ``touch``."""
        lo, hi = int(touch.min()), int(touch.max())
        near, far = (lo, hi) if up else (hi, lo)
        # the far edge of the book moves with the touch
        edge_a = self.beyond(near, self.levels - 1, up)
        edge_b = self.beyond(far, self.levels, up)
        e1 = int(edge_a[-1]) if edge_a.size else near
        e2 = int(edge_b[-1]) if edge_b.size else far
        ranges = [(lo, hi), (min(e1, e2), max(e1, e2))]
        current = dict(now)
        out: dict[int, int] = {}
        for a, b in ranges:
            prices = np.arange(max(a, 1), b + 1, dtype=np.int64)
            for p in prices[self.present(prices)].tolist():
                out[p] = current.get(p, 0)
        for p in np.unique(touch).tolist():
            out[p] = current.get(p, 0)
        for p, q in now:
            if lo <= p <= hi or ranges[1][0] <= p <= ranges[1][1]:
                out[p] = q
        if k2 != k1 and now:
            prices = np.array([p for p, _ in now], dtype=np.int64)
            for p in prices[self.rolled(prices, k1, k2)].tolist():
                out[p] = current[p]
        return sorted(out.items(), reverse=not up)
