"""Exit rules shared by the backtester and the trader: stop-loss, tiered take-profit, trailing
stop and maximum holding time, evaluated one candle at a time.

The rules live in one compiled step function, :func:`exit_step`, working on a small float
state array. The backtest loop calls it inside its own compiled loop; the trader calls it
through :func:`step_exits` one closed candle at a time and gets the same fills.

Per candle the step runs two phases. The backtester runs the open phase, then fills the order
decided at the previous close, then the intrabar phase; a candle without such an order can run
both at once (``Phase.BOTH``).

Open phase (only for a position held before this candle's open):

1. Max holding: a position that has completed ``max_holding_candles`` candles exits at this
   open (the limit is known at the previous close, so this is a market order: taker fee and
   adverse slippage).
2. Stop gap: if the open is already through the stop level, everything exits at the open
   (taker fee and slippage).
3. Take-profit gap: every tier whose price the open has passed fills at the open, the better
   price (a resting limit order: maker fee, no slippage).

Intrabar phase (also covers a position entered at this open: its high and low came after the
fill):

4. Stop: if the low (long) or high (short) reaches the stop level, the rest exits at the stop
   level, or at the open if the open is beyond it (taker fee and slippage). When a stop and a
   take-profit both lie inside one candle the order of the two trades is unknown; the STOP is
   assumed to fill first (the conservative choice) and no tier fills on that candle.
5. Otherwise each remaining tier whose price the high (long) or low (short) reaches fills at its
   price (maker fee, no slippage). A tier closes ``fraction`` of the ORIGINAL position (the
   quantity entered, adds included; reductions do not shrink it), capped at what is left.
6. Bookkeeping: the trailing reference (highest high since entry for a long, lowest low for a
   short; it starts at the entry price) is updated with this candle's high/low AFTER the
   checks, so the level used on a candle comes from earlier candles only. The holding counter
   then advances by one.

Levels, from the average entry fill price ``e`` (slippage included) and the trailing reference
``x``: long stop ``max(e * (1 - sl), x * (1 - trail))``, short stop
``min(e * (1 + sl), x * (1 + trail))``; tier ``k`` at ``e * (1 + pct_k)`` (long) or
``e * (1 - pct_k)`` (short). The reason reported for a stop is the rule whose level binds
(``stop_loss`` on a tie).

Re-entry: any exit-rule fill locks the position's side. While locked, targets on that side may
only reduce the position; the lock is released once a target of 0 or of the other side is seen.
So after a stop a target that stays positive does not re-enter: it must go to 0 and back up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum, IntFlag, StrEnum
from typing import Protocol

import numpy as np
from numba import njit

from tradeflow.strategy import ExitSettings

# State array layout (float64), one per position.
SIDE, QTY, BASE_QTY, ENTRY_PRICE, HELD, EXTREME, TIERS_HIT, LOCK = range(8)
STATE_SIZE = 8
# Rule parameters: fractions (not percent); NaN when a rule is off.
P_STOP, P_TRAIL, P_MAX_HOLD = range(3)
# Columns of a fill row written by exit_step.
F_REASON, F_TIER, F_QTY, F_PRICE, F_REF, F_TAKER = range(6)
FILL_COLS = 6
# Below this share of the original quantity a remainder is closed rather than left as dust.
_DUST = 1e-9


class Reason(IntEnum):
    """Why a position was reduced; the integer codes are what the compiled code stores."""

    SIGNAL = 0
    STOP_LOSS = 1
    TRAILING_STOP = 2
    TAKE_PROFIT = 3
    MAX_HOLDING = 4
    OPEN = 5


class ExitReason(StrEnum):
    """Readable reason names, in :class:`Reason` order."""

    SIGNAL = "signal"
    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    TAKE_PROFIT = "take_profit"
    MAX_HOLDING = "max_holding"
    OPEN = "open"


REASON_NAMES: tuple[str, ...] = tuple(r.value for r in ExitReason)


class Phase(IntFlag):
    """Which part of a candle :func:`exit_step` evaluates."""

    OPEN = 1
    INTRABAR = 2
    BOTH = 3


@njit(cache=True)
def reset_state(state: np.ndarray) -> None:
    """Flat position, keeping the re-entry lock."""
    state[SIDE] = 0.0
    state[QTY] = 0.0
    state[BASE_QTY] = 0.0
    state[ENTRY_PRICE] = np.nan
    state[HELD] = 0.0
    state[EXTREME] = np.nan
    state[TIERS_HIT] = 0.0


@njit(cache=True)
def _open(state: np.ndarray, sgn: float, size: float, price: float) -> None:
    state[SIDE] = sgn
    state[QTY] = size
    state[BASE_QTY] = size
    state[ENTRY_PRICE] = price
    state[EXTREME] = price
    state[HELD] = 0.0
    state[TIERS_HIT] = 0.0
    if state[LOCK] != sgn:
        state[LOCK] = 0.0


@njit(cache=True)
def apply_fill_nb(state: np.ndarray, signed_qty: float, price: float) -> None:
    """Update the position for a non-exit fill (entry, add, reduce, close, flip) in place."""
    if signed_qty == 0.0:
        return
    side = state[SIDE]
    qty = state[QTY]
    sgn = 1.0 if signed_qty > 0 else -1.0
    size = abs(signed_qty)
    if side == 0.0:
        _open(state, sgn, size, price)
    elif side == sgn:
        state[ENTRY_PRICE] = (state[ENTRY_PRICE] * qty + price * size) / (qty + size)
        state[QTY] = qty + size
        state[BASE_QTY] = state[BASE_QTY] + size
        if sgn * (price - state[EXTREME]) > 0.0:
            state[EXTREME] = price
    elif size < qty * (1.0 - _DUST):
        state[QTY] = qty - size
    else:
        rest = size - qty
        reset_state(state)
        if rest > _DUST * size:
            _open(state, sgn, rest, price)


@njit(cache=True)
def _stop_level(state: np.ndarray, params: np.ndarray) -> tuple[float, int]:
    side = state[SIDE]
    level = np.nan
    reason = 1
    if not np.isnan(params[P_STOP]):
        level = state[ENTRY_PRICE] * (1.0 - side * params[P_STOP])
    if not np.isnan(params[P_TRAIL]):
        trail = state[EXTREME] * (1.0 - side * params[P_TRAIL])
        if np.isnan(level) or side * (trail - level) > 0.0:
            level = trail
            reason = 2
    return level, reason


@njit(cache=True)
def _write(out: np.ndarray, n: int, reason: int, tier: int, qty: float, price: float,
           ref: float, taker: float) -> int:
    out[n, F_REASON] = reason
    out[n, F_TIER] = tier
    out[n, F_QTY] = qty
    out[n, F_PRICE] = price
    out[n, F_REF] = ref
    out[n, F_TAKER] = taker
    return n + 1


@njit(cache=True)
def _exit_all(state: np.ndarray, reason: int, ref: float, slip: float, out: np.ndarray,
              n: int) -> int:
    side = state[SIDE]
    n = _write(out, n, reason, -1, state[QTY], ref * (1.0 - side * slip), ref, 1.0)
    state[LOCK] = side
    reset_state(state)
    return n


@njit(cache=True)
def _take_profits(state: np.ndarray, o: float, reach: float, tp_pct: np.ndarray,
                  tp_frac: np.ndarray, out: np.ndarray, n: int) -> int:
    side = state[SIDE]
    k = int(state[TIERS_HIT])
    while k < tp_pct.shape[0]:
        level = state[ENTRY_PRICE] * (1.0 + side * tp_pct[k])
        if side * (reach - level) < 0.0:
            break
        # Gapped through at the open: the resting limit fills at the better open price.
        ref = o if side * (o - level) > 0.0 else level
        qty = min(tp_frac[k] * state[BASE_QTY], state[QTY])
        if state[QTY] - qty <= _DUST * state[BASE_QTY]:
            qty = state[QTY]
        n = _write(out, n, 3, k, qty, ref, ref, 0.0)
        state[LOCK] = side
        k += 1
        state[TIERS_HIT] = k
        if qty >= state[QTY]:
            reset_state(state)
            return n
        state[QTY] = state[QTY] - qty
    return n


@njit(cache=True)
def exit_step(state: np.ndarray, o: float, h: float, lo: float, slip: float, params: np.ndarray,
              tp_pct: np.ndarray, tp_frac: np.ndarray, phase: int | np.int64,
              out: np.ndarray) -> int:
    """Apply the exit rules to one candle; write fills to ``out`` and return how many.

    ``out`` needs ``len(tp_pct) + 2`` rows. ``slip`` is the slippage fraction for taker fills.
    """
    side = state[SIDE]
    if side == 0.0:
        return 0
    n = 0
    if phase & 1:
        if not np.isnan(params[P_MAX_HOLD]) and state[HELD] >= params[P_MAX_HOLD]:
            return _exit_all(state, 4, o, slip, out, n)
        level, reason = _stop_level(state, params)
        if not np.isnan(level) and side * (o - level) <= 0.0:
            return _exit_all(state, reason, o, slip, out, n)
        n = _take_profits(state, o, o, tp_pct, tp_frac, out, n)
        if state[SIDE] == 0.0:
            return n
    if phase & 2:
        level, reason = _stop_level(state, params)
        worst = lo if side > 0 else h
        if not np.isnan(level) and side * (worst - level) <= 0.0:
            ref = o if side * (o - level) < 0.0 else level
            return _exit_all(state, reason, ref, slip, out, n)
        best = h if side > 0 else lo
        n = _take_profits(state, o, best, tp_pct, tp_frac, out, n)
        if state[SIDE] == 0.0:
            return n
        if side * (best - state[EXTREME]) > 0.0:
            state[EXTREME] = best
        state[HELD] = state[HELD] + 1.0
    return n


@njit(cache=True)
def release_lock(state: np.ndarray, target: float) -> None:
    """Release the re-entry lock once a target is 0 or on the other side."""
    if state[LOCK] != 0.0 and target * state[LOCK] <= 0.0:
        state[LOCK] = 0.0


# ---------------------------------------------------------------- Python API for the trader


@dataclass(frozen=True, slots=True)
class ExitParams:
    """Exit settings compiled to the arrays :func:`exit_step` reads."""

    params: np.ndarray
    tp_pct: np.ndarray
    tp_frac: np.ndarray

    @classmethod
    def from_settings(cls, settings: ExitSettings) -> ExitParams:
        """Percent settings to fractions; a rule that is off becomes NaN."""
        def off(value: float | None, divisor: float) -> float:
            return math.nan if value is None else value / divisor

        params = np.array(
            [
                off(settings.stop_loss_pct, 100.0),
                off(settings.trailing_stop_pct, 100.0),
                off(settings.max_holding_candles, 1.0),
            ],
            dtype=np.float64,
        )
        tp_pct = np.array([t.pct / 100.0 for t in settings.take_profit], dtype=np.float64)
        tp_frac = np.array([t.fraction for t in settings.take_profit], dtype=np.float64)
        return cls(params, tp_pct, tp_frac)

    @property
    def max_fills(self) -> int:
        """Most fills one candle can produce."""
        return self.tp_pct.shape[0] + 2


class CandleLike(Protocol):
    """Anything with the prices of one candle (a row from ``itertuples()`` will do)."""

    @property
    def open(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...


@dataclass(frozen=True, slots=True)
class PositionState:
    """A position as the exit rules see it; ``side`` 1 long, -1 short, 0 flat.

    ``lock`` is the side on which re-entry is blocked after an exit-rule fill (0: none).
    ``to_dict``/``from_dict`` give a JSON-safe form for the trader to persist.
    """

    side: int = 0
    qty: float = 0.0
    base_qty: float = 0.0
    entry_price: float = math.nan
    held: int = 0
    extreme: float = math.nan
    tiers_hit: int = 0
    lock: int = 0

    def to_array(self) -> np.ndarray:
        """The compiled state layout."""
        values = (self.side, self.qty, self.base_qty, self.entry_price, self.held,
                  self.extreme, self.tiers_hit, self.lock)
        return np.array(values, dtype=np.float64)

    @classmethod
    def from_array(cls, arr: np.ndarray) -> PositionState:
        """Inverse of :meth:`to_array`."""
        return cls(
            side=int(arr[SIDE]), qty=float(arr[QTY]), base_qty=float(arr[BASE_QTY]),
            entry_price=float(arr[ENTRY_PRICE]), held=int(arr[HELD]),
            extreme=float(arr[EXTREME]), tiers_hit=int(arr[TIERS_HIT]), lock=int(arr[LOCK]),
        )

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-safe mapping (NaN becomes None)."""
        out: dict[str, float | int | None] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = None if isinstance(value, float) and math.isnan(value) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, float | int | None]) -> PositionState:
        """Inverse of :meth:`to_dict`."""
        fixed = {k: (math.nan if v is None else v) for k, v in data.items()}
        return cls(**fixed)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ExitFill:
    """One exit fill. ``price`` includes slippage for taker fills; ``trigger`` does not."""

    reason: ExitReason
    qty: float
    price: float
    trigger: float
    taker: bool
    tier: int | None


def step_exits(
    state: PositionState,
    candle: CandleLike,
    settings: ExitSettings | ExitParams,
    *,
    slippage: float = 0.0,
    phase: Phase = Phase.BOTH,
) -> tuple[PositionState, list[ExitFill]]:
    """Run the exit rules over one closed candle: the new state and the fills, in order.

    To reproduce the backtest, a trader whose market order filled at this candle's open runs
    ``Phase.OPEN``, then :func:`apply_fill` with its fill, then ``Phase.INTRABAR``; without an
    order at this open, ``Phase.BOTH`` is the same thing. ``slippage`` is the fraction applied
    to taker fills (:func:`tradeflow.trading.costs.next_fill_slippage` gives the backtest's).
    """
    compiled = settings if isinstance(settings, ExitParams) else ExitParams.from_settings(settings)
    arr = state.to_array()
    out = np.empty((compiled.max_fills, FILL_COLS), dtype=np.float64)
    n = exit_step(arr, float(candle.open), float(candle.high), float(candle.low), float(slippage),
                  compiled.params, compiled.tp_pct, compiled.tp_frac, int(phase), out)
    fills = [
        ExitFill(
            reason=ExitReason(REASON_NAMES[int(row[F_REASON])]),
            qty=float(row[F_QTY]),
            price=float(row[F_PRICE]),
            trigger=float(row[F_REF]),
            taker=bool(row[F_TAKER]),
            tier=None if row[F_TIER] < 0 else int(row[F_TIER]),
        )
        for row in out[:n]
    ]
    return PositionState.from_array(arr), fills


def apply_fill(state: PositionState, signed_qty: float, price: float) -> PositionState:
    """The position after an order fill that is not an exit rule (entry, add, reduce, flip)."""
    arr = state.to_array()
    apply_fill_nb(arr, float(signed_qty), float(price))
    return PositionState.from_array(arr)


def release_reentry_lock(state: PositionState, target: float) -> PositionState:
    """The state after seeing a new target: a target of 0 or the other side frees re-entry."""
    arr = state.to_array()
    release_lock(arr, float(target))
    return PositionState.from_array(arr)
