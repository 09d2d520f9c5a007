"""Symbol filters as Binance lists them in exchangeInfo, and the checks orders must pass.

One list per symbol (:func:`symbol_filters`) serves both ``GET /api/v3/exchangeInfo`` and the
order endpoints, so what is published is what is enforced. Every failure is Binance's
``-1013 Filter failure: <FILTER>``. Units are the simulator's integers: prices in ticks,
quantities in lots, notionals and average prices in 1e-8 of the quote asset.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.errors import ApiError, filter_failure
from simulator.market import QUOTE_DECIMALS, SymbolSpec

ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
ALGO_TYPES = ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
_UNIT = 10**QUOTE_DECIMALS


@dataclass(frozen=True, slots=True)
class OrderCheck:
    """What the filters look at in a new order."""

    spec: SymbolSpec
    side: str
    type: str
    price: int = 0  # ticks; 0 for MARKET
    qty: int = 0  # lots; 0 when a MARKET order gives quoteOrderQty
    quote_qty: int = 0  # 1e-8 quote
    stop_price: int = 0
    iceberg_qty: int = 0
    avg_price: int = 0  # 1e-8 quote per base unit, over avgPriceMins
    open_orders: int = 0  # open orders of the account on the symbol
    open_algo: int = 0  # of which stop-loss / take-profit

    def price_units(self, ticks: int) -> int:
        """Ticks as 1e-8 quote per base unit."""
        return ticks * 10 ** (QUOTE_DECIMALS - self.spec.price_decimals)

    def notional(self, price_units: int) -> int:
        """``price * quantity`` in 1e-8 quote (quoteOrderQty when given)."""
        if self.quote_qty:
            return self.quote_qty
        return price_units * self.qty // 10**self.spec.qty_decimals


class SymbolFilter:
    """One filter: its exchangeInfo entry and its check."""

    name = ""

    def info(self) -> dict:
        raise NotImplementedError

    def check(self, order: OrderCheck) -> None:
        raise NotImplementedError

    def fail(self) -> ApiError:
        return filter_failure(self.name)


def _decimal(units: int, decimals: int) -> str:
    whole, frac = divmod(units, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}{'0' * (8 - decimals)}" if decimals else f"{units}.00000000"


@dataclass(frozen=True)
class PriceFilter(SymbolFilter):
    decimals: int
    min_price: int
    max_price: int
    name = "PRICE_FILTER"

    def info(self) -> dict:
        d = self.decimals
        return {
            "filterType": self.name,
            "minPrice": _decimal(self.min_price, d),
            "maxPrice": _decimal(self.max_price, d),
            "tickSize": _decimal(1, d),
        }

    def check(self, order: OrderCheck) -> None:
        for price in (order.price, order.stop_price):
            if price and not self.min_price <= price <= self.max_price:
                raise self.fail()


@dataclass(frozen=True)
class LotSize(SymbolFilter):
    decimals: int
    min_qty: int
    max_qty: int
    step: int = 1
    market: bool = False  # MARKET_LOT_SIZE: MARKET orders only

    @property
    def name(self) -> str:  # type: ignore[override]
        return "MARKET_LOT_SIZE" if self.market else "LOT_SIZE"

    def info(self) -> dict:
        d = self.decimals
        return {
            "filterType": self.name,
            "minQty": _decimal(self.min_qty, d),
            "maxQty": _decimal(self.max_qty, d),
            "stepSize": _decimal(self.step, d),
        }

    def check(self, order: OrderCheck) -> None:
        if self.market and order.type != "MARKET":
            return
        sizes = [order.qty] + ([order.iceberg_qty] if not self.market else [])
        for qty in sizes:
            if not qty:
                continue
            if qty < self.min_qty or qty > self.max_qty or (self.step and qty % self.step):
                raise self.fail()


@dataclass(frozen=True)
class PercentPriceBySide(SymbolFilter):
    bid_up: float = 5.0
    bid_down: float = 0.2
    ask_up: float = 5.0
    ask_down: float = 0.2
    avg_price_mins: int = 5
    name = "PERCENT_PRICE_BY_SIDE"

    def info(self) -> dict:
        return {
            "filterType": self.name,
            "bidMultiplierUp": f"{self.bid_up:.2f}",
            "bidMultiplierDown": f"{self.bid_down:.2f}",
            "askMultiplierUp": f"{self.ask_up:.2f}",
            "askMultiplierDown": f"{self.ask_down:.2f}",
            "avgPriceMins": self.avg_price_mins,
        }

    def check(self, order: OrderCheck) -> None:
        if not order.price or not order.avg_price:
            return
        up, down = (
            (self.bid_up, self.bid_down) if order.side == "BUY" else (self.ask_up, self.ask_down)
        )
        price = order.price_units(order.price)
        if price > order.avg_price * up or price < order.avg_price * down:
            raise self.fail()


@dataclass(frozen=True)
class PercentPrice(SymbolFilter):
    up: float = 5.0
    down: float = 0.2
    avg_price_mins: int = 5
    name = "PERCENT_PRICE"

    def info(self) -> dict:
        return {
            "filterType": self.name,
            "multiplierUp": f"{self.up:.4f}",
            "multiplierDown": f"{self.down:.4f}",
            "avgPriceMins": self.avg_price_mins,
        }

    def check(self, order: OrderCheck) -> None:
        if not order.price or not order.avg_price:
            return
        price = order.price_units(order.price)
        if price > order.avg_price * self.up or price < order.avg_price * self.down:
            raise self.fail()


@dataclass(frozen=True)
class Notional(SymbolFilter):
    min_notional: int  # 1e-8 quote
    max_notional: int
    apply_min_to_market: bool = True
    apply_max_to_market: bool = False
    avg_price_mins: int = 5
    name = "NOTIONAL"

    def info(self) -> dict:
        return {
            "filterType": self.name,
            "minNotional": _decimal(self.min_notional, 8),
            "applyMinToMarket": self.apply_min_to_market,
            "maxNotional": _decimal(self.max_notional, 8),
            "applyMaxToMarket": self.apply_max_to_market,
            "avgPriceMins": self.avg_price_mins,
        }

    def check(self, order: OrderCheck) -> None:
        market = order.type == "MARKET"
        price = order.avg_price if market else order.price_units(order.price)
        value = order.notional(price)
        if (not market or self.apply_min_to_market) and value < self.min_notional:
            raise self.fail()
        if (not market or self.apply_max_to_market) and value > self.max_notional:
            raise self.fail()


@dataclass(frozen=True)
class MinNotional(SymbolFilter):
    min_notional: int
    apply_to_market: bool = True
    avg_price_mins: int = 5
    name = "MIN_NOTIONAL"

    def info(self) -> dict:
        return {
            "filterType": self.name,
            "minNotional": _decimal(self.min_notional, 8),
            "applyToMarket": self.apply_to_market,
            "avgPriceMins": self.avg_price_mins,
        }

    def check(self, order: OrderCheck) -> None:
        market = order.type == "MARKET"
        if market and not self.apply_to_market:
            return
        price = order.avg_price if market else order.price_units(order.price)
        if order.notional(price) < self.min_notional:
            raise self.fail()


@dataclass(frozen=True)
class IcebergParts(SymbolFilter):
    limit: int = 10
    name = "ICEBERG_PARTS"

    def info(self) -> dict:
        return {"filterType": self.name, "limit": self.limit}

    def check(self, order: OrderCheck) -> None:
        if order.iceberg_qty and -(-order.qty // order.iceberg_qty) > self.limit:
            raise self.fail()


@dataclass(frozen=True)
class MaxNumOrders(SymbolFilter):
    limit: int = 200
    name = "MAX_NUM_ORDERS"

    def info(self) -> dict:
        return {"filterType": self.name, "maxNumOrders": self.limit}

    def check(self, order: OrderCheck) -> None:
        if order.open_orders >= self.limit:
            raise self.fail()


@dataclass(frozen=True)
class MaxNumAlgoOrders(SymbolFilter):
    limit: int = 5
    name = "MAX_NUM_ALGO_ORDERS"

    def info(self) -> dict:
        return {"filterType": self.name, "maxNumAlgoOrders": self.limit}

    def check(self, order: OrderCheck) -> None:
        if order.type in ALGO_TYPES and order.open_algo >= self.limit:
            raise self.fail()


def symbol_filters(spec: SymbolSpec) -> tuple[SymbolFilter, ...]:
    """The filters of ``spec``, as a liquid Binance spot market lists them today."""
    pd, qd = spec.price_decimals, spec.qty_decimals
    return (
        PriceFilter(pd, 1, 10 ** (pd + 7)),
        LotSize(qd, 1, 9_000_000 * 10**qd),
        IcebergParts(10),
        # far above any balance, so an order the account cannot pay fails on its funds
        LotSize(qd, 0, 5_000_000 * 10**qd, step=0, market=True),
        PercentPriceBySide(),
        Notional(round(5.0 / spec.quote_usdt * _UNIT), 9_000_000 * _UNIT),
        MaxNumOrders(200),
        MaxNumAlgoOrders(5),
    )


def check_order(order: OrderCheck) -> None:
    """Raise Binance's -1013 for the first filter of the symbol that ``order`` breaks."""
    for f in symbol_filters(order.spec):
        f.check(order)
