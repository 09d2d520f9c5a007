"""The trader's ledger: decisions, orders, fills, positions, cash and equity, crash-proof.

Every write method runs in exactly one database transaction, so a process killed at any moment
(``kill -9`` included) leaves either all of a change or none of it. Idempotency makes the
restart path safe to repeat:

* a decision is unique per (strategy, symbol, candle_open_time, kind); recording it again
  returns the orders recorded the first time, whose client order ids are a hash of the
  decision key (:func:`~trader.ledger.accounting.client_order_id`), so a restarted trader
  neither skips nor repeats a candle and never doubles an order;
* a fill is unique per (client_order_id, trade_id); applying it again is a no-op.

Recording a ``"signal"`` decision advances the strategy's last processed candle in the same
transaction, so "the candle was processed" and "its orders exist" cannot disagree.

Reads return frozen dataclasses from :mod:`trader.ledger.records`, never ORM objects.

Several ledgers (one per strategy, in threads or processes) may share one database. Each write
first locks the strategy's ``trader_state`` row (``SELECT ... FOR UPDATE`` on PostgreSQL; on
SQLite ``BEGIN IMMEDIATE`` serialises all writers), so writes of one strategy are applied one
after another and fills are booked in id order, which :meth:`Ledger.check_consistency` replays.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from trader.ledger import accounting
from trader.ledger.accounting import close_enough
from trader.ledger.convert import (
    order_record,
)
from trader.ledger.database import create_ledger_engine, writer
from trader.ledger.migrations import migrate
from trader.ledger.order_writes import OrderWrites, add_event
from trader.ledger.reads import LedgerReads
from trader.ledger.records import (
    EquityRecord,
    NewDecision,
    NewOrder,
    OrderRecord,
    OrderStatus,
    TraderStateRecord,
    UnknownOrder,
    UnknownStrategy,
    check_length,
)
from trader.ledger.tables import (
    Decision,
    EquitySnapshot,
    Order,
    Position,
    TraderState,
    utc_now,
)

log = logging.getLogger(__name__)



def _dialect_insert(session: Session) -> Any:
    """The INSERT construct with ON CONFLICT of the session's database (SQLite, PostgreSQL)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


class Ledger(LedgerReads, OrderWrites):
    """The ledger in the database at ``url`` (``sqlite:///path`` or ``postgresql+psycopg://``).

    Opening it migrates the schema (see :mod:`trader.ledger.migrations`). Use it as a context
    manager or call :meth:`close` to release connections.
    """

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_ledger_engine(url, **engine_kwargs)
        try:
            self.schema_version = migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        # Each write method is one `with self._writes.begin()` block: one transaction, committed
        # at its end or rolled back by any exception (BEGIN IMMEDIATE on SQLite).
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(writer(self.engine), expire_on_commit=False)

        self._local = threading.local()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes (and the reads between them) into one transaction: all or nothing.

        The trader books a whole candle this way: a kill mid-candle leaves none of it.
        Nested calls join the outer transaction. Per thread.
        """
        if getattr(self._local, "session", None) is not None:
            yield
            return
        with self._writes.begin() as s:
            self._local.session, self._local.locked = s, {}
            try:
                yield
            finally:
                self._local.session = self._local.locked = None

    def _write(self) -> contextlib.AbstractContextManager[Session]:
        session = getattr(self._local, "session", None)
        return contextlib.nullcontext(session) if session is not None else self._writes.begin()

    def _read(self) -> contextlib.AbstractContextManager[Session]:
        session = getattr(self._local, "session", None)
        return contextlib.nullcontext(session) if session is not None else self._reads()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lock_state(self, session: Session, strategy: str) -> TraderState:
        # Inside a grouped transaction the row stays locked (and current) once locked.
        locked = getattr(self._local, "locked", None)
        if locked is not None and strategy in locked:
            return locked[strategy]
        state = session.get(TraderState, strategy, with_for_update=True)
        if locked is not None and state is not None:
            locked[strategy] = state
        if state is None:
            raise UnknownStrategy(f"strategy {strategy!r} is not initialised; "
                                  "call init_strategy first")
        return state

    @staticmethod
    def _lock_order(session: Session, client_order_id: str) -> Order:
        order = session.get(Order, client_order_id, with_for_update=True)
        if order is None:
            raise UnknownOrder(f"no order with client order id {client_order_id!r}")
        return order

    # -- strategies ---------------------------------------------------------------------------

    @staticmethod
    def client_order_id(strategy: str, symbol: str, candle_open_time: int, kind: str,
                        seq: int = 0) -> str:
        """The deterministic client order id of a decision's ``seq``-th order (35 chars)."""
        return accounting.client_order_id(strategy, symbol, candle_open_time, kind, seq)

    def init_strategy(self, strategy: str, starting_balance: float) -> TraderStateRecord:
        """Create the strategy's state with its starting cash; a no-op when it exists.

        An existing strategy keeps its balance; a different ``starting_balance`` is logged.
        """
        if not strategy:
            raise ValueError("strategy must not be empty")
        check_length("strategy", strategy)
        starting_balance = float(starting_balance)
        if not (math.isfinite(starting_balance) and starting_balance >= 0):
            raise ValueError(f"starting_balance must be >= 0, got {starting_balance}")
        try:
            with self._write() as s:
                if s.get(TraderState, strategy) is None:
                    now = utc_now()
                    s.add(TraderState(
                        strategy=strategy, starting_balance=starting_balance,
                        cash=starting_balance, peak_equity=starting_balance, last_candles={},
                        risk_state={}, engine_state={}, model_version=None,
                        created_at=now, updated_at=now))
        except IntegrityError:
            pass  # another process created it between our check and insert
        state = self.trader_state(strategy)
        if state.starting_balance != starting_balance:
            log.warning("strategy %s already started with %s, not %s", strategy,
                        state.starting_balance, starting_balance)
        return state

    def save_risk_state(self, strategy: str, state: Mapping[str, Any]) -> None:
        """Replace the strategy's risk state (a JSON-serialisable mapping)."""
        with self._write() as s:
            row = self._lock_state(s, strategy)
            row.risk_state = copy.deepcopy(dict(state))
            row.updated_at = utc_now()

    def save_engine_state(self, strategy: str, state: Mapping[str, Any]) -> None:
        """Replace the trader engine's snapshot (written once per fully processed candle)."""
        with self._write() as s:
            row = self._lock_state(s, strategy)
            row.engine_state = copy.deepcopy(dict(state))
            row.updated_at = utc_now()

    def set_model_version(self, strategy: str, model_version: str | None) -> None:
        """Record which model version the strategy now serves."""
        check_length("model_version", model_version)
        with self._write() as s:
            row = self._lock_state(s, strategy)
            row.model_version = model_version
            row.updated_at = utc_now()

    # -- decisions and orders -----------------------------------------------------------------

    def record_decision(self, decision: NewDecision,
                        orders: Sequence[NewOrder] = ()) -> list[OrderRecord]:
        """Record ``decision`` and its ``orders`` (status NEW), atomically; returns the orders.

        For a ``"signal"`` decision the strategy's last candle for the symbol advances in the
        same transaction. When the decision is already recorded nothing is written and the
        orders recorded the first time are returned: that is the restart path, and the caller
        continues with those (submitting the NEW ones, reconciling the rest).
        """
        d = decision
        with self._write() as s:
            state = self._lock_state(s, d.strategy)
            existing = s.scalars(sa.select(Decision).where(
                Decision.strategy == d.strategy, Decision.symbol == d.symbol,
                Decision.candle_open_time == d.candle_open_time, Decision.kind == d.kind,
            )).one_or_none()
            if existing is not None:
                rows = list(s.scalars(sa.select(Order).where(
                    Order.decision_id == existing.id).order_by(Order.seq)))
                _log_if_changed(existing, rows, d, orders)
                return [order_record(o) for o in rows]
            now = utc_now()
            row = Decision(
                strategy=d.strategy, symbol=d.symbol, candle_open_time=d.candle_open_time,
                kind=d.kind, model_version=d.model_version, probability=d.probability,
                target=d.target, action=d.action, reason=d.reason, price=d.price,
                risk_state=d.risk_state, created_at=now,
                signals=None if d.signals is None else list(d.signals))
            s.add(row)
            s.flush()
            new_rows = [Order(
                client_order_id=accounting.client_order_id(
                    d.strategy, d.symbol, d.candle_open_time, d.kind, seq),
                decision_id=row.id, seq=seq, strategy=d.strategy, symbol=d.symbol,
                side=o.side, type=o.type, amount=o.amount, limit_price=o.limit_price,
                intended_price=o.intended_price if o.intended_price is not None else d.price,
                status=OrderStatus.NEW.value, exchange_order_id=None, filled=0.0,
                average_price=None, fee_paid=0.0, error=None, created_at=now, updated_at=now,
            ) for seq, o in enumerate(orders)]
            s.add_all(new_rows)
            for o in new_rows:
                add_event(s, o, new_order=True)  # the decision's orders are new
            if d.kind == "signal":
                last = state.last_candles.get(d.symbol)
                if last is None or d.candle_open_time > int(last):
                    state.last_candles = {**state.last_candles, d.symbol: d.candle_open_time}
                    state.updated_at = now
            s.flush()
            return [order_record(o) for o in new_rows]

    # -- positions and equity -----------------------------------------------------------------

    def set_exit_state(self, strategy: str, symbol: str, state: Mapping[str, Any]) -> None:
        """Replace the exit logic's state for a position (stops, tiers done, high-water mark)."""
        with self._write() as s:
            self._lock_state(s, strategy)
            row = s.get(Position, (strategy, symbol), with_for_update=True)
            if row is None:
                accounting.split_symbol(symbol)
                row = Position(strategy=strategy, symbol=symbol, qty=0.0, avg_price=0.0,
                               realized_pnl=0.0, fees_paid=0.0, opened_at_candle=None,
                               exit_state={}, updated_at=utc_now())
                s.add(row)
            row.exit_state = copy.deepcopy(dict(state))
            row.updated_at = utc_now()

    def snapshot_equity(self, strategy: str, ts: int, equity: float, cash: float,
                        exposure: float) -> EquityRecord:
        """Record equity at market time ``ts`` (ms); tracks the peak and the drawdown from it.

        A second snapshot at the same ``ts`` (a restart) replaces the first.
        """
        equity, cash, exposure, ts = float(equity), float(cash), float(exposure), int(ts)
        state_table = TraderState.__table__
        with self._write() as s:
            # Core statements, not the ORM: this runs once per candle on the trader's hot
            # path. The UPDATE takes the strategy's row lock like _lock_state does.
            peak = s.execute(
                sa.update(state_table).where(state_table.c.strategy == strategy)
                .values(peak_equity=sa.case((state_table.c.peak_equity < equity, equity),
                                            else_=state_table.c.peak_equity))
                .returning(state_table.c.peak_equity)).scalar_one_or_none()
            if peak is None:
                raise UnknownStrategy(f"strategy {strategy!r} is not initialised; "
                                      "call init_strategy first")
            peak = float(peak)
            drawdown = (peak - equity) / peak if peak > 0 else 0.0
            values = {"equity": equity, "cash": cash, "exposure": exposure,
                      "drawdown": drawdown, "peak": peak}
            insert = _dialect_insert(s)(EquitySnapshot.__table__).values(
                strategy=strategy, ts=ts, **values)
            row_id = s.execute(insert.on_conflict_do_update(
                index_elements=["strategy", "ts"], set_=values
            ).returning(EquitySnapshot.__table__.c.id)).scalar_one()
            locked = getattr(self._local, "locked", None)
            if locked and strategy in locked:
                locked[strategy].peak_equity = peak  # keep the session's object current
            return EquityRecord(id=int(row_id), strategy=strategy, ts=ts, **values)

def _log_if_changed(existing: Decision, rows: Sequence[Order], d: NewDecision,
                     orders: Sequence[NewOrder]) -> None:
    """Log when a re-recorded decision differs from the stored one. The stored one stands (its
    orders may be on the exchange already). A restart that re-decides after the orders filled
    sees a different position, so a difference is expected there and is not an error."""
    same = (existing.action == d.action and existing.target == d.target
            and len(rows) == len(orders)
            and all(r.side == o.side and close_enough(r.amount, o.amount)
                    for r, o in zip(rows, orders, strict=False)))
    if not same:
        log.info("decision %s %s %s@%d was recorded differently before; keeping the "
                 "recorded one (action %s, %d orders)", d.strategy, d.symbol, d.kind,
                 d.candle_open_time, existing.action, len(rows))
