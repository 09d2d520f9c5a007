"""Technical indicators on float64 arrays, matching TA-Lib's definitions and seeding.

Every function takes 1-D arrays and returns arrays of the same length, NaN before the first
value TA-Lib outputs (its "lookback"). Recursive averages are seeded like TA-Lib: an EMA or a
Wilder average starts from the simple mean of its first ``period`` inputs, so on the same input
array the outputs agree with ``talib`` to within a few units in the last place.

Windowed statistics are computed from each window alone (not from running sums), so their value
at row ``t`` does not depend on where the array starts. Recursive ones do depend on it, but forget
their seed geometrically: after :func:`decay_length` steps its weight is below ``eps``.

Deliberate differences from TA-Lib: RSI is 50 (not 0) when prices did not move at all over its
whole memory, and the Bollinger standard deviation is two-pass per window (TA-Lib subtracts
running sums of squares, which loses digits when prices are large relative to their spread).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Rows per block in the windowed kernels: a block's accumulators stay in L1.
_BLOCK = 256


def _as_float(x: np.ndarray) -> np.ndarray:
    # One contiguous float64 layout means one compiled kernel and identical rounding everywhere.
    return np.ascontiguousarray(x, dtype=np.float64)


def decay_length(alpha: float, eps: float) -> int:
    """Steps after which an exponential average of weight ``alpha`` keeps < ``eps`` of its seed."""
    return math.ceil(math.log(eps) / math.log1p(-alpha))


@njit(cache=True)
def _block_sum(x: np.ndarray, base: int, n: int, acc: np.ndarray) -> None:
    # acc[k] = sum of x[base + k : base + k + n], summed in a fixed order that depends on n only,
    # so a window's sum depends on its values alone. Slices (not computed indices) keep numba's
    # negative-index handling out of the inner loops, which then vectorise across k.
    m = acc.shape[0]
    acc[:] = 0.0
    j = 0
    while j + 4 <= n:
        x0 = x[base + j : base + j + m]
        x1 = x[base + j + 1 : base + j + 1 + m]
        x2 = x[base + j + 2 : base + j + 2 + m]
        x3 = x[base + j + 3 : base + j + 3 + m]
        for k in range(m):
            acc[k] += (x0[k] + x1[k]) + (x2[k] + x3[k])
        j += 4
    while j < n:
        x0 = x[base + j : base + j + m]
        for k in range(m):
            acc[k] += x0[k]
        j += 1


@njit(cache=True)
def _block_sq_dev(x: np.ndarray, base: int, n: int, centre: np.ndarray, acc: np.ndarray) -> None:
    # acc[k] = sum of (x[i] - centre[k])**2 over the window base + k .. base + k + n - 1.
    m = acc.shape[0]
    acc[:] = 0.0
    j = 0
    while j + 4 <= n:
        x0 = x[base + j : base + j + m]
        x1 = x[base + j + 1 : base + j + 1 + m]
        x2 = x[base + j + 2 : base + j + 2 + m]
        x3 = x[base + j + 3 : base + j + 3 + m]
        for k in range(m):
            c = centre[k]
            d0 = x0[k] - c
            d1 = x1[k] - c
            d2 = x2[k] - c
            d3 = x3[k] - c
            acc[k] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
        j += 4
    while j < n:
        x0 = x[base + j : base + j + m]
        for k in range(m):
            d0 = x0[k] - centre[k]
            acc[k] += d0 * d0
        j += 1


@njit(cache=True)
def _rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    size = x.shape[0]
    out = np.full(size, np.nan)
    acc = np.empty(_BLOCK)
    for b0 in range(n - 1, size, _BLOCK):
        m = min(_BLOCK, size - b0)
        a = acc[:m]
        _block_sum(x, b0 - n + 1, n, a)
        out[b0 : b0 + m] = a
    return out


@njit(cache=True)
def _rolling_mean_std(x: np.ndarray, n: int, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    size = x.shape[0]
    out = np.full((2, size), np.nan)
    mean, std = out[0], out[1]
    acc = np.empty(_BLOCK)
    for b0 in range(n - 1, size, _BLOCK):
        m = min(_BLOCK, size - b0)
        a = acc[:m]
        _block_sum(x, b0 - n + 1, n, a)
        centre = mean[b0 : b0 + m]
        for k in range(m):
            centre[k] = a[k] / n
        _block_sq_dev(x, b0 - n + 1, n, centre, a)
        for k in range(m):
            std[b0 + k] = math.sqrt(a[k] / (n - ddof))
    return mean, std


def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of the last ``n`` values at each row (NaN for the first ``n - 1`` rows)."""
    if n < 1:
        raise ValueError(f"window must be >= 1; got {n}")
    return _rolling_sum(_as_float(x), n)


def rolling_mean_std(x: np.ndarray, n: int, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the last ``n`` values (two-pass within each window)."""
    if n < 1 or n <= ddof:
        raise ValueError(f"window must be >= 1 and > ddof={ddof}; got {n}")
    return _rolling_mean_std(_as_float(x), n, ddof)


def sma(x: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average, as ``talib.SMA``."""
    return rolling_mean_std(x, period)[0]


@njit(cache=True)
def _seed_mean(x: np.ndarray, end: int, period: int) -> float:
    total = 0.0
    for i in range(end - period + 1, end + 1):
        total += x[i]
    return total / period


@njit(cache=True)
def _ema(x: np.ndarray, period: int) -> np.ndarray:
    size = x.shape[0]
    out = np.full(size, np.nan)
    if size < period:
        return out
    k = 2.0 / (period + 1)
    keep = 1.0 - k
    prev = _seed_mean(x, period - 1, period)
    out[period - 1] = prev
    for i in range(period, size):
        # prev*(1-k) + k*x equals TA-Lib's (x-prev)*k + prev up to rounding, with a shorter
        # dependency chain (one multiply-add instead of subtract, multiply, add).
        prev = prev * keep + x[i] * k
        out[i] = prev
    return out


def ema(x: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average with ``k = 2 / (period + 1)``, as ``talib.EMA``."""
    if period < 1:
        raise ValueError(f"ema period must be >= 1; got {period}")
    return _ema(_as_float(x), period)


@njit(cache=True)
def _macd(
    x: np.ndarray, fast: int, slow: int, signal: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    size = x.shape[0]
    # One (3, n) block rather than three arrays: separate large allocations page-fault anew
    # on every call and cost more than the arithmetic.
    out = np.full((3, size), np.nan)
    line, sig, hist = out[0], out[1], out[2]
    first = slow + signal - 2
    if size <= first:
        return line, sig, hist
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    kg = 2.0 / (signal + 1)
    # Like TA-Lib, both price EMAs are seeded on the window ending at slow - 1.
    ef = _seed_mean(x, slow - 1, fast)
    es = _seed_mean(x, slow - 1, slow)
    raw = np.empty(signal)
    raw[0] = ef - es
    for i in range(slow, first + 1):
        ef = ef * (1.0 - kf) + x[i] * kf
        es = es * (1.0 - ks) + x[i] * ks
        raw[i - slow + 1] = ef - es
    eg = _seed_mean(raw, signal - 1, signal)
    line[first] = raw[signal - 1]
    sig[first] = eg
    hist[first] = raw[signal - 1] - eg
    for i in range(first + 1, size):
        ef = ef * (1.0 - kf) + x[i] * kf
        es = es * (1.0 - ks) + x[i] * ks
        m = ef - es
        eg = eg * (1.0 - kg) + m * kg
        line[i] = m
        sig[i] = eg
        hist[i] = m - eg
    return line, sig, hist


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram, as ``talib.MACD``.

    Like TA-Lib, both EMAs are seeded on the window ending at index ``slow - 1`` (so the fast
    EMA's seed does not start at 0), the signal EMA is seeded on the first ``signal`` MACD values
    and all three outputs start at index ``slow + signal - 2``.
    """
    if not 0 < fast < slow or signal < 1:
        raise ValueError(
            f"macd needs 0 < fast < slow and signal >= 1; got {fast}, {slow}, {signal}"
        )
    return _macd(_as_float(close), fast, slow, signal)


@njit(cache=True)
def _rsi(x: np.ndarray, period: int) -> np.ndarray:
    size = x.shape[0]
    out = np.full(size, np.nan)
    if size <= period:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        d = x[i] - x[i - 1]
        if d < 0:
            loss -= d
        else:
            gain += d
    gain /= period
    loss /= period
    total = gain + loss
    out[period] = 100.0 * gain / total if total != 0.0 else 50.0
    keep = (period - 1) / period
    w = 1.0 / period
    for i in range(period + 1, size):
        d = x[i] - x[i - 1]
        # Branch-free: up/down moves of a random walk would defeat the branch predictor.
        up = d if d > 0.0 else 0.0
        down = -d if d < 0.0 else 0.0
        gain = gain * keep + up * w
        loss = loss * keep + down * w
        total = gain + loss
        out[i] = 100.0 * gain / total if total != 0.0 else 50.0
    return out


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's RSI in [0, 100], as ``talib.RSI``; first value at index ``period``."""
    if period < 2:
        raise ValueError(f"rsi period must be >= 2; got {period}")
    return _rsi(_as_float(close), period)


@njit(cache=True)
def _true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    size = high.shape[0]
    out = np.full(size, np.nan)
    for i in range(1, size):
        prev = close[i - 1]
        out[i] = max(high[i] - low[i], abs(high[i] - prev), abs(low[i] - prev))
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range, as ``talib.TRANGE``; NaN at index 0 (no previous close)."""
    return _true_range(_as_float(high), _as_float(low), _as_float(close))


@njit(cache=True)
def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    size = high.shape[0]
    out = np.full(size, np.nan)
    if size <= period:
        return out
    total = 0.0
    for i in range(1, period + 1):
        prev = close[i - 1]
        total += max(high[i] - low[i], abs(high[i] - prev), abs(low[i] - prev))
    avg = total / period
    out[period] = avg
    keep = (period - 1) / period
    w = 1.0 / period
    for i in range(period + 1, size):
        prev = close[i - 1]
        tr = max(high[i] - low[i], abs(high[i] - prev), abs(low[i] - prev))
        avg = avg * keep + tr * w
        out[i] = avg
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's average true range, as ``talib.ATR``; first value at index ``period``."""
    if period < 1:
        raise ValueError(f"atr period must be >= 1; got {period}")
    return _atr(_as_float(high), _as_float(low), _as_float(close), period)


@njit(cache=True)
def _bands(mean: np.ndarray, std: np.ndarray, stds: float) -> np.ndarray:
    out = np.empty((3, mean.shape[0]))
    for i in range(mean.shape[0]):
        out[0, i] = mean[i] + stds * std[i]
        out[1, i] = mean[i]
        out[2, i] = mean[i] - stds * std[i]
    return out


def bbands(
    close: np.ndarray, period: int = 20, stds: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper, middle, lower Bollinger bands (SMA, population std), as ``talib.BBANDS``."""
    if period < 2:
        raise ValueError(f"bollinger period must be >= 2; got {period}")
    out = _bands(*rolling_mean_std(close, period, ddof=0), float(stds))
    return out[0], out[1], out[2]
