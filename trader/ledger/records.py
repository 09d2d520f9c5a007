"""What goes into and comes out of the ledger: frozen dataclasses, the order status, errors.

The ledger never hands out ORM objects: every read returns these plain records, built inside
the session and detached from it, so callers cannot trigger lazy loads or write by accident.
JSON fields (``exit_state``, ``last_candles``, ``risk_state``) are fresh copies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from trader.ledger.accounting import split_symbol

DECISION_KINDS = ("signal", "exit", "exit_open")
# Column widths (see models.py). SQLite would store longer strings silently and PostgreSQL
# would refuse them, so the ledger checks at its border and behaves the same on both.
MAX_LENGTH = {"strategy": 64, "symbol": 32, "action": 32, "model_version": 128,
              "risk_state": 32, "exchange_order_id": 64, "trade_id": 64, "fee_currency": 16}
SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit")


class OrderStatus(StrEnum):
    """Order life cycle.

    ``NEW`` (recorded, not yet sent) -> ``SUBMITTED`` (the exchange acknowledged it) ->
    ``PARTIALLY_FILLED`` -> ``FILLED``; or ``CANCELED`` (possibly after partial fills) or
    ``REJECTED`` (never filled). Fills are facts and are booked in any state; a fill may arrive
    before the acknowledgement is recorded (a crash in between), so ``NEW`` can move straight
    to a filled state.
    """

    NEW = "NEW"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"


OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


class LedgerError(Exception):
    """Base class of the ledger's own errors."""


class UnknownStrategy(LedgerError):
    """The strategy was never set up with :meth:`Ledger.init_strategy`."""


class UnknownOrder(LedgerError):
    """No order has this client order id."""


class InvalidTransition(LedgerError):
    """The requested status change contradicts what the ledger already knows."""


class SchemaTooNew(LedgerError):
    """The database was migrated by a newer version of this code."""


def _coerce_floats(obj: object, *names: str) -> None:
    """Store numbers as floats (ints and numpy scalars come in) so records compare and
    serialise the same whichever way they were built."""
    for name in names:
        value = getattr(obj, name)
        if value is not None:
            object.__setattr__(obj, name, float(value))


def check_length(name: str, value: str | None) -> None:
    """Raise ValueError when ``value`` is longer than its column allows."""
    if value is not None and len(value) > MAX_LENGTH[name]:
        raise ValueError(f"{name} is longer than {MAX_LENGTH[name]} characters: {value!r}")


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value}")


@dataclass(frozen=True, slots=True)
class NewOrder:
    """One order a decision wants placed. ``intended_price`` defaults to the decision's price."""

    side: str
    amount: float
    type: str = "market"
    limit_price: float | None = None
    intended_price: float | None = None

    def __post_init__(self) -> None:
        _coerce_floats(self, "amount", "limit_price", "intended_price")
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {self.side!r}")
        if self.type not in ORDER_TYPES:
            raise ValueError(f"type must be one of {ORDER_TYPES}, got {self.type!r}")
        _check_positive("amount", self.amount)
        if self.type == "limit":
            if self.limit_price is None:
                raise ValueError("a limit order needs a limit_price")
            _check_positive("limit_price", self.limit_price)
        if self.intended_price is not None:
            _check_positive("intended_price", self.intended_price)


@dataclass(frozen=True, slots=True)
class NewDecision:
    """A decision taken on the closed candle ``candle_open_time`` (UTC ms).

    ``kind`` is ``"signal"`` (the model's once-per-candle decision; recording one advances the
    strategy's last processed candle), ``"exit"`` (a stop, take-profit, trailing or max-hold
    exit inside the candle, or a flatten on halt) or ``"exit_open"`` (an exit at the candle's
    open: max holding reached, or the open gapped through a stop or target). ``price`` is the
    candle's close. ``risk_state`` is the risk mode at the time (e.g. ``"active"``,
    ``"halted"``).
    """

    strategy: str
    symbol: str
    candle_open_time: int
    kind: str
    action: str
    price: float
    reason: str = ""
    model_version: str | None = None
    probability: float | None = None
    target: float | None = None
    risk_state: str | None = None
    #: a signal strategy's sources behind it: [{"source", "type", "confidence", "reason",
    #: "metadata"}, ...], the aggregate last (JSON-ready; see tradeflow.signals.Signal)
    signals: tuple[dict[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        _coerce_floats(self, "price", "probability", "target")
        object.__setattr__(self, "candle_open_time", int(self.candle_open_time))
        if not self.strategy:
            raise ValueError("strategy must not be empty")
        for name in ("strategy", "symbol", "action", "model_version", "risk_state"):
            check_length(name, getattr(self, name))
        split_symbol(self.symbol)
        if self.kind not in DECISION_KINDS:
            raise ValueError(f"kind must be one of {DECISION_KINDS}, got {self.kind!r}")
        if not self.action:
            raise ValueError("action must not be empty")
        _check_positive("price", self.price)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    id: int
    strategy: str
    symbol: str
    candle_open_time: int
    kind: str
    action: str
    price: float
    reason: str
    model_version: str | None
    probability: float | None
    target: float | None
    risk_state: str | None
    created_at: datetime
    signals: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True, slots=True)
class OrderEventRecord:
    """One state an order reached (see :class:`trader.ledger.tables.OrderEvent`)."""

    id: int
    strategy: str
    client_order_id: str
    exchange_order_id: str | None
    state: str
    filled: float
    average_price: float | None
    ts: int
    raw: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    client_order_id: str
    decision_id: int
    seq: int
    strategy: str
    symbol: str
    side: str
    type: str
    amount: float
    limit_price: float | None
    intended_price: float
    status: OrderStatus
    exchange_order_id: str | None
    filled: float
    average_price: float | None
    fee_paid: float
    error: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def remaining(self) -> float:
        """Amount still to fill (0 for a closed order)."""
        if self.status not in OPEN_STATUSES:
            return 0.0
        return max(self.amount - self.filled, 0.0)

    @property
    def is_open(self) -> bool:
        """True while the order may still fill."""
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class FillRecord:
    id: int
    client_order_id: str
    trade_id: str
    strategy: str
    symbol: str
    side: str
    price: float
    amount: float
    fee: float
    fee_currency: str | None
    ts: int
    basis: dict[str, Any] | None = None  # what a paper fill was priced on


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """A position; a symbol never traded reads as a flat record with ``updated_at`` None."""

    strategy: str
    symbol: str
    qty: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0
    fees_paid: float = 0.0
    opened_at_candle: int | None = None
    exit_state: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None

    @property
    def is_flat(self) -> bool:
        return self.qty == 0.0


@dataclass(frozen=True, slots=True)
class EquityRecord:
    id: int
    strategy: str
    ts: int
    equity: float
    cash: float
    exposure: float
    drawdown: float
    peak: float


@dataclass(frozen=True, slots=True)
class TraderStateRecord:
    strategy: str
    starting_balance: float
    cash: float
    peak_equity: float
    last_candles: dict[str, int]
    risk_state: dict[str, Any]
    model_version: str | None
    updated_at: datetime
    engine_state: dict[str, Any]
