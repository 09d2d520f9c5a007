"""Order-flow REST endpoints: trades, historicalTrades, aggTrades, depth, bookTicker, avgPrice.

Paging follows Binance's spot API: ``aggTrades`` takes ``fromId`` (ids from it on),
``startTime`` (the first ``limit`` from it, up to ``endTime`` when given), ``endTime`` alone (the
last ``limit`` up to it) or none (the latest); ``fromId`` with a time is Binance's -1128.
``historicalTrades`` reads from ``fromId`` or returns the latest, and needs no API key (Binance
made it a public endpoint in 2024 and ignores ``X-MBX-APIKEY`` there).
"""

from __future__ import annotations

from aiohttp import web

from simulator import orderflow
from simulator.errors import ApiError
from simulator.market import SymbolSpec
from simulator.rest import (
    VENUE_KEY,
    int_param,
    json_body,
    limit_param,
    symbol_param,
    tickers_body,
    time_range,
)

_DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)


async def depth(request: web.Request) -> web.Response:
    venue, q = request.app[VENUE_KEY], request.query
    spec = symbol_param(venue, q)
    bids, asks, update_id = venue.book(spec.symbol, limit_param(q, 100, 5000))
    return json_body(orderflow.depth_rest(spec, bids, asks, update_id))


async def trades(request: web.Request) -> web.Response:
    venue, q = request.app[VENUE_KEY], request.query
    spec = symbol_param(venue, q)
    rows = venue.recent_trades(spec.symbol, limit_param(q, 500, 1000))
    return json_body(orderflow.trades_rest(spec, rows))


async def historical_trades(request: web.Request) -> web.Response:
    venue, q = request.app[VENUE_KEY], request.query
    spec = symbol_param(venue, q)
    limit, from_id = limit_param(q, 500, 1000), int_param(q, "fromId")
    if from_id is None:
        rows = venue.recent_trades(spec.symbol, limit)
    else:
        rows = venue.trades_from(spec.symbol, from_id=from_id, limit=limit)
    return json_body(orderflow.trades_rest(spec, rows))


async def agg_trades(request: web.Request) -> web.Response:
    venue, q = request.app[VENUE_KEY], request.query
    spec = symbol_param(venue, q)
    start, end = time_range(q)
    from_id, limit = int_param(q, "fromId"), limit_param(q, 500, 1000)
    if from_id is not None and (start is not None or end is not None):
        raise ApiError(400, -1128, "Combination of optional parameters invalid.")
    rows = venue.agg_trades(spec.symbol, from_id=from_id, start=start, end=end, limit=limit)
    return json_body(orderflow.agg_trades_rest(spec, rows))


async def book_ticker(request: web.Request) -> web.Response:
    venue = request.app[VENUE_KEY]
    now = venue.now_ms()

    def one(spec: SymbolSpec) -> dict:
        bids, asks, _ = venue.book(spec.symbol, 1, now)
        return orderflow.book_ticker(spec, bids[0], asks[0])

    return tickers_body(request, one)


async def avg_price(request: web.Request) -> web.Response:
    venue, q = request.app[VENUE_KEY], request.query
    spec = symbol_param(venue, q)
    price, last_ms = venue.avg_price(spec.symbol)
    return json_body(orderflow.avg_price(price, last_ms))


def flow_routes() -> list[web.RouteDef]:
    """Routes of the order-flow market-data endpoints."""
    return [
        web.get("/api/v3/depth", depth),
        web.get("/api/v3/trades", trades),
        web.get("/api/v3/historicalTrades", historical_trades),
        web.get("/api/v3/aggTrades", agg_trades),
        web.get("/api/v3/ticker/bookTicker", book_ticker),
        web.get("/api/v3/avgPrice", avg_price),
    ]
