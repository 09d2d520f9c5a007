"""ORM rows -> the plain records the ledger hands out (see :mod:`trader.ledger.records`)."""

from __future__ import annotations

import copy

from trader.ledger.records import (
    DecisionRecord,
    EquityRecord,
    FillRecord,
    OrderRecord,
    OrderStatus,
    PositionRecord,
    TraderStateRecord,
)
from trader.ledger.tables import Decision, EquitySnapshot, Fill, Order, Position, TraderState


def decision_record(row: Decision) -> DecisionRecord:
    return DecisionRecord(
        id=row.id, strategy=row.strategy, symbol=row.symbol,
        candle_open_time=row.candle_open_time, kind=row.kind, action=row.action,
        price=row.price, reason=row.reason, model_version=row.model_version,
        probability=row.probability, target=row.target, risk_state=row.risk_state,
        created_at=row.created_at,
        signals=None if row.signals is None else tuple(row.signals))


def order_record(row: Order) -> OrderRecord:
    return OrderRecord(
        client_order_id=row.client_order_id, decision_id=row.decision_id, seq=row.seq,
        strategy=row.strategy, symbol=row.symbol, side=row.side, type=row.type,
        amount=row.amount, limit_price=row.limit_price, intended_price=row.intended_price,
        status=OrderStatus(row.status), exchange_order_id=row.exchange_order_id,
        filled=row.filled, average_price=row.average_price, fee_paid=row.fee_paid,
        error=row.error, created_at=row.created_at, updated_at=row.updated_at)


def fill_record(row: Fill) -> FillRecord:
    return FillRecord(
        id=row.id, client_order_id=row.client_order_id, trade_id=row.trade_id,
        strategy=row.strategy, symbol=row.symbol, side=row.side, price=row.price,
        amount=row.amount, fee=row.fee, fee_currency=row.fee_currency, ts=row.ts,
        basis=copy.deepcopy(row.basis))


def position_record(row: Position) -> PositionRecord:
    return PositionRecord(
        strategy=row.strategy, symbol=row.symbol, qty=row.qty, avg_price=row.avg_price,
        realized_pnl=row.realized_pnl, fees_paid=row.fees_paid,
        opened_at_candle=row.opened_at_candle, exit_state=copy.deepcopy(row.exit_state),
        updated_at=row.updated_at)


def equity_record(row: EquitySnapshot) -> EquityRecord:
    return EquityRecord(
        id=row.id, strategy=row.strategy, ts=row.ts, equity=row.equity, cash=row.cash,
        exposure=row.exposure, drawdown=row.drawdown, peak=row.peak)


def state_record(row: TraderState) -> TraderStateRecord:
    return TraderStateRecord(
        strategy=row.strategy, starting_balance=row.starting_balance, cash=row.cash,
        peak_equity=row.peak_equity,
        last_candles={str(k): int(v) for k, v in row.last_candles.items()},
        risk_state=copy.deepcopy(row.risk_state), model_version=row.model_version,
        updated_at=row.updated_at, engine_state=copy.deepcopy(row.engine_state))
