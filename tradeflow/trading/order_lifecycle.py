"""The order state machine shared by live and paper execution.

An order is ``NEW`` (recorded, not yet acknowledged) -> ``ACKED`` (the exchange accepted it)
-> ``PARTIALLY_FILLED`` -> ``FILLED``, or ends ``CANCELED`` (possibly after partial fills),
``EXPIRED`` (an IOC/FOK remainder, a limit order's timeout) or ``REJECTED`` (never accepted).
A fill may arrive before the acknowledgement was seen (the exchange's answer to a market order
carries both, or a crash came in between), so ``NEW`` may move straight to a filled state.

Everything here is pure: no I/O, no clock. :func:`advance` checks one transition and raises
:class:`IllegalTransition` for anything else; :class:`OrderLifecycle` applies acknowledgements,
fills and endings to an order's state and filled quantity; :func:`from_exchange` maps an
exchange's (ccxt's unified) status and filled amount onto a state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum


class OrderState(StrEnum):
    NEW = "NEW"
    ACKED = "ACKED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def open(self) -> bool:
        return self not in TERMINAL_STATES


TERMINAL_STATES = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED,
                             OrderState.EXPIRED})
_S = OrderState
_NEXT: dict[OrderState, frozenset[OrderState]] = {
    _S.NEW: frozenset({_S.ACKED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.REJECTED,
                       _S.EXPIRED}),
    _S.ACKED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED}),
    # A further part fill keeps the state; it is a transition of its own (a new event).
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED}),
}
# Exchange (ccxt unified) statuses of an order that is done, by what ended it.
_ENDED = {"canceled": _S.CANCELED, "cancelled": _S.CANCELED, "expired": _S.EXPIRED,
          "rejected": _S.REJECTED}


class IllegalTransition(ValueError):
    """An order cannot move from its state to the one asked for."""


def can_advance(state: OrderState, to: OrderState) -> bool:
    """Whether ``state -> to`` is a legal transition (a repeated ack or ending is not one)."""
    return to in _NEXT.get(state, frozenset())


def advance(state: OrderState, to: OrderState) -> OrderState:
    """``to`` if ``state -> to`` is legal, else :class:`IllegalTransition`."""
    if not can_advance(state, to):
        raise IllegalTransition(f"an order {state.value} cannot become {to.value}")
    return to


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _full(filled: float, amount: float) -> bool:
    return filled >= amount or _close(filled, amount)


@dataclass(frozen=True, slots=True)
class OrderLifecycle:
    """One order's state, filled quantity and average fill price; every change is a new value."""

    amount: float
    state: OrderState = OrderState.NEW
    filled: float = 0.0
    average: float | None = None

    def __post_init__(self) -> None:
        if not self.amount > 0:
            raise ValueError(f"order amount must be positive, got {self.amount}")

    def ack(self) -> OrderLifecycle:
        """The exchange accepted the order; a repeated ack of an accepted order changes nothing."""
        if self.state is not OrderState.NEW and self.state.open:
            return self
        return replace(self, state=advance(self.state, OrderState.ACKED))

    def fill(self, qty: float, price: float) -> OrderLifecycle:
        """A fill of ``qty`` at ``price``; more than the order's amount is illegal."""
        if not qty > 0 or not price > 0:
            raise ValueError(f"a fill needs a positive quantity and price, got {qty} @ {price}")
        filled = self.filled + qty
        if filled > self.amount and not _close(filled, self.amount):
            raise IllegalTransition(f"a fill of {qty} overfills the order ({self.filled} of "
                                    f"{self.amount} filled)")
        to = OrderState.FILLED if _full(filled, self.amount) else OrderState.PARTIALLY_FILLED
        average = ((self.average or 0.0) * self.filled + price * qty) / filled
        return replace(self, state=advance(self.state, to), filled=filled, average=average)

    def end(self, to: OrderState) -> OrderLifecycle:
        """Canceled, expired or rejected (a rejected order must have no fills)."""
        if to not in (OrderState.CANCELED, OrderState.EXPIRED, OrderState.REJECTED):
            raise ValueError(f"{to.value} is not an ending; use ack() or fill()")
        if to is OrderState.REJECTED and self.filled:
            raise IllegalTransition("an order with fills cannot be rejected")
        return replace(self, state=advance(self.state, to))


def from_exchange(status: str, filled: float, amount: float) -> OrderState:
    """The state an exchange reports: ccxt's ``open``/``closed``/``canceled``/``expired``/
    ``rejected`` together with the filled amount."""
    if status in _ENDED:
        return _ENDED[status]
    if status == "closed":
        return OrderState.FILLED if filled > 0 else OrderState.CANCELED
    if status == "open":
        return OrderState.PARTIALLY_FILLED if filled > 0 else OrderState.ACKED
    raise ValueError(f"unknown exchange order status {status!r}; expected open, closed, "
                     "canceled, expired or rejected")
