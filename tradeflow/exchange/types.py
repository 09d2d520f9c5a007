"""Typed values and errors the exchange adapter hands to the rest of tradeflow.

Nothing here imports ccxt: flows, the trader and tests see only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

OHLCV_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades")
# A frame of trades: exchange id (int64), time (int64 UTC ms), price, amount, taker side.
TRADE_FRAME_COLUMNS = ("id", "ts", "price", "amount", "side")


class ExchangeError(Exception):
    """An exchange call failed. ``retryable`` says whether trying again can help."""

    retryable: bool = False
    kind: str = "exchange error"  # what went wrong, in words, for one-line reports

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(ExchangeError):
    """Network trouble, timeouts, maintenance, malformed bodies: a retry can help."""

    retryable = True
    kind = "network error"


class RateLimited(TransientError):
    """The exchange asked us to slow down (HTTP 429/418); honour ``retry_after`` seconds."""

    kind = "rate limit"


class ExchangeUnavailable(TransientError):
    """Connection refused, 5xx, maintenance."""

    kind = "exchange unavailable"


class RequestTimedOut(TransientError):
    """No answer in time."""

    kind = "timeout"


class BadResponse(TransientError):
    """The body could not be parsed (truncated JSON and the like)."""

    kind = "bad response"


class BookResync(TransientError):
    """A local order book missed an update (a sequence gap) and is rebuilt from a snapshot."""

    kind = "book resync"


class BadSymbol(ExchangeError):
    """The exchange does not list this symbol."""

    kind = "unknown symbol"


class AuthenticationFailed(ExchangeError):
    """Missing, wrong or unauthorised API key or signature."""

    kind = "authentication failed"


class OrderRejected(ExchangeError):
    """The exchange refused the order (invalid amount, price, filters)."""


class InsufficientFunds(OrderRejected):
    """Not enough balance for the order."""


class OrderNotFound(ExchangeError):
    """No order with this id (or client order id) exists."""


class NotSupported(ExchangeError):
    """The exchange does not offer this call."""


class ConnectionState(StrEnum):
    """State of a market-data stream, as shown by the trader and the market-data API."""

    DISCONNECTED = "disconnected"  # not started, or stopped
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Market:
    """A tradable symbol and its trading rules."""

    symbol: str
    base: str
    quote: str
    active: bool
    amount_step: float | None = None
    price_step: float | None = None
    min_amount: float | None = None
    min_cost: float | None = None


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    timestamp: int
    last: float
    bid: float | None = None
    ask: float | None = None
    high: float | None = None
    low: float | None = None
    base_volume: float | None = None
    quote_volume: float | None = None
    bid_volume: float | None = None
    ask_volume: float | None = None
    update_id: int | None = None  # a book ticker's update id, when the exchange sends one


@dataclass(frozen=True, slots=True)
class OrderBook:
    symbol: str
    timestamp: int | None
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]
    update_id: int | None = None  # the exchange's last update id in the book (its nonce)


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    id: str
    timestamp: int
    price: float
    amount: float
    side: str | None = None
    order_id: str | None = None
    fee_cost: float | None = None
    fee_currency: str | None = None


@dataclass(frozen=True, slots=True)
class StreamCandle:
    """One OHLCV row as a stream delivers it.

    ``closed`` is True when the exchange marked the candle final, None when it does not say
    (ccxt's unified rows carry no flag): the caller then decides finality itself.
    """

    symbol: str
    timeframe: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool | None = None


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    client_order_id: str | None
    symbol: str
    side: str
    type: str
    amount: float
    price: float | None
    filled: float
    average: float | None
    status: str
    timestamp: int | None
    fee_cost: float = 0.0
    fee_currency: str | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    free: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    total: dict[str, float] = field(default_factory=dict)
