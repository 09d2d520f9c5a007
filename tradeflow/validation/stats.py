"""Columns derived from raw candles for the statistical (soft) rules and the GX suite.

Great Expectations has no built-in for "a return beyond k rolling standard deviations" or "a
run of flat zero-volume candles"; these functions compute such quantities per candle so that
plain column expectations (``expect_column_values_to_be_between``) can judge them. Pure: frames
in, frames out; the clock is passed in as ``last_closed``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeflow import timeframes
from tradeflow.config import ValidationSettings
from tradeflow.contracts.rules import grid_offset
from tradeflow.contracts.schemas import CANDLE_COLUMNS

DERIVED_COLUMNS = ("upper_wick", "lower_wick", "grid_offset_ms", "return_z", "wick_z",
                   "volume_z", "zero_volume_run", "age_candles")


def warmup_candles(cfg: ValidationSettings) -> int:
    """Candles read before the window so rolling statistics are warm at its first candle."""
    return max(cfg.return_window, cfg.volume_window) + 1


def rolling_stats(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the ``window`` values before each one (NaN until half warm)."""
    past = pd.Series(values).rolling(window, min_periods=max(2, window // 2))
    return past.mean().shift(1).to_numpy(), past.std().shift(1).to_numpy()


def zero_volume_runs(frame: pd.DataFrame) -> np.ndarray:
    """For each candle, the length of the run of flat zero-volume candles it belongs to (0 if
    it is not one): the forward-filled filler some exchanges emit during outages."""
    o, h, lo, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    flat = (v == 0) & (o == h) & (h == lo) & (lo == c)
    edges = np.diff(np.concatenate(([0], flat.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    out = np.zeros(len(flat), dtype=np.int64)
    out[flat] = np.repeat(lengths, lengths)
    return out


def candles_behind(last_open: int, last_closed: int, timeframe: str) -> int:
    """Closed candles after ``last_open`` up to ``last_closed`` (0 when up to date)."""
    if last_open >= last_closed:
        return 0
    return timeframes.count_between(timeframes.next_open(last_open, timeframe), last_closed,
                                    timeframe)


def derive(frame: pd.DataFrame, timeframe: str, cfg: ValidationSettings, *, window_start: int,
           last_closed: int) -> pd.DataFrame:
    """Candles from ``window_start`` on, with the columns the GX suite judges.

    ``frame`` holds a series' candles ascending; rows before ``window_start`` only warm up
    the rolling statistics and zero-volume runs. ``age_candles`` is set on the series' last
    candle only (NaN elsewhere, which expectations skip).
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
    if len(times):
        age[-1] = candles_behind(int(times[-1]), last_closed, timeframe)
    derived = {
        "upper_wick": h - np.maximum(o, c),
        "lower_wick": np.minimum(o, c) - lo,
        "grid_offset_ms": grid_offset(times, timeframe),
        "return_z": _ratio(returns, sigma),
        "wick_z": _ratio(wick, sigma),
        "volume_z": _ratio(v - volume_mean, volume_std),
        "zero_volume_run": zero_volume_runs(frame),
        "age_candles": age,
    }
    keep = times >= window_start
    out = frame.loc[keep, list(CANDLE_COLUMNS)].reset_index(drop=True)
    for name in DERIVED_COLUMNS:
        out[name] = derived[name][keep]
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / den
