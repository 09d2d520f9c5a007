"""The ledger's read side: states, positions, orders, fills, decisions, checks, summary."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from trader.ledger import consistency
from trader.ledger.account_summary import build_summary
from trader.ledger.convert import (
    decision_record,
    equity_record,
    fill_record,
    order_record,
    position_record,
    state_record,
)
from trader.ledger.records import (
    OPEN_STATUSES,
    DecisionRecord,
    EquityRecord,
    FillRecord,
    OrderEventRecord,
    OrderRecord,
    PositionRecord,
    TraderStateRecord,
    UnknownStrategy,
)
from trader.ledger.tables import (
    Decision,
    EquitySnapshot,
    Fill,
    Order,
    OrderEvent,
    Position,
    TraderState,
)

_OPEN = tuple(s.value for s in OPEN_STATUSES)



class LedgerReads:
    """Read methods of :class:`trader.ledger.Ledger` (inside a grouped transaction they see its
    uncommitted writes)."""

    def _read(self) -> contextlib.AbstractContextManager[Session]:
        raise NotImplementedError

    def trader_state(self, strategy: str) -> TraderStateRecord:
        """The strategy's persisted state; raises :class:`UnknownStrategy` when missing."""
        with self._read() as s:
            state = s.get(TraderState, strategy)
            if state is None:
                raise UnknownStrategy(f"strategy {strategy!r} is not initialised")
            return state_record(state)

    def strategies(self) -> list[str]:
        """Every strategy in this ledger."""
        with self._read() as s:
            return list(s.scalars(sa.select(TraderState.strategy).order_by(TraderState.strategy)))

    def last_candle(self, strategy: str, symbol: str) -> int | None:
        """Open time of the last candle a signal decision was recorded for, or None."""
        value = self.trader_state(strategy).last_candles.get(symbol)
        return None if value is None else int(value)

    def positions(self, strategy: str) -> list[PositionRecord]:
        """Every position row of the strategy (closed ones too, with their realised PnL)."""
        with self._read() as s:
            rows = s.scalars(sa.select(Position).where(Position.strategy == strategy)
                             .order_by(Position.symbol))
            return [position_record(p) for p in rows]

    def position(self, strategy: str, symbol: str) -> PositionRecord:
        """The position in ``symbol``; a flat record when the symbol was never traded."""
        with self._read() as s:
            row = s.get(Position, (strategy, symbol))
            return position_record(row) if row else PositionRecord(strategy, symbol)

    def equity_history(self, strategy: str) -> list[EquityRecord]:
        """Every equity snapshot of the strategy, oldest first."""
        with self._read() as s:
            rows = s.scalars(sa.select(EquitySnapshot).where(EquitySnapshot.strategy == strategy)
                             .order_by(EquitySnapshot.ts))
            return [equity_record(r) for r in rows]

    # -- reads --------------------------------------------------------------------------------

    def order(self, client_order_id: str) -> OrderRecord | None:
        """One order by client order id, or None."""
        with self._read() as s:
            row = s.get(Order, client_order_id)
            return order_record(row) if row else None

    def order_candle(self, client_order_id: str) -> int | None:
        """Open time of the candle whose decision placed the order (None if unknown)."""
        with self._read() as s:
            return s.scalar(sa.select(Decision.candle_open_time).join(
                Order, Order.decision_id == Decision.id).where(
                Order.client_order_id == client_order_id))

    def pending_orders(self, strategy: str) -> list[OrderRecord]:
        """Orders that may still fill (NEW, SUBMITTED, PARTIALLY_FILLED), oldest first.

        After a restart the trader reconciles each with the exchange: a NEW order may or may
        not have reached it, so look it up by client order id before placing it.
        """
        with self._read() as s:
            rows = s.scalars(sa.select(Order).where(
                Order.strategy == strategy, Order.status.in_(_OPEN),
            ).order_by(Order.decision_id, Order.seq))
            return [order_record(o) for o in rows]

    def orders(self, strategy: str) -> list[OrderRecord]:
        """Every order of the strategy, oldest first."""
        with self._read() as s:
            rows = s.scalars(sa.select(Order).where(Order.strategy == strategy)
                             .order_by(Order.decision_id, Order.seq))
            return [order_record(o) for o in rows]

    def order_events(self, strategy: str,
                     client_order_id: str | None = None) -> list[OrderEventRecord]:
        """The states the strategy's orders (or one order) went through, in order."""
        with self._read() as s:
            query = sa.select(OrderEvent).where(OrderEvent.strategy == strategy)
            if client_order_id is not None:
                query = query.where(OrderEvent.client_order_id == client_order_id)
            return [OrderEventRecord(e.id, e.strategy, e.client_order_id, e.exchange_order_id,
                                     e.state, e.filled, e.average_price, e.ts,
                                     None if e.raw is None else dict(e.raw))
                    for e in s.scalars(query.order_by(OrderEvent.id))]

    def fills(self, strategy: str) -> list[FillRecord]:
        """Every fill of the strategy, in booking order."""
        with self._read() as s:
            rows = s.scalars(sa.select(Fill).where(Fill.strategy == strategy).order_by(Fill.id))
            return [fill_record(f) for f in rows]

    def decisions(self, strategy: str, limit: int | None = 100) -> list[DecisionRecord]:
        """The strategy's most recent decisions, newest first (all of them for ``limit=None``)."""
        with self._read() as s:
            query = (sa.select(Decision).where(Decision.strategy == strategy)
                     .order_by(Decision.id.desc()).limit(limit))
            return [decision_record(d) for d in s.scalars(query)]

    def check_consistency(self, strategy: str) -> list[str]:
        """Problems in the strategy's records (empty when consistent); see
        :mod:`trader.ledger.consistency`."""
        with self._read() as s:
            return consistency.check(s, strategy)

    def summary(self, strategy: str, prices: Mapping[str, float] | None = None) -> dict[str, Any]:
        """A JSON-ready overview for ``tradeflow status``; see :func:`build_summary`."""
        state = self.trader_state(strategy)
        positions = self.positions(strategy)
        with self._read() as s:
            by_status = {str(k): int(v) for k, v in s.execute(
                sa.select(Order.status, sa.func.count()).where(Order.strategy == strategy)
                .group_by(Order.status)).tuples()}
            n_fills = s.scalar(sa.select(sa.func.count()).select_from(Fill)
                               .where(Fill.strategy == strategy)) or 0
        return build_summary(state, positions, by_status, int(n_fills), prices or {})
