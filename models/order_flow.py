"""Order-flow inputs per candle: recorded trades and book snapshots, aggregated onto candles.

The order-flow feature families (:mod:`models.order_flow_features`) read these per-candle
columns beside the candles, so the model's input stays "a window of candles", now with more
columns. Training aggregates them from the market store, the trader from its live streams
(:mod:`trader.order_flow`); both call the functions here, so serving sees what training saw.

Which data belongs to candle ``t`` (open ``o``, close ``c = o + period``):

* trades stamped ``o <= ts < c``: a trade at exactly ``c`` opens the next candle, as in the
  exchange's own klines;
* the book is the latest snapshot stamped ``c - max_age < ts <= c``: the recorder's close
  snapshot (the last book before the close, stamped with its own time) or any cadence one. A
  snapshot stamped AT the close is the book at the decision instant (the live trader reads its
  book at that moment), so it counts for ``t``; one stamped a millisecond later belongs to
  ``t + 1``. No snapshot in that span: the book inputs are NaN.

Missing is NaN, never zero: a candle outside the recorded span (``covered``) has NaN trade
inputs; a recorded candle without a trade has a count of 0.

Columns (float64):

================  ==============================================================
trade_count       trades in the candle
trade_qty         sum of amounts (base currency)
trade_pv          sum of price * amount (quote currency)
trade_p2v         sum of price^2 * amount (for the VWAP's standard deviation)
trade_buy_qty     sum of amounts of trades whose taker bought
book_bid_px       best bid of the candle's book
book_ask_px       best ask
book_bid_qty_i    quantity at the i-th best bid, i = 1 .. BOOK_LEVELS
book_ask_qty_i    quantity at the i-th best ask
================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numba import njit

from tradeflow import timeframes

__all__ = [
    "BOOK_INPUTS",
    "BOOK_LEVELS",
    "BOOK_PRICE_INPUTS",
    "TRADE_INPUTS",
    "attach",
    "book_inputs",
    "book_qty_inputs",
    "book_row",
    "coverage",
    "trade_inputs",
]

BOOK_LEVELS = 10
TRADE_INPUTS = ("trade_count", "trade_qty", "trade_pv", "trade_p2v", "trade_buy_qty")
BOOK_PRICE_INPUTS = ("book_bid_px", "book_ask_px")


def book_qty_inputs(levels: int) -> tuple[str, ...]:
    """Quantity input columns of the top ``levels`` levels, bids then asks."""
    return (tuple(f"book_bid_qty_{i}" for i in range(1, levels + 1))
            + tuple(f"book_ask_qty_{i}" for i in range(1, levels + 1)))


BOOK_INPUTS = BOOK_PRICE_INPUTS + book_qty_inputs(BOOK_LEVELS)


@njit(cache=True)
def _trade_sums(open_time: np.ndarray, period: int, ts: np.ndarray, price: np.ndarray,
                amount: np.ndarray, buy: np.ndarray) -> np.ndarray:
    # One merge pass over trades and candles, both ascending: O(trades + candles).
    n = open_time.shape[0]
    out = np.zeros((5, n))
    j = 0
    for i in range(ts.shape[0]):
        t = ts[i]
        while j < n and open_time[j] + period <= t:
            j += 1
        if j == n:
            break
        if t < open_time[j]:
            continue  # in a gap between candles, or before the first one
        p = price[i]
        q = amount[i]
        out[0, j] += 1.0
        out[1, j] += q
        out[2, j] += p * q
        out[3, j] += p * p * q
        if buy[i]:
            out[4, j] += q
    return out


def _ascending(ts: np.ndarray) -> bool:
    return ts.size < 2 or bool((ts[1:] >= ts[:-1]).all())


def trade_inputs(open_time: np.ndarray, timeframe: str, trades: pd.DataFrame,
                 covered: tuple[int | None, int | None] = (None, None), *,
                 sides: bool = True) -> dict[str, np.ndarray]:
    """Per-candle trade sums (:data:`TRADE_INPUTS`) of ``trades`` on the candles ``open_time``.

    ``trades`` has ``ts`` (UTC ms), ``price``, ``amount`` and ``side`` (the taker's, 'buy' or
    'sell'), optionally ``id``: a hole in the ids (the recorder was down) makes the candles it
    spans NaN. ``covered`` is the recorded span ``[start, end)`` in UTC ms: candles not wholly
    inside it are NaN. ``start`` defaults to the first trade's time, ``end`` to "through the
    last candle" (the caller knows the recording ran until then). Without ``sides`` the
    taker sides are not read (``trade_buy_qty`` is then NaN): a string compare per trade is
    most of the cost when only the VWAP is wanted.
    """
    open_time = np.ascontiguousarray(open_time, dtype=np.int64)
    period = timeframes.duration_ms(timeframe)
    cols = {"ts": np.int64, "price": np.float64, "amount": np.float64}
    data = {c: np.ascontiguousarray(trades[c].to_numpy(dtype=t)) for c, t in cols.items()}
    data["buy"] = _is_buy(trades["side"]) if sides else np.zeros(len(trades), dtype=bool)
    if "id" in trades.columns:
        data["id"] = trades["id"].to_numpy(dtype=np.int64)
    if not _ascending(data["ts"]):
        order = np.argsort(data["ts"], kind="stable")
        data = {c: v[order] for c, v in data.items()}
    ts = data["ts"]
    sums = _trade_sums(open_time, period, ts, data["price"], data["amount"], data["buy"])
    if "id" in data:
        for k in np.flatnonzero(np.diff(data["id"]) > 1):
            sums[:, (open_time < ts[k + 1]) & (open_time + period > ts[k])] = np.nan
    start, end = covered
    if start is None and ts.size:
        start = int(ts[0])
    known = open_time >= start if start is not None else np.zeros(open_time.size, dtype=bool)
    if end is not None:
        known &= open_time + period <= end
    sums[:, ~known] = np.nan
    if not sides:
        sums[4] = np.nan
    return dict(zip(TRADE_INPUTS, sums, strict=True))


def _is_buy(side: pd.Series) -> np.ndarray:
    if isinstance(side.dtype, pd.CategoricalDtype):
        codes = side.cat.codes.to_numpy()
        buy = list(side.cat.categories).index("buy") if "buy" in side.cat.categories else -2
        return np.ascontiguousarray(codes == buy)
    return np.ascontiguousarray(side.to_numpy() == "buy")


def book_row(bid_price: Sequence[float], bid_amount: Sequence[float],
             ask_price: Sequence[float], ask_amount: Sequence[float]) -> np.ndarray:
    """One book (levels best first) as a row of :data:`BOOK_INPUTS`; NaN where it is short."""
    row = np.full(len(BOOK_INPUTS), np.nan)
    for side, prices, amounts in ((0, bid_price, bid_amount), (1, ask_price, ask_amount)):
        n = min(len(prices), len(amounts), BOOK_LEVELS)
        if n:
            row[side] = float(prices[0])
            row[2 + side * BOOK_LEVELS: 2 + side * BOOK_LEVELS + n] = \
                np.asarray(amounts[:n], dtype=np.float64)
    return row


def book_inputs(open_time: np.ndarray, timeframe: str, snapshots: pd.DataFrame,
                max_age_ms: int | None = None) -> dict[str, np.ndarray]:
    """Per-candle book at the close (:data:`BOOK_INPUTS`) from snapshots.

    ``snapshots`` has ``ts`` (UTC ms) and the level lists ``bid_price``, ``bid_amount``,
    ``ask_price``, ``ask_amount`` (best first), as the market store returns them. The candle's
    book is the latest snapshot with ``close - max_age < ts <= close`` (``max_age_ms``
    defaults to one candle); none: NaN.
    """
    open_time = np.asarray(open_time, dtype=np.int64)
    period = timeframes.duration_ms(timeframe)
    max_age = period if max_age_ms is None else int(max_age_ms)
    out = np.full((len(BOOK_INPUTS), open_time.size), np.nan)
    if len(snapshots) and open_time.size:
        ts = snapshots["ts"].to_numpy(dtype=np.int64)
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        close = open_time + period
        at = np.searchsorted(ts, close, side="right") - 1
        fresh = (at >= 0) & (close - ts[np.maximum(at, 0)] < max_age)
        lists = [snapshots[c].to_numpy() for c in ("bid_price", "bid_amount", "ask_price",
                                                    "ask_amount")]
        rows: dict[int, np.ndarray] = {}
        for col in np.flatnonzero(fresh):
            k = int(order[at[col]])
            if k not in rows:
                rows[k] = book_row(*(values[k] for values in lists))
            out[:, col] = rows[k]
    return dict(zip(BOOK_INPUTS, out, strict=True))


def coverage(candles: pd.DataFrame) -> dict[str, float]:
    """Share (0..1) of a frame's candles with trade data and with a book, where it has them."""
    out: dict[str, float] = {}
    for name, column in (("trades", "trade_qty"), ("book", "book_bid_px")):
        if column in candles.columns and len(candles):
            out[name] = float(np.isfinite(candles[column].to_numpy(dtype=float)).mean())
    return out


def attach(candles: pd.DataFrame, timeframe: str, inputs: Sequence[str],
           trades: pd.DataFrame | None, snapshots: pd.DataFrame | None, *,
           covered: tuple[int | None, int | None] = (None, None),
           max_book_age_ms: int | None = None) -> pd.DataFrame:
    """``candles`` with the order-flow ``inputs`` a pipeline needs (NaN without the data)."""
    open_time = candles["open_time"].to_numpy(dtype=np.int64)
    nan = np.full(open_time.size, np.nan)
    columns: dict[str, np.ndarray] = {}
    if any(c in TRADE_INPUTS for c in inputs):
        columns |= (dict.fromkeys(TRADE_INPUTS, nan) if trades is None or trades.empty
                    else trade_inputs(open_time, timeframe, trades, covered,
                                      sides="trade_buy_qty" in inputs))
    if any(c in BOOK_INPUTS for c in inputs):
        columns |= (dict.fromkeys(BOOK_INPUTS, nan) if snapshots is None
                    else book_inputs(open_time, timeframe, snapshots, max_book_age_ms))
    return candles.assign(**{c: columns[c] for c in inputs})
