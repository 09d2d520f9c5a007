"""Explicit, versioned schema migrations for the ledger.

Each migration is a plain function that receives a connection inside the migration
transaction and states its DDL in full. Migration 1 spells out its tables as SQLAlchemy Core
``Table`` objects in a private ``MetaData`` rather than reusing the ORM models: a migration is a
record of what the schema was at that version, so later model edits must not change what an
old migration creates. A test compares the migrated schema with the models.

:func:`migrate` applies the missing migrations in one transaction and records each in
``schema_version``. It is idempotent and safe when several processes start at once: on
PostgreSQL it first takes a transaction-scoped advisory lock, on SQLite the transaction starts
with ``BEGIN IMMEDIATE`` (the database's write lock), so exactly one process migrates and the
others then find the work done. A killed migration rolls back as a whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from trader.ledger.database import is_ledger_engine, writer
from trader.ledger.records import SchemaTooNew

log = logging.getLogger(__name__)

# Arbitrary constant identifying "the tradeflow ledger migration" among advisory locks.
ADVISORY_LOCK_KEY = 0x7466_6C65_6467_6572  # b"tfledger" as a (positive) bigint

_VERSION_TABLE = sa.Table(
    "schema_version", sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    """Decisions, orders, fills, positions, equity snapshots and per-strategy state."""
    md = sa.MetaData()
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    dbl = sa.Double
    ts = sa.DateTime(timezone=True)

    def req(name: str, type_: Any, *args: Any, primary_key: bool = False,
            autoincrement: bool | Literal["auto"] = "auto") -> sa.Column[Any]:
        return sa.Column(name, type_, *args, nullable=False, primary_key=primary_key,
                         autoincrement=autoincrement)

    def opt(name: str, type_: Any) -> sa.Column[Any]:
        return sa.Column(name, type_, nullable=True)

    sa.Table(
        "decisions", md,
        req("id", big_id, primary_key=True, autoincrement=True),
        req("strategy", sa.String(64)), req("symbol", sa.String(32)),
        req("candle_open_time", sa.BigInteger), req("kind", sa.String(12)),
        opt("model_version", sa.String(128)), opt("probability", dbl), opt("target", dbl),
        req("action", sa.String(32)), req("reason", sa.Text), req("price", dbl),
        opt("risk_state", sa.String(32)), req("created_at", ts),
        sa.UniqueConstraint("strategy", "symbol", "candle_open_time", "kind",
                            name="uq_decisions_key"),
        sa.CheckConstraint("kind IN ('signal', 'exit', 'exit_open')", name="ck_decisions_kind"),
    )
    sa.Table(
        "orders", md,
        req("client_order_id", sa.String(36), primary_key=True),
        req("decision_id", big_id, sa.ForeignKey("decisions.id")),
        req("seq", sa.Integer), req("strategy", sa.String(64)), req("symbol", sa.String(32)),
        req("side", sa.String(4)), req("type", sa.String(8)), req("amount", dbl),
        opt("limit_price", dbl), req("intended_price", dbl), req("status", sa.String(16)),
        opt("exchange_order_id", sa.String(64)), req("filled", dbl), opt("average_price", dbl),
        req("fee_paid", dbl), opt("error", sa.Text), req("created_at", ts),
        req("updated_at", ts),
        sa.UniqueConstraint("decision_id", "seq", name="uq_orders_decision_seq"),
        sa.UniqueConstraint("strategy", "exchange_order_id", name="uq_orders_exchange_id"),
        sa.CheckConstraint("side IN ('buy', 'sell')", name="ck_orders_side"),
        sa.CheckConstraint("type IN ('market', 'limit')", name="ck_orders_type"),
        sa.CheckConstraint("status IN ('NEW', 'SUBMITTED', 'PARTIALLY_FILLED', 'FILLED', "
                           "'CANCELED', 'REJECTED')", name="ck_orders_status"),
        sa.CheckConstraint("amount > 0", name="ck_orders_amount"),
        sa.CheckConstraint("type = 'market' OR limit_price IS NOT NULL", name="ck_orders_limit"),
        sa.Index("ix_orders_strategy_status", "strategy", "status"),
    )
    sa.Table(
        "fills", md,
        req("id", big_id, primary_key=True, autoincrement=True),
        req("client_order_id", sa.String(36), sa.ForeignKey("orders.client_order_id")),
        req("trade_id", sa.String(64)), req("strategy", sa.String(64)),
        req("symbol", sa.String(32)), req("side", sa.String(4)), req("price", dbl),
        req("amount", dbl), req("fee", dbl), opt("fee_currency", sa.String(16)),
        req("ts", sa.BigInteger), req("created_at", ts),
        sa.UniqueConstraint("client_order_id", "trade_id", name="uq_fills_trade"),
        sa.Index("ix_fills_strategy", "strategy", "id"),
    )
    sa.Table(
        "positions", md,
        req("strategy", sa.String(64), primary_key=True),
        req("symbol", sa.String(32), primary_key=True),
        req("qty", dbl), req("avg_price", dbl), req("realized_pnl", dbl), req("fees_paid", dbl),
        opt("opened_at_candle", sa.BigInteger), req("exit_state", json), req("updated_at", ts),
    )
    sa.Table(
        "equity_snapshots", md,
        req("id", big_id, primary_key=True, autoincrement=True),
        req("strategy", sa.String(64)), req("ts", sa.BigInteger), req("equity", dbl),
        req("cash", dbl), req("exposure", dbl), req("drawdown", dbl), req("peak", dbl),
        sa.UniqueConstraint("strategy", "ts", name="uq_equity_strategy_ts"),
    )
    sa.Table(
        "trader_state", md,
        req("strategy", sa.String(64), primary_key=True),
        req("starting_balance", dbl), req("cash", dbl), req("peak_equity", dbl),
        req("last_candles", json), req("risk_state", json), req("engine_state", json),
        opt("model_version", sa.String(128)),
        req("created_at", ts), req("updated_at", ts),
    )
    md.create_all(conn, checkfirst=False)


def _v2_fill_basis(conn: Connection) -> None:
    """fills.basis: what a paper fill was priced on (JSON, NULL for the exchange's fills)."""
    json = "JSONB" if conn.dialect.name == "postgresql" else "JSON"
    conn.execute(sa.text(f"ALTER TABLE fills ADD COLUMN basis {json}"))


def _v3_order_events(conn: Connection) -> None:
    """order_events: every state an order went through (ack, part fills, endings), in order."""
    md = sa.MetaData()
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    sa.Table(
        "order_events", md,
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(36), nullable=False),
        sa.Column("exchange_order_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("filled", sa.Double, nullable=False),
        sa.Column("average_price", sa.Double, nullable=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("raw", json, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("client_order_id", "state", "filled", name="uq_order_events_step"),
        sa.CheckConstraint("state IN ('NEW', 'ACKED', 'PARTIALLY_FILLED', 'FILLED', "
                           "'CANCELED', 'REJECTED', 'EXPIRED')", name="ck_order_events_state"),
        sa.Index("ix_order_events_strategy", "strategy", "id"),
    )
    md.create_all(conn, checkfirst=False)


def _v4_decision_signals(conn: Connection) -> None:
    """decisions.signals: why a signal strategy decided (each source's signal, the aggregate)."""
    json = "JSONB" if conn.dialect.name == "postgresql" else "JSON"
    conn.execute(sa.text(f"ALTER TABLE decisions ADD COLUMN signals {json}"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial ledger schema", _v1_initial),
    Migration(2, "fills.basis: the book or price a paper fill used", _v2_fill_basis),
    Migration(3, "order_events: each order's state transitions", _v3_order_events),
    Migration(4, "decisions.signals: each source's signal behind a decision",
              _v4_decision_signals),
)
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The highest applied migration (0 for an empty database)."""
    if not sa.inspect(conn).has_table(_VERSION_TABLE.name):
        return 0
    return int(conn.execute(sa.select(sa.func.max(_VERSION_TABLE.c.version))).scalar() or 0)


def migrate(engine: Engine) -> int:
    """Bring the ledger schema up to :data:`LATEST_VERSION`; returns the version now in place.

    Raises :class:`SchemaTooNew` when the database is ahead of this code: an older trader must
    not write rows a newer schema may interpret differently.
    """
    if not is_ledger_engine(engine):
        raise ValueError("migrate() needs an engine from create_ledger_engine() so that SQLite "
                         "migrations hold the write lock (BEGIN IMMEDIATE)")
    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                         {"key": ADVISORY_LOCK_KEY})
        _VERSION_TABLE.create(conn, checkfirst=True)
        version = current_version(conn)
        if version > LATEST_VERSION:
            raise SchemaTooNew(f"ledger schema is at version {version}, this code knows "
                               f"up to {LATEST_VERSION}")
        for migration in MIGRATIONS:
            if migration.version <= version:
                continue
            log.info("ledger migration %d: %s", migration.version, migration.description)
            migration.apply(conn)
            conn.execute(_VERSION_TABLE.insert().values(
                version=migration.version, description=migration.description,
                applied_at=datetime.now(UTC)))
    return max(version, LATEST_VERSION)
