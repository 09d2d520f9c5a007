"""Position sizing shared by the backtester and the trader.

A size is a fraction of equity. ``fixed_fraction`` always returns ``settings.fraction``.
``volatility_target`` returns ``min(fraction, target_volatility / daily_vol)`` where
``daily_vol = std * sqrt(candles_per_day)`` and ``std`` is the sample std (ddof=1) of the last
``volatility_window`` close-to-close returns up to and including the decision candle's close
(a decision at close ``t`` knows that close). ``settings.fraction`` is the cap. Before a full
window exists the size is 0 (no estimate, no position); a zero std gives the cap.

Turning a fraction into a quantity (:func:`target_quantity`, :func:`affordable_quantity`) is
compiled so the backtest loop and the trader use one definition.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradeflow import timeframes
from tradeflow.strategy import SizingSettings
from tradeflow.trading.volatility import latest_return_std, rolling_return_std

DAY_MS = 86_400_000


def candles_per_day(timeframe: str) -> float:
    """Number of candles of ``timeframe`` in a day (fractional for timeframes above 1d)."""
    return DAY_MS / timeframes.duration_ms(timeframe)


def _vol_fraction(std: np.ndarray | float, settings: SizingSettings, per_day: float) -> np.ndarray:
    std_arr = np.asarray(std, dtype=np.float64)
    daily = std_arr * np.sqrt(per_day)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = settings.target_volatility / daily
    out = np.minimum(settings.fraction, raw)
    return np.where(np.isnan(std_arr), 0.0, out)


def sizing_fractions(close: np.ndarray, settings: SizingSettings, per_day: float) -> np.ndarray:
    """Equity fraction for a decision at each candle's close (vectorised)."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    if settings.kind == "fixed_fraction":
        return np.full(close.shape[0], settings.fraction, dtype=np.float64)
    std = rolling_return_std(close, settings.volatility_window)
    return _vol_fraction(std, settings, per_day)


def sizing_fraction_now(
    recent_closes: np.ndarray, settings: SizingSettings, per_day: float
) -> float:
    """One-step form: the fraction for a decision at the last of ``recent_closes``."""
    if settings.kind == "fixed_fraction":
        return settings.fraction
    std = latest_return_std(recent_closes, settings.volatility_window)
    return float(_vol_fraction(std, settings, per_day))


@njit(cache=True)
def target_quantity(target: float, equity: float, price: float) -> float:
    """Unsigned quantity for a target fraction of ``equity`` filled at ``price``."""
    return abs(target) * equity / price


@njit(cache=True)
def affordable_quantity(free_cash: float, price: float, fee: float) -> float:
    """Largest quantity whose value plus fee fits in ``free_cash`` (vectorbt's size=inf rule)."""
    if free_cash <= 0.0:
        return 0.0
    return free_cash / (1.0 + fee) / price
