"""The trade tape at aggTrade level: one numba kernel that draws the aggTrades of one minute.

A minute with ``n`` trades and ``g`` aggTrades (groups: fills of one taker order at one price)
is drawn from a counter-based generator keyed by (symbol, minute), so the same kernel gives the
same groups whether a whole day block is aggregated into candles or one minute is asked for
lazily. Per group: price (ticks), taker side, number of fills and quantity (lots).

The price path runs through the candle's anchors: the first group trades at the open, the last
at the close, one interior group at the high and another at the low (when ``g >= 4``). Between
anchors it is a Brownian bridge that moves at about half of the groups and holds the price at
the others (several taker orders hit the same level in a row). The taker side follows the tick
rule with 10% exceptions (an uptick is mostly a buy that lifted the ask); a group at the same
price keeps the side of the group before it; the high is a buy and the low a sell. Fills split
the minute's trade count, quantities split its volume, both exactly. The candle's quote volume
and taker-buy volumes are sums over these groups, so they are exact aggregates of the trades.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_KMUL = np.uint64(0xD1B54A32D192ED03)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_UNIT = 1.0 / 9007199254740992.0  # 2**-53
MOVE_SHARE = 0.5  # share of groups at which the price moves
TICK_RULE = 0.9  # probability that an uptick is a buy (a downtick a sell)


@njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _MUL1
    z = (z ^ (z >> _S27)) * _MUL2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _uniform(state: np.ndarray) -> float:
    """Next uniform in (0, 1) of a splitmix64 stream kept in ``state[0]``."""
    state[0] = state[0] + _GOLDEN
    return (float(_mix(state[0]) >> _S11) + 0.5) * _UNIT


@njit(cache=True)
def _split(total: int, weights: np.ndarray, out: np.ndarray) -> None:
    """``out[i] += `` an integer share of ``total`` proportional to ``weights``; exact sum."""
    m = weights.size
    wsum = 0.0
    for i in range(m):
        wsum += weights[i]
    cum, prev = 0.0, 0
    for i in range(m):
        cum += weights[i]
        target = total if i == m - 1 else min(total, int(math.floor(total * cum / wsum)))
        out[i] += target - prev
        prev = target


@njit(cache=True)
def minute_groups(
    key: np.uint64,
    k: int,
    o: int,
    h: int,
    lo: int,
    c: int,
    n: int,
    g: int,
    volume: int,
    step: float,
    prev_close: int,
    price: np.ndarray,
    buy: np.ndarray,
    fills: np.ndarray,
    qty: np.ndarray,
) -> None:
    """Fill ``price``, ``buy``, ``fills``, ``qty`` (length ``g``) with minute ``k``'s groups.

    ``step`` is the typical price move between groups in ticks; ``prev_close`` the price of
    the last trade before the minute (decides the side of the opening group).
    """
    if g == 0:
        return
    state = np.empty(1, dtype=np.uint64)
    state[0] = _mix(key ^ (np.uint64(k) * _KMUL))
    # anchors: positions and prices, in order
    pos = np.zeros(4, dtype=np.int64)
    val = np.zeros(4, dtype=np.float64)
    count = 2
    i_high, i_low = -1, -1
    if g >= 4:
        i_high = 1 + int(_uniform(state) * (g - 2))
        i_low = 1 + int(_uniform(state) * (g - 3))
        if i_low >= i_high:
            i_low += 1
        first, second = min(i_high, i_low), max(i_high, i_low)
        pos[1], pos[2] = first, second
        val[1] = h if first == i_high else lo
        val[2] = h if second == i_high else lo
        count = 4
    pos[0], val[0] = 0, o
    pos[count - 1], val[count - 1] = g - 1, c
    # an unconstrained walk, then bridged through the anchors
    walk = np.zeros(g, dtype=np.float64)
    moves = np.zeros(g, dtype=np.bool_)
    scale = step * math.sqrt(12.0 / MOVE_SHARE)
    for j in range(1, g):
        moves[j] = _uniform(state) < MOVE_SHARE
        walk[j] = walk[j - 1] + (scale * (_uniform(state) - 0.5) if moves[j] else 0.0)
    path = np.empty(g, dtype=np.float64)
    for s in range(count - 1):
        a, b = pos[s], pos[s + 1]
        span = max(b - a, 1)
        for j in range(a, b + 1):
            frac = (j - a) / span
            bridge = walk[j] - walk[a] - frac * (walk[b] - walk[a])
            path[j] = val[s] + frac * (val[s + 1] - val[s]) + bridge
    for j in range(g):
        p = int(round(path[j]))
        p = min(h, max(lo, p))
        if j > 0 and not moves[j]:
            p = int(price[j - 1])
        price[j] = p
    for s in range(count):
        price[pos[s]] = int(val[s])
    # taker sides by the tick rule
    for j in range(g):
        d = price[j] - (prev_close if j == 0 else price[j - 1])
        u = _uniform(state)
        if d > 0:
            buy[j] = u < TICK_RULE
        elif d < 0:
            buy[j] = u >= TICK_RULE
        else:
            buy[j] = buy[j - 1] if j > 0 else u < 0.5
    if i_high >= 0:
        buy[i_high] = True
        buy[i_low] = False
    # fills split the trade count, quantities split the volume
    weights = np.empty(g, dtype=np.float64)
    for j in range(g):
        weights[j] = -math.log(_uniform(state))
        fills[j] = 1
    _split(n - g, weights, fills)
    for j in range(g):
        weights[j] = fills[j] * (-math.log(_uniform(state))) ** 1.5 + 1e-9
        qty[j] = fills[j]
    _split(volume - n, weights, qty)


@njit(cache=True)
def block_sums(
    key: np.uint64,
    k0: int,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    n: np.ndarray,
    g: np.ndarray,
    volume: np.ndarray,
    step: np.ndarray,
    prev_close: np.ndarray,
    quote: np.ndarray,
    taker_base: np.ndarray,
    taker_quote: np.ndarray,
) -> None:
    """Quote volume and taker-buy volumes (``sum price * qty`` in tick-lots) per minute."""
    most = 1
    for i in range(g.size):
        most = max(most, g[i])
    price = np.empty(most, dtype=np.int64)
    buy = np.empty(most, dtype=np.bool_)
    fills = np.empty(most, dtype=np.int64)
    qty = np.empty(most, dtype=np.int64)
    for i in range(g.size):
        gi = g[i]
        minute_groups(key, k0 + i, o[i], h[i], lo[i], c[i], n[i], gi, volume[i], step[i],
                      prev_close[i], price, buy, fills, qty)  # fmt: skip
        q = tb = tq = 0
        for j in range(gi):
            pq = price[j] * qty[j]
            q += pq
            if buy[j]:
                tb += qty[j]
                tq += pq
        quote[i], taker_base[i], taker_quote[i] = q, tb, tq
