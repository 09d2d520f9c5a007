"""Signed endpoints through ccxt: authentication, balances, orders, fills and their errors."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import ccxt
import pytest

from tests.fixtures import simulator as fixtures
from tests.fixtures.simulator import run, with_exchange

KEYS = {"api_key": "sim-key", "secret": "sim-secret"}
FROZEN = 1e-9


def test_market_orders_fill_against_the_book_with_commission(
    sim_factory: fixtures.SimFactory,
) -> None:
    sim = sim_factory(speed=FROZEN)
    bids, asks, _ = sim.venue.book("BTC/USDT", 5, sim.now_ms())

    async def body(ex: Any) -> dict:
        buy = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
        sell = await ex.create_order("BTC/USDT", "market", "sell", 0.004)
        return {
            "buy": buy,
            "sell": sell,
            "balance": await ex.fetch_balance(),
            "trades": await ex.fetch_my_trades("BTC/USDT"),
        }

    got = run(with_exchange(sim.base_url, body, **KEYS))
    buy, sell, balance = got["buy"], got["sell"], got["balance"]
    assert buy["status"] == "closed" and buy["filled"] == 0.01 and buy["price"] == asks[0][0] / 100
    assert buy["fee"] == {"currency": "BTC", "cost": 0.00001}
    assert sell["average"] == bids[0][0] / 100 and sell["fee"]["currency"] == "USDT"
    assert balance["BTC"]["free"] == pytest.approx(0.01 - 0.00001 - 0.004)
    spent = buy["cost"] - sell["cost"] + sell["fee"]["cost"]
    assert balance["USDT"]["free"] == pytest.approx(100_000 - spent)
    assert [t["order"] for t in got["trades"]] == [buy["id"], sell["id"]]
    assert [t["side"] for t in got["trades"]] == ["buy", "sell"]


def test_limit_order_rests_then_fills_when_the_price_trades_through(
    sim_factory: fixtures.SimFactory,
) -> None:
    sim = sim_factory(speed=FROZEN)
    last = sim.venue.last_price("ETH/USDT") / 100
    placed_at = sim.now_ms()

    async def body(ex: Any) -> dict:
        resting = await ex.create_order("ETH/USDT", "limit", "sell", 0.05, round(last * 1.002, 2))
        locked = await ex.fetch_balance()
        sim.advance(6 * 3_600_000)
        return {
            "resting": resting,
            "locked": locked,
            "later": await ex.fetch_order(resting["id"], "ETH/USDT"),
            "open": await ex.fetch_open_orders("ETH/USDT"),
        }

    # sell needs ETH first
    async def fund_and_run(ex: Any) -> dict:
        await ex.create_order("ETH/USDT", "market", "buy", 0.1)
        return await body(ex)

    got = run(with_exchange(sim.base_url, fund_and_run, **KEYS))
    assert got["resting"]["status"] == "open" and got["locked"]["ETH"]["used"] == 0.05
    later = got["later"]
    price = int(round(later["price"] * 100))
    hit = sim.venue.first_cross("ETH/USDT", placed_at, sim.now_ms(), price, buy=False)
    assert later["status"] == "closed" and later["filled"] == 0.05 and got["open"] == []
    assert later["lastTradeTimestamp"] == hit


def test_order_errors_map_to_ccxt_exceptions(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)
    last = sim.venue.last_price("BTC/USDT") / 100
    low = round(last * 0.9, 2)

    async def body(ex: Any) -> dict[str, type[Exception]]:
        errors: dict[str, type[Exception]] = {}
        first = await ex.create_order(
            "BTC/USDT", "limit", "buy", 0.01, low, {"clientOrderId": "a1"}
        )
        attempts = {
            "duplicate": ex.create_order(
                "BTC/USDT", "limit", "buy", 0.01, low, {"clientOrderId": "a1"}
            ),
            "insufficient": ex.create_order("BTC/USDT", "market", "buy", 50),
            "unknown_fetch": ex.fetch_order("424242", "BTC/USDT"),
            "tiny": ex.create_order("BTC/USDT", "limit", "buy", 0.00001, low),
        }
        for name, call in attempts.items():
            try:
                await call
            except ccxt.BaseError as exc:
                errors[name] = type(exc)
        canceled = await ex.cancel_order(first["id"], "BTC/USDT")
        assert canceled["status"] == "canceled"
        try:
            await ex.cancel_order(first["id"], "BTC/USDT")
        except ccxt.BaseError as exc:
            errors["cancel_twice"] = type(exc)
        # once the first is closed its client id may be used again, as on Binance
        again = await ex.create_order(
            "BTC/USDT", "limit", "buy", 0.01, low, {"clientOrderId": "a1"}
        )
        assert again["clientOrderId"] == "a1" and again["status"] == "open"
        return errors

    errors = run(with_exchange(sim.base_url, body, **KEYS))
    assert errors == {
        "duplicate": ccxt.InvalidOrder,
        "insufficient": ccxt.InsufficientFunds,
        "unknown_fetch": ccxt.OrderNotFound,
        "tiny": ccxt.BadRequest,  # -1013 "Filter failure: NOTIONAL", as ccxt maps it
        "cancel_twice": ccxt.OrderNotFound,
    }


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"api_key": "nobody", "secret": "sim-secret"}, ccxt.AuthenticationError),
        ({"api_key": "sim-key", "secret": "not-the-secret"}, ccxt.AuthenticationError),
        ({**KEYS, "options_patch": {"timeDifference": 70_000}}, ccxt.InvalidNonce),
    ],
)
def test_authentication_failures(
    sim_factory: fixtures.SimFactory, config: dict, error: type[Exception]
) -> None:
    sim = sim_factory()
    patch = config.pop("options_patch", {})

    async def body(ex: Any) -> None:
        ex.options.update(patch)  # signing 70 s in the past leaves the recvWindow
        await ex.fetch_balance()

    with pytest.raises(error):
        run(with_exchange(sim.base_url, body, **config))


def test_missing_key_and_signature_get_binance_errors(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory()

    async def body() -> list:
        out = []
        async with aiohttp.ClientSession() as session:
            url = sim.base_url + "/api/v3/account?timestamp=1"
            for headers in ({}, {"X-MBX-APIKEY": "sim-key"}):
                async with session.get(url, headers=headers) as resp:
                    out.append((resp.status, await resp.json()))
        return out

    no_key, no_signature = run(body())
    assert no_key == (401, {"code": -2014, "msg": "API-key format invalid."})
    assert no_signature[0] == 400 and no_signature[1]["code"] == -1102


def test_cancel_all_and_history(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)
    low = round(sim.venue.last_price("SOL/USDT") / 100 * 0.8, 2)

    async def body(ex: Any) -> dict:
        for _ in range(3):
            await ex.create_order("SOL/USDT", "limit", "buy", 0.5, low)
        canceled = await ex.cancel_all_orders("SOL/USDT")
        return {
            "canceled": canceled,
            "open": await ex.fetch_open_orders("SOL/USDT"),
            "all": await ex.fetch_orders("SOL/USDT"),
            "balance": await ex.fetch_balance(),
        }

    got = run(with_exchange(sim.base_url, body, **KEYS))
    assert len(got["canceled"]) == 3 and got["open"] == []
    assert [o["status"] for o in got["all"]] == ["canceled"] * 3
    assert got["balance"]["USDT"]["free"] == 100_000 and got["balance"]["USDT"]["used"] == 0


async def _signed(session: aiohttp.ClientSession, base_url: str, **params: Any) -> Any:
    """POST /api/v3/order signed as Binance documents it."""
    query = urlencode({**params, "timestamp": int(time.time() * 1000)})
    signature = hmac.new(b"sim-secret", query.encode(), hashlib.sha256).hexdigest()
    url = f"{base_url}/api/v3/order?{query}&signature={signature}"
    async with session.post(url, headers={"X-MBX-APIKEY": "sim-key"}) as resp:
        return await resp.json()


def test_filters_reject_orders_with_binance_codes(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)
    last = sim.venue.last_price("BTC/USDT")
    near, far = f"{last * 0.99 / 100:.2f}", f"{last * 6 / 100:.2f}"
    limit = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    stop = {**limit, "side": "SELL", "type": "STOP_LOSS_LIMIT", "quantity": "0.001"}

    async def body() -> dict:
        async with aiohttp.ClientSession() as session:
            post = lambda **p: _signed(session, sim.base_url, **p)  # noqa: E731
            await post(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
            out = {
                "tick": await post(**limit, price=f"{last / 100:.2f}1", quantity="0.001"),
                "percent": await post(**limit, price=far, quantity="0.001"),
                "notional": await post(**limit, price=near, quantity="0.00001"),
                "market_lot": await post(
                    symbol="BTCUSDT", side="BUY", type="MARKET", quantity="6000000"
                ),  # fmt: skip
                "iceberg": await post(**limit, price=near, quantity="0.01", icebergQty="0.0005"),
                "type": await post(
                    **limit | {"type": "STOP_LOSS"}, quantity="0.001", stopPrice=near
                ),  # fmt: skip
                "trigger": await post(**stop, price=near, stopPrice=f"{last * 1.01 / 100:.2f}"),
            }
            for i in range(6):
                price = f"{last * (0.98 - i / 1000) / 100:.2f}"
                out[f"algo{i}"] = await post(**stop, price=price, stopPrice=price)
            return out

    got = run(body())

    def code(name: str) -> tuple[int, str]:
        return got[name]["code"], got[name]["msg"]

    assert code("tick") == (-1013, "Filter failure: PRICE_FILTER")
    assert code("percent") == (-1013, "Filter failure: PERCENT_PRICE_BY_SIDE")
    assert code("notional") == (-1013, "Filter failure: NOTIONAL")
    assert code("market_lot") == (-1013, "Filter failure: MARKET_LOT_SIZE")
    assert code("iceberg") == (-1013, "Filter failure: ICEBERG_PARTS")
    assert code("type") == (-1116, "Invalid orderType.")
    assert code("trigger") == (-2010, "Order would trigger immediately.")
    assert all(got[f"algo{i}"]["status"] == "NEW" for i in range(5))
    assert code("algo5") == (-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")


def test_stop_limit_order_waits_for_its_stop_then_fills(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)
    venue = sim.venue
    last = venue.last_price("ETH/USDT")
    stop, price = round(last * 0.995), round(last * 0.994)
    placed_at = sim.now_ms()

    async def body(ex: Any) -> dict:
        await ex.create_order("ETH/USDT", "market", "buy", 0.1)
        order = await ex.create_order("ETH/USDT", "limit", "sell", 0.05, price / 100,
                                      {"stopLossPrice": stop / 100})  # fmt: skip
        waiting = await ex.fetch_order(order["id"], "ETH/USDT")
        sim.advance(12 * 3_600_000)
        return {"waiting": waiting, "later": await ex.fetch_order(order["id"], "ETH/USDT")}

    got = run(with_exchange(sim.base_url, body, **KEYS))
    waiting, later = got["waiting"], got["later"]
    assert waiting["info"]["type"] == "STOP_LOSS_LIMIT" and waiting["status"] == "open"
    assert waiting["info"]["isWorking"] is False and waiting["triggerPrice"] == stop / 100
    triggered = venue.first_cross("ETH/USDT", placed_at, sim.now_ms(), stop, buy=True)
    assert triggered is not None
    filled = venue.first_cross("ETH/USDT", triggered - 1, sim.now_ms(), price, buy=False)
    assert later["status"] == "closed" and later["lastTradeTimestamp"] == filled
    assert later["info"]["isWorking"] is True and later["info"]["workingTime"] == triggered
