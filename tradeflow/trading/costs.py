"""Trading costs shared by the backtester and the paper broker: fee rates and slippage.

Slippage is a fraction of the reference price, always adverse: a buy fills at
``price * (1 + s)``, a sell at ``price * (1 - s)``. The ``fixed`` model uses ``bps``; the
``volatility`` model uses ``max(bps, k * std)`` where ``std`` is the sample standard deviation
(ddof=1) of the ``volatility_window`` close-to-close returns of the candles that CLOSED BEFORE
the fill. A fill at the open of candle ``i`` therefore sees closes up to ``i - 1`` only. Before
a full window exists the floor ``bps`` applies.
"""

from __future__ import annotations

import numpy as np

from tradeflow.strategy import SlippageSettings
from tradeflow.trading.volatility import latest_return_std, rolling_return_std

BPS = 1e-4


def fee_rate(bps: float) -> float:
    """Basis points to a fraction of traded value."""
    return bps * BPS


def slippage_fractions(close: np.ndarray, settings: SlippageSettings) -> np.ndarray:
    """Slippage fraction for a fill during candle ``i`` (its open or intrabar), per candle."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    floor = settings.bps * BPS
    out = np.full(close.shape[0], floor, dtype=np.float64)
    if settings.kind == "fixed" or close.shape[0] < 2:
        return out
    std = rolling_return_std(close, settings.volatility_window)
    # A fill in candle i may only use returns that closed by candle i - 1.
    scaled = settings.volatility_multiplier * std[:-1]
    np.fmax(out[1:], scaled, out=out[1:])
    return out


def next_fill_slippage(recent_closes: np.ndarray, settings: SlippageSettings) -> float:
    """One-step form: slippage for a fill after the last of ``recent_closes`` (same numbers)."""
    floor = settings.bps * BPS
    if settings.kind == "fixed":
        return floor
    std = latest_return_std(recent_closes, settings.volatility_window)
    if np.isnan(std):
        return floor
    return max(floor, settings.volatility_multiplier * std)
