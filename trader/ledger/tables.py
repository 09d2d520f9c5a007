"""The ledger's tables as SQLAlchemy 2 typed models, portable between SQLite and PostgreSQL.

Market times (candle open times, fill times) are UTC milliseconds in BIGINT columns, as
everywhere in tradeflow; wall-clock times (``created_at``, ``updated_at``) are timezone-aware
datetimes. Every row is scoped by ``strategy`` so several traders can share one database.

These models describe the schema the code expects; the schema itself is created only by the
explicit migrations in :mod:`trader.ledger.migrations` (a test checks the two agree).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tradeflow.trading.order_lifecycle import OrderState
from trader.ledger.records import OrderStatus

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")
STATUS_CHECK = "status IN (" + ", ".join(f"'{s.value}'" for s in OrderStatus) + ")"


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends.

    SQLite has no time zone type and SQLAlchemy hands back naive datetimes there; this stores
    UTC and re-attaches the zone on the way out, so callers always compare aware datetimes.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UTCDateTime(),
        float: sa.Double(),
        dict[str, Any]: Json,
    }


class SchemaVersion(Base):
    """One row per applied migration."""

    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    description: Mapped[str] = mapped_column(sa.String(200))
    applied_at: Mapped[datetime]


class Decision(Base):
    """What the trader decided on one closed candle, and why."""

    __tablename__ = "decisions"
    __table_args__ = (
        sa.UniqueConstraint("strategy", "symbol", "candle_open_time", "kind",
                            name="uq_decisions_key"),
        sa.CheckConstraint("kind IN ('signal', 'exit', 'exit_open')", name="ck_decisions_kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    strategy: Mapped[str] = mapped_column(sa.String(64))
    symbol: Mapped[str] = mapped_column(sa.String(32))
    candle_open_time: Mapped[int] = mapped_column(sa.BigInteger)
    kind: Mapped[str] = mapped_column(sa.String(12))
    model_version: Mapped[str | None] = mapped_column(sa.String(128))
    probability: Mapped[float | None]
    target: Mapped[float | None]
    action: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.Text)
    price: Mapped[float]
    risk_state: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime]
    # Added by migration 4: a signal strategy's sources behind the decision (NULL otherwise):
    # [{"source", "type", "confidence", "reason", "metadata"}, ..., the aggregate last].
    signals: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)


class Order(Base):
    """An order, keyed by its deterministic client order id."""

    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("decision_id", "seq", name="uq_orders_decision_seq"),
        sa.UniqueConstraint("strategy", "exchange_order_id", name="uq_orders_exchange_id"),
        sa.CheckConstraint("side IN ('buy', 'sell')", name="ck_orders_side"),
        sa.CheckConstraint("type IN ('market', 'limit')", name="ck_orders_type"),
        sa.CheckConstraint(STATUS_CHECK, name="ck_orders_status"),
        sa.CheckConstraint("amount > 0", name="ck_orders_amount"),
        sa.CheckConstraint("type = 'market' OR limit_price IS NOT NULL", name="ck_orders_limit"),
        sa.Index("ix_orders_strategy_status", "strategy", "status"),
    )

    client_order_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    decision_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("decisions.id"))
    seq: Mapped[int] = mapped_column(sa.Integer)
    strategy: Mapped[str] = mapped_column(sa.String(64))
    symbol: Mapped[str] = mapped_column(sa.String(32))
    side: Mapped[str] = mapped_column(sa.String(4))
    type: Mapped[str] = mapped_column(sa.String(8))
    amount: Mapped[float]
    limit_price: Mapped[float | None]
    intended_price: Mapped[float]
    status: Mapped[str] = mapped_column(sa.String(16))
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(64))
    filled: Mapped[float]
    average_price: Mapped[float | None]
    fee_paid: Mapped[float]
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Fill(Base):
    """One execution of an order; (client_order_id, trade_id) makes re-applying it a no-op."""

    __tablename__ = "fills"
    __table_args__ = (
        sa.UniqueConstraint("client_order_id", "trade_id", name="uq_fills_trade"),
        sa.Index("ix_fills_strategy", "strategy", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.client_order_id"))
    trade_id: Mapped[str] = mapped_column(sa.String(64))
    strategy: Mapped[str] = mapped_column(sa.String(64))
    symbol: Mapped[str] = mapped_column(sa.String(32))
    side: Mapped[str] = mapped_column(sa.String(4))
    price: Mapped[float]
    amount: Mapped[float]
    fee: Mapped[float]
    fee_currency: Mapped[str | None] = mapped_column(sa.String(16))
    ts: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime]
    # What a paper fill was priced on (book levels walked, or the fallback and why); v2.
    basis: Mapped[dict[str, Any] | None] = mapped_column(Json)


class OrderEvent(Base):
    """One state an order reached (v3); (client_order_id, state, filled) makes a repeat a no-op.

    Written in the same transaction as the change it records. ``state`` is the order state
    machine's (:class:`tradeflow.trading.order_lifecycle.OrderState`), ``raw`` what the
    exchange said, when it said something.
    """

    __tablename__ = "order_events"
    __table_args__ = (
        sa.UniqueConstraint("client_order_id", "state", "filled", name="uq_order_events_step"),
        sa.CheckConstraint("state IN (" + ", ".join(f"'{s.value}'" for s in OrderState) + ")",
                           name="ck_order_events_state"),
        sa.Index("ix_order_events_strategy", "strategy", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    strategy: Mapped[str] = mapped_column(sa.String(64))
    client_order_id: Mapped[str] = mapped_column(sa.String(36))
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(16))
    filled: Mapped[float]
    average_price: Mapped[float | None]
    ts: Mapped[int] = mapped_column(sa.BigInteger)
    raw: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime]


class Position(Base):
    """A strategy's holding in one symbol; ``exit_state`` belongs to the trader's exit logic."""

    __tablename__ = "positions"

    strategy: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    qty: Mapped[float]
    avg_price: Mapped[float]
    realized_pnl: Mapped[float]
    fees_paid: Mapped[float]
    opened_at_candle: Mapped[int | None] = mapped_column(sa.BigInteger)
    exit_state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class EquitySnapshot(Base):
    """Equity at one market time; ``drawdown`` is the fraction below ``peak``."""

    __tablename__ = "equity_snapshots"
    __table_args__ = (sa.UniqueConstraint("strategy", "ts", name="uq_equity_strategy_ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    strategy: Mapped[str] = mapped_column(sa.String(64))
    ts: Mapped[int] = mapped_column(sa.BigInteger)
    equity: Mapped[float]
    cash: Mapped[float]
    exposure: Mapped[float]
    drawdown: Mapped[float]
    peak: Mapped[float]


class TraderState(Base):
    """Per-strategy state that must survive a restart: cash, progress, risk, model."""

    __tablename__ = "trader_state"

    strategy: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    starting_balance: Mapped[float]
    cash: Mapped[float]
    peak_equity: Mapped[float]
    last_candles: Mapped[dict[str, Any]]
    risk_state: Mapped[dict[str, Any]]
    engine_state: Mapped[dict[str, Any]]
    model_version: Mapped[str | None] = mapped_column(sa.String(128))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
