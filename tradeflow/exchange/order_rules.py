"""An order as the trader wants it, and the exchange's rules it must meet before it is sent.

:class:`OrderRequest` is a market, limit (GTC/IOC/FOK, optionally post-only) or stop-loss-limit
order. :func:`prepare` rounds it to the market's steps (amount down; a limit price away from
the touch, so rounding never makes an order more aggressive than asked) and checks the
minimum amount and notional, raising :class:`OrderRuleViolation` with a one-line reason.
Pure: no ccxt, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tradeflow.exchange.types import Market, OrderRejected
from tradeflow.execution_settings import ExecutionSettings

ORDER_TYPES = ("market", "limit", "stop_loss_limit")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")


class OrderRuleViolation(OrderRejected):
    """The order breaks the market's rules (steps, minimums); it was not sent."""

    kind = "order rules"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    side: str
    amount: float
    type: str = "market"
    price: float | None = None  # limit price (limit and stop_loss_limit)
    stop_price: float | None = None  # trigger (stop_loss_limit)
    time_in_force: str = "GTC"
    post_only: bool = False

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise OrderRuleViolation(f"side {self.side!r} is not allowed; use buy or sell")
        if self.type not in ORDER_TYPES:
            raise OrderRuleViolation(f"order type {self.type!r} is not allowed; use one of "
                                     f"{', '.join(ORDER_TYPES)}")
        if self.time_in_force not in TIME_IN_FORCE:
            raise OrderRuleViolation(f"time in force {self.time_in_force!r} is not allowed; "
                                     f"use one of {', '.join(TIME_IN_FORCE)}")
        if self.type != "market" and not (self.price and self.price > 0):
            raise OrderRuleViolation(f"a {self.type} order needs a positive price")
        if self.type == "stop_loss_limit" and not (self.stop_price and self.stop_price > 0):
            raise OrderRuleViolation("a stop_loss_limit order needs a positive stop_price")
        if self.post_only and (self.type != "limit" or self.time_in_force != "GTC"):
            raise OrderRuleViolation("post-only needs a GTC limit order")


def _to_step(value: float, step: float, how: str) -> float:
    n = value / step
    n = math.floor(n + 1e-9) if how == "down" else math.ceil(n - 1e-9)
    decimals = max(0, -math.floor(math.log10(step))) + 2
    return round(n * step, decimals)


def prepare(req: OrderRequest, market: Market | None, reference_price: float) -> OrderRequest:
    """``req`` rounded to ``market``'s steps; :class:`OrderRuleViolation` when under a minimum.

    ``reference_price`` values a market order's notional (the last price or the touch).
    """
    if market is None:
        return req
    amount, price, stop = req.amount, req.price, req.stop_price
    if market.amount_step:
        amount = _to_step(amount, market.amount_step, "down")
    if market.price_step:
        # a buy rounds down and a sell up: never more aggressive than asked
        how = "down" if req.side == "buy" else "up"
        if price is not None:
            price = _to_step(price, market.price_step, how)
        if stop is not None:
            stop = _to_step(stop, market.price_step, how)
    if amount <= 0 or (market.min_amount and amount < market.min_amount):
        raise OrderRuleViolation(f"{market.symbol}: amount {req.amount:g} is below the minimum "
                                 f"{market.min_amount or market.amount_step:g}")
    notional = amount * (price if price is not None else reference_price)
    if market.min_cost and notional < market.min_cost:
        raise OrderRuleViolation(f"{market.symbol}: order value {notional:g} is below the "
                                 f"minimum notional {market.min_cost:g}")
    return replace(req, amount=amount, price=price, stop_price=stop)


def ccxt_arguments(req: OrderRequest) -> tuple[str, float | None, dict[str, object]]:
    """ccxt's unified (type, price, params) for the request (the client order id aside)."""
    if req.type == "market":
        return "market", None, {}
    params: dict[str, object] = {"timeInForce": req.time_in_force}
    if req.post_only:
        return "limit", req.price, {"postOnly": True}
    if req.type == "stop_loss_limit":
        params["stopLossPrice"] = req.stop_price
    return "limit", req.price, params


def entry_request(settings: ExecutionSettings, side: str, amount: float, bid: float,
                  ask: float) -> OrderRequest:
    """The order for an entry or exit of ``amount`` given the current touch."""
    if settings.order_type == "market":
        return OrderRequest(side, amount)
    shift = settings.limit_offset_bps / 10_000
    price = bid * (1 - shift) if side == "buy" else ask * (1 + shift)
    return OrderRequest(side, amount, "limit", price=price,
                        time_in_force=settings.time_in_force, post_only=settings.post_only)


def stop_request(settings: ExecutionSettings, position_qty: float,
                 stop_level: float) -> OrderRequest:
    """The protective stop-loss-limit order closing ``position_qty`` (long > 0, short < 0)."""
    if position_qty == 0:
        raise ValueError("no position to protect")
    side = "sell" if position_qty > 0 else "buy"
    shift = settings.stop_limit_offset_bps / 10_000
    limit = stop_level * (1 - shift) if side == "sell" else stop_level * (1 + shift)
    return OrderRequest(side, abs(position_qty), "stop_loss_limit", price=limit,
                        stop_price=stop_level)
