"""Labels: what a model learns to predict at the close of candle ``t``, from candles after ``t``.

Two kinds, both chosen by :class:`tradeflow.strategy.LabelSettings`:

* forward return: ``fwd_ret = log(close[t + horizon] / close[t])``; ``label = 1`` when the
  simple return beats ``threshold_bps`` (i.e. ``fwd_ret > log1p(threshold_bps / 1e4)``), else 0.
* triple barrier: from ``close[t]``, a take-profit barrier ``+take_profit_pct`` and a stop-loss
  barrier ``-stop_loss_pct`` are watched on candles ``t+1 .. t+horizon`` using their high and low.
  ``label = 1`` when take-profit is touched first, else 0 (stop first, or neither: time limit).
  A candle that touches both counts as the stop, since the path inside it is unknown.

Rows whose horizon runs past the end of the data have NaN in every column: they are never
filled, and a barrier touched early in an incomplete horizon does not make an exception, which
would label the tail only when something happened (a biased sample).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit

from tradeflow.strategy import LabelSettings

__all__ = [
    "BARRIER_STOP",
    "BARRIER_TAKE",
    "BARRIER_TIME",
    "forward_return",
    "forward_return_labels",
    "make_labels",
    "triple_barrier_labels",
]

BARRIER_TAKE = 1.0
BARRIER_STOP = -1.0
BARRIER_TIME = 0.0


def _check_horizon(horizon: int) -> None:
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"label horizon must be an integer >= 1; got {horizon!r}")


def forward_return(close: np.ndarray | pd.Series, horizon: int) -> np.ndarray:
    """``log(close[t + horizon] / close[t])`` per row; NaN for the last ``horizon`` rows."""
    _check_horizon(horizon)
    lc = np.log(np.asarray(close, dtype=np.float64))
    out = np.full(lc.shape[0], np.nan)
    if lc.shape[0] > horizon:
        out[:-horizon] = lc[horizon:] - lc[:-horizon]
    return out


def forward_return_labels(
    candles: pd.DataFrame, horizon: int, threshold_bps: float
) -> pd.DataFrame:
    """Columns ``fwd_ret`` (log) and ``label`` (1.0 / 0.0 / NaN), indexed like ``candles``."""
    if not math.isfinite(threshold_bps):
        raise ValueError(f"threshold_bps must be finite; got {threshold_bps!r}")
    fwd = forward_return(candles["close"].to_numpy(), horizon)
    label = np.where(np.isnan(fwd), np.nan, (fwd > math.log1p(threshold_bps / 1e4)) * 1.0)
    return pd.DataFrame({"fwd_ret": fwd, "label": label}, index=candles.index)


@njit(cache=True)
def _triple_barrier(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, up: float, down: float, horizon: int
) -> np.ndarray:
    size = close.shape[0]
    out = np.full((4, size), np.nan)  # label, barrier, exit offset, exit log return
    for t in range(size - horizon):
        entry = close[t]
        take = entry * up
        stop = entry * down
        barrier = 0.0
        offset = horizon
        exit_price = close[t + horizon]
        for j in range(1, horizon + 1):
            # The stop is checked first: a candle spanning both barriers counts as a loss.
            if low[t + j] <= stop:
                barrier = -1.0
                offset = j
                exit_price = stop
                break
            if high[t + j] >= take:
                barrier = 1.0
                offset = j
                exit_price = take
                break
        out[0, t] = 1.0 if barrier == 1.0 else 0.0
        out[1, t] = barrier
        out[2, t] = offset
        out[3, t] = math.log(exit_price / entry)
    return out


def triple_barrier_labels(
    candles: pd.DataFrame, take_profit_pct: float, stop_loss_pct: float, horizon: int
) -> pd.DataFrame:
    """Triple-barrier outcome per row, indexed like ``candles``.

    Columns: ``label`` (1.0 take-profit first, else 0.0), ``barrier`` (1.0 take-profit,
    -1.0 stop-loss, 0.0 time limit), ``exit_offset`` (candles after ``t`` at exit, 1..horizon),
    ``exit_ret`` (log return to the barrier price, or to the close at the time limit). All NaN
    where the horizon is incomplete.
    """
    _check_horizon(horizon)
    for name, pct in (("take_profit_pct", take_profit_pct), ("stop_loss_pct", stop_loss_pct)):
        if not (math.isfinite(pct) and pct > 0):
            raise ValueError(f"{name} must be a number > 0; got {pct!r}")
    if stop_loss_pct >= 100:
        raise ValueError(f"stop_loss_pct must be < 100; got {stop_loss_pct!r}")
    out = _triple_barrier(
        candles["high"].to_numpy(dtype=np.float64),
        candles["low"].to_numpy(dtype=np.float64),
        candles["close"].to_numpy(dtype=np.float64),
        1.0 + take_profit_pct / 100.0,
        1.0 - stop_loss_pct / 100.0,
        horizon,
    )
    return pd.DataFrame(
        {"label": out[0], "barrier": out[1], "exit_offset": out[2], "exit_ret": out[3]},
        index=candles.index,
    )


def make_labels(candles: pd.DataFrame, settings: LabelSettings) -> pd.DataFrame:
    """Labels of the kind a strategy asks for; always has a ``label`` column (1.0/0.0/NaN)."""
    if settings.kind == "forward_return":
        return forward_return_labels(candles, settings.horizon, settings.threshold_bps)
    return triple_barrier_labels(
        candles, settings.take_profit_pct, settings.stop_loss_pct, settings.horizon
    )
