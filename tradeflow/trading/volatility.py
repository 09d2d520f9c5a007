"""Recent volatility of close-to-close returns, shared by sizing and the slippage model.

The vectorised form and the one-step form run the same compiled window function, so the
backtester and the trader get bit-identical numbers. Each window is recomputed with a two-pass
mean/variance (O(n * window)) rather than a running sum: it costs a little more, but a running
sum would drift from the one-step value in the last bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def return_std_at(close: np.ndarray, end: int, window: int) -> float:
    """Sample std (ddof=1) of the ``window`` returns ending at ``close[end]``; NaN if too early."""
    if window < 2 or end < window or end >= close.shape[0]:
        return np.nan
    total = 0.0
    for j in range(end - window + 1, end + 1):
        total += close[j] / close[j - 1] - 1.0
    mean = total / window
    acc = 0.0
    for j in range(end - window + 1, end + 1):
        d = close[j] / close[j - 1] - 1.0 - mean
        acc += d * d
    return np.sqrt(acc / (window - 1))


@njit(cache=True)
def rolling_return_std(close: np.ndarray, window: int) -> np.ndarray:
    """``out[t]`` = std of the ``window`` returns ending at close ``t`` (uses closes <= t only)."""
    out = np.empty(close.shape[0], dtype=np.float64)
    for t in range(close.shape[0]):
        out[t] = return_std_at(close, t, window)
    return out


def latest_return_std(recent_closes: np.ndarray, window: int) -> float:
    """One-step form: std of the last ``window`` returns of ``recent_closes`` (NaN if too few)."""
    closes = np.ascontiguousarray(recent_closes, dtype=np.float64)
    return float(return_std_at(closes, closes.shape[0] - 1, window))
