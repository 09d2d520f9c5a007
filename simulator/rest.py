"""Public Binance spot REST endpoints (``/api/v3``) answered from the :class:`Venue`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
import orjson
from aiohttp import web

from simulator import payloads
from simulator.candles import INTERVALS, Candles
from simulator.errors import ApiError, mandatory
from simulator.market import SymbolSpec
from simulator.venue import Venue

VENUE_KEY = web.AppKey("venue", Venue)


def json_body(payload: object) -> web.Response:
    """A 200 response with ``payload`` (bytes are sent as they are)."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return web.Response(body=body, content_type="application/json")


def int_param(params: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    """An integer parameter, Binance's -1100 when it is not one."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        msg = f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        raise ApiError(400, -1100, msg) from None


def symbol_param(venue: Venue, params: Mapping[str, str]) -> SymbolSpec:
    """The market named by ``symbol``, -1102 when missing, -1121 when unknown."""
    raw = params.get("symbol")
    if not raw:
        raise mandatory("symbol")
    spec = venue.spec(raw)
    if spec is None:
        raise ApiError(400, -1121, "Invalid symbol.")
    return spec


def symbols_param(venue: Venue, params: Mapping[str, str]) -> list[SymbolSpec]:
    """``symbol=X`` or ``symbols=["X","Y"]`` or all markets."""
    if params.get("symbol"):
        return [symbol_param(venue, params)]
    raw = params.get("symbols")
    if not raw:
        return list(venue.specs.values())
    try:
        ids = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, -1100, "Illegal characters found in parameter 'symbols'.") from None
    specs = [venue.spec(str(i)) for i in ids]
    if not ids or any(s is None for s in specs):
        raise ApiError(400, -1121, "Invalid symbol.")
    return [s for s in specs if s is not None]


def limit_param(params: Mapping[str, str], default: int, maximum: int) -> int:
    limit = int_param(params, "limit", default)
    assert limit is not None
    if limit <= 0:
        raise ApiError(400, -1100, "Illegal characters found in parameter 'limit'.")
    return min(limit, maximum)


def time_range(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    start, end = int_param(params, "startTime"), int_param(params, "endTime")
    if start is not None and end is not None and start > end:
        raise ApiError(400, -1023, "Start time is greater than end time.")
    return start, end


async def ping(request: web.Request) -> web.Response:
    return json_body({})


async def server_time(request: web.Request) -> web.Response:
    return json_body({"serverTime": request.app[VENUE_KEY].now_ms()})


async def exchange_info(request: web.Request) -> web.Response:
    venue = request.app[VENUE_KEY]
    now = venue.now_ms()
    specs = symbols_param(venue, request.query)
    listed = {s.market_id: venue.listing_ms[s.symbol] <= now for s in venue.specs.values()}
    return json_body(
        {
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],  # fmt: skip
            "exchangeFilters": [],
            "symbols": [payloads.symbol_info(s, listed[s.market_id]) for s in specs],
        }
    )


def _klines(request: web.Request) -> tuple[SymbolSpec, str, Candles]:
    venue, q = request.app[VENUE_KEY], request.query
    spec = symbol_param(venue, q)
    interval = q.get("interval")
    if not interval:
        raise mandatory("interval")
    if interval not in INTERVALS:
        raise ApiError(400, -1120, "Invalid interval.")
    start, end = time_range(q)
    candles = venue.klines(spec.symbol, interval, start, end, limit_param(q, 500, 1000))
    venue.stats["klines"] += len(candles)
    return spec, interval, candles


async def klines(request: web.Request) -> web.Response:
    return json_body(payloads.kline_rows(_klines(request)[2]))


async def ui_klines(request: web.Request) -> web.Response:
    """Klines for charts: each candle opens at the close before it (no gaps between bodies)."""
    spec, interval, c = _klines(request)
    if not len(c):
        return json_body(payloads.kline_rows(c))
    venue = request.app[VENUE_KEY]
    before = venue.klines(spec.symbol, interval, end=int(c.open_time[0]) - 1, limit=1)
    first = int(before.close[-1]) if len(before) else int(c.open[0])
    open_ = np.concatenate([[first], c.close[:-1]])
    ui = replace(c, open=open_, high=np.maximum(c.high, open_), low=np.minimum(c.low, open_))
    return json_body(payloads.kline_rows(ui))


def tickers_body(request: web.Request, one: Callable[[SymbolSpec], dict | None]) -> web.Response:
    venue, q = request.app[VENUE_KEY], request.query
    specs = symbols_param(venue, q)
    entries = [e for e in (one(s) for s in specs) if e is not None]
    if q.get("symbol"):
        if not entries:
            raise ApiError(400, -1121, "Invalid symbol.")
        return json_body(entries[0])
    return json_body(entries)


async def ticker_24hr(request: web.Request) -> web.Response:
    venue = request.app[VENUE_KEY]
    now = venue.now_ms()

    def one(spec: SymbolSpec) -> dict | None:
        t = venue.ticker_24h(spec.symbol, now)
        if t is None:
            return None
        if _ticker_type(request) == "MINI":
            return payloads.ticker_window(spec, t, mini=True)
        bids, asks, _ = venue.book(spec.symbol, 1, now)
        return payloads.ticker_rest(spec, t, bids[0], asks[0])

    return tickers_body(request, one)


def _ticker_type(request: web.Request) -> str:
    kind = request.query.get("type", "FULL") or "FULL"
    if kind not in ("FULL", "MINI"):
        raise ApiError(400, -1100, "Illegal characters found in parameter 'type'.")
    return kind


_WINDOW_RE = re.compile(r"^([1-9][0-9]?)([mhd])$")
_WINDOW_MAX = {"m": 59, "h": 23, "d": 7}
_WINDOW_MIN = {"m": 1, "h": 60, "d": 1440}


def window_minutes(text: str) -> int:
    """``windowSize`` (1m-59m, 1h-23h, 1d-7d) in minutes; Binance's -1100 otherwise."""
    m = _WINDOW_RE.match(text)
    if not m or int(m.group(1)) > _WINDOW_MAX[m.group(2)]:
        raise ApiError(400, -1100, "Illegal characters found in parameter 'windowSize'; "
                                   "legal range is '1m-59m, 1h-23h, 1d-7d'.")  # fmt: skip
    return int(m.group(1)) * _WINDOW_MIN[m.group(2)]


async def ticker_window(request: web.Request) -> web.Response:
    """``GET /api/v3/ticker``: statistics over a rolling ``windowSize``, from a whole minute."""
    venue, q = request.app[VENUE_KEY], request.query
    if not q.get("symbol") and not q.get("symbols"):
        raise mandatory("symbol")
    minutes = window_minutes(q.get("windowSize") or "1d")
    mini = _ticker_type(request) == "MINI"
    now = venue.now_ms()

    def one(spec: SymbolSpec) -> dict | None:
        t = venue.ticker_24h(spec.symbol, now, window_min=minutes + 1)
        return None if t is None else payloads.ticker_window(spec, t, mini)

    return tickers_body(request, one)


async def ticker_price(request: web.Request) -> web.Response:
    venue = request.app[VENUE_KEY]
    now = venue.now_ms()

    def one(spec: SymbolSpec) -> dict:
        price = venue.last_price(spec.symbol, now)
        return {"symbol": spec.market_id, "price": payloads.formatter(spec.price_decimals)(price)}

    return tickers_body(request, one)


def _by_limit(table: tuple[tuple[int, int], ...], default: int) -> Callable[[Mapping], int]:
    def weight(q: Mapping[str, str]) -> int:
        try:
            limit = int(q.get("limit", default))
        except ValueError:
            limit = default
        return next((w for top, w in table if limit <= top), table[-1][1])

    return weight


def _count(q: Mapping[str, str]) -> int:
    try:
        return len(orjson.loads(q.get("symbols") or "[]")) or 1
    except orjson.JSONDecodeError:
        return 1


def _with_symbol(one: int, many: int) -> Callable[[Mapping], int]:
    return lambda q: one if q.get("symbol") else many


# Binance's documented request weights
WEIGHTS: dict[tuple[str, str], Callable[[Mapping], int]] = {
    ("GET", "/api/v3/ping"): lambda q: 1,
    ("GET", "/api/v3/time"): lambda q: 1,
    ("GET", "/api/v3/exchangeInfo"): lambda q: 20,
    ("GET", "/api/v3/klines"): _by_limit(((99, 1), (499, 2), (1000, 5), (10**9, 10)), 500),
    ("GET", "/api/v3/depth"): _by_limit(((100, 5), (500, 25), (1000, 50), (10**9, 250)), 100),
    ("GET", "/api/v3/trades"): lambda q: 25,
    ("GET", "/api/v3/aggTrades"): lambda q: 4,
    ("GET", "/api/v3/historicalTrades"): lambda q: 25,
    ("GET", "/api/v3/uiKlines"): lambda q: 2,
    ("GET", "/api/v3/avgPrice"): lambda q: 2,
    ("GET", "/api/v3/ticker"): lambda q: 4 if q.get("symbol") else min(200, 4 * _count(q)),
    ("GET", "/api/v3/ticker/24hr"): _with_symbol(2, 80),
    ("GET", "/api/v3/ticker/price"): _with_symbol(2, 4),
    ("GET", "/api/v3/ticker/bookTicker"): _with_symbol(2, 4),
    ("POST", "/api/v3/order"): lambda q: 1,
    ("GET", "/api/v3/order"): lambda q: 4,
    ("DELETE", "/api/v3/order"): lambda q: 1,
    ("GET", "/api/v3/openOrders"): _with_symbol(6, 80),
    ("DELETE", "/api/v3/openOrders"): lambda q: 1,
    ("GET", "/api/v3/allOrders"): lambda q: 20,
    ("GET", "/api/v3/account"): lambda q: 20,
    ("GET", "/api/v3/myTrades"): lambda q: 20,
}


def public_routes() -> list[web.RouteDef]:
    """Routes of the market-data endpoints."""
    return [
        web.get("/api/v3/ping", ping),
        web.get("/api/v3/time", server_time),
        web.get("/api/v3/exchangeInfo", exchange_info),
        web.get("/api/v3/klines", klines),
        web.get("/api/v3/uiKlines", ui_klines),
        web.get("/api/v3/ticker/24hr", ticker_24hr),
        web.get("/api/v3/ticker/price", ticker_price),
        web.get("/api/v3/ticker", ticker_window),
    ]
