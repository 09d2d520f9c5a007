"""Order requests rounded to the market's steps and checked against its minimums."""

from __future__ import annotations

import pytest

from tradeflow.exchange.order_rules import (
    OrderRequest,
    OrderRuleViolation,
    ccxt_arguments,
    prepare,
)
from tradeflow.exchange.types import Market

BTC = Market("BTC/USDT", "BTC", "USDT", True, amount_step=0.001, price_step=0.01,
             min_amount=0.001, min_cost=10.0)


def test_amount_rounds_down_and_limit_prices_never_get_more_aggressive() -> None:
    buy = prepare(OrderRequest("buy", 0.12345, "limit", price=100.019), BTC, 100.0)
    assert (buy.amount, buy.price) == (0.123, 100.01)
    sell = prepare(OrderRequest("sell", 0.1239, "limit", price=100.011), BTC, 100.0)
    assert (sell.amount, sell.price) == (0.123, 100.02)
    stop = prepare(OrderRequest("sell", 0.5, "stop_loss_limit", price=94.991, stop_price=95.001),
                   BTC, 100.0)
    assert (stop.price, stop.stop_price) == (95.0, 95.01)
    on_grid = prepare(OrderRequest("buy", 0.2, "limit", price=100.1), BTC, 100.0)
    assert (on_grid.amount, on_grid.price) == (0.2, 100.1)  # float noise does not move it


def test_minimums_are_checked_after_rounding() -> None:
    with pytest.raises(OrderRuleViolation, match="amount 0.0009 is below the minimum 0.001"):
        prepare(OrderRequest("buy", 0.0009), BTC, 100.0)
    with pytest.raises(OrderRuleViolation, match="minimum notional 10"):
        prepare(OrderRequest("buy", 0.05), BTC, 100.0)  # 5 USDT at the reference price
    with pytest.raises(OrderRuleViolation, match="minimum notional"):
        prepare(OrderRequest("buy", 0.2, "limit", price=40.0), BTC, 100.0)  # the limit counts
    assert prepare(OrderRequest("buy", 0.05), None, 100.0).amount == 0.05  # no rules known


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"side": "long"}, "side 'long'"),
    ({"type": "stop_market"}, "order type 'stop_market'"),
    ({"type": "limit", "price": 1.0, "time_in_force": "GTD"}, "time in force 'GTD'"),
    ({"type": "limit"}, "needs a positive price"),
    ({"type": "stop_loss_limit", "price": 1.0}, "needs a positive stop_price"),
    ({"type": "limit", "price": 1.0, "time_in_force": "IOC", "post_only": True}, "post-only"),
])
def test_bad_requests_name_the_problem(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"side": "buy", "amount": 1.0, **kwargs}
    with pytest.raises(OrderRuleViolation, match=message):
        OrderRequest(**args)  # type: ignore[arg-type]


def test_ccxt_arguments() -> None:
    assert ccxt_arguments(OrderRequest("buy", 1.0)) == ("market", None, {})
    assert ccxt_arguments(OrderRequest("buy", 1.0, "limit", price=5.0, time_in_force="IOC")) \
        == ("limit", 5.0, {"timeInForce": "IOC"})
    assert ccxt_arguments(OrderRequest("buy", 1.0, "limit", price=5.0, post_only=True)) \
        == ("limit", 5.0, {"postOnly": True})
    assert ccxt_arguments(OrderRequest("sell", 1.0, "stop_loss_limit", price=4.9,
                                       stop_price=5.0)) \
        == ("limit", 4.9, {"timeInForce": "GTC", "stopLossPrice": 5.0})
