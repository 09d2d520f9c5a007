"""Checked backtest inputs: candles and targets laid out on a (symbol x time) grid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from tradeflow import timeframes
from tradeflow.strategy import CostSettings
from tradeflow.trading.costs import slippage_fractions

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close")
PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True, slots=True)
class MarketGrid:
    """Candles of one or more symbols on a common time grid, as (symbol x time) arrays.

    ``valid[s, t]`` is False where symbol ``s`` has no candle at ``open_time[t]`` (its prices
    there are NaN). ``slip`` is the slippage fraction of a fill in that candle.
    """

    open_time: np.ndarray
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    valid: np.ndarray
    slip: np.ndarray


# Plain loops, not all(...): numba does not compile generator expressions.
@njit(cache=True)
def _positive_finite(arr: np.ndarray) -> bool:
    for v in arr:  # noqa: SIM110
        if not (v > 0.0 and v < np.inf):
            return False
    return True


@njit(cache=True)
def _increasing(arr: np.ndarray) -> bool:
    for i in range(1, arr.shape[0]):  # noqa: SIM110
        if arr[i] <= arr[i - 1]:
            return False
    return True


@njit(cache=True)
def _within(arr: np.ndarray, lo: float, hi: float) -> bool:
    for v in arr:  # noqa: SIM110
        if v < lo or v > hi:  # NaN compares False: it means "keep"
            return False
    return True


def candle_arrays(candles: pd.DataFrame, name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Open times and price columns of a candle frame; ValueError when malformed."""
    missing = [c for c in CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}")
    if len(candles) == 0:
        raise ValueError(f"{name}: no candles")
    times = np.ascontiguousarray(candles["open_time"].to_numpy(dtype=np.int64))
    if not _increasing(times):
        raise ValueError(f"{name}: open_time must be strictly increasing")
    prices = {}
    for col in PRICE_COLUMNS:
        prices[col] = np.ascontiguousarray(candles[col].to_numpy(dtype=np.float64))
        if not _positive_finite(prices[col]):
            raise ValueError(f"{name}: {col} prices must be finite and positive")
    return times, prices


def check_target(target: pd.Series | np.ndarray, n: int, allow_short: bool,
                 name: str = "target") -> np.ndarray:
    """The target as float64, or ValueError when its length or range is wrong."""
    arr = np.ascontiguousarray(np.asarray(target, dtype=np.float64))
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} values (one per candle), got shape {arr.shape}")
    lo = -1.0 if allow_short else 0.0
    if not _within(arr, lo, 1.0):
        raise ValueError(f"{name}: values must lie in [{lo:g}, 1] (NaN keeps the position)")
    return arr


def infer_period_ms(open_time: np.ndarray, timeframe: str | None) -> int:
    """Candle period for annualisation: the timeframe's, else the smallest spacing (1m if one)."""
    if timeframe is not None:
        return timeframes.duration_ms(timeframe)
    if open_time.shape[0] < 2:
        return 60_000
    # The smallest spacing is the period even when candles are missing.
    return int(np.min(np.diff(open_time)))


def single_grid(candles: pd.DataFrame, costs: CostSettings, symbol: str) -> MarketGrid:
    """A one-symbol grid straight from a candle frame (no copies beyond the columns)."""
    times, prices = candle_arrays(candles, symbol)
    close = prices["close"]
    return MarketGrid(
        open_time=times,
        symbols=(symbol,),
        open=prices["open"].reshape(1, -1),
        high=prices["high"].reshape(1, -1),
        low=prices["low"].reshape(1, -1),
        close=close.reshape(1, -1),
        valid=np.ones((1, close.shape[0]), dtype=np.bool_),
        slip=slippage_fractions(close, costs.slippage).reshape(1, -1),
    )


def _place(n: int, rows: list[np.ndarray] | None, columns: list[np.ndarray],
           fill: float | bool) -> np.ndarray:
    if rows is None:
        return np.stack(columns)
    out = np.full((len(columns), n), fill, dtype=np.asarray(columns[0]).dtype)
    for i, (r, col) in enumerate(zip(rows, columns, strict=True)):
        out[i, r] = col
    return out


def _same_times(times: list[np.ndarray], reference: np.ndarray) -> bool:
    return all(t.shape == reference.shape and np.array_equal(t, reference) for t in times)


def market_grid(candles: Mapping[str, pd.DataFrame], costs: CostSettings) -> MarketGrid:
    """Align every symbol's candles on the union of their open times."""
    if not candles:
        raise ValueError("candles: at least one symbol is needed")
    symbols = tuple(candles)
    parsed = [candle_arrays(candles[s], s) for s in symbols]
    times = [p[0] for p in parsed]
    rows = None
    grid_time = times[0]
    if not _same_times(times, grid_time):
        grid_time = np.unique(np.concatenate(times))
        rows = [np.searchsorted(grid_time, t) for t in times]
    n = grid_time.shape[0]
    prices = {name: _place(n, rows, [p[1][name] for p in parsed], np.nan)
              for name in PRICE_COLUMNS}
    valid = _place(n, rows, [np.ones(t.shape[0], dtype=np.bool_) for t in times], False)
    # Each symbol's slippage estimate uses its own candles, not the grid's gaps.
    slip = _place(n, rows, [slippage_fractions(p[1]["close"], costs.slippage) for p in parsed],
                  0.0)
    return MarketGrid(grid_time, symbols, prices["open"], prices["high"], prices["low"],
                      prices["close"], valid, slip)


def grid_targets(grid: MarketGrid, candles: Mapping[str, pd.DataFrame],
                 targets: Mapping[str, pd.Series | np.ndarray], allow_short: bool) -> np.ndarray:
    """Each symbol's targets (aligned with its own candles) placed on the grid."""
    missing = [s for s in grid.symbols if s not in targets]
    if missing:
        raise ValueError(f"targets: no target series for {missing}")
    times = [candles[s]["open_time"].to_numpy(dtype=np.int64) for s in grid.symbols]
    columns = [check_target(targets[s], t.shape[0], allow_short, f"targets[{s}]")
               for s, t in zip(grid.symbols, times, strict=True)]
    aligned = _same_times(times, grid.open_time)
    rows = None if aligned else [np.searchsorted(grid.open_time, t) for t in times]
    return _place(grid.open_time.shape[0], rows, columns, np.nan)
