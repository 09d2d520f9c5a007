"""OKX v5 private REST endpoints on the simulator's broker (the accounts and matching Binance's
signed endpoints use, so an API key has one account on both venues).

Authentication is OKX's: headers ``OK-ACCESS-KEY``, ``OK-ACCESS-PASSPHRASE``,
``OK-ACCESS-TIMESTAMP`` (ISO 8601 UTC, within 30 s of the wall clock) and ``OK-ACCESS-SIGN``,
the base64 HMAC-SHA256, keyed with the secret, of timestamp + method + path with query + body.
Orders: ``POST /trade/order`` and ``/trade/batch-orders`` (ccxt's default), ``GET /trade/order``
by ``ordId`` or ``clOrdId`` (letters and digits, at most 32), ``POST /trade/cancel-order``,
``GET /trade/orders-pending``, ``GET /account/balance``. A rejected order is HTTP 200 with
``code`` "1" and the reason in ``data[0].sCode`` (51008 funds, 51016 a duplicate clOrdId, 51000
a bad parameter); an unknown order is 51603 (query) or 51400 (cancel).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson
from aiohttp import web

from simulator import okx_payloads as payloads
from simulator.broker import Account, Broker, Order
from simulator.clock import wall_ms
from simulator.errors import ApiError
from simulator.market import QUOTE_DECIMALS
from simulator.okx_rest import OKX_VENUE_KEY, OkxError, inst, ok
from simulator.signed import BROKER_KEY

Handler = Callable[[web.Request, Broker, Account, dict], Awaitable[web.Response]]
_CLIENT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_STATES = {"NEW": "live", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
           "CANCELED": "canceled", "EXPIRED": "canceled", "REJECTED": "canceled"}
_TYPES = {"market": ("MARKET", ""), "limit": ("LIMIT", "GTC"), "post_only": ("LIMIT_MAKER", ""),
          "ioc": ("LIMIT", "IOC"), "fok": ("LIMIT", "FOK")}  # fmt: skip


def _unauthorized(code: str, msg: str) -> OkxError:
    return OkxError(code, msg, 401)


async def authenticate(request: web.Request) -> tuple[str, str]:
    """Check key, passphrase, timestamp and signature; return the key and the body."""
    settings = request.app[OKX_VENUE_KEY].settings
    h = request.headers
    key = h.get("OK-ACCESS-KEY", "")
    if not key:
        raise _unauthorized("50103", "Request header OK-ACCESS-KEY can not be empty.")
    secret = settings.api_keys.get(key)
    if secret is None:
        raise _unauthorized("50111", "Invalid OK-ACCESS-KEY.")
    if h.get("OK-ACCESS-PASSPHRASE") != settings.okx_passphrase:
        raise _unauthorized("50105", "Invalid OK-ACCESS-PASSPHRASE.")
    stamp = h.get("OK-ACCESS-TIMESTAMP", "")
    try:
        sent = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise _unauthorized("50107", "Invalid OK-ACCESS-TIMESTAMP.") from None
    if abs(wall_ms() - sent.timestamp() * 1000) > 30_000:
        raise _unauthorized("50102", "Timestamp request expired.")
    body = await request.text() if request.can_read_body else ""
    path = request.rel_url.raw_path + (f"?{request.rel_url.raw_query_string}"
                                       if request.rel_url.raw_query_string else "")
    digest = hmac.new(secret.encode(), f"{stamp}{request.method}{path}{body}".encode(),
                      hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64encode(digest).decode(), h.get("OK-ACCESS-SIGN", "")):
        raise _unauthorized("50113", "Invalid Sign.")
    return key, body


def private(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap ``handler`` with OKX authentication and an up-to-date account."""

    async def wrapped(request: web.Request) -> web.Response:
        venue, broker = request.app[OKX_VENUE_KEY], request.app[BROKER_KEY]
        key, body = await authenticate(request)
        try:
            params = orjson.loads(body) if body else dict(request.query)
        except orjson.JSONDecodeError:
            raise OkxError("50002", "JSON syntax error", 400) from None
        acct = broker.account(key)
        broker.refresh(acct, venue.now_ms())
        return await handler(request, broker, acct, params)

    return wrapped


def _rejected(code: str, msg: str, cl_ord_id: str = "") -> web.Response:
    body = {"code": "1", "msg": "", "data": [{"clOrdId": cl_ord_id, "ordId": "", "tag": "",
                                               "ts": str(wall_ms()), "sCode": code, "sMsg": msg}]}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _s_code(err: ApiError) -> str:
    if "insufficient balance" in err.msg:
        return "51008"
    return "51016" if "Duplicate" in err.msg else "51000"


def _binance_params(broker: Broker, p: dict) -> dict[str, str]:
    """The order ``p`` as the broker's (Binance's) parameters."""
    spec = inst(broker.venue, p)
    kind, tif = _TYPES.get(str(p.get("ordType")), ("", ""))
    if not kind or p.get("side") not in ("buy", "sell") or p.get("tdMode") != "cash":
        field = "ordType" if not kind else "side" if p.get("side") not in ("buy", "sell") \
            else "tdMode"
        raise OkxError("51000", f"Parameter {field} error")
    out = {"symbol": spec.market_id, "side": str(p["side"]).upper(), "type": kind}
    if tif:
        out["timeInForce"] = tif
    size_key = "quoteOrderQty" if p.get("tgtCcy") == "quote_ccy" else "quantity"
    out[size_key] = str(p.get("sz", ""))
    if kind != "MARKET":
        out["price"] = str(p.get("px", ""))
    if p.get("clOrdId"):
        out["newClientOrderId"] = str(p["clOrdId"])
    return out


async def place(request: web.Request, broker: Broker, acct: Account, params: dict
                ) -> web.Response:
    batch = params if isinstance(params, list) else [params]
    if len(batch) != 1 or not isinstance(batch[0], dict):
        raise OkxError("51000", "Parameter orders error", 400)
    p = batch[0]
    cl_ord_id = str(p.get("clOrdId", ""))
    if cl_ord_id and not _CLIENT_ID.match(cl_ord_id):
        return _rejected("51000", "Parameter clOrdId error", cl_ord_id)
    try:
        order = broker.place(acct, _binance_params(broker, p), broker.venue.now_ms())
    except ApiError as exc:
        return _rejected(_s_code(exc), exc.msg, cl_ord_id)
    except OkxError as exc:
        if exc.code == "51001":
            raise
        return _rejected(exc.code, exc.msg, cl_ord_id)
    return ok([{"clOrdId": order.client_id if cl_ord_id else "", "ordId": str(order.order_id),
                "tag": str(p.get("tag", "")), "ts": str(order.time), "sCode": "0",
                "sMsg": "Order placed"}])


def order_detail(o: Order) -> dict:
    """A ``GET /trade/order`` entry (spot, cash)."""
    spec, pd, qd = o.spec, o.spec.price_decimals, o.spec.qty_decimals
    filled = o.executed_qty
    avg = o.cum_quote * 10**qd // filled // 10 ** (QUOTE_DECIMALS - pd) if filled else 0
    last = o.fills[-1] if o.fills else None
    fee = sum(f.commission for f in o.fills)
    fee_ccy = o.fills[0].commission_asset if o.fills else (spec.base if o.side == "BUY"
                                                          else spec.quote)
    kind = {"MARKET": "market", "LIMIT_MAKER": "post_only"}.get(o.type) or (
        {"IOC": "ioc", "FOK": "fok"}.get(o.time_in_force, "limit"))
    return {
        "accFillSz": payloads.num(filled, qd), "avgPx": payloads.num(avg, pd) if filled else "",
        "cTime": str(o.time), "category": "normal", "ccy": "", "clOrdId": o.client_id,
        "fee": payloads.num(-fee, QUOTE_DECIMALS), "feeCcy": fee_ccy,
        "fillPx": payloads.num(last.price, pd) if last else "",
        "fillSz": payloads.num(last.qty, qd) if last else "0",
        "fillTime": str(last.time) if last else "", "instId": payloads.inst_id(spec),
        "instType": "SPOT", "lever": "", "ordId": str(o.order_id), "ordType": kind,
        "pnl": "0", "posSide": "net", "px": payloads.num(o.price, pd) if o.price else "",
        "rebate": "0", "rebateCcy": spec.quote, "side": o.side.lower(), "slOrdPx": "",
        "slTriggerPx": "", "state": _STATES.get(o.status, "canceled"),
        "sz": payloads.num(o.orig_qty, qd), "tag": "", "tdMode": "cash", "tgtCcy": "",
        "tpOrdPx": "", "tpTriggerPx": "", "tradeId": str(last.trade_id) if last else "",
        "uTime": str(o.update_time or o.time),
    }  # fmt: skip


def _find(broker: Broker, acct: Account, p: dict) -> Order | None:
    spec = inst(broker.venue, p)
    oid, cid = p.get("ordId"), p.get("clOrdId")
    if not oid and not cid:
        raise OkxError("51000", "Parameter ordId error", 400)
    found = [o for o in acct.orders.values()
             if o.spec is spec and (str(o.order_id) == oid if oid else o.client_id == cid)]
    return found[-1] if found else None


async def get_order(request: web.Request, broker: Broker, acct: Account, params: dict
                    ) -> web.Response:
    order = _find(broker, acct, params)
    if order is None:
        raise OkxError("51603", "Order does not exist")
    return ok([order_detail(order)])


async def cancel(request: web.Request, broker: Broker, acct: Account, params: dict
                 ) -> web.Response:
    order = _find(broker, acct, params)
    if order is None or not order.is_open:
        msg = "Order cancellation failed as the order has been filled, canceled or does not exist"
        return _rejected("51400", msg, str(params.get("clOrdId", "")))
    broker.cancel(acct, order, broker.venue.now_ms())
    return ok([{"clOrdId": order.client_id, "ordId": str(order.order_id), "ts": str(wall_ms()),
                "sCode": "0", "sMsg": ""}])


async def pending(request: web.Request, broker: Broker, acct: Account, params: dict
                  ) -> web.Response:
    spec = inst(broker.venue, params) if params.get("instId") else None
    return ok([order_detail(o) for o in reversed(acct.orders.values())
               if o.is_open and (spec is None or o.spec is spec)])


async def balance(request: web.Request, broker: Broker, acct: Account, params: dict
                  ) -> web.Response:
    now = str(broker.venue.now_ms())
    details = []
    for asset in broker.assets(acct):
        free, locked = acct.free.get(asset, 0), acct.locked.get(asset, 0)
        if free or locked:
            total = payloads.num(free + locked, QUOTE_DECIMALS)
            held = payloads.num(locked, QUOTE_DECIMALS)
            details.append({
                "availBal": payloads.num(free, QUOTE_DECIMALS),
                "availEq": payloads.num(free, QUOTE_DECIMALS), "cashBal": total, "ccy": asset,
                "crossLiab": "", "disEq": "", "eq": total, "eqUsd": "", "frozenBal": held,
                "interest": "", "isoEq": "0", "isoLiab": "", "liab": "", "maxLoan": "",
                "mgnRatio": "", "notionalLever": "0", "ordFrozen": held, "twap": "0",
                "uTime": now, "upl": "0", "uplLiab": ""})  # fmt: skip
    return ok([{"adjEq": "", "details": details, "imr": "", "isoEq": "0", "mgnRatio": "",
                "mmr": "", "notionalUsd": "", "ordFroz": "", "totalEq": "", "uTime": now}])


async def currencies(request: web.Request, broker: Broker, acct: Account, params: dict
                     ) -> web.Response:
    """``GET /asset/currencies`` (ccxt's okx asks it while loading markets with keys): one
    chain per asset, deposits and withdrawals open."""
    return ok([{"canDep": True, "canInternal": True, "canWd": True, "ccy": asset,
                "chain": f"{asset}-{asset}", "depQuotaFixed": "", "logoLink": "",
                "mainNet": True, "maxFee": "0", "maxWd": "100000000", "minDep": "0.00000001",
                "minFee": "0", "minWd": "0.00000001", "name": asset, "needTag": False,
                "usedDepQuotaFixed": "", "usedWdQuota": "0", "wdQuota": "10000000",
                "wdTickSz": "8"} for asset in broker.assets(acct)])  # fmt: skip


def okx_private_routes() -> list[web.RouteDef]:
    """Routes of OKX's private (trading account) endpoints."""
    return [
        web.post("/api/v5/trade/order", private(place)),
        web.post("/api/v5/trade/batch-orders", private(place)),
        web.get("/api/v5/trade/order", private(get_order)),
        web.post("/api/v5/trade/cancel-order", private(cancel)),
        web.get("/api/v5/trade/orders-pending", private(pending)),
        web.get("/api/v5/account/balance", private(balance)),
        web.get("/api/v5/asset/currencies", private(currencies)),
    ]
