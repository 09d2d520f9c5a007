"""Signed (USER_DATA / TRADE) endpoints: HMAC-SHA256 authentication, orders, account, trades.

Authentication is Binance's: the ``X-MBX-APIKEY`` header names the key; ``signature`` is the
hex HMAC-SHA256, keyed with the secret, of the query string followed directly by the body
(both as sent, without the ``signature`` parameter); ``timestamp`` must be within
``recvWindow`` (default 5000 ms) of the server's *wall* clock, since clients sign with theirs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from simulator.broker import Account, Broker, Order
from simulator.clock import wall_ms
from simulator.errors import ApiError, mandatory
from simulator.market import QUOTE_DECIMALS
from simulator.payloads import F8, formatter
from simulator.rest import VENUE_KEY, int_param, json_body, symbol_param

BROKER_KEY = web.AppKey("broker", Broker)
Handler = Callable[[web.Request, Broker, Account, dict[str, str]], Awaitable[web.Response]]


def _strip_signature(raw: str) -> tuple[str, str | None]:
    if not raw:
        return "", None
    parts = raw.split("&")
    sig = next((p[len("signature=") :] for p in parts if p.startswith("signature=")), None)
    return "&".join(p for p in parts if not p.startswith("signature=")), sig


async def authenticate(request: web.Request, secrets: dict[str, str]) -> tuple[str, dict]:
    """Check key, signature and timestamp; return the API key and the request parameters."""
    key = request.headers.get("X-MBX-APIKEY")
    if not key:
        raise ApiError(401, -2014, "API-key format invalid.")
    secret = secrets.get(key)
    if secret is None:
        raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
    query, sig_q = _strip_signature(request.rel_url.raw_query_string)
    body, sig_b = _strip_signature(await request.text() if request.can_read_body else "")
    signature = sig_q or sig_b
    if not signature:
        raise mandatory("signature")
    expected = hmac.new(secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise ApiError(400, -1022, "Signature for this request is not valid.")
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(parse_qsl(body, keep_blank_values=True))
    timestamp = int_param(params, "timestamp")
    if timestamp is None:
        raise mandatory("timestamp")
    window = int_param(params, "recvWindow", 5000)
    assert window is not None
    if window > 60_000:
        raise ApiError(400, -1131, "recvWindow must be less than 60000")
    now = wall_ms()
    if timestamp >= now + 1000:
        raise ApiError(
            400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if now - timestamp > window:
        raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
    return key, params


def signed(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap ``handler`` with authentication and an up-to-date account."""

    async def wrapped(request: web.Request) -> web.Response:
        venue, broker = request.app[VENUE_KEY], request.app[BROKER_KEY]
        key, params = await authenticate(request, venue.settings.api_keys)
        acct = broker.account(key)
        broker.refresh(acct, venue.now_ms())
        return await handler(request, broker, acct, params)

    return wrapped


def _order_core(o: Order) -> dict:
    fp, fq = formatter(o.spec.price_decimals), formatter(o.spec.qty_decimals)
    return {
        "symbol": o.spec.market_id,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_id,
        "price": fp(o.price),
        "origQty": fq(o.orig_qty),
        "executedQty": fq(o.executed_qty),
        "cummulativeQuoteQty": F8(o.cum_quote),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
    }


def order_query(o: Order) -> dict:
    """The ``GET /api/v3/order`` layout."""
    fp, fq = formatter(o.spec.price_decimals), formatter(o.spec.qty_decimals)
    working_since = o.time if o.triggered_at is None else o.triggered_at
    return {
        **_order_core(o),
        "stopPrice": fp(o.stop_price),
        "icebergQty": fq(o.iceberg_qty),
        "time": o.time,
        "updateTime": o.update_time,
        "isWorking": o.working,
        "workingTime": working_since if o.working else -1,
        "origQuoteOrderQty": F8(o.orig_quote),
        "selfTradePreventionMode": "NONE",
    }


def order_placed(o: Order, resp_type: str) -> dict:
    """The ``POST /api/v3/order`` layout for newOrderRespType ACK, RESULT or FULL."""
    if resp_type == "ACK":
        return {
            "symbol": o.spec.market_id,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_id,
            "transactTime": o.time,
        }
    core = _order_core(o)
    result = {
        **{k: core[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId")},
        "transactTime": o.time,
        **{k: core[k] for k in ("price", "origQty", "executedQty")},
        "origQuoteOrderQty": F8(o.orig_quote),
        **{k: core[k] for k in list(core)[7:]},
        "workingTime": o.time,
        "selfTradePreventionMode": "NONE",
    }
    if resp_type == "FULL":
        fp, fq = formatter(o.spec.price_decimals), formatter(o.spec.qty_decimals)
        result["fills"] = [
            {
                "price": fp(f.price),
                "qty": fq(f.qty),
                "commission": F8(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in o.fills
        ]
    return result


def order_canceled(o: Order, cancel_id: str, now: int) -> dict:
    """The ``DELETE /api/v3/order`` layout."""
    core = _order_core(o)
    return {
        "symbol": core["symbol"],
        "origClientOrderId": o.client_id,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_id,
        "transactTime": now,
        **{k: core[k] for k in list(core)[4:]},
        "selfTradePreventionMode": "NONE",
    }


async def new_order(request: web.Request, broker: Broker, acct: Account, p: dict) -> web.Response:
    order = broker.place(acct, p, request.app[VENUE_KEY].now_ms())
    return json_body(order_placed(order, p.get("newOrderRespType") or "FULL"))


async def get_order(request: web.Request, broker: Broker, acct: Account, p: dict) -> web.Response:
    order = broker.find(acct, p, ApiError(400, -2013, "Order does not exist."))
    return json_body(order_query(order))


async def cancel_order(
    request: web.Request, broker: Broker, acct: Account, p: dict
) -> web.Response:
    now = request.app[VENUE_KEY].now_ms()
    order = broker.find(acct, p, ApiError(400, -2011, "Unknown order sent."))
    broker.cancel(acct, order, now)
    cancel_id = p.get("newClientOrderId") or f"cancel{order.order_id:012d}"
    return json_body(order_canceled(order, cancel_id, now))


async def open_orders(request: web.Request, broker: Broker, acct: Account, p: dict) -> web.Response:
    venue = request.app[VENUE_KEY]
    spec = symbol_param(venue, p) if p.get("symbol") else None
    orders = [o for o in acct.orders.values() if o.is_open and spec in (None, o.spec)]
    return json_body([order_query(o) for o in orders])


async def cancel_open_orders(
    request: web.Request, broker: Broker, acct: Account, p: dict
) -> web.Response:
    venue = request.app[VENUE_KEY]
    spec, now = symbol_param(venue, p), venue.now_ms()
    orders = [o for o in acct.orders.values() if o.is_open and o.spec is spec]
    if not orders:
        raise ApiError(400, -2011, "Unknown order sent.")
    for order in orders:
        broker.cancel(acct, order, now)
    return json_body([order_canceled(o, f"cancel{o.order_id:012d}", now) for o in orders])


def _window(p: dict, times: list[int]) -> list[bool]:
    start, end = int_param(p, "startTime"), int_param(p, "endTime")
    return [(start is None or t >= start) and (end is None or t <= end) for t in times]


async def all_orders(request: web.Request, broker: Broker, acct: Account, p: dict) -> web.Response:
    spec = symbol_param(request.app[VENUE_KEY], p)
    from_id = int_param(p, "orderId", 0) or 0
    limit = min(int_param(p, "limit", 500) or 500, 1000)
    orders = [o for o in acct.orders.values() if o.spec is spec and o.order_id >= from_id]
    keep = _window(p, [o.time for o in orders])
    orders = [o for o, k in zip(orders, keep, strict=True) if k]
    return json_body([order_query(o) for o in orders[:limit]])


async def my_trades(request: web.Request, broker: Broker, acct: Account, p: dict) -> web.Response:
    spec = symbol_param(request.app[VENUE_KEY], p)
    order_id, from_id = int_param(p, "orderId"), int_param(p, "fromId", 0) or 0
    limit = min(int_param(p, "limit", 500) or 500, 1000)
    fp, fq = formatter(spec.price_decimals), formatter(spec.qty_decimals)
    rows = [
        (o, f)
        for o in acct.orders.values()
        if o.spec is spec and order_id in (None, o.order_id)
        for f in o.fills
        if f.trade_id >= from_id
    ]
    rows = [r for r, k in zip(rows, _window(p, [f.time for _, f in rows]), strict=True) if k]
    rows.sort(key=lambda r: r[1].trade_id)
    return json_body(
        [
            {
                "symbol": spec.market_id,
                "id": f.trade_id,
                "orderId": o.order_id,
                "orderListId": -1,
                "price": fp(f.price),
                "qty": fq(f.qty),
                "quoteQty": F8(f.quote),
                "commission": F8(f.commission),
                "commissionAsset": f.commission_asset,
                "time": f.time,
                "isBuyer": o.side == "BUY",
                "isMaker": f.maker,
                "isBestMatch": True,
            }
            for o, f in rows[:limit]
        ]
    )


async def account(request: web.Request, broker: Broker, acct: Account, p: dict) -> web.Response:
    omit_zero = p.get("omitZeroBalances", "false").lower() == "true"
    balances = [
        {"asset": a, "free": F8(acct.free.get(a, 0)), "locked": F8(acct.locked.get(a, 0))}
        for a in broker.assets(acct)
        if not omit_zero or acct.free.get(a, 0) or acct.locked.get(a, 0)
    ]
    rate = F8(10 ** (QUOTE_DECIMALS - 3))
    return json_body(
        {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": rate, "taker": rate, "buyer": F8(0), "seller": F8(0)},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": acct.update_time,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": acct.uid,
        }
    )


async def no_margin(request: web.Request, broker: Broker, acct: Account, p: dict) -> web.Response:
    # ccxt asks for margin pairs while loading markets when it holds keys; there are none
    return json_body([])


def signed_routes() -> list[web.RouteDef]:
    """Routes of the signed endpoints."""
    return [
        web.post("/api/v3/order", signed(new_order)),
        web.get("/api/v3/order", signed(get_order)),
        web.delete("/api/v3/order", signed(cancel_order)),
        web.get("/api/v3/openOrders", signed(open_orders)),
        web.delete("/api/v3/openOrders", signed(cancel_open_orders)),
        web.get("/api/v3/allOrders", signed(all_orders)),
        web.get("/api/v3/account", signed(account)),
        web.get("/api/v3/myTrades", signed(my_trades)),
        web.get("/sapi/v1/margin/allPairs", signed(no_margin)),
        web.get("/sapi/v1/margin/isolated/allPairs", signed(no_margin)),
    ]
