"""Pure indicators for the built-in technical sources (float64 arrays in and out).

Windowed ones (SMA) are computed from each window alone, so a row's value does not depend on
where the array starts; the trader's window and the backtester's whole history then agree
exactly. RSI is Wilder's recursion seeded like TA-Lib (the same definition as
:func:`models.indicators.rsi`, checked by a test); it forgets its seed geometrically, so its
sources ask for :func:`wilder_warmup` rows.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def sma(x: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average; NaN for the first ``period - 1`` rows."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.full(x.shape[0], np.nan)
    if period >= 1 and x.shape[0] >= period:
        out[period - 1:] = np.lib.stride_tricks.sliding_window_view(x, period).mean(axis=1)
    return out


@njit(cache=True)
def _rsi(x: np.ndarray, period: int) -> np.ndarray:
    n = x.shape[0]
    out = np.full(n, np.nan)
    if n <= period:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        d = x[i] - x[i - 1]
        if d > 0:
            gain += d
        else:
            loss -= d
    gain /= period
    loss /= period
    for i in range(period, n):
        if i > period:
            d = x[i] - x[i - 1]
            gain = (gain * (period - 1) + (d if d > 0 else 0.0)) / period
            loss = (loss * (period - 1) + (-d if d < 0 else 0.0)) / period
        total = gain + loss
        out[i] = 50.0 if total == 0.0 else 100.0 * gain / total
    return out


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's RSI in [0, 100]; NaN for the first ``period`` rows; 50 when prices are flat."""
    return _rsi(np.ascontiguousarray(close, dtype=np.float64), int(period))


def wilder_warmup(period: int, eps: float = 1e-10) -> int:
    """Rows after which Wilder's average keeps less than ``eps`` of its seed."""
    alpha = 1.0 / period
    return period + math.ceil(math.log(eps) / math.log1p(-alpha))
