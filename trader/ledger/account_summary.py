"""The ``tradeflow status`` view of one strategy, computed from ledger records (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trader.ledger.records import OPEN_STATUSES, PositionRecord, TraderStateRecord


def build_summary(state: TraderStateRecord, positions: Sequence[PositionRecord],
                  orders_by_status: Mapping[str, int], n_fills: int,
                  prices: Mapping[str, float]) -> dict[str, Any]:
    """Cash, equity, PnL, exposure, positions, order and fill counts, model and progress.

    Positions are marked at ``prices[symbol]``; an open position without a price is marked at
    its average price (so zero unrealised PnL) and listed under ``"unpriced"``. ``equity`` is
    cash plus the marked value of the positions; ``drawdown`` is measured from the higher of
    the recorded peak and the current equity; ``exposure`` is gross position value / equity.
    """
    rows, unpriced = [], []
    value = gross = realized = unrealized = fees = 0.0
    for p in positions:
        mark = prices.get(p.symbol)
        if mark is None:
            mark = p.avg_price
            if p.qty:
                unpriced.append(p.symbol)
        upnl = p.qty * (mark - p.avg_price)
        value += p.qty * mark
        gross += abs(p.qty * mark)
        realized += p.realized_pnl
        unrealized += upnl
        fees += p.fees_paid
        rows.append({
            "symbol": p.symbol, "qty": p.qty, "avg_price": p.avg_price, "mark": mark,
            "value": p.qty * mark, "unrealized_pnl": upnl, "realized_pnl": p.realized_pnl,
            "fees_paid": p.fees_paid, "opened_at_candle": p.opened_at_candle})
    equity = state.cash + value
    peak = max(state.peak_equity, equity)
    start = state.starting_balance
    return {
        "strategy": state.strategy, "model_version": state.model_version,
        "starting_balance": start, "cash": state.cash, "equity": equity,
        "return": equity / start - 1.0 if start else 0.0,
        "realized_pnl": realized, "unrealized_pnl": unrealized, "fees_paid": fees,
        "peak_equity": peak, "drawdown": (peak - equity) / peak if peak > 0 else 0.0,
        "exposure": gross / equity if equity > 0 else 0.0,
        "positions": rows, "unpriced": unpriced,
        "orders": {"total": sum(orders_by_status.values()), "by_status": dict(orders_by_status),
                   "pending": sum(orders_by_status.get(s.value, 0) for s in OPEN_STATUSES)},
        "fills": n_fills, "last_candles": dict(state.last_candles),
        "risk_state": state.risk_state,
    }
