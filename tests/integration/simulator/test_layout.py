"""The simulator's bodies have the fields and JSON types of Binance's documented examples.

The examples in ``tests/fixtures/binance/`` are copied from Binance's public spot API
documentation (REST and websocket streams).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from tests.fixtures import simulator as fixtures
from tests.fixtures.simulator import run

DOCS = Path(__file__).parents[2] / "fixtures" / "binance"


def documented(name: str) -> Any:
    return json.loads((DOCS / f"{name}.json").read_text())


def layout(value: Any) -> Any:
    """Keys (in order) and JSON types; lists are represented by their first element."""
    if isinstance(value, dict):
        return [(k, layout(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [layout(value[0])] if value else []
    return type(value).__name__


class Client:
    """Raw HTTP access, signed the way Binance documents it."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str):
        self.session, self.base_url = session, base_url

    async def get(self, path: str, **params: Any) -> Any:
        async with self.session.get(self.base_url + path, params=params) as resp:
            return await resp.json()

    async def signed(
        self, method: str, path: str, secret: str = "sim-secret", **params: Any
    ) -> Any:
        query = urlencode({"timestamp": int(time.time() * 1000), **params})
        signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        url = f"{self.base_url}{path}?{query}&signature={signature}"
        headers = {"X-MBX-APIKEY": "sim-key"}
        async with self.session.request(method, url, headers=headers) as resp:
            return await resp.json()


def test_rest_market_data_layouts(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory()

    async def body() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            c = Client(session, sim.base_url)
            return {
                "klines": await c.get("/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=2),
                "exchange_info": await c.get("/api/v3/exchangeInfo"),
                "ticker_24hr": await c.get("/api/v3/ticker/24hr", symbol="BTCUSDT"),
                "ticker_price": await c.get("/api/v3/ticker/price", symbol="BTCUSDT"),
                "time": await c.get("/api/v3/time"),
                "depth": await c.get("/api/v3/depth", symbol="BTCUSDT", limit=5),
                "trades": await c.get("/api/v3/trades", symbol="BTCUSDT", limit=3),
                "agg_trades": await c.get("/api/v3/aggTrades", symbol="BTCUSDT", limit=3),
                "historical_trades": await c.get(
                    "/api/v3/historicalTrades", symbol="BTCUSDT", limit=3
                ),
                "ui_klines": await c.get(
                    "/api/v3/uiKlines", symbol="BTCUSDT", interval="1s", limit=2
                ),
                "avg_price": await c.get("/api/v3/avgPrice", symbol="BTCUSDT"),
                "ticker_window": await c.get("/api/v3/ticker", symbol="BTCUSDT", windowSize="4h"),
                "book_ticker": await c.get("/api/v3/ticker/bookTicker", symbol="BTCUSDT"),
            }

    served = run(body())
    same_as = {"historical_trades": "trades", "ui_klines": "klines"}
    for name, payload in served.items():
        assert layout(payload) == layout(documented(same_as.get(name, name))), name
    symbol = served["exchange_info"]["symbols"][0]
    assert symbol["orderTypes"] == ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                                    "TAKE_PROFIT_LIMIT"]  # fmt: skip
    filters = {f["filterType"]: f for f in symbol["filters"]}
    for doc_filter in documented("exchange_info")["symbols"][0]["filters"]:
        assert layout(filters[doc_filter["filterType"]]) == layout(doc_filter)


def test_signed_layouts_and_error_bodies(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory()
    price = f"{sim.venue.last_price('BTC/USDT') * 0.9 / 100:.2f}"

    async def body() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            c = Client(session, sim.base_url)
            order = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.01"}
            limit = {**order, "type": "LIMIT", "timeInForce": "GTC", "price": price}
            full = await c.signed("POST", "/api/v3/order", **order, type="MARKET")
            resting = await c.signed("POST", "/api/v3/order", **limit, newClientOrderId="x1")
            ids = {"symbol": "BTCUSDT", "orderId": resting["orderId"]}
            return {
                "order_full": full,
                "order_query": await c.signed("GET", "/api/v3/order", **ids),
                "duplicate_order": await c.signed(
                    "POST", "/api/v3/order", **limit, newClientOrderId="x1"
                ),
                "order_cancel": await c.signed("DELETE", "/api/v3/order", **ids),
                "unknown_order": await c.signed("DELETE", "/api/v3/order", **ids),
                "order_does_not_exist": await c.signed(
                    "GET", "/api/v3/order", symbol="BTCUSDT", orderId=999
                ),
                "insufficient_balance": await c.signed(
                    "POST", "/api/v3/order", **{**order, "quantity": "90"}, type="MARKET"
                ),
                "account": await c.signed("GET", "/api/v3/account"),
                "my_trades": await c.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT"),
                "bad_signature": await c.signed("GET", "/api/v3/account", secret="wrong"),
                "outside_recv_window": await c.signed(
                    "GET", "/api/v3/account", timestamp=int(time.time() * 1000) - 70_000
                ),
                "invalid_symbol": await c.get("/api/v3/klines", symbol="XXX", interval="1m"),
                "invalid_interval": await c.get("/api/v3/klines", symbol="BTCUSDT", interval="2m"),
            }

    served = run(body())
    errors = documented("errors")
    for name, payload in served.items():
        if name in errors:
            assert payload == errors[name], name
        else:
            assert layout(payload) == layout(documented(name)), name


def test_stream_event_layouts(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)
    streams = {
        "ws_kline": "btcusdt@kline_1m",
        "ws_trade": "btcusdt@trade",
        "ws_agg_trade": "btcusdt@aggTrade",
        "ws_ticker": "btcusdt@ticker",
        "ws_mini_ticker": "btcusdt@miniTicker",
        "ws_depth_update": "btcusdt@depth@100ms",
        "ws_partial_depth": "btcusdt@depth5@100ms",
        "ws_book_ticker": "btcusdt@bookTicker",
        "ws_avg_price": "btcusdt@avgPrice",
    }
    url = sim.base_url.replace("http", "ws") + "/stream?streams=" + "/".join(streams.values())

    async def body() -> dict[str, Any]:
        first: dict[str, Any] = {}
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            while len(first) < len(streams):
                msg = await asyncio.wait_for(ws.receive(), 10)
                wrapped = orjson.loads(msg.data)
                first.setdefault(wrapped["stream"], wrapped["data"])
        return first

    first = run(body())
    for name, stream in streams.items():
        assert layout(first[stream]) == layout(documented(name)), name
