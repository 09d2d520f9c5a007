"""The ledger's order lifecycle and fills: status transitions and booking executions.

Methods of :class:`trader.ledger.Ledger`, kept here so each file holds one concern: an order
goes NEW -> SUBMITTED -> PARTIALLY_FILLED -> FILLED (or REJECTED, CANCELED), and a fill books
the order, the position and the strategy's cash in one transaction. Each write is idempotent:
a repeated acknowledgement, cancel or trade id changes nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tradeflow.trading.order_lifecycle import OrderState
from trader.ledger.accounting import Book, apply_fill_to, close_enough, fee_kind
from trader.ledger.convert import order_record
from trader.ledger.records import (
    OPEN_STATUSES,
    InvalidTransition,
    OrderRecord,
    OrderStatus,
    UnknownOrder,
    check_length,
)
from trader.ledger.tables import (
    Decision,
    Fill,
    Order,
    OrderEvent,
    Position,
    TraderState,
    utc_now,
)

# The ledger's order status as a state of the order state machine (SUBMITTED is acknowledged).
_STATE = {**{s.value: OrderState(s.value) for s in OrderStatus if s is not OrderStatus.SUBMITTED},
          OrderStatus.SUBMITTED.value: OrderState.ACKED}


def add_event(session: Session, order: Order, state: OrderState | None = None,
              ts: int | None = None, raw: dict[str, Any] | None = None, *,
              new_order: bool = False) -> None:
    """Record the order's current state in ``order_events`` (a repeated state is a no-op;
    ``new_order``: the caller knows this step is not recorded yet (an order being inserted, a
    fill that raised the filled amount), so there is nothing to look up)."""
    state = state or _STATE[order.status]
    if not new_order and session.scalar(sa.select(OrderEvent.id).where(
            OrderEvent.client_order_id == order.client_order_id,
            OrderEvent.state == state.value, OrderEvent.filled == order.filled)) is not None:
        return
    now = utc_now()
    session.add(OrderEvent(
        strategy=order.strategy, client_order_id=order.client_order_id,
        exchange_order_id=order.exchange_order_id, state=state.value, filled=order.filled,
        average_price=order.average_price,
        ts=int(now.timestamp() * 1000) if ts is None else int(ts), raw=raw, created_at=now))


class OrderWrites:
    """Order status changes and fills of :class:`trader.ledger.Ledger`."""

    def _write(self) -> contextlib.AbstractContextManager[Session]:
        raise NotImplementedError

    def _lock_state(self, session: Session, strategy: str) -> TraderState:
        raise NotImplementedError

    def _lock_order(self, session: Session, client_order_id: str) -> Order:
        raise NotImplementedError

    def mark_submitted(self, client_order_id: str, exchange_order_id: str) -> OrderRecord:
        """The exchange acknowledged the order: NEW -> SUBMITTED, and remember its id.

        Repeating it is a no-op; on an order that already filled or was canceled (the ack was
        recorded late) only the exchange id is filled in. Raises :class:`InvalidTransition`
        for a REJECTED order or a different exchange id than the one recorded.
        """
        if not exchange_order_id:
            raise ValueError("exchange_order_id must not be empty")
        check_length("exchange_order_id", exchange_order_id)
        try:
            with self._write() as s:
                order = self._lock_order(s, client_order_id)
                status = OrderStatus(order.status)
                if status is OrderStatus.REJECTED:
                    raise InvalidTransition(f"order {client_order_id} was rejected")
                if order.exchange_order_id not in (None, exchange_order_id):
                    raise InvalidTransition(
                        f"order {client_order_id} already has exchange id "
                        f"{order.exchange_order_id}, not {exchange_order_id}")
                if order.exchange_order_id is None or status is OrderStatus.NEW:
                    order.exchange_order_id = exchange_order_id
                    if status is OrderStatus.NEW:
                        order.status = OrderStatus.SUBMITTED.value
                        add_event(s, order, new_order=True)  # left NEW just now: a new step
                    order.updated_at = utc_now()
                s.flush()
                return order_record(order)
        except IntegrityError as exc:
            raise InvalidTransition(f"exchange order id {exchange_order_id} already belongs "
                                    "to another order of this strategy") from exc

    def mark_rejected(self, client_order_id: str, error: str) -> OrderRecord:
        """The exchange refused the order: NEW or SUBMITTED (nothing filled) -> REJECTED."""
        with self._write() as s:
            order = self._lock_order(s, client_order_id)
            status = OrderStatus(order.status)
            if status is OrderStatus.REJECTED:
                return order_record(order)
            if status not in (OrderStatus.NEW, OrderStatus.SUBMITTED) or order.filled:
                raise InvalidTransition(f"order {client_order_id} is {status.value} with "
                                        f"{order.filled} filled; it cannot be rejected")
            order.status = OrderStatus.REJECTED.value
            order.error, order.updated_at = error, utc_now()
            add_event(s, order)
            return order_record(order)

    def mark_canceled(self, client_order_id: str, reason: str | None = None, *,
                      expired: bool = False) -> OrderRecord:
        """The order was canceled: any open status -> CANCELED (keeping partial fills).

        ``expired``: the exchange ended it (an IOC/FOK remainder, a timeout); the ledger's
        status is CANCELED all the same and its order event says EXPIRED.
        """
        with self._write() as s:
            order = self._lock_order(s, client_order_id)
            status = OrderStatus(order.status)
            if status is OrderStatus.CANCELED:
                return order_record(order)
            if status not in OPEN_STATUSES:
                raise InvalidTransition(f"order {client_order_id} is {status.value}; "
                                        "it cannot be canceled")
            order.status, order.updated_at = OrderStatus.CANCELED.value, utc_now()
            if reason is not None:
                order.error = reason
            add_event(s, order, OrderState.EXPIRED if expired else None)
            return order_record(order)

    def apply_fill(self, client_order_id: str, trade_id: str, price: float, amount: float,
                   fee: float, fee_currency: str | None, ts: int,
                   basis: dict[str, Any] | None = None) -> bool:
        """Book one execution of an order; False (and no change) if it was booked before.

        In one transaction: the fill row, the order's filled amount, average price, fee and
        status, the position (see :mod:`trader.ledger.accounting` for the conventions and for
        fees paid in the base asset), and the strategy's cash. Fills are facts and are booked
        in any order status; a full fill makes the order FILLED, a part fill of an order still
        waiting makes it PARTIALLY_FILLED, and a late fill leaves CANCELED as it is.
        ``basis`` records what a simulated fill was priced on (the book levels it walked, or
        the fallback price and why); None for the exchange's own fills.
        """
        if not trade_id:
            raise ValueError("trade_id must not be empty")
        check_length("trade_id", trade_id)
        check_length("fee_currency", fee_currency)
        price, amount, fee, ts = float(price), float(amount), float(fee), int(ts)
        with self._write() as s:
            # The order's strategy, without a lock (and without a query when this transaction
            # has loaded the order already); the locks follow in the ledger's order: the
            # strategy's state, then the order.
            known = s.get(Order, client_order_id)
            if known is None:
                raise UnknownOrder(f"no order with client order id {client_order_id!r}")
            strategy = known.strategy
            state = self._lock_state(s, strategy)
            order = self._lock_order(s, client_order_id)
            seen = s.scalar(sa.select(Fill.id).where(
                Fill.client_order_id == client_order_id, Fill.trade_id == trade_id))
            if seen is not None:
                return False
            kind = fee_kind(order.symbol, fee, fee_currency)
            position = s.get(Position, (strategy, order.symbol), with_for_update=True)
            now = utc_now()
            if position is None:
                position = Position(strategy=strategy, symbol=order.symbol, qty=0.0,
                                    avg_price=0.0, realized_pnl=0.0, fees_paid=0.0,
                                    opened_at_candle=None, exit_state={}, updated_at=now)
                s.add(position)
            before = Book(position.qty, position.avg_price, position.realized_pnl,
                          position.fees_paid)
            effect = apply_fill_to(before, order.side, price, amount, fee, kind)
            after = effect.book

            s.add(Fill(client_order_id=client_order_id, trade_id=trade_id, strategy=strategy,
                       symbol=order.symbol, side=order.side, price=price, amount=amount,
                       fee=fee, fee_currency=fee_currency, ts=ts, created_at=now,
                       basis=basis))

            filled = order.filled + amount
            order.average_price = ((order.average_price or 0.0) * order.filled
                                   + price * amount) / filled
            order.filled = filled
            order.fee_paid += effect.fee_quote
            if filled >= order.amount or close_enough(filled, order.amount):
                order.status = OrderStatus.FILLED.value
            elif order.status in (OrderStatus.NEW.value, OrderStatus.SUBMITTED.value):
                order.status = OrderStatus.PARTIALLY_FILLED.value
            order.updated_at = now
            if order.status in (OrderStatus.FILLED.value, OrderStatus.PARTIALLY_FILLED.value):
                # A new fill of a positive amount raised ``filled``: this step is not recorded
                # yet, so there is nothing to look up.
                add_event(s, order, ts=ts, new_order=amount > 0)

            if after.qty == 0.0:
                position.opened_at_candle = None
            elif before.qty == 0.0 or (before.qty > 0) != (after.qty > 0):
                decision = s.get(Decision, order.decision_id)
                position.opened_at_candle = decision.candle_open_time if decision else None
            position.qty, position.avg_price = after.qty, after.avg_price
            position.realized_pnl, position.fees_paid = after.realized_pnl, after.fees_paid
            position.updated_at = now

            state.cash += effect.cash_delta
            state.updated_at = now
            return True
