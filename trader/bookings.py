"""The trader's writes to the ledger that paper and live trading share.

A decision that changes the target is recorded with its orders (holds are only counted), and
an exit rule's fills are recorded as one exit decision per symbol. Each write is idempotent in
the ledger, so re-processing a candle after a restart records nothing twice. A signal
strategy's decision keeps each source's signal (type, confidence, reason) and the aggregate's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tradeflow.backtest.live_engine import Decision, Fill
from tradeflow.signals.base import Signal
from tradeflow.strategy import StrategySettings
from trader.ledger import Ledger, NewDecision, NewOrder
from trader.observers import Observer
from trader.run_summary import RunSummary


class LedgerBook:
    """One strategy's decisions, orders and fills as the ledger records them."""

    def __init__(self, strategy: StrategySettings, ledger: Ledger, summary: RunSummary,
                 observers: Sequence[Observer], quote: str,
                 model_version: Callable[[], str],
                 signals: Callable[[str], Sequence[Signal] | None] | None = None) -> None:
        self.name = strategy.name
        self.ledger = ledger
        self.summary = summary
        self.observers = observers
        self.quote = quote  # currency of paper fees
        self.model_version = model_version
        self.signals = signals  # a symbol's signals at the candle being decided

    def record(self, d: Decision, *, amount: float | None = None,
               note: str | None = None) -> list[Any]:
        """Record a decision that changes the target (holds are counted, not stored)."""
        if d.action == "hold" and note is None:
            return []
        side = d.side if note is None else None
        qty = amount if amount is not None else d.qty
        orders = [NewOrder(side=side, amount=qty, intended_price=d.price)] \
            if side and qty > 0 else []
        why = self.signals(d.symbol) if self.signals is not None else None
        recorded = self.ledger.record_decision(NewDecision(
            strategy=self.name, symbol=d.symbol, candle_open_time=d.time, kind="signal",
            action=d.action if note is None else "hold",
            price=d.price, reason=(d.reason if note is None else f"{d.reason}; {note}")[:500],
            model_version=self.model_version(), probability=d.probability, target=d.target,
            risk_state=d.risk_mode,
            signals=tuple(x.to_dict() for x in why) if why else None), orders)
        self.summary.decisions += 1
        self.summary.orders += len(recorded)
        for o in self.observers:
            o.recorded(d, len(recorded))
        return recorded

    def record_exit(self, t: int, symbol: str, group: list[Fill], kind: str,
                    risk_state: str) -> list[Any]:
        """One exit decision for the fills of an exit rule on ``symbol``; its orders."""
        reasons = ", ".join(f"{f.reason} {f.qty:.6g} @ {f.price:.6g}" for f in group)
        decision = NewDecision(strategy=self.name, symbol=symbol, candle_open_time=t, kind=kind,
                               action=f"exit_{group[0].reason}", price=group[0].price,
                               reason=reasons[:500], model_version=self.model_version(),
                               risk_state=risk_state)
        return self.ledger.record_decision(
            decision, [NewOrder(side=f.side, amount=f.qty, intended_price=f.price)
                       for f in group])

    def apply_fill(self, client_order_id: str, trade_id: str, price: float, qty: float,
                   fee: float, fee_currency: str, t: int,
                   basis: dict[str, Any] | None = None) -> None:
        """Book a fill against its order (a repeated trade id is a no-op)."""
        if self.ledger.apply_fill(client_order_id, trade_id, price, qty, fee, fee_currency, t,
                                  basis):
            self.summary.fills += 1


def by_symbol(fills: list[Fill]) -> dict[str, list[Fill]]:
    out: dict[str, list[Fill]] = {}
    for f in fills:
        out.setdefault(f.symbol, []).append(f)
    return out
