"""The trader's crash-proof ledger: decisions, orders, fills, positions, cash, equity.

``Ledger(url)`` opens (and migrates) a SQLite file or a PostgreSQL database; see
:mod:`trader.ledger.ledger` for the guarantees and :mod:`trader.ledger.records` for what goes in
and comes out.
"""

from trader.ledger.accounting import client_order_id
from trader.ledger.ledger import Ledger
from trader.ledger.migrations import LATEST_VERSION, migrate
from trader.ledger.records import (
    DecisionRecord,
    EquityRecord,
    FillRecord,
    InvalidTransition,
    LedgerError,
    NewDecision,
    NewOrder,
    OrderRecord,
    OrderStatus,
    PositionRecord,
    SchemaTooNew,
    TraderStateRecord,
    UnknownOrder,
    UnknownStrategy,
)

__all__ = [
    "LATEST_VERSION",
    "DecisionRecord",
    "EquityRecord",
    "FillRecord",
    "InvalidTransition",
    "Ledger",
    "LedgerError",
    "NewDecision",
    "NewOrder",
    "OrderRecord",
    "OrderStatus",
    "PositionRecord",
    "SchemaTooNew",
    "TraderStateRecord",
    "UnknownOrder",
    "UnknownStrategy",
    "client_order_id",
    "migrate",
]
