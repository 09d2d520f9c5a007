"""Pure ledger arithmetic: client order ids, fee currencies, and how one fill moves a position.

No I/O here. :class:`trader.ledger.ledger.Ledger` applies fills with :func:`apply_fill_to`
and :func:`trader.ledger.consistency.check` replays every stored fill through the same
function, so the stored positions and cash can be checked against their own history.

Conventions (quote currency throughout, e.g. USDT for ``BTC/USDT``):

* ``qty`` is signed (negative is short); ``avg_price`` is the average entry price of the open
  quantity; an increase re-weights it, a reduction realises ``qty * (price - avg_price)``.
* ``realized_pnl`` is gross of fees; ``fees_paid`` holds every fee valued in quote, so
  ``equity = starting_balance + realized + unrealized - fees`` always.
* A fee in the quote currency is paid from cash. A fee in the base asset (Binance charges a
  buyer in base by default) is paid in coins: it is booked as a disposal of ``fee`` coins at the
  fill price whose proceeds go to the exchange, so it shrinks ``qty`` and costs
  ``fee * price`` in ``fees_paid``. Fees in a third currency (BNB) cannot be valued from a fill
  alone: they are kept on the fill only.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum

CLIENT_ID_PREFIX = "tf-"
CLIENT_ID_MAX = 36  # Binance's limit for newClientOrderId
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,36}$")

# Quantities left after a full round trip are float noise; below this fraction of the traded
# size they are snapped to an exact zero so a closed position reads as flat.
_DUST = 1e-12


class FeeKind(StrEnum):
    """Which balance a fee is paid from."""

    QUOTE = "quote"
    BASE = "base"
    OTHER = "other"


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTC/USDT"`` (or ccxt's ``"BTC/USDT:USDT"``) -> ``("BTC", "USDT")``.

    Raises ValueError for anything else: the ledger must know base and quote to book fees.
    """
    base, sep, rest = symbol.partition("/")
    quote = rest.partition(":")[0]
    if not sep or not base or not quote:
        raise ValueError(f"symbol must look like BASE/QUOTE, got {symbol!r}")
    return base, quote


def fee_kind(symbol: str, fee: float, fee_currency: str | None) -> FeeKind:
    """Classify a fee; a missing currency (paper fills) or a zero fee counts as quote."""
    base, quote = split_symbol(symbol)
    if fee == 0.0 or fee_currency is None or fee_currency.upper() == quote.upper():
        return FeeKind.QUOTE
    if fee_currency.upper() == base.upper():
        return FeeKind.BASE
    return FeeKind.OTHER


def client_order_id(strategy: str, symbol: str, candle_open_time: int, kind: str,
                    seq: int = 0) -> str:
    """Deterministic client order id for the ``seq``-th order of a decision.

    A hash of the decision key, so a retry or a restart recomputes the same id and the exchange
    (which refuses a duplicate client id) and the ledger (primary key) both see one order.
    ``tf-`` plus 32 hex digits: 35 characters of ``[A-Za-z0-9_-]``, within Binance's 36.
    """
    if not strategy or not symbol:
        raise ValueError("strategy and symbol must not be empty")
    if seq < 0:
        raise ValueError(f"seq must be >= 0, got {seq}")
    key = json.dumps([strategy, symbol, int(candle_open_time), kind, int(seq)],
                     separators=(",", ":"))
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return CLIENT_ID_PREFIX + digest


@dataclass(frozen=True, slots=True)
class Book:
    """The accounting part of a position."""

    qty: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0
    fees_paid: float = 0.0


@dataclass(frozen=True, slots=True)
class FillEffect:
    """What one fill does: the new book, the cash change and the fee valued in quote."""

    book: Book
    cash_delta: float
    fee_quote: float


def _trade(book: Book, signed_qty: float, price: float) -> Book:
    """Move ``book`` by ``signed_qty`` at ``price`` (no fees)."""
    qty, avg, realized = book.qty, book.avg_price, book.realized_pnl
    if signed_qty == 0.0:
        return book
    if qty == 0.0 or (qty > 0) == (signed_qty > 0):
        new_qty = qty + signed_qty
        new_avg = (qty * avg + signed_qty * price) / new_qty
        return Book(new_qty, new_avg, realized, book.fees_paid)
    closed = min(abs(signed_qty), abs(qty))
    realized += closed * (price - avg) * (1.0 if qty > 0 else -1.0)
    new_qty = qty + signed_qty
    if abs(new_qty) <= _DUST * max(abs(qty), abs(signed_qty)):
        return Book(0.0, 0.0, realized, book.fees_paid)
    if (new_qty > 0) != (qty > 0):  # flipped through zero: the rest opens at this price
        return Book(new_qty, price, realized, book.fees_paid)
    return Book(new_qty, avg, realized, book.fees_paid)


def apply_fill_to(book: Book, side: str, price: float, amount: float, fee: float,
                  kind: FeeKind) -> FillEffect:
    """Book one fill of ``amount`` at ``price`` with ``fee`` paid as ``kind``."""
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"price must be positive, got {price}")
    if not (math.isfinite(amount) and amount > 0):
        raise ValueError(f"amount must be positive, got {amount}")
    if not (math.isfinite(fee) and fee >= 0):
        raise ValueError(f"fee must be >= 0, got {fee}")
    signed = amount if side == "buy" else -amount
    cash_delta = -signed * price
    after = _trade(book, signed, price)
    fee_quote = 0.0
    if kind is FeeKind.QUOTE:
        fee_quote = fee
        cash_delta -= fee
    elif kind is FeeKind.BASE and fee > 0:
        # Coins handed to the exchange: a disposal at the fill price whose proceeds are the fee,
        # so cash is untouched and the fee's value lands in fees_paid.
        fee_quote = fee * price
        after = _trade(after, -fee, price)
    return FillEffect(
        Book(after.qty, after.avg_price, after.realized_pnl, book.fees_paid + fee_quote),
        cash_delta, fee_quote)


def close_enough(a: float, b: float, tol: float = 1e-9) -> bool:
    """Equality for accumulated floats: relative to the larger magnitude, at least absolute."""
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))
