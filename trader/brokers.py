"""Brokers: where the trader's orders go.

Paper: nothing leaves the process. Fills are simulated by the engine exactly as the
backtester fills (next open, fees, slippage); the live price is the next candle's open.
Live: market orders through the exchange adapter with the decision's client order id, so a
retry after a network error or a restart can never place the same order twice: before
sending again, the order is looked up by its client id.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any, Protocol

from tradeflow.exchange.types import (
    ExchangeError,
    InsufficientFunds,
    Market,
    Order,
    OrderNotFound,
    OrderRejected,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Execution:
    """What the exchange did with an order: filled (possibly partly), or rejected."""

    client_order_id: str
    exchange_order_id: str | None
    filled: float
    average: float | None
    fee: float
    fee_currency: str | None
    rejected: str | None = None
    basis: dict[str, Any] | None = None  # what a paper fill was priced on (ledger fills.basis)


class Broker(Protocol):
    """Where market orders go: the exchange (:class:`LiveBroker`) or a paper book."""

    def tradable_amount(self, symbol: str, amount: float, price: float) -> float: ...

    async def execute(self, symbol: str, side: str, amount: float,
                      client_order_id: str, *, may_exist: bool = True) -> Execution: ...

    async def reconcile(self, symbol: str, client_order_id: str) -> Execution | None: ...


class LiveBroker:
    """Market orders on the exchange, idempotent by client order id."""

    def __init__(self, client: object, markets: dict[str, Market], *, attempts: int = 4) -> None:
        self.client = client
        self.markets = markets
        self.attempts = attempts

    def tradable_amount(self, symbol: str, amount: float, price: float) -> float:
        """``amount`` rounded down to the market's step; 0 when under its minimums."""
        market = self.markets.get(symbol)
        if market is None:
            return amount
        if market.amount_step:
            steps = math.floor(amount / market.amount_step + 1e-9)
            amount = round(steps * market.amount_step, 12)
        if market.min_amount and amount < market.min_amount:
            return 0.0
        if market.min_cost and amount * price < market.min_cost:
            return 0.0
        return amount

    async def execute(self, symbol: str, side: str, amount: float,
                      client_order_id: str, *, may_exist: bool = True) -> Execution:
        """Send (or find) the order and report its execution.

        ``may_exist``: an earlier run may have sent this order, so look it up by client order
        id before sending. False for an order this run recorded itself and never sent: that
        saves a request on the order's path; a retry after an error always looks first.
        """
        for attempt in range(self.attempts):
            if attempt > 0 or may_exist:
                existing = await self._lookup(symbol, client_order_id)
                if existing is not None:
                    return _execution(existing, client_order_id)
            try:
                order = await self.client.create_order(  # type: ignore[attr-defined]
                    symbol, side, "market", amount, client_order_id=client_order_id)
                return _execution(order, client_order_id)
            except (InsufficientFunds, OrderRejected) as exc:
                return Execution(client_order_id, None, 0.0, None, 0.0, None, str(exc))
            except ExchangeError as exc:
                if not exc.retryable:
                    return Execution(client_order_id, None, 0.0, None, 0.0, None, str(exc))
                # The order may have reached the exchange: look it up before sending again.
                log.warning("order %s: %s; checking before a retry", client_order_id, exc)
                await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
        existing = await self._lookup(symbol, client_order_id)
        if existing is not None:
            return _execution(existing, client_order_id)
        return Execution(client_order_id, None, 0.0, None, 0.0, None,
                         f"not placed after {self.attempts} attempts")

    async def _lookup(self, symbol: str, client_order_id: str) -> Order | None:
        try:
            return await self.client.fetch_order(  # type: ignore[attr-defined]
                symbol, client_order_id=client_order_id)
        except OrderNotFound:
            return None

    async def reconcile(self, symbol: str, client_order_id: str) -> Execution | None:
        """After a restart: what became of an order recorded but maybe never confirmed."""
        order = await self._lookup(symbol, client_order_id)
        return None if order is None else _execution(order, client_order_id)


def _execution(order: Order, client_order_id: str) -> Execution:
    average = order.average if order.average is not None else order.price
    return Execution(client_order_id, order.id, float(order.filled), average,
                     float(order.fee_cost or 0.0), order.fee_currency)
