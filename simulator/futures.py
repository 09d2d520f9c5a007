"""USDⓈ-M perpetuals (``/fapi/v1``): the part of Binance's futures API that ccxt's ``binance``
calls to load linear markets and page through their klines.

Every USDT-quoted spot symbol of the simulator has a perpetual with the same market id
(``BTCUSDT``, unified ``BTC/USDT:USDT`` in ccxt) unless ``perpetuals`` is off. A perpetual
shares its spot market's price path: its klines are the spot klines of the same minutes, field
for field, so tests can compare a stored perpetual series with the spot candles of the venue.
Its tick and lot sizes are therefore the spot market's too. No funding, mark or index prices
and no futures orders are served: the simulator is a market-data venue for perpetuals.

Bodies follow ``GET /fapi/v1/exchangeInfo`` and ``GET /fapi/v1/klines`` as Binance sends them:
a contract's ``contractType``, ``pair``, ``marginAsset``, ``deliveryDate`` (4133404800000 for a
perpetual), ``onboardDate`` and the futures filters (``MIN_NOTIONAL`` with ``notional``,
``PERCENT_PRICE`` with ``multiplierDecimal``); klines default to 500 rows and stop at 1500.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

from simulator import payloads
from simulator.candles import INTERVALS
from simulator.errors import ApiError, mandatory
from simulator.market import SymbolSpec
from simulator.rest import VENUE_KEY, json_body, limit_param, time_range
from simulator.venue import Venue

PERPETUAL_DELIVERY_MS = 4_133_404_800_000  # 2100-12-25: how Binance dates a perpetual
FAPI_INTERVALS = tuple(i for i in INTERVALS if i != "1s")  # futures have no 1s klines
ORDER_TYPES = ("LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
               "TRAILING_STOP_MARKET")


def _decimal(units: int, decimals: int) -> str:
    """``units`` of ``10**-decimals`` as futures write numbers: no padding past the step."""
    if decimals == 0:
        return str(units)
    whole, frac = divmod(units, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}"


def perpetual_filters(spec: SymbolSpec) -> list[dict]:
    """The filters of a perpetual, as Binance lists them for a liquid USDⓈ-M contract."""
    pd, qd = spec.price_decimals, spec.qty_decimals
    start_ticks = max(1, round(spec.start_price * 10**pd))
    return [
        {"filterType": "PRICE_FILTER", "minPrice": _decimal(max(1, start_ticks // 100), pd),
         "maxPrice": _decimal(start_ticks * 75, pd), "tickSize": _decimal(1, pd)},
        {"filterType": "LOT_SIZE", "minQty": _decimal(1, qd),
         "maxQty": _decimal(1_000_000 * 10**qd, qd), "stepSize": _decimal(1, qd)},
        {"filterType": "MARKET_LOT_SIZE", "minQty": _decimal(1, qd),
         "maxQty": _decimal(120_000 * 10**qd, qd), "stepSize": _decimal(1, qd)},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": "100" if spec.base == "BTC" else "5"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
         "multiplierDecimal": "4"},
    ]  # fmt: skip


def perpetual_info(spec: SymbolSpec, listed_ms: int, trading: bool) -> dict:
    """One ``symbols`` entry of ``GET /fapi/v1/exchangeInfo``."""
    return {
        "symbol": spec.market_id,
        "pair": spec.market_id,
        "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY_MS,
        "onboardDate": listed_ms,
        "status": "TRADING" if trading else "PENDING_TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base,
        "quoteAsset": spec.quote,
        "marginAsset": spec.quote,
        "pricePrecision": spec.price_decimals,
        "quantityPrecision": spec.qty_decimals,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": perpetual_filters(spec),
        "orderTypes": list(ORDER_TYPES),
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


def _perpetual(venue: Venue, params: Mapping[str, str]) -> SymbolSpec:
    raw = params.get("symbol")
    if not raw:
        raise mandatory("symbol")
    spec = venue.perpetual(raw)
    if spec is None:
        raise ApiError(400, -1121, "Invalid symbol.")
    return spec


async def ping(request: web.Request) -> web.Response:
    return json_body({})


async def server_time(request: web.Request) -> web.Response:
    return json_body({"serverTime": request.app[VENUE_KEY].now_ms()})


async def exchange_info(request: web.Request) -> web.Response:
    venue = request.app[VENUE_KEY]
    now = venue.now_ms()
    specs = list(venue.perpetuals.values())
    assets = sorted({s.quote for s in specs} | {s.base for s in specs})
    return json_body({
        "timezone": "UTC",
        "serverTime": now,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": a, "marginAvailable": a in {s.quote for s in specs},
                    "autoAssetExchange": "-10000"} for a in assets],
        "symbols": [perpetual_info(s, venue.listing_ms[s.symbol],
                                   venue.listing_ms[s.symbol] <= now) for s in specs],
    })  # fmt: skip


async def klines(request: web.Request) -> web.Response:
    """``GET /fapi/v1/klines``: the spot market's candles under the perpetual's id."""
    venue, q = request.app[VENUE_KEY], request.query
    spec = _perpetual(venue, q)
    interval = q.get("interval")
    if not interval:
        raise mandatory("interval")
    if interval not in FAPI_INTERVALS:
        raise ApiError(400, -1120, "Invalid interval.")
    start, end = time_range(q)
    candles = venue.klines(spec.symbol, interval, start, end, limit_param(q, 500, 1500))
    venue.stats["klines"] += len(candles)
    return json_body(payloads.kline_rows(candles))


def _klines_weight(q: Mapping[str, str]) -> int:
    try:
        limit = int(q.get("limit", 500))
    except ValueError:
        limit = 500
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


# Binance's documented request weights of these endpoints
WEIGHTS: dict[tuple[str, str], Callable[[Mapping], int]] = {
    ("GET", "/fapi/v1/ping"): lambda q: 1,
    ("GET", "/fapi/v1/time"): lambda q: 1,
    ("GET", "/fapi/v1/exchangeInfo"): lambda q: 1,
    ("GET", "/fapi/v1/klines"): _klines_weight,
}


def futures_routes() -> list[web.RouteDef]:
    """Routes of the USDⓈ-M market-data endpoints."""
    return [
        web.get("/fapi/v1/ping", ping),
        web.get("/fapi/v1/time", server_time),
        web.get("/fapi/v1/exchangeInfo", exchange_info),
        web.get("/fapi/v1/klines", klines),
    ]
