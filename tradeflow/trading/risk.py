"""Hard risk limits shared by the trader and (for the exposure caps) the backtester.

Everything is pure: time and portfolio values are passed in and the state is an explicit,
serialisable :class:`RiskState`. Targets are signed fractions of equity.

* Exposure caps (:func:`cap_target`, compiled so the backtest loop uses the same code): a
  target is clipped to ``max_position_fraction``; an increase is then cut so the sum of absolute
  exposures stays within ``max_total_exposure``. A cap never forces a reduction of what is held.
* Orders per minute: at most ``max_orders_per_minute`` orders in any trailing 60 s window.
* Daily loss limit (UTC days): once equity (realised and unrealised) falls
  ``daily_loss_limit_pct`` below the day's starting equity, no entries or increases for the
  rest of that UTC day.
* Drawdown kill switch, from the peak equity seen: ACTIVE; REDUCING beyond
  ``reduce_drawdown_pct`` (targets scaled by ``(max - dd) / (max - reduce)`` and only
  reductions pass; back to ACTIVE when the drawdown recovers); HALTED beyond
  ``max_drawdown_pct`` (every position is flattened, nothing else passes; sticky until an
  operator calls :func:`resume`).

Reductions are never blocked by the rate limit or the daily limit: getting smaller is how
risk is taken off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from numba import njit

from tradeflow.strategy import RiskSettings

DAY_MS = 86_400_000
MINUTE_MS = 60_000


@njit(cache=True)
def cap_target(target: float, current: float, others: float, max_position: float,
               max_total: float) -> float:
    """Target after the per-symbol and total exposure caps.

    ``current`` is this symbol's exposure, ``others`` the absolute exposure of all other symbols.
    """
    t = min(max(target, -max_position), max_position)
    flips = t * current < 0.0
    if not (flips or abs(t) > abs(current)):
        return t
    room = max_total - others
    if abs(t) <= room:
        return t
    limit = max(room, 0.0) if flips else max(room, abs(current))
    return math.copysign(min(abs(t), limit), t)


class RiskMode(StrEnum):
    """Kill-switch states."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class Verdict(StrEnum):
    """Outcome of a risk check."""

    APPROVED = "approved"
    RESIZED = "resized"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A wish to move ``symbol`` to ``target`` (signed fraction of equity)."""

    symbol: str
    target: float


@dataclass(frozen=True, slots=True)
class PortfolioSnapshot:
    """Equity and signed position values (quote currency) at the time of a check."""

    equity: float
    positions: Mapping[str, float] = field(default_factory=dict)

    def exposure(self, symbol: str) -> float:
        """Signed position value of ``symbol`` as a fraction of equity."""
        if self.equity <= 0:
            return 0.0
        return self.positions.get(symbol, 0.0) / self.equity

    def other_exposure(self, symbol: str) -> float:
        """Sum of absolute exposures of every symbol but ``symbol``."""
        if self.equity <= 0:
            return 0.0
        return sum(abs(v) for k, v in self.positions.items() if k != symbol) / self.equity


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """What the risk layer lets through: the (possibly resized) target and why."""

    verdict: Verdict
    target: float
    reasons: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """True unless rejected."""
        return self.verdict is not Verdict.REJECTED


@dataclass(frozen=True, slots=True)
class RiskState:
    """Everything the risk layer remembers; ``to_dict``/``from_dict`` for persistence."""

    mode: RiskMode = RiskMode.ACTIVE
    peak_equity: float | None = None
    day: int | None = None
    day_start_equity: float | None = None
    day_blocked: bool = False
    order_times: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping."""
        return {
            "mode": self.mode.value,
            "peak_equity": self.peak_equity,
            "day": self.day,
            "day_start_equity": self.day_start_equity,
            "day_blocked": self.day_blocked,
            "order_times": list(self.order_times),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            mode=RiskMode(data["mode"]),
            peak_equity=data.get("peak_equity"),
            day=data.get("day"),
            day_start_equity=data.get("day_start_equity"),
            day_blocked=bool(data.get("day_blocked", False)),
            order_times=tuple(int(t) for t in data.get("order_times", ())),
        )

    def drawdown(self, equity: float) -> float:
        """Fractional drawdown of ``equity`` from the peak (0 without a peak)."""
        if not self.peak_equity:
            return 0.0
        return max(0.0, 1.0 - equity / self.peak_equity)


def observe(settings: RiskSettings, state: RiskState, equity: float, now_ms: int) -> RiskState:
    """Roll the UTC day, track the peak and move the kill switch for the current equity."""
    day = now_ms // DAY_MS
    day_start = state.day_start_equity
    blocked = state.day_blocked
    if state.day != day or day_start is None:
        day_start, blocked = equity, False
    if day_start > 0 and (1.0 - equity / day_start) * 100.0 >= settings.daily_loss_limit_pct:
        blocked = True
    peak = equity if state.peak_equity is None else max(state.peak_equity, equity)
    dd_pct = (1.0 - equity / peak) * 100.0 if peak > 0 else 0.0
    mode = state.mode
    if dd_pct >= settings.max_drawdown_pct or mode is RiskMode.HALTED:
        mode = RiskMode.HALTED
    elif dd_pct >= settings.reduce_drawdown_pct:
        mode = RiskMode.REDUCING
    else:
        mode = RiskMode.ACTIVE
    recent = tuple(t for t in state.order_times if now_ms - t < MINUTE_MS)
    return RiskState(mode, peak, day, day_start, blocked, recent)


def resume(state: RiskState, equity: float) -> RiskState:
    """Operator action: leave HALTED; the current equity becomes the new peak."""
    return replace(state, mode=RiskMode.ACTIVE, peak_equity=equity)


def _is_reduction(current: float, target: float) -> bool:
    return target * current >= 0.0 and abs(target) <= abs(current)


def _reduce_only(current: float, target: float) -> float:
    if target * current <= 0.0:
        return 0.0
    return math.copysign(min(abs(target), abs(current)), target)


def check(
    settings: RiskSettings,
    state: RiskState,
    intent: OrderIntent,
    snapshot: PortfolioSnapshot,
    now_ms: int,
) -> tuple[RiskState, RiskDecision]:
    """Apply every limit to one order intent; returns the new state and the decision."""
    state = observe(settings, state, snapshot.equity, now_ms)
    current = snapshot.exposure(intent.symbol)
    target = float(intent.target)
    reasons: list[str] = []
    if state.mode is RiskMode.HALTED:
        if current == 0.0:
            return state, RiskDecision(Verdict.REJECTED, 0.0, ("halted: kill switch",))
        verdict = Verdict.APPROVED if target == 0.0 else Verdict.RESIZED
        return _record(state, now_ms), RiskDecision(verdict, 0.0, ("halted: flattening",))
    if state.mode is RiskMode.REDUCING:
        dd_pct = state.drawdown(snapshot.equity) * 100.0
        span = settings.max_drawdown_pct - settings.reduce_drawdown_pct
        left = settings.max_drawdown_pct - dd_pct
        scale = 0.0 if span <= 0 else min(1.0, max(0.0, left / span))
        target = _reduce_only(current, target * scale)
        reasons.append(f"reducing: drawdown {dd_pct:.2f}%, targets scaled by {scale:.3f}")
    if state.day_blocked and not _is_reduction(current, target):
        target = _reduce_only(current, target)
        reasons.append("daily loss limit reached: no new entries today")
    capped = float(cap_target(target, current, snapshot.other_exposure(intent.symbol),
                              settings.max_position_fraction, settings.max_total_exposure))
    if capped != target:
        reasons.append(f"exposure caps: {target:.4f} -> {capped:.4f}")
        target = capped
    reduction = _is_reduction(current, target)
    if not reduction and len(state.order_times) >= settings.max_orders_per_minute:
        reasons.append(f"rate limit: {settings.max_orders_per_minute} orders per minute")
        return state, RiskDecision(Verdict.REJECTED, current, tuple(reasons))
    if target == current and intent.target != current:
        return state, RiskDecision(Verdict.REJECTED, current, tuple(reasons))
    verdict = Verdict.APPROVED if target == intent.target else Verdict.RESIZED
    if target != current:
        state = _record(state, now_ms)
    return state, RiskDecision(verdict, target, tuple(reasons))


def flatten_intents(state: RiskState, snapshot: PortfolioSnapshot) -> list[OrderIntent]:
    """When HALTED: one intent to 0 per open position (the trader sends these at once)."""
    if state.mode is not RiskMode.HALTED:
        return []
    return [OrderIntent(sym, 0.0) for sym, value in snapshot.positions.items() if value != 0.0]


def _record(state: RiskState, now_ms: int) -> RiskState:
    return replace(state, order_times=(*state.order_times, now_ms))


class RiskManager:
    """Holds a :class:`RiskState` for the trader; every rule is in the pure functions above."""

    def __init__(self, settings: RiskSettings, state: RiskState | None = None) -> None:
        self.settings = settings
        self.state = state or RiskState()

    @property
    def mode(self) -> RiskMode:
        """Current kill-switch state."""
        return self.state.mode

    def observe(self, equity: float, now_ms: int) -> RiskMode:
        """Update with the latest equity (call on every closed candle)."""
        self.state = observe(self.settings, self.state, equity, now_ms)
        return self.state.mode

    def check(self, intent: OrderIntent, snapshot: PortfolioSnapshot, now_ms: int) -> RiskDecision:
        """Approve, resize or reject one order intent."""
        self.state, decision = check(self.settings, self.state, intent, snapshot, now_ms)
        return decision

    def flatten_intents(self, snapshot: PortfolioSnapshot) -> list[OrderIntent]:
        """Orders that close everything while HALTED."""
        return flatten_intents(self.state, snapshot)

    def resume(self, equity: float) -> None:
        """Operator action after a halt."""
        self.state = resume(self.state, equity)

