"""Higher-timeframe context: features of resampled candles, aligned without look-ahead.

``{name: higher_timeframe, timeframe: 1h, features: [returns, rsi]}`` resamples the base
candles into 1h candles by open time (open first, high max, low min, close last, volume sum),
computes the listed features on them and gives each base row the value of the latest 1h candle
that had CLOSED by the row's open time. At 10:37 (and still at 10:59) that is the 09:00-10:00
candle; from the 11:00 row on it is the 10:00-11:00 one. A row therefore never sees the
higher-timeframe candle it belongs to, which is partial at that point.

Columns are ``htf_{timeframe}_{column}``, e.g. ``htf_1h_ret_1``, ``htf_1h_rsi_14``. Inner
features are names (default parameters) or ``{name: ..., <param>: ...}`` mappings; any family
except ``time_of_day``, the order-flow families and ``higher_timeframe`` itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.families import (
    DAY_MS,
    Bars,
    Columns,
    Family,
    Param,
    Resolved,
    columns_of,
    compute_feature,
    inputs_of,
    register,
    resolve,
    warmup_of,
)
from tradeflow import timeframes

NAME = "higher_timeframe"
_NOT_INNER = {"time_of_day", NAME}
# Month arithmetic counts months since year 0, like tradeflow.timeframes.
_EPOCH_MONTHS = 1970 * 12


def floor_times(open_time: np.ndarray, timeframe: str) -> np.ndarray:
    """Vectorised :func:`tradeflow.timeframes.floor`: open time of the candle holding each ts."""
    n, unit = timeframes.parse(timeframe)
    t = np.asarray(open_time, dtype=np.int64)
    if unit == timeframes.MONTH:
        months = t.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
        months += _EPOCH_MONTHS
        months -= months % n
        return _month_ms(months)
    step = timeframes.duration_ms(timeframe)
    # The grid offset (non-zero for weeks, which open on Monday) read from the scalar helper.
    offset = timeframes.floor(0, timeframe) % step
    return (t - offset) // step * step + offset


def next_open_times(open_time: np.ndarray, timeframe: str) -> np.ndarray:
    """Vectorised :func:`tradeflow.timeframes.next_open` for grid-aligned open times."""
    n, unit = timeframes.parse(timeframe)
    t = np.asarray(open_time, dtype=np.int64)
    if unit == timeframes.MONTH:
        months = t.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
        return _month_ms(months + _EPOCH_MONTHS + n)
    return t + timeframes.duration_ms(timeframe)


def _month_ms(months_since_year0: np.ndarray) -> np.ndarray:
    months = (months_since_year0 - _EPOCH_MONTHS).astype("datetime64[M]")
    return months.astype("datetime64[ms]").astype(np.int64)


def resample(bars: Bars, timeframe: str) -> Bars:
    """Aggregate ``bars`` into ``timeframe`` candles; a first bucket entered mid-way is dropped."""
    buckets = floor_times(bars.open_time, timeframe)
    if len(bars) == 0:
        empty = np.empty(0)
        return Bars(timeframe, buckets, empty, empty, empty, empty, empty)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    if bars.open_time[0] != buckets[0]:
        # Its high, low, open and volume would miss the candles before the frame starts.
        starts = starts[1:]
    if starts.size == 0:
        empty = np.empty(0)
        return Bars(timeframe, np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty)
    first = starts[0]
    rel = starts - first
    ends = np.r_[starts[1:], len(bars)] - 1
    return Bars(
        timeframe,
        buckets[starts],
        bars.open[starts],
        np.maximum.reduceat(bars.high[first:], rel),
        np.minimum.reduceat(bars.low[first:], rel),
        bars.close[ends],
        np.add.reduceat(bars.volume[first:], rel),
    )


def align(base_open_time: np.ndarray, htf: Bars, values: np.ndarray) -> np.ndarray:
    """Per base row, the value of the latest ``htf`` candle closed by the row's open time."""
    closes = next_open_times(htf.open_time, htf.timeframe)
    pos = np.searchsorted(closes, base_open_time, side="right") - 1
    out = np.full(base_open_time.shape[0], np.nan)
    have = pos >= 0
    out[have] = values[pos[have]]
    return out


def _inner(p: dict[str, Any], base_tf: str) -> dict[str, Any]:
    tf = p["timeframe"]
    base_ms, htf_ms = timeframes.duration_ms(base_tf), timeframes.duration_ms(tf)
    base_fits = (
        DAY_MS % base_ms == 0 if timeframes.is_calendar(tf)
        else htf_ms > base_ms and htf_ms % base_ms == 0
    ) and not timeframes.is_calendar(base_tf)
    if not base_fits:
        raise ValueError(
            f"feature {NAME!r}: parameter 'timeframe' must be a whole multiple of the base "
            f"timeframe {base_tf} and longer; got {tf}"
        )
    inner = []
    for spec in p["features"]:
        name = spec if isinstance(spec, str) else spec.get("name")
        if name in _NOT_INNER:
            raise ValueError(
                f"feature {NAME!r}: parameter 'features' cannot include {name!r}; allowed: any "
                f"feature except {', '.join(sorted(_NOT_INNER))}"
            )
        try:
            inner.append(resolve(spec, tf))
        except ValueError as exc:
            raise ValueError(f"feature {NAME!r} ({tf}): {exc}") from None
        if inputs_of(inner[-1]):
            raise ValueError(
                f"feature {NAME!r}: parameter 'features' cannot include the order-flow feature "
                f"{name!r}; declare it at the strategy timeframe"
            )
    columns = [c for f in inner for c in columns_of(f)]
    if len(set(columns)) != len(columns):
        raise ValueError(f"feature {NAME!r}: parameter 'features' repeats a column: {columns}")
    return {"timeframe": tf, "features": tuple(inner)}


def _columns(p: dict[str, Any]) -> list[str]:
    return [f"htf_{p['timeframe']}_{c}" for f in p["features"] for c in columns_of(f)]


def _warmup(p: dict[str, Any], base_tf: str, eps: float) -> int:
    tf = p["timeframe"]
    inner = max(warmup_of(f, tf, eps) for f in p["features"])
    ratio = math.ceil(timeframes.duration_ms(tf) / timeframes.duration_ms(base_tf))
    # Up to ratio - 1 rows of a dropped partial bucket, `inner` complete buckets of history, then
    # the first exact bucket is used only once it has closed (one bucket later).
    return (inner + 2) * ratio - 1


def _compute(bars: Bars, p: dict[str, Any]) -> Columns:
    htf = resample(bars, p["timeframe"])
    out: Columns = {}
    for feature in p["features"]:
        for col, values in _inner_columns(htf, feature).items():
            out[f"htf_{p['timeframe']}_{col}"] = align(bars.open_time, htf, values)
    return out


def _inner_columns(htf: Bars, feature: Resolved) -> Columns:
    if len(htf) == 0:
        return {c: np.empty(0) for c in columns_of(feature)}
    return compute_feature(htf, feature)


HIGHER_TIMEFRAME = register(Family(
    NAME, "features of a higher timeframe, from its last closed candle",
    (Param("timeframe", "timeframe"), Param("features", "features")),
    _columns,
    _warmup,
    _compute,
    nested=_inner,
))
