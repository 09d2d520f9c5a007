"""The ledger's self-check: stored positions, orders and cash against the fills they came from.

Every fill is replayed, in the order it was booked, through the same
:func:`~trader.ledger.accounting.apply_fill_to` that booked it. A position, an order or the
cash that does not match its replay means a write was lost, doubled or made outside the
ledger. Called after restarts and by the crash tests; an empty list means consistent.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from trader.ledger.accounting import (
    Book,
    apply_fill_to,
    client_order_id,
    close_enough,
    fee_kind,
)
from trader.ledger.records import OrderStatus
from trader.ledger.tables import Decision, Fill, Order, Position, TraderState


def check(session: Session, strategy: str) -> list[str]:
    """Problems found in ``strategy``'s part of the ledger (empty when consistent)."""
    state = session.get(TraderState, strategy)
    if state is None:
        return [f"strategy {strategy!r} has no trader_state row"]
    fills = list(session.scalars(
        sa.select(Fill).where(Fill.strategy == strategy).order_by(Fill.id)))
    orders = {o.client_order_id: o for o in session.scalars(
        sa.select(Order).where(Order.strategy == strategy))}
    problems: list[str] = []
    problems += _check_fills_against_orders(session, fills, orders)
    problems += _check_orders(session, fills, orders)
    problems += _check_books(session, strategy, state, fills)
    problems += _check_progress(session, strategy, state)
    return problems


def _check_fills_against_orders(session: Session, fills: list[Fill],
                                orders: dict[str, Order]) -> list[str]:
    problems = []
    for f in fills:
        order = orders.get(f.client_order_id)
        if order is None:
            owner = session.get(Order, f.client_order_id)
            where = "no order" if owner is None else f"an order of strategy {owner.strategy!r}"
            problems.append(f"fill {f.id} ({f.trade_id}) belongs to {where} "
                            f"({f.client_order_id})")
        elif (f.symbol, f.side) != (order.symbol, order.side):
            problems.append(f"fill {f.id} is {f.side} {f.symbol} but its order "
                            f"{order.client_order_id} is {order.side} {order.symbol}")
    return problems


def _check_orders(session: Session, fills: list[Fill], orders: dict[str, Order]) -> list[str]:
    problems = []
    filled: dict[str, float] = defaultdict(float)
    notional: dict[str, float] = defaultdict(float)
    for f in fills:
        filled[f.client_order_id] += f.amount
        notional[f.client_order_id] += f.amount * f.price
    strategies = {o.strategy for o in orders.values()}
    decisions = {d.id: d for d in session.scalars(
        sa.select(Decision).where(Decision.strategy.in_(strategies)))}
    for cid, o in orders.items():
        total = filled.get(cid, 0.0)
        if not close_enough(o.filled, total):
            problems.append(f"order {cid}: filled {o.filled} != {total} from its fills")
        if total > 0 and (o.average_price is None
                          or not close_enough(o.average_price, notional[cid] / total)):
            problems.append(f"order {cid}: average price {o.average_price} != "
                            f"{notional[cid] / total} from its fills")
        if o.filled > o.amount and not close_enough(o.filled, o.amount):
            problems.append(f"order {cid}: filled {o.filled} exceeds amount {o.amount}")
        status = OrderStatus(o.status)
        if status is OrderStatus.FILLED and not close_enough(o.filled, o.amount):
            problems.append(f"order {cid}: FILLED with only {o.filled} of {o.amount}")
        if status in (OrderStatus.NEW, OrderStatus.SUBMITTED, OrderStatus.REJECTED) and o.filled:
            problems.append(f"order {cid}: {status.value} but {o.filled} filled")
        decision = decisions.get(o.decision_id) or session.get(Decision, o.decision_id)
        if decision is None:
            problems.append(f"order {cid}: decision {o.decision_id} is missing")
            continue
        expected = client_order_id(decision.strategy, decision.symbol,
                                   decision.candle_open_time, decision.kind, o.seq)
        if cid != expected or (decision.strategy, decision.symbol) != (o.strategy, o.symbol):
            problems.append(f"order {cid}: does not derive from decision {decision.id}")
    return problems


def _check_books(session: Session, strategy: str, state: TraderState,
                 fills: list[Fill]) -> list[str]:
    problems = []
    books: dict[str, Book] = defaultdict(Book)
    cash = state.starting_balance
    for f in fills:
        try:
            kind = fee_kind(f.symbol, f.fee, f.fee_currency)
            effect = apply_fill_to(books[f.symbol], f.side, f.price, f.amount, f.fee, kind)
        except ValueError as exc:
            problems.append(f"fill {f.id} cannot be booked: {exc}")
            continue
        books[f.symbol] = effect.book
        cash += effect.cash_delta
    if not close_enough(state.cash, cash):
        problems.append(f"cash {state.cash} != {cash} from the starting balance and fills")
    rows = {p.symbol: p for p in session.scalars(
        sa.select(Position).where(Position.strategy == strategy))}
    for symbol in sorted(set(rows) | set(books)):
        book, row = books.get(symbol, Book()), rows.get(symbol)
        stored = (Book(row.qty, row.avg_price, row.realized_pnl, row.fees_paid)
                  if row is not None else Book())
        for name in ("qty", "avg_price", "realized_pnl", "fees_paid"):
            have, want = getattr(stored, name), getattr(book, name)
            if not close_enough(have, want):
                problems.append(f"{symbol}: position {name} {have} != {want} from fills")
    return problems


def _check_progress(session: Session, strategy: str, state: TraderState) -> list[str]:
    latest = dict(session.execute(
        sa.select(Decision.symbol, sa.func.max(Decision.candle_open_time))
        .where(Decision.strategy == strategy, Decision.kind == "signal")
        .group_by(Decision.symbol)).tuples().all())
    recorded = {str(k): int(v) for k, v in state.last_candles.items()}
    return [f"{symbol}: last candle {recorded.get(symbol)} != latest signal decision "
            f"{latest.get(symbol)}"
            for symbol in sorted(set(latest) | set(recorded))
            if recorded.get(symbol) != latest.get(symbol)]

