"""Public OKX v5 REST endpoints (``/api/v5``) answered from the same :class:`Venue` as Binance's.

What differs from Binance, as OKX does it: instrument ids ``BTC-USDT``; candles newest first,
paged by ``after`` (older than, exclusive) and ``before`` (newer than, exclusive), at most 300
a page, ``/market/candles`` reaching back 1,440 bars only (older ones come from
``/market/history-candles``); bars named ``1m``, ``1H``, ``1Dutc``; every answer in the
``{"code", "msg", "data"}`` envelope, errors with OKX's string codes (``51001`` unknown
instrument, ``50014`` a missing parameter, ``51000`` a bad one, ``50011`` too many requests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from simulator import okx_payloads as payloads
from simulator.candles import INTERVAL_MS, floor_open
from simulator.clock import wall_ms
from simulator.market import SymbolSpec
from simulator.venue import Venue

OKX_VENUE_KEY = web.AppKey("okx_venue", Venue)
# OKX bar -> simulator interval; 6h and longer only aligned to UTC (OKX's default is UTC+8)
BARS = {"1s": "1s", "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m",
        "1H": "1h", "2H": "2h", "4H": "4h", "6Hutc": "6h", "12Hutc": "12h", "1Dutc": "1d",
        "1Wutc": "1w", "1Mutc": "1M"}  # fmt: skip
RECENT_BARS = 1440  # how far back /market/candles reaches
CANDLES_MAX, CANDLES_DEFAULT = 300, 100


class OkxError(Exception):
    """An error answered as OKX does: ``{"code": "5xxxx", "msg": ..., "data": []}``."""

    def __init__(self, code: str, msg: str, status: int = 200):
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def response(self) -> web.Response:
        body = orjson.dumps({"code": self.code, "msg": self.msg, "data": []})
        return web.Response(status=self.status, body=body, content_type="application/json")


def missing(name: str) -> OkxError:
    return OkxError("50014", f"Parameter {name} can not be empty.", 400)


def invalid(name: str) -> OkxError:
    return OkxError("51000", f"Parameter {name} error", 400)


def ok(data: list) -> web.Response:
    return web.Response(body=orjson.dumps(payloads.envelope(data)),
                        content_type="application/json")


def int_arg(q: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid(name) from None


def inst(venue: Venue, q: Mapping[str, str]) -> SymbolSpec:
    """The instrument named by ``instId``: 50014 when missing, 51001 when unknown."""
    raw = q.get("instId")
    if not raw:
        raise missing("instId")
    spec = venue.spec(raw.replace("-", "")) if raw.count("-") == 1 else None
    if spec is None or payloads.inst_id(spec) != raw:
        raise OkxError("51001", "Instrument ID does not exist.")
    return spec


def limit_arg(q: Mapping[str, str], default: int, maximum: int) -> int:
    limit = int_arg(q, "limit", default)
    assert limit is not None
    if limit <= 0:
        raise invalid("limit")
    return min(limit, maximum)


async def server_time(request: web.Request) -> web.Response:
    return ok([{"ts": str(request.app[OKX_VENUE_KEY].now_ms())}])


async def instruments(request: web.Request) -> web.Response:
    venue, q = request.app[OKX_VENUE_KEY], request.query
    kind = q.get("instType")
    if not kind:
        raise missing("instType")
    if kind not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
        raise invalid("instType")
    if kind != "SPOT":  # the simulator lists spot markets only on this venue
        return ok([])
    now = venue.now_ms()
    specs = list(venue.specs.values())
    if q.get("instId"):
        specs = [inst(venue, q)]
    return ok([payloads.instrument(s, venue.listing_ms[s.symbol],
                                   venue.listing_ms[s.symbol] <= now) for s in specs])


def _candles(request: web.Request, recent_only: bool) -> web.Response:
    venue, q = request.app[OKX_VENUE_KEY], request.query
    spec = inst(venue, q)
    bar = q.get("bar") or "1m"
    interval = BARS.get(bar)
    if interval is None:
        raise invalid("bar")
    after, before = int_arg(q, "after"), int_arg(q, "before")
    limit = limit_arg(q, CANDLES_DEFAULT, CANDLES_MAX)
    now = venue.now_ms()
    # the newest `limit` candles older than `after`, newer than `before`
    end = now if after is None else min(now, after - 1)
    c = venue.klines(spec.symbol, interval, end=end, limit=limit, now_ms=now)
    keep = c.open_time > (before if before is not None else -1)
    if recent_only:
        horizon = floor_open(now, interval) - (RECENT_BARS - 1) * INTERVAL_MS[interval]
        keep &= c.open_time >= horizon
    venue.stats["klines"] += int(keep.sum())
    rows = payloads.candle_rows(c)
    return ok([r for r, k in zip(rows, keep[::-1].tolist(), strict=True) if k])


async def candles(request: web.Request) -> web.Response:
    return _candles(request, recent_only=True)


async def history_candles(request: web.Request) -> web.Response:
    return _candles(request, recent_only=False)


async def ticker(request: web.Request) -> web.Response:
    venue = request.app[OKX_VENUE_KEY]
    spec = inst(venue, request.query)
    now = venue.now_ms()
    t = venue.ticker_24h(spec.symbol, now)
    if t is None:
        raise OkxError("51001", "Instrument ID does not exist.")
    return ok([payloads.ticker(venue, spec, t, now)])


async def tickers(request: web.Request) -> web.Response:
    venue, q = request.app[OKX_VENUE_KEY], request.query
    if not q.get("instType"):
        raise missing("instType")
    now = venue.now_ms()
    entries = []
    for spec in venue.specs.values() if q.get("instType") == "SPOT" else ():
        t = venue.ticker_24h(spec.symbol, now)
        if t is not None:
            entries.append(payloads.ticker(venue, spec, t, now))
    return ok(entries)


async def trades(request: web.Request) -> web.Response:
    venue, q = request.app[OKX_VENUE_KEY], request.query
    spec = inst(venue, q)
    rows = venue.recent_trades(spec.symbol, limit_arg(q, 100, 500))
    cols = zip(rows.ids.tolist(), rows.times.tolist(), rows.prices.tolist(), rows.qty.tolist(),
               rows.buyer_maker.tolist(), strict=True)
    return ok([payloads.trade(spec, *c) for c in cols][::-1])  # newest first


def _book(request: web.Request, maximum: int) -> web.Response:
    venue, q = request.app[OKX_VENUE_KEY], request.query
    spec = inst(venue, q)
    size = int_arg(q, "sz", 1)
    assert size is not None
    if size <= 0 or size > maximum:
        raise invalid("sz")
    now = venue.now_ms()
    bids, asks, _ = venue.book(spec.symbol, size, now)
    return ok([payloads.book(spec, bids, asks, now)])


async def books(request: web.Request) -> web.Response:
    return _book(request, 400)


async def books_full(request: web.Request) -> web.Response:
    return _book(request, 5000)


def _too_many() -> web.Response:
    return OkxError("50011", "Too Many Requests", 429).response()


@web.middleware
async def okx_layer(request: web.Request, handler: Any) -> web.StreamResponse:
    """Faults and OKX error bodies for ``/api/v5``: the fault plan is Binance's (one counter),
    the answers are OKX's (429 with code 50011 and no Retry-After, 503 with 50001)."""
    if not request.path.startswith("/api/v5/"):
        return await handler(request)
    venue = request.app[OKX_VENUE_KEY]
    plan = venue.faults.plan_rest(1, wall_ms())
    if plan.verdict in ("rate_limited", "banned"):
        return _too_many()
    if plan.verdict == "server_error":
        return OkxError("50001", "Service temporarily unavailable. Try again later.",
                        503).response()
    if plan.stall_s or plan.latency_s:
        await asyncio.sleep(plan.stall_s + plan.latency_s)
    try:
        resp = await handler(request)
    except OkxError as exc:
        resp = exc.response()
    venue.stats["requests"] += 1
    if plan.truncate and isinstance(resp, web.Response) and isinstance(resp.body, bytes):
        resp = web.Response(status=resp.status, body=resp.body[: len(resp.body) // 2],
                            content_type="application/json")
    return resp


def okx_public_routes() -> list[web.RouteDef]:
    """Routes of OKX's public market-data endpoints."""
    return [
        web.get("/api/v5/public/time", server_time),
        web.get("/api/v5/public/instruments", instruments),
        web.get("/api/v5/market/candles", candles),
        web.get("/api/v5/market/history-candles", history_candles),
        web.get("/api/v5/market/ticker", ticker),
        web.get("/api/v5/market/tickers", tickers),
        web.get("/api/v5/market/trades", trades),
        web.get("/api/v5/market/books", books),
        web.get("/api/v5/market/books-full", books_full),
    ]
