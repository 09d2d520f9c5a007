"""Order-flow feature families: true VWAP from trades, taker pressure, intensity, the book.

They read the per-candle order-flow inputs of :mod:`models.order_flow` (``Bars.flow``) besides
the candles; the pipeline asks for exactly the inputs its families declare. A value is NaN
where its inputs are (trades or book not recorded there): missing, never zero. Column names
(``{p}`` = parameter value; windows in candles unless said otherwise):

==================  ===========================================================================
trade_vwap          true VWAP (sum price*amount / sum amount over the trades) with +-k
                    volume-weighted standard-deviation bands, as the distance of close to each:
                    ``of_vwap_dist_{X}`` close / vwap - 1, ``of_vwap_upper_dist_{X}_{k}`` close
                    / (vwap + k std) - 1, ``of_vwap_lower_dist_{X}_{k}``; X is ``{m}m`` for the
                    rolling ``minutes`` window, ``session`` (UTC day) and ``anchor{a}`` (a day
                    anchored ``anchor_minute`` minutes after 00:00 UTC). A window without a
                    trade gives 0 (no VWAP to be away from); a session the data enters mid-way
                    is NaN.
taker_flow          ``of_buy_ratio_{w}``: taker-buy amount / amount over w candles (0.5 without
                    trades); ``of_buy_pressure_{w}``: (buy - sell amount over w candles) / mean
                    amount per candle over ``baseline`` candles (0 without trades)
trade_intensity     ``of_count_ratio_{w}``: trades per candle over w candles / over ``baseline``
                    candles; ``of_size_ratio_{w}``: mean trade size over w / over ``baseline``
                    (1 when there is nothing to compare)
book_imbalance      ``of_imbalance_{k}``: (bid - ask quantity) / (bid + ask) over the top k
                    levels of the book at the candle close, in [-1, 1]
book_spread         ``of_spread_bps``: (ask - bid) / mid in bps; ``of_microprice_bps``:
                    microprice (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty) against
                    close, in bps
==================  ===========================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from models.families import DAY_MS, Bars, Columns, Family, Param, num, register
from models.order_flow import BOOK_LEVELS, BOOK_PRICE_INPUTS, book_qty_inputs
from tradeflow import indicators as ind
from tradeflow import timeframes

__all__ = ["ORDER_FLOW_FAMILIES"]


def _flow(b: Bars, name: str) -> np.ndarray:
    try:
        return b.flow[name]
    except KeyError:
        raise ValueError(f"order-flow input {name!r} is missing from the candles; order-flow "
                         "features need it (see models.order_flow)") from None


def _ratio(num_: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    # NaN inputs stay NaN (not recorded); a zero denominator is "nothing traded": `empty`.
    out = np.full(num_.shape, empty)
    np.divide(num_, den, out=out, where=den != 0)
    return np.where(np.isnan(num_) | np.isnan(den), np.nan, out)


@njit(cache=True)
def _anchored_sums(open_time: np.ndarray, sums: np.ndarray, anchor: int) -> np.ndarray:
    # Running sums restarting at each anchored day; a day the frame enters mid-way is NaN.
    k, size = sums.shape
    out = np.full((k, size), np.nan)
    if size == 0:
        return out
    day = (open_time[0] - anchor) // 86_400_000
    complete = (open_time[0] - anchor) % 86_400_000 == 0
    acc = np.zeros(k)
    for i in range(size):
        d = (open_time[i] - anchor) // 86_400_000
        if d != day:
            day = d
            complete = (open_time[i] - anchor) % 86_400_000 == 0
            acc[:] = 0.0
        for r in range(k):
            acc[r] += sums[r, i]
        if complete:
            out[:, i] = acc
    return out


def _vwap_columns(close: np.ndarray, qty: np.ndarray, pv: np.ndarray, p2v: np.ndarray,
                  key: str, stds: float) -> Columns:
    traded = qty > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(traded, pv / qty, np.nan)
        std = np.sqrt(np.maximum(np.where(traded, p2v / qty, np.nan) - vwap * vwap, 0.0))
        dist = close / vwap - 1.0
        upper = close / (vwap + stds * std) - 1.0
        lower = close / (vwap - stds * std) - 1.0
    missing = np.isnan(qty)
    out = {}
    k = num(stds)
    for name, values in ((f"of_vwap_dist_{key}", dist), (f"of_vwap_upper_dist_{key}_{k}", upper),
                         (f"of_vwap_lower_dist_{key}_{k}", lower)):
        out[name] = np.where(missing, np.nan, np.where(traded, values, 0.0))
    return out


def _vwap_keys(p: dict[str, Any]) -> list[str]:
    keys = [f"{p['minutes']}m"]
    if p["session"]:
        keys.append("session")
    if p["anchor_minute"]:
        keys.append(f"anchor{p['anchor_minute']}")
    return keys


def _vwap_candles(p: dict[str, Any], tf: str) -> int:
    return p["minutes"] * 60_000 // timeframes.duration_ms(tf)


def _vwap_ok(p: dict[str, Any], tf: str) -> None:
    period = timeframes.duration_ms(tf)
    if (p["minutes"] * 60_000) % period:
        raise ValueError(f"feature 'trade_vwap': parameter 'minutes' must be a multiple of the "
                         f"timeframe {tf}; got {p['minutes']}")
    if p["anchor_minute"] >= 1440 or (p["anchor_minute"] * 60_000) % period:
        raise ValueError(f"feature 'trade_vwap': parameter 'anchor_minute' must be below 1440 "
                         f"and on the {tf} grid; got {p['anchor_minute']}")
    if (p["session"] or p["anchor_minute"]) and period >= DAY_MS:
        raise ValueError(f"feature 'trade_vwap': sessions need a timeframe shorter than 1d; "
                         f"got timeframe {tf}")


def _trade_vwap(b: Bars, p: dict[str, Any]) -> Columns:
    qty, pv, p2v = (_flow(b, c) for c in ("trade_qty", "trade_pv", "trade_p2v"))
    w = _vwap_candles(p, b.timeframe)
    out = _vwap_columns(b.close, ind.rolling_sum(qty, w), ind.rolling_sum(pv, w),
                        ind.rolling_sum(p2v, w), f"{p['minutes']}m", p["stds"])
    sums = np.ascontiguousarray(np.vstack([qty, pv, p2v]))
    anchors = ([("session", 0)] if p["session"] else []) + (
        [(f"anchor{p['anchor_minute']}", p["anchor_minute"])] if p["anchor_minute"] else [])
    for key, minute in anchors:
        s = _anchored_sums(b.open_time, sums, minute * 60_000)
        out |= _vwap_columns(b.close, s[0], s[1], s[2], key, p["stds"])
    return out


def _taker_flow(b: Bars, p: dict[str, Any]) -> Columns:
    qty, buy = _flow(b, "trade_qty"), _flow(b, "trade_buy_qty")
    w, base = p["window"], p["baseline"]
    q_w, buy_w = ind.rolling_sum(qty, w), ind.rolling_sum(buy, w)
    mean_base = ind.rolling_sum(qty, base) / base
    return {
        f"of_buy_ratio_{w}": _ratio(buy_w, q_w, 0.5),
        f"of_buy_pressure_{w}": _ratio(2.0 * buy_w - q_w, mean_base, 0.0),
    }


def _trade_intensity(b: Bars, p: dict[str, Any]) -> Columns:
    count, qty = _flow(b, "trade_count"), _flow(b, "trade_qty")
    w, base = p["window"], p["baseline"]
    c_w, c_b = ind.rolling_sum(count, w), ind.rolling_sum(count, base)
    q_w, q_b = ind.rolling_sum(qty, w), ind.rolling_sum(qty, base)
    size_w, size_b = _ratio(q_w, c_w, np.nan), _ratio(q_b, c_b, np.nan)
    size = _ratio(size_w, size_b, 1.0)
    return {
        f"of_count_ratio_{w}": _ratio(c_w / w, c_b / base, 1.0),
        # No trade in the window or the baseline: nothing to compare, neutral 1.
        f"of_size_ratio_{w}": np.where(np.isnan(c_w) | np.isnan(c_b), np.nan,
                                       np.where(np.isnan(size), 1.0, size)),
    }


def _book_imbalance(b: Bars, p: dict[str, Any]) -> Columns:
    out = {}
    for k in p["levels"]:
        names = book_qty_inputs(k)
        # A level the book does not have holds no quantity; the best level must exist.
        bid = np.nansum(np.vstack([_flow(b, n) for n in names[:k]]), axis=0)
        ask = np.nansum(np.vstack([_flow(b, n) for n in names[k:]]), axis=0)
        missing = np.isnan(_flow(b, "book_bid_px")) | np.isnan(_flow(b, "book_ask_px"))
        out[f"of_imbalance_{k}"] = np.where(missing, np.nan, _ratio(bid - ask, bid + ask, 0.0))
    return out


def _book_spread(b: Bars, p: dict[str, Any]) -> Columns:
    bid, ask = _flow(b, "book_bid_px"), _flow(b, "book_ask_px")
    bq, aq = _flow(b, "book_bid_qty_1"), _flow(b, "book_ask_qty_1")
    mid = (bid + ask) / 2.0
    micro = _ratio(bid * aq + ask * bq, bq + aq, np.nan)
    micro = np.where(np.isnan(micro) & ~np.isnan(mid), mid, micro)
    return {
        "of_spread_bps": (ask - bid) / mid * 1e4,
        "of_microprice_bps": (micro / b.close - 1.0) * 1e4,
    }


def _levels_ok(p: dict[str, Any], tf: str) -> None:
    if max(p["levels"]) > BOOK_LEVELS:
        raise ValueError(f"feature 'book_imbalance': parameter 'levels' must be at most "
                         f"{BOOK_LEVELS}; got {list(p['levels'])}")


def _baseline_ok(name: str) -> Any:
    def check(p: dict[str, Any], tf: str) -> None:
        if p["baseline"] < p["window"]:
            raise ValueError(f"feature {name!r}: parameter 'baseline' must be >= window "
                             f"({p['window']}); got {p['baseline']}")
    return check


def _per_day(tf: str) -> int:
    return max(1, DAY_MS // timeframes.duration_ms(tf))


ORDER_FLOW_FAMILIES = (
    register(Family(
        "trade_vwap", "true VWAP from trades (rolling, UTC session, anchored) with std bands",
        (Param("minutes", "int", 60), Param("stds", "float", 2.0, 0),
         Param("session", "bool", True), Param("anchor_minute", "int", 0, 0)),
        lambda p: [f"of_vwap{s}_{k}{'' if s == '_dist' else '_' + num(p['stds'])}"
                   for k in _vwap_keys(p) for s in ("_dist", "_upper_dist", "_lower_dist")],
        lambda p, tf, eps: max(_vwap_candles(p, tf),
                               _per_day(tf) if p["session"] or p["anchor_minute"] else 0) - 1,
        _trade_vwap,
        check=_vwap_ok,
        inputs=lambda p: ("trade_qty", "trade_pv", "trade_p2v"),
    )),
    register(Family(
        "taker_flow", "taker buy ratio and buy pressure from trades",
        (Param("window", "int", 5), Param("baseline", "int", 60)),
        lambda p: [f"of_buy_ratio_{p['window']}", f"of_buy_pressure_{p['window']}"],
        lambda p, tf, eps: max(p["window"], p["baseline"]) - 1,
        _taker_flow,
        check=_baseline_ok("taker_flow"),
        inputs=lambda p: ("trade_qty", "trade_buy_qty"),
    )),
    register(Family(
        "trade_intensity", "trade count and mean trade size against a baseline",
        (Param("window", "int", 5), Param("baseline", "int", 60)),
        lambda p: [f"of_count_ratio_{p['window']}", f"of_size_ratio_{p['window']}"],
        lambda p, tf, eps: max(p["window"], p["baseline"]) - 1,
        _trade_intensity,
        check=_baseline_ok("trade_intensity"),
        inputs=lambda p: ("trade_count", "trade_qty"),
    )),
    register(Family(
        "book_imbalance", "order-book imbalance over the top k levels at the candle close",
        (Param("levels", "ints", (1, 5)),),
        lambda p: [f"of_imbalance_{k}" for k in p["levels"]],
        lambda p, tf, eps: 0,
        _book_imbalance,
        check=_levels_ok,
        inputs=lambda p: BOOK_PRICE_INPUTS + book_qty_inputs(max(p["levels"])),
    )),
    register(Family(
        "book_spread", "spread and microprice at the candle close",
        (),
        lambda p: ["of_spread_bps", "of_microprice_bps"],
        lambda p, tf, eps: 0,
        _book_spread,
        inputs=lambda p: BOOK_PRICE_INPUTS + ("book_bid_qty_1", "book_ask_qty_1"),
    )),
)
