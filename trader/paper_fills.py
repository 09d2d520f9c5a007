"""Paper fills against the live order book (``trader.paper_fills: book``).

A paper market order fills at decision time against the book the trader holds: a buy walks
the asks, a sell the bids, level by level for the order's size; the fill price is the
amount-weighted average of the levels taken and the taker fee is charged on top. The fill's
``basis`` records the levels used and the book's age. The book's visible depth too shallow for
the order: the remainder fills at the last level taken, worsened by the configured slippage,
and the basis says so. No book younger than ``max_book_age_s``: the order fills at the last
trade price (else the decision's candle close) plus the configured slippage, logged and
recorded in the basis as a fallback.

:class:`BookPaperBroker` has the live broker's interface (:class:`trader.brokers.LiveBroker`),
so the live execution path books these fills and the engine takes cash and holdings from the
ledger, exactly as it does live.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trader.brokers import Execution
from trader.order_flow import LiveOrderFlow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BookFill:
    """The outcome of walking one side of a book for an amount."""

    price: float  # amount-weighted average over the levels taken
    levels: tuple[tuple[float, float], ...]  # (price, amount taken) per level
    shortfall: float  # amount the visible book could not fill


def walk_book(levels: Sequence[tuple[float, float]], amount: float) -> BookFill:
    """Take ``amount`` from ``levels`` (best first, ``(price, amount)``)."""
    if amount <= 0:
        raise ValueError(f"amount must be > 0; got {amount}")
    left, cost, taken = amount, 0.0, []
    for price, size in levels:
        if left <= 0:
            break
        if size <= 0:
            continue
        q = min(left, size)
        taken.append((float(price), float(q)))
        cost += price * q
        left -= q
    filled = amount - left
    return BookFill(cost / filled if filled > 0 else float("nan"), tuple(taken), max(left, 0.0))


def slipped(price: float, side: str, bps: float) -> float:
    """``price`` worsened by ``bps`` for a taker on ``side``."""
    return price * (1 + bps / 1e4) if side == "buy" else price * (1 - bps / 1e4)


class BookPaperBroker:
    """Paper market orders filled against the live book; the live broker's interface."""

    def __init__(self, flow: LiveOrderFlow, *, taker_bps: float, slippage_bps: float,
                 quote: str) -> None:
        self.flow = flow
        self.taker_bps = taker_bps
        self.slippage_bps = slippage_bps
        self.quote = quote

    def tradable_amount(self, symbol: str, amount: float, price: float) -> float:
        """Paper trades any amount."""
        return amount

    async def execute(self, symbol: str, side: str, amount: float,
                      client_order_id: str, *, may_exist: bool = True) -> Execution:
        """Fill the whole order now (see the module docstring) and report it."""
        price, basis = self.price(symbol, side, amount)
        fee = price * amount * self.taker_bps / 1e4
        return Execution(client_order_id, f"paper-{client_order_id}", amount, price, fee,
                         self.quote, basis=basis)

    async def reconcile(self, symbol: str, client_order_id: str) -> Execution | None:
        """A paper order not booked before a restart never filled: the caller cancels it."""
        return None

    def price(self, symbol: str, side: str, amount: float) -> tuple[float, dict[str, Any]]:
        """The fill price of a market order and the basis it was priced on."""
        book = self.flow.fresh_book(symbol)
        if book is not None:
            walked = walk_book(book.asks if side == "buy" else book.bids, amount)
            if walked.levels:
                age = round(self.flow.clock() - book.received, 3)
                basis: dict[str, Any] = {"source": "book", "book_age_s": age,
                                         "levels": [list(lv) for lv in walked.levels]}
                if walked.shortfall <= 0:
                    return walked.price, basis
                worst = slipped(walked.levels[-1][0], side, self.slippage_bps)
                filled = amount - walked.shortfall
                price = (walked.price * filled + worst * walked.shortfall) / amount
                basis |= {"shortfall": walked.shortfall, "shortfall_price": worst,
                          "note": "book too shallow: the rest at the last level + slippage"}
                return price, basis
        trade = self.flow.last_trade.get(symbol)
        source, base = ("last_trade", trade[0]) if trade else \
            ("candle_close", self.flow.closes.get(symbol, float("nan")))
        why = "no book" if self.flow.books.get(symbol) is None else \
            f"book older than {self.flow.max_book_age_s:g}s"
        log.warning("paper fill %s %s: %s; %s price + %g bps slippage", side, symbol, why,
                    source, self.slippage_bps)
        return slipped(base, side, self.slippage_bps), {
            "source": source, "price": base, "slippage_bps": self.slippage_bps,
            "note": f"fallback: {why}"}
