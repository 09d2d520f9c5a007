"""Columns derived from raw candles for the soft rules and the GX suite, and their verdicts.

Great Expectations has no built-in for "a return beyond k rolling standard deviations" or "a
forward-filled candle"; these functions compute such quantities per candle so that plain
column expectations (``expect_column_values_to_be_between``) can judge them, and
:func:`soft_failures` applies the same thresholds in numpy so policies can act on each candle.
Pure: frames in, frames out; the clock is passed in as ``last_closed``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeflow import timeframes
from tradeflow.config import ValidationSettings
from tradeflow.contracts.rules import grid_offset, spacing, spacing_agrees
from tradeflow.contracts.schemas import CANDLE_COLUMNS
from tradeflow.market.gaps import missing_before

DERIVED_COLUMNS = ("upper_wick", "lower_wick", "grid_offset_ms", "return_z", "wick_z",
                   "volume_z", "synthetic_fill", "flat_traded", "timeframe_mismatch",
                   "gap_before", "age_candles", "trades_mismatch")


def warmup_candles(cfg: ValidationSettings) -> int:
    """Candles read before the window so rolling statistics are warm at its first candle."""
    return max(cfg.return_window, cfg.volume_window) + 1


def rolling_stats(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the ``window`` values before each one (NaN until half warm)."""
    past = pd.Series(values).rolling(window, min_periods=max(2, window // 2))
    return past.mean().shift(1).to_numpy(), past.std().shift(1).to_numpy()


def flat(frame: pd.DataFrame) -> np.ndarray:
    """open = high = low = close."""
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    return (o == h) & (h == lo) & (lo == c)


def synthetic_fills(frame: pd.DataFrame) -> np.ndarray:
    """Forward-filled candles: zero volume, open = high = low = close = the previous close.

    This is how exchanges (and ccxt's and freqtrade's fillers) paper over minutes without a
    trade; any run length counts, one candle included. The first candle has no previous
    close: a flat zero-volume candle there is counted too (nothing traded, so its price is
    not a trade's either). A flat candle that traded is genuine and not counted.
    """
    c = frame["close"].to_numpy()
    previous = np.empty(len(c))
    previous[:1] = np.nan
    previous[1:] = c[:-1]
    at_previous = (c == previous) | np.isnan(previous)
    return (frame["volume"].to_numpy() == 0) & flat(frame) & at_previous


def candles_behind(last_open: int, last_closed: int, timeframe: str) -> int:
    """Closed candles after ``last_open`` up to ``last_closed`` (0 when up to date)."""
    if last_open >= last_closed:
        return 0
    return timeframes.count_between(timeframes.next_open(last_open, timeframe), last_closed,
                                    timeframe)


def derive(frame: pd.DataFrame, timeframe: str, cfg: ValidationSettings, *, window_start: int,
           last_closed: int | None) -> pd.DataFrame:
    """Candles from ``window_start`` on, with the columns the GX suite judges.

    ``frame`` holds a series' candles ascending; rows before ``window_start`` only warm up
    the rolling statistics, previous closes and gaps. ``age_candles`` is set on the series'
    last candle only (NaN elsewhere, which expectations skip), and nowhere when
    ``last_closed`` is None (a window that ends before the series does).
    ``timeframe_mismatch`` is 1 on every candle when the spacing of the whole frame does not
    agree with the timeframe (a file of another timeframe stored under this one).
    """
    times = frame["open_time"].to_numpy(dtype=np.int64)
    o, h, lo, c, v = (frame[k].to_numpy(dtype=np.float64)
                      for k in ("open", "high", "low", "close", "volume"))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = np.log(c)
        # The larger excursion beyond the body, as a log move: high above it, low below it.
        wick = np.fmax(np.log(h / np.maximum(o, c)), np.log(np.minimum(o, c) / lo))
    returns = np.empty(len(c))
    returns[:1] = np.nan
    returns[1:] = np.diff(log_close)
    # Returns are scored against zero (their rolling mean is noise), volumes against their
    # rolling mean. A zero std makes any move infinite: after a flat stretch, every move is.
    _, sigma = rolling_stats(returns, cfg.return_window)
    volume_mean, volume_std = rolling_stats(v, cfg.volume_window)
    age = np.full(len(times), np.nan)
    if len(times) and last_closed is not None:
        age[-1] = candles_behind(int(times[-1]), last_closed, timeframe)
    synthetic = synthetic_fills(frame)
    mismatch = not spacing_agrees(spacing(times), timeframe)
    derived = {
        "upper_wick": h - np.maximum(o, c),
        "lower_wick": np.minimum(o, c) - lo,
        "grid_offset_ms": grid_offset(times, timeframe),
        "return_z": _ratio(returns, sigma),
        "wick_z": _ratio(wick, sigma),
        "volume_z": _ratio(v - volume_mean, volume_std),
        "synthetic_fill": synthetic.astype(np.int8),
        "flat_traded": (flat(frame) & (v > 0)).astype(np.int8),
        "timeframe_mismatch": np.full(len(times), int(mismatch), dtype=np.int8),
        "gap_before": missing_before(times, timeframe),
        "age_candles": age,
        # set by validation where the series has trades (trade_candles); NaN: not judged
        "trades_mismatch": np.full(len(times), np.nan),
    }
    keep = times >= window_start
    out = frame.loc[keep, list(CANDLE_COLUMNS)].reset_index(drop=True)
    for name in DERIVED_COLUMNS:
        out[name] = derived[name][keep]
    return out


def soft_failures(derived: pd.DataFrame, cfg: ValidationSettings) -> pd.DataFrame:
    """(open_time, rule) of every candle failing a per-candle soft rule, by the thresholds
    the GX suite uses (NaN passes, as GX skips it)."""
    k = cfg.return_sigma_k
    verdicts = {
        "extreme_return": np.abs(derived["return_z"].to_numpy()) > k,
        "extreme_wick": derived["wick_z"].to_numpy() > k,
        "volume_spike": derived["volume_z"].to_numpy() > cfg.volume_z_max,
        "synthetic_fill": derived["synthetic_fill"].to_numpy() == 1,
        "timeframe_mismatch": derived["timeframe_mismatch"].to_numpy() == 1,
        "trades_mismatch": derived["trades_mismatch"].to_numpy() == 1,
    }
    times = derived["open_time"].to_numpy(dtype=np.int64)
    parts = [pd.DataFrame({"open_time": times[bad], "rule": _RULE_OF.get(name, name)})
             for name, bad in verdicts.items() if bad.any()]
    if not parts:
        return pd.DataFrame({"open_time": np.empty(0, dtype=np.int64),
                             "rule": np.empty(0, dtype=object)})
    return pd.concat(parts, ignore_index=True)


_RULE_OF = {"timeframe_mismatch": "timeframe_spacing", "trades_mismatch": "trades_vs_candles"}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / den
