"""Feature families: what each named feature computes, its parameters, columns and warm-up.

A family turns :class:`Bars` (one symbol's candles as arrays) into named float columns. A value
at row ``t`` uses candle ``t`` (closed when we decide at its close) and earlier candles only.
:func:`resolve` validates a ``{name, params}`` declaration against :data:`FAMILIES` and returns
a :class:`Resolved`, a hashable, picklable tuple the pipeline stores. The higher-timeframe
family lives in :mod:`models.higher_timeframe` and is added to the registry there.

Column names (``{p}`` = parameter value; floats print with ``.`` as ``p``, e.g. ``2p5``):

=================  ==========================================================================
returns            ``ret_{h}``: log(close_t / close_{t-h}) for each horizon h
rsi                ``rsi_{period}``: Wilder RSI in [0, 100] (50 when prices did not move)
macd               ``macd_{f}_{s}_{g}``, ``macd_signal_{f}_{s}_{g}``, ``macd_hist_{f}_{s}_{g}``:
                   TA-Lib MACD outputs divided by close (comparable across symbols)
bollinger          ``bb_pctb_{period}_{stds}`` (close - lower) / (upper - lower), 0.5 on a flat
                   window; ``bb_width_{period}_{stds}`` (upper - lower) / middle
atr                ``atr_{period}``: Wilder ATR / close
volatility         ``vol_{w}``: sample std (ddof=1) of the last w one-candle log returns
volume_zscore      ``volz_{w}``: (volume - mean) / std over the last w volumes (0 if constant)
vwap_distance      ``vwap_dist_{w}``: close / VWAP of the last w candles - 1, typical price
                   (h+l+c)/3; ``vwap_dist_session``: the same against the VWAP since 00:00 UTC
candle_shape       ``body`` (close-open)/(high-low) in [-1, 1]; ``upper_wick``, ``lower_wick``
                   as fractions of high-low (all 0 when high == low); ``hl_range`` (high-low)/close
time_of_day        ``tod_sin``, ``tod_cos`` of the candle's open time of day (UTC) and, with
                   day_of_week, ``dow_sin``, ``dow_cos`` of its position in the week (Mon 00:00 = 0)
=================  ==========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from tradeflow import indicators as ind
from tradeflow import timeframes

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
# 1970-01-01 (epoch day 0) was a Thursday: day 3 of a week that opens on Monday.
_EPOCH_WEEKDAY = 3
_REQUIRED = object()
Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class Bars:
    """One symbol's candles as float64 arrays (``open_time`` int64 UTC ms), on ``timeframe``.

    ``flow`` holds the per-candle order-flow inputs the pipeline's families asked for
    (:mod:`models.order_flow`); NaN where trades or the book were not recorded.
    """

    timeframe: str
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    flow: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.open_time.shape[0])


class Resolved(NamedTuple):
    """A validated feature: family name and its complete, normalised parameters."""

    name: str
    params: tuple[tuple[str, Any], ...]

    @property
    def kwargs(self) -> dict[str, Any]:
        """Parameters as a dict."""
        return dict(self.params)


@dataclass(frozen=True)
class Param:
    """One parameter of a family: its kind, default and lower bound."""

    name: str
    kind: str  # "int", "ints", "float", "bool", "timeframe", "features"
    default: Any = _REQUIRED
    minimum: float = 1

    @property
    def required(self) -> bool:
        """True when the parameter has no default."""
        return self.default is _REQUIRED

    def allowed(self) -> str:
        """Human description of the allowed values."""
        bound = f"{self.minimum:g}"
        return {
            "int": f"an integer >= {bound}",
            "ints": f"a non-empty list of distinct integers >= {bound}",
            "float": f"a number > {bound}",
            "bool": "true or false",
            "timeframe": "a timeframe such as 1h",
            "features": "a non-empty list of feature names or {name: ..., params} mappings",
        }[self.kind]

    def normalise(self, feature: str, value: Any) -> Any:
        """Check ``value`` and return it in canonical, hashable form; ValueError otherwise."""
        ok = _NORMALISERS[self.kind](value, self.minimum)
        if ok is None:
            raise ValueError(
                f"feature {feature!r}: parameter {self.name!r} must be {self.allowed()}; "
                f"got {value!r}"
            )
        return ok


def _int(v: Any, lo: float) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= lo else None


def _ints(v: Any, lo: float) -> tuple[int, ...] | None:
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list | tuple) or not v or len(set(v)) != len(v):
        return None
    out = tuple(_int(x, lo) for x in v)
    return None if any(x is None for x in out) else out  # type: ignore[return-value]


def _float(v: Any, lo: float) -> float | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > lo
    return float(v) if ok else None


def _bool(v: Any, lo: float) -> bool | None:
    return v if isinstance(v, bool) else None


def _timeframe(v: Any, lo: float) -> str | None:
    try:
        timeframes.parse(v)
    except (TypeError, ValueError):
        return None
    return str(v)


def _features(v: Any, lo: float) -> tuple[Any, ...] | None:
    if isinstance(v, str | Mapping):
        v = [v]
    if not isinstance(v, list | tuple) or not v:
        return None
    return tuple(v)


_NORMALISERS: dict[str, Callable[[Any, float], Any]] = {
    "int": _int,
    "ints": _ints,
    "float": _float,
    "bool": _bool,
    "timeframe": _timeframe,
    "features": _features,
}


@dataclass(frozen=True)
class Family:
    """A named feature family: parameters, column names, warm-up and computation."""

    name: str
    doc: str
    params: tuple[Param, ...]
    columns: Callable[[dict[str, Any]], list[str]]
    # (params, timeframe, seed_weight) -> rows before the first exact value
    warmup: Callable[[dict[str, Any], str, float], int]
    compute: Callable[[Bars, dict[str, Any]], Columns]
    # (params, timeframe) -> None; raises ValueError naming the parameter
    check: Callable[[dict[str, Any], str], None] | None = None
    # Parameters that are themselves features and need resolving (higher timeframe only).
    nested: Callable[[dict[str, Any], str], dict[str, Any]] | None = None
    # Per-candle order-flow input columns the family reads (models.order_flow), if any.
    inputs: Callable[[dict[str, Any]], tuple[str, ...]] | None = None


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family to the registry (names are unique)."""
    if family.name in FAMILIES:
        raise ValueError(f"feature {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def resolve(spec: Any, timeframe: str) -> Resolved:
    """Validate a feature declaration (FeatureSpec, ``{name, ...}`` or a bare name)."""
    name: Any
    if isinstance(spec, str):
        name, given = spec, {}
    elif isinstance(spec, Mapping):
        given = dict(spec.get("params", {k: v for k, v in spec.items() if k != "name"}))
        name = spec.get("name")
    else:  # FeatureSpec or anything shaped like it
        name, given = getattr(spec, "name", None), dict(getattr(spec, "params", {}))
    family = FAMILIES.get(name) if isinstance(name, str) else None
    if family is None:
        raise ValueError(f"unknown feature {name!r}; allowed: {', '.join(sorted(FAMILIES))}")
    known = {p.name: p for p in family.params}
    for key in given:
        if key not in known:
            allowed = ", ".join(known) or "no parameters"
            raise ValueError(f"feature {name!r}: unknown parameter {key!r}; allowed: {allowed}")
    values: dict[str, Any] = {}
    for p in family.params:
        if p.name in given:
            values[p.name] = p.normalise(family.name, given[p.name])
        elif p.default is _REQUIRED:
            raise ValueError(f"feature {name!r}: parameter {p.name!r} is required ({p.allowed()})")
        else:
            values[p.name] = p.default
    if family.nested is not None:
        values = family.nested(values, timeframe)
    if family.check is not None:
        family.check(values, timeframe)
    return Resolved(family.name, tuple(values.items()))


def columns_of(feature: Resolved) -> list[str]:
    """Output column names of a resolved feature."""
    return FAMILIES[feature.name].columns(feature.kwargs)


def inputs_of(feature: Resolved) -> tuple[str, ...]:
    """Order-flow input columns a resolved feature reads beside the candles (often none)."""
    family = FAMILIES[feature.name]
    return () if family.inputs is None else family.inputs(feature.kwargs)


def warmup_of(feature: Resolved, timeframe: str, seed_weight: float) -> int:
    """Rows a resolved feature needs before its first exact value."""
    return FAMILIES[feature.name].warmup(feature.kwargs, timeframe, seed_weight)


def compute_feature(bars: Bars, feature: Resolved) -> Columns:
    """Columns of one resolved feature on ``bars``."""
    return FAMILIES[feature.name].compute(bars, feature.kwargs)


def num(x: float | int) -> str:
    """Parameter value as it appears in a column name: 2.0 -> '2', 2.5 -> '2p5'."""
    return f"{x:g}".replace(".", "p")


def _session_ok(p: dict[str, Any], tf: str) -> None:
    if p["session"] and timeframes.duration_ms(tf) >= DAY_MS:
        raise ValueError(
            f"feature 'vwap_distance': parameter 'session' needs a timeframe shorter than 1d "
            f"(sessions are UTC days); got timeframe {tf}"
        )


def _macd_ok(p: dict[str, Any], tf: str) -> None:
    if p["fast"] >= p["slow"]:
        raise ValueError(
            f"feature 'macd': parameter 'fast' must be < slow ({p['slow']}); got {p['fast']}"
        )


def _safe_div(num_: np.ndarray, den: np.ndarray, fill: float) -> np.ndarray:
    # Degenerate denominators (flat windows, zero range) map to a neutral value, never inf/NaN.
    out = np.full(num_.shape, fill)
    np.divide(num_, den, out=out, where=den != 0)
    return np.where(np.isnan(den), np.nan, out)


def _returns(b: Bars, p: dict[str, Any]) -> Columns:
    lc = np.log(b.close)
    out = {}
    for h in p["horizons"]:
        r = np.full(len(b), np.nan)
        r[h:] = lc[h:] - lc[:-h]
        out[f"ret_{h}"] = r
    return out


def _rsi(b: Bars, p: dict[str, Any]) -> Columns:
    return {f"rsi_{p['period']}": ind.rsi(b.close, p["period"])}


def _macd(b: Bars, p: dict[str, Any]) -> Columns:
    key = f"{p['fast']}_{p['slow']}_{p['signal']}"
    line, sig, hist = ind.macd(b.close, p["fast"], p["slow"], p["signal"])
    return {
        f"macd_{key}": line / b.close,
        f"macd_signal_{key}": sig / b.close,
        f"macd_hist_{key}": hist / b.close,
    }


def _bollinger(b: Bars, p: dict[str, Any]) -> Columns:
    key = f"{p['period']}_{num(p['stds'])}"
    upper, middle, lower = ind.bbands(b.close, p["period"], p["stds"])
    width = upper - lower
    # A flat window leaves a band of rounding noise, not 0: treat anything that small as flat.
    band = np.where(width <= 1e-12 * middle, 0.0, width)
    return {
        f"bb_pctb_{key}": _safe_div(b.close - lower, band, 0.5),
        f"bb_width_{key}": width / middle,
    }


def _atr(b: Bars, p: dict[str, Any]) -> Columns:
    return {f"atr_{p['period']}": ind.atr(b.high, b.low, b.close, p["period"]) / b.close}


def _volatility(b: Bars, p: dict[str, Any]) -> Columns:
    r = np.full(len(b), np.nan)
    lc = np.log(b.close)
    r[1:] = lc[1:] - lc[:-1]
    return {f"vol_{w}": ind.rolling_mean_std(r, w, ddof=1)[1] for w in p["windows"]}


def _volume_zscore(b: Bars, p: dict[str, Any]) -> Columns:
    mean, std = ind.rolling_mean_std(b.volume, p["window"])
    # A flat window has a std of rounding noise, not 0: treat anything that small as flat.
    flat = std <= 1e-12 * np.abs(mean)
    return {f"volz_{p['window']}": _safe_div(b.volume - mean, np.where(flat, 0.0, std), 0.0)}


@njit(cache=True)
def _session_sums(open_time: np.ndarray, pv: np.ndarray, vol: np.ndarray) -> np.ndarray:
    # Cumulative sums restart at each UTC day; a day the frame enters mid-way is unknown (NaN).
    size = open_time.shape[0]
    out = np.full((2, size), np.nan)
    if size == 0:
        return out
    day = open_time[0] // 86_400_000
    complete = open_time[0] % 86_400_000 == 0
    spv = 0.0
    sv = 0.0
    for i in range(size):
        d = open_time[i] // 86_400_000
        if d != day:
            day = d
            complete = True
            spv = 0.0
            sv = 0.0
        spv += pv[i]
        sv += vol[i]
        if complete:
            out[0, i] = spv
            out[1, i] = sv
    return out


def _vwap_dist(close: np.ndarray, spv: np.ndarray, sv: np.ndarray) -> np.ndarray:
    # Without volume the VWAP is undefined; the distance is then reported as 0, never NaN.
    out = np.where(np.isnan(sv), np.nan, 0.0)
    traded = sv > 0
    out[traded] = close[traded] / (spv[traded] / sv[traded]) - 1.0
    return out


def _vwap_distance(b: Bars, p: dict[str, Any]) -> Columns:
    pv = (b.high + b.low + b.close) / 3.0 * b.volume
    w = p["window"]
    out = {f"vwap_dist_{w}": _vwap_dist(b.close, ind.rolling_sum(pv, w),
                                        ind.rolling_sum(b.volume, w))}
    if p["session"]:
        spv, sv = _session_sums(b.open_time, pv, b.volume)
        out["vwap_dist_session"] = _vwap_dist(b.close, spv, sv)
    return out


def _candle_shape(b: Bars, p: dict[str, Any]) -> Columns:
    rng = b.high - b.low
    top = np.maximum(b.open, b.close)
    bottom = np.minimum(b.open, b.close)
    return {
        "body": _safe_div(b.close - b.open, rng, 0.0),
        "upper_wick": _safe_div(b.high - top, rng, 0.0),
        "lower_wick": _safe_div(bottom - b.low, rng, 0.0),
        "hl_range": rng / b.close,
    }


def _time_of_day(b: Bars, p: dict[str, Any]) -> Columns:
    day_angle = 2.0 * np.pi * (b.open_time % DAY_MS) / DAY_MS
    out = {"tod_sin": np.sin(day_angle), "tod_cos": np.cos(day_angle)}
    if p["day_of_week"]:
        week_angle = 2.0 * np.pi * ((b.open_time + _EPOCH_WEEKDAY * DAY_MS) % WEEK_MS) / WEEK_MS
        out |= {"dow_sin": np.sin(week_angle), "dow_cos": np.cos(week_angle)}
    return out


def _per_day(tf: str) -> int:
    return max(1, DAY_MS // timeframes.duration_ms(tf))


def _decay(alpha: float, eps: float) -> int:
    return ind.decay_length(alpha, eps)


register(Family(
    "returns", "log returns over several horizons",
    (Param("horizons", "ints", (1,)),),
    lambda p: [f"ret_{h}" for h in p["horizons"]],
    lambda p, tf, eps: max(p["horizons"]),
    _returns,
))
register(Family(
    "rsi", "Wilder's relative strength index",
    (Param("period", "int", 14, 2),),
    lambda p: [f"rsi_{p['period']}"],
    lambda p, tf, eps: p["period"] + _decay(1 / p["period"], eps),
    _rsi,
))
register(Family(
    "macd", "MACD line, signal and histogram over close",
    (Param("fast", "int", 12), Param("slow", "int", 26, 2), Param("signal", "int", 9)),
    lambda p: [f"macd{s}_{p['fast']}_{p['slow']}_{p['signal']}" for s in ("", "_signal",
                                                                          "_hist")],
    lambda p, tf, eps: (p["slow"] + p["signal"] - 2 + _decay(2 / (p["slow"] + 1), eps)
                        + _decay(2 / (p["signal"] + 1), eps)),
    _macd,
    check=_macd_ok,
))
register(Family(
    "bollinger", "Bollinger %B and band width (SMA, population std)",
    (Param("period", "int", 20, 2), Param("stds", "float", 2.0, 0)),
    lambda p: [f"bb_{s}_{p['period']}_{num(p['stds'])}" for s in ("pctb", "width")],
    lambda p, tf, eps: p["period"] - 1,
    _bollinger,
))
register(Family(
    "atr", "Wilder's average true range over close",
    (Param("period", "int", 14),),
    lambda p: [f"atr_{p['period']}"],
    lambda p, tf, eps: p["period"] + _decay(1 / p["period"], eps),
    _atr,
))
register(Family(
    "volatility", "rolling std of one-candle log returns",
    (Param("windows", "ints", (15,), 2),),
    lambda p: [f"vol_{w}" for w in p["windows"]],
    lambda p, tf, eps: max(p["windows"]),
    _volatility,
))
register(Family(
    "volume_zscore", "z-score of volume in a rolling window",
    (Param("window", "int", 60, 2),),
    lambda p: [f"volz_{p['window']}"],
    lambda p, tf, eps: p["window"] - 1,
    _volume_zscore,
))
register(Family(
    "vwap_distance", "distance of close to the rolling and the session (UTC day) VWAP",
    (Param("window", "int", 60), Param("session", "bool", True)),
    lambda p: [f"vwap_dist_{p['window']}"] + (["vwap_dist_session"] if p["session"] else []),
    lambda p, tf, eps: max(p["window"], _per_day(tf) if p["session"] else 0) - 1,
    _vwap_distance,
    check=_session_ok,
))
register(Family(
    "candle_shape", "body and wicks relative to the range, range relative to close",
    (),
    lambda p: ["body", "upper_wick", "lower_wick", "hl_range"],
    lambda p, tf, eps: 0,
    _candle_shape,
))
register(Family(
    "time_of_day", "cyclic time of day and (optionally) day of week, UTC",
    (Param("day_of_week", "bool", True),),
    lambda p: ["tod_sin", "tod_cos"] + (["dow_sin", "dow_cos"] if p["day_of_week"] else []),
    lambda p, tf, eps: 0,
    _time_of_day,
))
