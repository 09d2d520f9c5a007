"""Spot accounts and order matching against the simulated market.

Balances are integers in 1e-8 of each asset. MARKET orders walk the synthetic book; a LIMIT
order that is marketable fills at once at the touch, otherwise it rests (funds locked) and
fills completely, as maker at its own price, at the first public trade at or through its price
after it was placed. Fills are evaluated lazily whenever the account is touched, from the
deterministic trade path, so the fill time is exact whenever it is looked at. Commission is
0.1% of the asset received, as Binance charges without BNB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from simulator.errors import ApiError, filter_failure, mandatory, rejected
from simulator.filters import ALGO_TYPES, ORDER_TYPES, OrderCheck, check_order
from simulator.market import QUOTE_DECIMALS, SymbolSpec
from simulator.venue import Venue

COMMISSION_BPS = 10  # 0.1%, Binance's "10" in makerCommission/takerCommission
_UNIT = 10**QUOTE_DECIMALS
Side = Literal["BUY", "SELL"]


@dataclass(slots=True)
class Fill:
    """One execution of an order."""

    trade_id: int
    time: int
    price: int  # ticks
    qty: int  # lots
    quote: int  # 1e-8 quote units
    commission: int  # 1e-8 units of commission_asset
    commission_asset: str
    maker: bool


@dataclass(slots=True)
class Order:
    """A spot order and its fills."""

    order_id: int
    client_id: str
    spec: SymbolSpec
    side: Side
    type: str
    time_in_force: str
    price: int  # ticks; 0 for MARKET
    orig_qty: int  # lots
    orig_quote: int  # 1e-8 units (quoteOrderQty), 0 if not used
    time: int
    status: str = "NEW"
    update_time: int = 0
    fills: list[Fill] = field(default_factory=list)
    stop_price: int = 0  # ticks; STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT only
    iceberg_qty: int = 0
    triggered_at: int | None = None  # when a stop order's stop price traded

    @property
    def working(self) -> bool:
        """On the book: every order but a stop order waiting for its stop price."""
        return self.type not in ALGO_TYPES or self.triggered_at is not None

    @property
    def executed_qty(self) -> int:
        return sum(f.qty for f in self.fills)

    @property
    def cum_quote(self) -> int:
        return sum(f.quote for f in self.fills)

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass(slots=True)
class Account:
    """Balances, orders and own trades of one API key."""

    uid: int
    free: dict[str, int]
    locked: dict[str, int]
    orders: dict[int, Order] = field(default_factory=dict)
    update_time: int = 0

    def add(self, asset: str, units: int) -> None:
        self.free[asset] = self.free.get(asset, 0) + units

    def lock(self, asset: str, units: int) -> None:
        self.free[asset] = self.free.get(asset, 0) - units
        self.locked[asset] = self.locked.get(asset, 0) + units

    def unlock(self, asset: str, units: int) -> None:
        self.locked[asset] -= units
        self.free[asset] = self.free.get(asset, 0) + units


def to_units(text: str, decimals: int, what: str) -> int:
    """A decimal string as an integer count of ``10**-decimals``; -1013 when off the grid."""
    try:
        value = Decimal(text) * (10**decimals)
    except InvalidOperation:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{what}'.") from None
    if value != value.to_integral_value() or value <= 0:
        raise filter_failure("PRICE_FILTER" if what == "price" else "LOT_SIZE")
    return int(value)


def quote_units(spec: SymbolSpec, price: int, qty: int) -> int:
    """``price * qty`` in 1e-8 quote units (rounded half up when finer than 1e-8)."""
    shift = spec.price_decimals + spec.qty_decimals - QUOTE_DECIMALS
    value = price * qty
    if shift > 0:
        return (value + 5 * 10 ** (shift - 1)) // 10**shift
    return value * 10**-shift


def base_units(spec: SymbolSpec, qty: int) -> int:
    """Lots as 1e-8 base units."""
    return qty * 10 ** (QUOTE_DECIMALS - spec.qty_decimals)


def commission(units: int) -> int:
    return (units * COMMISSION_BPS + 5_000) // 10_000


class Broker:
    """Accounts per API key and the matching of their orders."""

    def __init__(self, venue: Venue):
        self.venue = venue
        self.accounts: dict[str, Account] = {}
        self._next_order_id = 1
        self._next_trade_id = 1

    def account(self, api_key: str) -> Account:
        """The account of ``api_key``, opened with the configured starting balances."""
        acct = self.accounts.get(api_key)
        if acct is None:
            start = self.venue.settings.starting_balances
            free = {a: round(v * _UNIT) for a, v in start.items()}
            acct = Account(uid=100_000_001 + len(self.accounts), free=free, locked={})
            self.accounts[api_key] = acct
        return acct

    def assets(self, acct: Account) -> list[str]:
        """Every asset of the account or of a listed market, in a stable order."""
        names = set(acct.free) | set(acct.locked)
        for spec in self.venue.specs.values():
            names |= {spec.base, spec.quote}
        return sorted(names)

    def refresh(self, acct: Account, now: int) -> None:
        """Trigger stop orders whose stop price traded; fill resting orders traded through."""
        for order in acct.orders.values():
            if not order.is_open:
                continue
            buy, symbol = order.side == "BUY", order.spec.symbol
            if not order.working:
                rising = _stop_rising(order.type, buy)
                hit = self.venue.first_cross(symbol, order.time, now, order.stop_price, not rising)
                if hit is None:
                    continue
                order.triggered_at = hit
            start = order.time if order.triggered_at is None else order.triggered_at - 1
            hit = self.venue.first_cross(symbol, start, now, order.price, buy)
            if hit is not None:
                self._fill(acct, order, [(order.price, order.orig_qty)], hit, maker=True)

    def _fill(
        self,
        acct: Account,
        order: Order,
        levels: list[tuple[int, int]],
        when: int,
        maker: bool,
    ) -> None:
        spec = order.spec
        for price, qty in levels:
            quote = quote_units(spec, price, qty)
            if order.side == "BUY":
                fee, asset = commission(base_units(spec, qty)), spec.base
                if maker:
                    acct.locked[spec.quote] -= quote
                else:
                    acct.add(spec.quote, -quote)
                acct.add(spec.base, base_units(spec, qty) - fee)
            else:
                fee, asset = commission(quote), spec.quote
                if maker:
                    acct.locked[spec.base] -= base_units(spec, qty)
                else:
                    acct.add(spec.base, -base_units(spec, qty))
                acct.add(spec.quote, quote - fee)
            fill = Fill(self._next_trade_id, when, price, qty, quote, fee, asset, maker)
            self._next_trade_id += 1
            order.fills.append(fill)
        order.status = "FILLED"
        order.update_time = acct.update_time = when

    def place(self, acct: Account, params: dict[str, str], now: int) -> Order:
        """Validate and execute a new order as Binance does; raise ApiError on rejection."""
        spec = self._spec(params)
        side = params.get("side", "")
        if not side:
            raise mandatory("side")
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        kind = params.get("type", "")
        if not kind:
            raise mandatory("type")
        if kind not in ORDER_TYPES:
            raise ApiError(400, -1116, "Invalid orderType.")
        tif = params.get("timeInForce", "")
        if kind in ("LIMIT", *ALGO_TYPES) and not tif:
            raise mandatory("timeInForce")
        if tif and tif not in ("GTC", "IOC", "FOK"):
            raise ApiError(400, -1115, "Invalid timeInForce.")
        price = qty = quote_qty = 0
        if kind != "MARKET":
            if not params.get("price"):
                raise mandatory("price")
            price = to_units(params["price"], spec.price_decimals, "price")
        if params.get("quantity"):
            qty = to_units(params["quantity"], spec.qty_decimals, "quantity")
        elif kind == "MARKET" and params.get("quoteOrderQty"):
            quote_qty = to_units(params["quoteOrderQty"], QUOTE_DECIMALS, "quoteOrderQty")
        elif kind == "MARKET":
            msg = "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            raise ApiError(400, -1102, msg)
        else:
            raise mandatory("quantity")
        stop = iceberg = 0
        if kind in ALGO_TYPES:
            if not params.get("stopPrice"):
                raise mandatory("stopPrice")
            stop = to_units(params["stopPrice"], spec.price_decimals, "price")
        if params.get("icebergQty"):
            iceberg = to_units(params["icebergQty"], spec.qty_decimals, "quantity")
            if iceberg >= qty:
                raise rejected("IcebergQty exceeds QTY.")
        client_id = params.get("newClientOrderId") or f"sim{self._next_order_id:012d}"
        if any(o.is_open and o.client_id == client_id for o in acct.orders.values()):
            raise rejected("Duplicate order sent.")
        self.refresh(acct, now)
        open_ = [o for o in acct.orders.values() if o.is_open and o.spec is spec]
        avg, _ = self.venue.avg_price(spec.symbol, 5, now)
        check_order(OrderCheck(spec, side, kind, price, qty, quote_qty, stop, iceberg, avg,
                               len(open_), sum(o.type in ALGO_TYPES for o in open_)))  # fmt: skip
        if stop:
            last = self.venue.last_price(spec.symbol, now)
            if (last >= stop) if _stop_rising(kind, side == "BUY") else (last <= stop):
                raise rejected("Order would trigger immediately.")
        bids, asks, _ = self.venue.book(spec.symbol, 5000, now)
        book = asks if side == "BUY" else bids
        order = Order(
            order_id=self._next_order_id,
            client_id=client_id,
            spec=spec,
            side=side,  # type: ignore[arg-type]
            type=kind,
            time_in_force=tif or "GTC",
            price=price,
            orig_qty=qty,
            orig_quote=quote_qty,
            time=now,
            update_time=now,
            stop_price=stop,
            iceberg_qty=iceberg,
        )
        if kind == "MARKET":
            levels = _walk(spec, book, qty, quote_qty)
            order.orig_qty = order.orig_qty or sum(q for _, q in levels)
            self._check_funds(acct, spec, side, levels)
            self._commit(acct, order)
            self._fill(acct, order, levels, now, maker=False)
            return order
        touch = book[0][0]
        marketable = price >= touch if side == "BUY" else price <= touch
        marketable &= kind not in ALGO_TYPES  # a stop order waits for its stop price
        if kind == "LIMIT_MAKER" and marketable:
            raise rejected("Order would immediately match and take.")
        if marketable:
            levels = [(touch, qty)]
            self._check_funds(acct, spec, side, levels)
            self._commit(acct, order)
            self._fill(acct, order, levels, now, maker=False)
            return order
        self._check_funds(acct, spec, side, [(price, qty)])
        self._commit(acct, order)
        if order.time_in_force in ("IOC", "FOK"):
            order.status = "EXPIRED"
            return order
        if side == "BUY":
            acct.lock(spec.quote, quote_units(spec, price, qty))
        else:
            acct.lock(spec.base, base_units(spec, qty))
        return order

    def _spec(self, params: dict[str, str]) -> SymbolSpec:
        if not params.get("symbol"):
            raise mandatory("symbol")
        spec = self.venue.spec(params["symbol"])
        if spec is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return spec

    def _commit(self, acct: Account, order: Order) -> None:
        acct.orders[order.order_id] = order
        acct.update_time = order.time
        self._next_order_id += 1

    def _check_funds(
        self, acct: Account, spec: SymbolSpec, side: str, levels: list[tuple[int, int]]
    ) -> None:
        if side == "BUY":
            need, asset = sum(quote_units(spec, p, q) for p, q in levels), spec.quote
        else:
            need, asset = base_units(spec, sum(q for _, q in levels)), spec.base
        if acct.free.get(asset, 0) < need:
            raise rejected("Account has insufficient balance for requested action.")

    def find(self, acct: Account, params: dict[str, str], unknown: ApiError) -> Order:
        """The order named by ``orderId`` or ``origClientOrderId``; ``unknown`` if none."""
        spec = self._spec(params)
        oid, cid = params.get("orderId"), params.get("origClientOrderId")
        if not oid and not cid:
            msg = "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            raise ApiError(400, -1102, msg)
        matches = [
            o
            for o in acct.orders.values()
            if o.spec is spec and (str(o.order_id) == oid if oid else o.client_id == cid)
        ]
        if not matches:
            raise unknown
        # a client id may be reused once its order is done: the latest one is meant
        return matches[-1]

    def cancel(self, acct: Account, order: Order, now: int) -> None:
        """Cancel an open order and release its locked funds."""
        if not order.is_open:
            raise ApiError(400, -2011, "Unknown order sent.")
        spec = order.spec
        if order.side == "BUY":
            acct.unlock(spec.quote, quote_units(spec, order.price, order.orig_qty))
        else:
            acct.unlock(spec.base, base_units(spec, order.orig_qty))
        order.status = "CANCELED"
        order.update_time = acct.update_time = now


def _stop_rising(kind: str, buy: bool) -> bool:
    """Whether a stop order triggers on a rise to its stop price (else on a fall)."""
    return buy if kind == "STOP_LOSS_LIMIT" else not buy


def _walk(
    spec: SymbolSpec, book: list[tuple[int, int]], qty: int, quote_qty: int
) -> list[tuple[int, int]]:
    """Levels taken by a market order for ``qty`` lots, or for ``quote_qty`` 1e-8 quote."""
    levels: list[tuple[int, int]] = []
    left_qty, left_quote = qty, quote_qty
    for price, size in book:
        if qty:
            take = min(size, left_qty)
            left_qty -= take
        else:
            per_lot = quote_units(spec, price, 1) or 1
            take = min(size, left_quote // per_lot)
            left_quote -= quote_units(spec, price, take)
        if take > 0:
            levels.append((price, take))
        if (qty and not left_qty) or (not qty and take < size):
            break
    if qty and left_qty:
        # deeper than the synthetic book: the rest trades at its last level
        levels.append((book[-1][0], left_qty))
    if not levels:
        raise filter_failure("LOT_SIZE")
    return levels
