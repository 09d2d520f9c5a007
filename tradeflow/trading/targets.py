"""Predicted probabilities to target positions, with hysteresis; shared by backtest and trader.

Per candle, with ``p`` = predicted probability of an up move:

* flat -> long when ``p >= enter_above``; flat -> short when shorting is allowed and
  ``p <= 1 - enter_above`` (long is checked first if both hold).
* long -> flat when ``p < exit_below``; short -> flat when ``p > 1 - exit_below``. A long whose
  exit fires flips straight to short when the short entry condition also holds (and vice versa).
* otherwise the side is kept; a NaN probability keeps the side too.

The target is ``side * fraction`` where the sizing fraction is taken at the candle the side was
entered and held until the side changes: re-sizing every candle would trade on every small
change of a volatility estimate. An entry needs a positive fraction (volatility sizing returns 0
before it has an estimate), otherwise the signal stays flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from tradeflow.strategy import SignalSettings


@njit(cache=True)
def signal_step(
    side: int,
    locked: float,
    p: float,
    fraction: float,
    enter_above: float,
    exit_below: float,
    allow_short: bool,
) -> tuple[int, float]:
    """One hysteresis step: ``(side, locked_fraction)`` after seeing probability ``p``."""
    if np.isnan(p):
        return side, locked
    new_side = side
    if (side > 0 and p < exit_below) or (side < 0 and p > 1.0 - exit_below):
        new_side = 0
    if new_side == 0:
        if p >= enter_above:
            new_side = 1
        elif allow_short and p <= 1.0 - enter_above:
            new_side = -1
    if new_side == side:
        return side, locked
    if new_side != 0 and not fraction > 0.0:
        return 0, 0.0
    return new_side, (fraction if new_side != 0 else 0.0)


@njit(cache=True)
def _targets(
    proba: np.ndarray,
    fractions: np.ndarray,
    enter_above: float,
    exit_below: float,
    allow_short: bool,
) -> np.ndarray:
    out = np.empty(proba.shape[0], dtype=np.float64)
    side = 0
    locked = 0.0
    for i in range(proba.shape[0]):
        side, locked = signal_step(
            side, locked, proba[i], fractions[i], enter_above, exit_below, allow_short
        )
        out[i] = side * locked
    return out


def targets_from_probabilities(
    proba: np.ndarray, settings: SignalSettings, fraction: float | np.ndarray
) -> np.ndarray:
    """Target position per candle (fraction of equity, signed) from predicted probabilities."""
    p = np.ascontiguousarray(proba, dtype=np.float64)
    fr = np.broadcast_to(np.asarray(fraction, dtype=np.float64), p.shape)
    return _targets(
        p, np.ascontiguousarray(fr), settings.enter_above, settings.exit_below, settings.allow_short
    )


@dataclass(frozen=True, slots=True)
class SignalState:
    """The trader's hysteresis state: current side and the fraction locked at entry."""

    side: int = 0
    fraction: float = 0.0

    @property
    def target(self) -> float:
        """Target position implied by this state."""
        return self.side * self.fraction


def next_signal(
    state: SignalState, p: float, settings: SignalSettings, fraction: float
) -> SignalState:
    """One-step form for the trader: same numbers as :func:`targets_from_probabilities`."""
    side, locked = signal_step(
        state.side,
        state.fraction,
        float(p),
        float(fraction),
        settings.enter_above,
        settings.exit_below,
        settings.allow_short,
    )
    return SignalState(side=int(side), fraction=float(locked))
