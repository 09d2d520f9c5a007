"""Symbol filters: what exchangeInfo publishes is what orders must pass, with Binance's failures."""

from __future__ import annotations

import pytest

from simulator.errors import ApiError
from simulator.filters import (
    MinNotional,
    OrderCheck,
    PercentPrice,
    check_order,
    symbol_filters,
)
from simulator.market import make_spec

BTC = make_spec("BTC/USDT", 42)  # ticks of 0.01, lots of 0.00001
AVG = 60_000 * 10**8  # average price 60,000 USDT in 1e-8 units


def order(**fields: object) -> OrderCheck:
    base: dict = {"spec": BTC, "side": "BUY", "type": "LIMIT", "price": 6_000_000, "qty": 1_000,
                  "avg_price": AVG}  # fmt: skip
    return OrderCheck(**(base | fields))


def failure(**fields: object) -> str | None:
    try:
        check_order(order(**fields))
    except ApiError as exc:
        assert exc.code == -1013 and exc.status == 400
        return exc.msg
    return None


def test_exchange_info_lists_the_filters_of_a_binance_spot_market() -> None:
    names = [f.info()["filterType"] for f in symbol_filters(BTC)]
    assert names == ["PRICE_FILTER", "LOT_SIZE", "ICEBERG_PARTS", "MARKET_LOT_SIZE",
                     "PERCENT_PRICE_BY_SIDE", "NOTIONAL", "MAX_NUM_ORDERS",
                     "MAX_NUM_ALGO_ORDERS"]  # fmt: skip
    info = {f.info()["filterType"]: f.info() for f in symbol_filters(BTC)}
    assert info["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert info["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert info["NOTIONAL"]["minNotional"] == "5.00000000"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"price": 10**10}, "Filter failure: PRICE_FILTER"),
        ({"stop_price": 10**10, "type": "STOP_LOSS_LIMIT"}, "Filter failure: PRICE_FILTER"),
        ({"qty": 10**13}, "Filter failure: LOT_SIZE"),
        ({"qty": 100, "iceberg_qty": 5}, "Filter failure: ICEBERG_PARTS"),
        ({"type": "MARKET", "price": 0, "qty": 6 * 10**11}, "Filter failure: MARKET_LOT_SIZE"),
        ({"price": 30_100_000}, "Filter failure: PERCENT_PRICE_BY_SIDE"),
        ({"price": 1_100_000}, "Filter failure: PERCENT_PRICE_BY_SIDE"),
        ({"qty": 5}, "Filter failure: NOTIONAL"),
        ({"type": "MARKET", "price": 0, "qty": 5}, "Filter failure: NOTIONAL"),
        ({"type": "MARKET", "price": 0, "qty": 0, "quote_qty": 10**8}, "Filter failure: NOTIONAL"),
        ({"open_orders": 200}, "Filter failure: MAX_NUM_ORDERS"),
        (
            {"type": "STOP_LOSS_LIMIT", "stop_price": 5_900_000, "open_algo": 5},
            "Filter failure: MAX_NUM_ALGO_ORDERS",
        ),
        ({"open_algo": 5}, None),  # plain limit orders are not algo orders
    ],
)
def test_orders_breaking_a_filter_fail_with_its_name(fields: dict, expected: str | None) -> None:
    assert failure(**fields) == expected


def test_legacy_percent_price_and_min_notional() -> None:
    percent, minimum = PercentPrice(1.3, 0.7, 5), MinNotional(10 * 10**8, False, 5)
    assert percent.info() == {"filterType": "PERCENT_PRICE", "multiplierUp": "1.3000",
                              "multiplierDown": "0.7000", "avgPriceMins": 5}  # fmt: skip
    percent.check(order(price=7_700_000))
    with pytest.raises(ApiError, match="PERCENT_PRICE"):
        percent.check(order(price=7_900_000))
    with pytest.raises(ApiError, match="MIN_NOTIONAL"):
        minimum.check(order(qty=10))
    minimum.check(order(type="MARKET", price=0, qty=10))  # applyToMarket false
