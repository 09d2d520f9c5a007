"""The trader's decision engine: the backtester's candle loop, one timestamp at a time.

Pure logic with explicit, serialisable state; no I/O and no clock. The runner feeds it the
candles of one timestamp for every symbol of the strategy, in two events that mirror the
compiled backtest loop (:mod:`tradeflow.backtest.kernel`) step for step, using the same
compiled exit, sizing and cap functions, so a replay over recorded candles produces exactly
the backtester's fills:

``on_open(t, opens)``
    1. open phase of the exit rules for positions held from before (max holding, gaps);
    2. the orders decided at the previous close fill at this open: reductions first, then
       increases (market orders: taker fee, adverse slippage; an increase is cut to free cash).
``on_close(t, candles, probabilities)``
    3. intrabar phase of the exit rules; 4. mark to the close; 5. decisions: probability ->
    signal (hysteresis) -> size -> exposure caps -> risk (kill switch, daily loss limit, order
    rate) -> the pending order for the next open, its quantity fixed from this close.

Long only: the engine trades spot, where selling what is not held is impossible.
In live mode the runner executes pending orders at once and books the exchange's fills with
:meth:`PortfolioEngine.book_fill` instead of waiting for :meth:`on_open`'s simulated fills.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tradeflow.strategy import StrategySettings
from tradeflow.trading import risk as risk_rules
from tradeflow.trading.costs import fee_rate, next_fill_slippage
from tradeflow.trading.exits import (
    ExitFill,
    ExitParams,
    Phase,
    PositionState,
    apply_fill,
    release_reentry_lock,
    step_exits,
)
from tradeflow.trading.risk import RiskMode, RiskState, cap_target
from tradeflow.trading.sizing import (
    affordable_quantity,
    candles_per_day,
    sizing_fraction_now,
    target_quantity,
)
from tradeflow.trading.targets import SignalState, next_signal


@dataclass(frozen=True, slots=True)
class Candle:
    """One closed candle of one symbol."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0


@dataclass(frozen=True, slots=True)
class Fill:
    """A fill the engine booked (paper) or expects the broker to execute (live)."""

    symbol: str
    time: int           # open time of the candle during which it filled
    side: str           # buy | sell
    qty: float
    price: float
    fee: float
    kind: str           # signal | exit_open | exit
    reason: str         # signal | stop_loss | take_profit | trailing_stop | max_holding


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine decided at a candle's close for one symbol."""

    symbol: str
    time: int
    probability: float | None
    signal_target: float
    target: float                     # after caps and risk
    side: str | None                  # buy | sell | None (no order)
    qty: float                        # order quantity, fixed from this close
    price: float                      # the deciding close
    action: str
    reason: str
    risk_mode: str


@dataclass(slots=True)
class SymbolState:
    """Per-symbol engine state (what the backtest loop keeps in its arrays)."""

    position: PositionState = field(default_factory=PositionState)
    signal: SignalState = field(default_factory=SignalState)
    last_target: float = 0.0
    pending: float = math.nan
    pending_eq: float = 0.0
    pending_px: float = 0.0
    mark: float = math.nan
    next_slip: float = math.nan
    pending_ref: str | None = None  # the runner's id of the pending order (a client order id)

    def to_dict(self) -> dict[str, Any]:
        nan_none = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
        return {
            "position": self.position.to_dict(),
            "signal": {"side": self.signal.side, "fraction": self.signal.fraction},
            "last_target": self.last_target,
            "pending": nan_none(self.pending),
            "pending_eq": self.pending_eq,
            "pending_px": self.pending_px,
            "mark": nan_none(self.mark),
            "next_slip": nan_none(self.next_slip),
            "pending_ref": self.pending_ref,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SymbolState:
        none_nan = lambda v: math.nan if v is None else float(v)  # noqa: E731
        sig = data.get("signal") or {}
        return cls(
            position=PositionState.from_dict(dict(data["position"])),
            signal=SignalState(int(sig.get("side", 0)), float(sig.get("fraction", 0.0))),
            last_target=float(data.get("last_target", 0.0)),
            pending=none_nan(data.get("pending")),
            pending_eq=float(data.get("pending_eq", 0.0)),
            pending_px=float(data.get("pending_px", 0.0)),
            mark=none_nan(data.get("mark")),
            next_slip=none_nan(data.get("next_slip")),
            pending_ref=data.get("pending_ref"),
        )


class PortfolioEngine:
    """One strategy's portfolio over its symbols, driven candle by candle."""

    def __init__(self, strategy: StrategySettings, *, cash: float | None = None,
                 state: Mapping[str, Any] | None = None) -> None:
        if strategy.signal.allow_short:
            raise ValueError(f"strategy {strategy.name}: the trader is long-only (spot); "
                             "set signal.allow_short to false")
        self.strategy = strategy
        self.symbols: tuple[str, ...] = strategy.symbols
        self.exits = ExitParams.from_settings(strategy.exits)
        self.has_rules = bool(self.exits.tp_pct.size) or not bool(
            np.all(np.isnan(self.exits.params)))
        self.taker = fee_rate(strategy.costs.taker_bps)
        self.maker = fee_rate(strategy.costs.maker_bps)
        self.per_day = candles_per_day(strategy.timeframe)
        self.window = max(strategy.sizing.volatility_window,
                          strategy.costs.slippage.volatility_window) + 1
        self.closes: dict[str, deque[float]] = {s: deque(maxlen=self.window)
                                                for s in self.symbols}
        if state is not None:
            self.cash = float(state["cash"])
            self.time: int | None = state.get("time")
            self.risk = RiskState.from_dict(state["risk"])
            self.books = {s: SymbolState.from_dict(state["symbols"][s]) for s in self.symbols}
        else:
            self.cash = float(strategy.starting_balance if cash is None else cash)
            self.time = None
            self.risk = RiskState()
            self.books = {s: SymbolState(next_slip=self._slip(s)) for s in self.symbols}

    # -- state -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to continue after a restart (market history is re-fetched)."""
        return {"cash": self.cash, "time": self.time, "risk": self.risk.to_dict(),
                "symbols": {s: b.to_dict() for s, b in self.books.items()}}

    def warm(self, symbol: str, closes: Sequence[float]) -> None:
        """Seed the recent closes (sizing and slippage windows) from warm-up history."""
        self.closes[symbol].extend(float(c) for c in closes)
        book = self.books[symbol]
        if self.closes[symbol] and math.isnan(book.next_slip):
            book.next_slip = self._slip(symbol)

    def equity(self) -> float:
        eq = self.cash
        for s in self.symbols:
            b = self.books[s]
            q = b.position.side * b.position.qty
            if q != 0.0:
                eq += q * b.mark
        return eq

    def exposure(self, symbol: str) -> float:
        eq = self.equity()
        b = self.books[symbol]
        q = b.position.side * b.position.qty
        return q * b.mark / eq if q != 0.0 and eq > 0 else 0.0

    # -- events ------------------------------------------------------------------------------
    def on_open(self, t: int, opens: Mapping[str, float], *, simulate: bool = True) -> list[Fill]:
        """Steps 1-2 at the open of candle ``t`` (``opens`` holds the symbols that have one).

        With ``simulate`` false (live), pending orders are not filled here: the broker has
        already executed them and booked the exchange's fills.
        """
        fills: list[Fill] = []
        for s in self.symbols:
            b = self.books[s]
            if self.has_rules and b.position.side != 0 and s in opens:
                o = float(opens[s])
                fills += self._exits(s, t, Candle(t, o, o, o, o), Phase.OPEN, "exit_open")
        if not simulate:
            return fills
        for s in self.symbols:  # reductions first: their cash funds the increases
            b, p = self.books[s], self.books[s].pending
            if math.isnan(p) or b.position.side == 0 or s not in opens:
                continue
            qty = b.position.qty
            slip = b.next_slip
            px = float(opens[s]) * (1.0 - slip)
            if p <= 0.0:
                dq = qty
            else:
                want = target_quantity(p, b.pending_eq, b.pending_px)
                if want >= qty:
                    continue
                dq = qty - want
            fee = dq * px * self.taker
            self.cash += dq * px - fee
            b.position = apply_fill(b.position, -dq, px)
            b.pending = math.nan
            fills.append(Fill(s, t, "sell", dq, px, fee, "signal", "signal"))
        for s in self.symbols:
            b, p = self.books[s], self.books[s].pending
            if math.isnan(p) or s not in opens:
                continue
            b.pending = math.nan
            if p == 0.0 or b.position.lock == 1:
                continue
            px = float(opens[s]) * (1.0 + b.next_slip)
            dq = target_quantity(p, b.pending_eq, b.pending_px) - b.position.qty
            if dq <= 0.0:
                continue
            cost = dq * px
            fee = cost * self.taker
            total = cost + fee
            if total > self.cash:
                dq = affordable_quantity(self.cash, px, self.taker)
                if dq <= 0.0:
                    continue
                cost = self.cash / (1.0 + self.taker)
                fee = self.cash - cost
                total = self.cash
            self.cash -= total
            b.position = apply_fill(b.position, dq, px)
            fills.append(Fill(s, t, "buy", dq, px, fee, "signal", "signal"))
        return fills

    def on_close(self, t: int, candles: Mapping[str, Candle],
                 probabilities: Mapping[str, float], now_ms: int | None = None,
                 *, decide: bool = True) -> tuple[list[Fill], list[Decision]]:
        """Steps 3-5 at the close of candle ``t``: intrabar exits, marks, decisions."""
        fills: list[Fill] = []
        for s in self.symbols:
            b = self.books[s]
            if self.has_rules and b.position.side != 0 and s in candles:
                fills += self._exits(s, t, candles[s], Phase.INTRABAR, "exit")
        for s, c in candles.items():
            self.books[s].mark = float(c.close)
            self.closes[s].append(float(c.close))
        eq = self.equity()
        self.time = t
        decisions: list[Decision] = []
        if decide and eq > 0:
            decisions = self._decide(t, candles, probabilities, eq,
                                     now_ms if now_ms is not None else t)
        for s in candles:  # the slippage of fills in the next candle knows this close
            self.books[s].next_slip = self._slip(s)
        return fills, decisions

    def book_fill(self, symbol: str, side: str, qty: float, price: float, fee: float) -> None:
        """Live mode: book an executed order (not an exit rule) into position and cash."""
        b = self.books[symbol]
        signed = qty if side == "buy" else -qty
        b.position = apply_fill(b.position, signed, price)
        self.cash += -signed * price - fee
        b.pending = math.nan
        b.pending_ref = None

    def sync(self, cash: float, quantities: Mapping[str, float],
             prices: Mapping[str, float] | None = None) -> None:
        """Live mode: take cash and holdings from the ledger, which books the exchange's fills;
        ``prices``: the ledger's average entry prices. An entry the exchange just filled opens
        the position, so the exit rules watch it and equity counts it."""
        self.cash = float(cash)
        for s, qty in quantities.items():
            b, price = self.books[s], float((prices or {}).get(s) or self.books[s].mark)
            if qty <= 1e-12:
                b.position = PositionState(lock=b.position.lock) if b.position.side else b.position
            elif b.position.side == 0:
                b.position = apply_fill(b.position, float(qty), price)
            else:
                b.position = replace(b.position, qty=float(qty), entry_price=price)

    def resume(self) -> None:
        """Operator action after a kill-switch halt: the current equity is the new peak."""
        self.risk = risk_rules.resume(self.risk, self.equity())

    # -- internals ---------------------------------------------------------------------------
    def _exits(self, s: str, t: int, candle: Candle, phase: Phase, kind: str) -> list[Fill]:
        b = self.books[s]
        b.position, raw = step_exits(b.position, candle, self.exits, slippage=b.next_slip,
                                     phase=phase)
        out = []
        for f in raw:
            fee = f.qty * f.price * (self.taker if f.taker else self.maker)
            self.cash += f.qty * f.price - fee
            out.append(Fill(s, t, "sell", f.qty, f.price, fee, kind, _reason(f)))
        return out

    def _slip(self, s: str) -> float:
        return next_fill_slippage(np.fromiter(self.closes[s], dtype=np.float64),
                                  self.strategy.costs.slippage)

    def _decide(self, t: int, candles: Mapping[str, Candle], probabilities: Mapping[str, float],
                eq: float, now_ms: int) -> list[Decision]:
        settings = self.strategy
        self.risk = risk_rules.observe(settings.risk, self.risk, eq, now_ms)
        halted = self.risk.mode is RiskMode.HALTED
        expo: dict[str, float] = {}
        for s in self.symbols:
            b = self.books[s]
            q = b.position.side * b.position.qty
            expo[s] = b.pending if not math.isnan(b.pending) else (
                q * b.mark / eq if q != 0.0 else 0.0)
        gross = sum(abs(v) for v in expo.values())
        out: list[Decision] = []
        for s in self.symbols:
            if s not in candles:
                continue
            b = self.books[s]
            p = probabilities.get(s, math.nan)
            fraction = sizing_fraction_now(np.fromiter(self.closes[s], dtype=np.float64),
                                           settings.sizing, self.per_day)
            b.signal = next_signal(b.signal, p, settings.signal, fraction)
            tg = 0.0 if halted else b.signal.target
            b.position = release_reentry_lock(b.position, tg)
            if tg == b.last_target and not (halted and b.position.side != 0):
                out.append(Decision(s, t, _num(p), tg, tg, None, 0.0, b.mark, "hold",
                                    "target unchanged", self.risk.mode.value))
                continue
            b.last_target = tg
            q = b.position.side * b.position.qty
            current = q * b.mark / eq if q != 0.0 else 0.0
            others = gross - abs(expo[s])
            capped = float(cap_target(tg, current, others, settings.risk.max_position_fraction,
                                      settings.risk.max_total_exposure))
            final, reasons = self._risk(s, capped, {**expo, s: current}, eq, now_ms)
            b.pending, b.pending_eq, b.pending_px = final, eq, b.mark
            expo[s] = final
            gross = others + abs(final)
            out.append(self._decision(s, t, p, tg, final, b, reasons))
        return out

    def _risk(self, s: str, target: float, expo: Mapping[str, float], eq: float,
              now_ms: int) -> tuple[float, list[str]]:
        """The stateful limits (kill switch, daily loss, order rate) after the caps."""
        positions = {k: v * eq for k, v in expo.items()}
        self.risk, verdict = risk_rules.check(
            self.strategy.risk, self.risk, risk_rules.OrderIntent(s, target),
            risk_rules.PortfolioSnapshot(eq, positions), now_ms)
        return float(verdict.target), list(verdict.reasons)

    def _decision(self, s: str, t: int, p: float, signal_target: float, final: float,
                  b: SymbolState, reasons: list[str]) -> Decision:
        qty_now = b.position.qty
        want = target_quantity(final, b.pending_eq, b.pending_px) if final > 0 else 0.0
        side, qty = None, 0.0
        if want < qty_now:
            side, qty = "sell", qty_now - want
        elif want > qty_now and b.position.lock != 1:
            side, qty = "buy", want - qty_now
        action = side or "hold"
        if self.risk.mode is RiskMode.HALTED and side == "sell":
            action = "flatten_halted"
        reason = "; ".join(reasons) or f"signal {signal_target:+.4f}"
        return Decision(s, t, _num(p), signal_target, final, side, qty, b.mark, action, reason,
                        self.risk.mode.value)


def _num(p: float) -> float | None:
    return None if math.isnan(p) else float(p)


def _reason(fill: ExitFill) -> str:
    return str(fill.reason)
