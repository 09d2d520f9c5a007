"""Binance JSON payloads built from venue data, field for field as Binance sends them.

Prices and quantities are decimal strings with 8 decimals formatted from integers, so they are
exact; times, ids and counts are JSON integers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import orjson

from simulator.candles import Candles
from simulator.filters import ORDER_TYPES, symbol_filters
from simulator.market import QUOTE_DECIMALS, SymbolSpec
from simulator.venue import Ticker24h

Formatter = Callable[[int], str]


def formatter(decimals: int) -> Formatter:
    """``units -> '123.45000000'`` for integers counted in ``10**-decimals``."""
    scale, pad = 10**decimals, "0" * (8 - decimals)
    if decimals == 0:
        return lambda units: f"{units}.00000000"

    def fmt(units: int) -> str:
        whole, frac = divmod(units, scale)
        return f"{whole}.{frac:0{decimals}d}{pad}"

    return fmt


F8 = formatter(QUOTE_DECIMALS)
_STR = np.dtypes.StringDType()


def decimal_strings(units: np.ndarray, decimals: int) -> list[str]:
    """:func:`formatter` for a whole int64 column at once (numpy string ufuncs, no loop)."""
    add = np.strings.add
    if decimals == 0:
        return add(units.astype(_STR), ".00000000").tolist()
    scale = 10**decimals
    frac = np.strings.zfill((units % scale).astype(_STR), decimals)
    whole = add((units // scale).astype(_STR), ".")
    return add(whole, add(frac, "0" * (8 - decimals))).tolist()


def kline_rows(c: Candles) -> bytes:
    """The JSON body of ``GET /api/v3/klines``: 12-column rows."""
    pd, qd = c.price_decimals, c.qty_decimals
    columns = [
        c.open_time.tolist(),
        *(decimal_strings(a, pd) for a in (c.open, c.high, c.low, c.close)),
        decimal_strings(c.volume, qd),
        c.close_time.tolist(),
        decimal_strings(c.quote, QUOTE_DECIMALS),
        c.trades.tolist(),
        decimal_strings(c.taker_base, qd),
        decimal_strings(c.taker_quote, QUOTE_DECIMALS),
        ["0"] * len(c),
    ]
    return orjson.dumps(list(zip(*columns, strict=True)))


def kline_event(spec: SymbolSpec, interval: str, c: Candles, i: int, event_ms: int) -> dict:
    """A ``<symbol>@kline_<interval>`` stream event for row ``i`` of ``c``."""
    fp, fq = formatter(c.price_decimals), formatter(c.qty_decimals)
    return {
        "e": "kline",
        "E": event_ms,
        "s": spec.market_id,
        "k": {
            "t": int(c.open_time[i]),
            "T": int(c.close_time[i]),
            "s": spec.market_id,
            "i": interval,
            "f": int(c.first_id[i]),
            "L": int(c.last_id[i]),
            "o": fp(int(c.open[i])),
            "c": fp(int(c.close[i])),
            "h": fp(int(c.high[i])),
            "l": fp(int(c.low[i])),
            "v": fq(int(c.volume[i])),
            "n": int(c.trades[i]),
            "x": bool(c.closed[i]),
            "q": F8(int(c.quote[i])),
            "V": fq(int(c.taker_base[i])),
            "Q": F8(int(c.taker_quote[i])),
            "B": "0",
        },
    }


def _change(spec: SymbolSpec, t: Ticker24h) -> tuple[str, str, str]:
    fp = formatter(spec.price_decimals)
    change = t.last - t.open
    sign = "-" if change < 0 else ""
    pct = 100.0 * change / t.open if t.open else 0.0
    avg = t.quote / 10**QUOTE_DECIMALS / (t.volume / 10**spec.qty_decimals) if t.volume else 0.0
    return sign + fp(abs(change)), f"{pct:.3f}", f"{avg:.8f}"


def ticker_rest(spec: SymbolSpec, t: Ticker24h, bid: tuple[int, int], ask: tuple[int, int]) -> dict:
    """A ``GET /api/v3/ticker/24hr`` entry."""
    fp, fq = formatter(spec.price_decimals), formatter(spec.qty_decimals)
    change, pct, avg = _change(spec, t)
    return {
        "symbol": spec.market_id,
        "priceChange": change,
        "priceChangePercent": pct,
        "weightedAvgPrice": avg,
        "prevClosePrice": fp(t.prev_close),
        "lastPrice": fp(t.last),
        "lastQty": fq(t.last_qty),
        "bidPrice": fp(bid[0]),
        "bidQty": fq(bid[1]),
        "askPrice": fp(ask[0]),
        "askQty": fq(ask[1]),
        "openPrice": fp(t.open),
        "highPrice": fp(t.high),
        "lowPrice": fp(t.low),
        "volume": fq(t.volume),
        "quoteVolume": F8(t.quote),
        "openTime": t.open_time,
        "closeTime": t.close_time,
        "firstId": t.first_id,
        "lastId": t.last_id,
        "count": t.count,
    }


def ticker_window(spec: SymbolSpec, t: Ticker24h, mini: bool) -> dict:
    """A ``GET /api/v3/ticker`` entry (FULL or MINI), also ``ticker/24hr`` with type MINI."""
    fp, fq = formatter(spec.price_decimals), formatter(spec.qty_decimals)
    change, pct, avg = _change(spec, t)
    head: dict = {"symbol": spec.market_id}
    if not mini:
        head.update(priceChange=change, priceChangePercent=pct, weightedAvgPrice=avg)
    return {
        **head,
        "openPrice": fp(t.open),
        "highPrice": fp(t.high),
        "lowPrice": fp(t.low),
        "lastPrice": fp(t.last),
        "volume": fq(t.volume),
        "quoteVolume": F8(t.quote),
        "openTime": t.open_time,
        "closeTime": t.close_time,
        "firstId": t.first_id,
        "lastId": t.last_id,
        "count": t.count,
    }


def ticker_event(
    spec: SymbolSpec, t: Ticker24h, bid: tuple[int, int], ask: tuple[int, int], event_ms: int
) -> dict:
    """A ``<symbol>@ticker`` (24hrTicker) stream event."""
    fp, fq = formatter(spec.price_decimals), formatter(spec.qty_decimals)
    change, pct, avg = _change(spec, t)
    return {
        "e": "24hrTicker",
        "E": event_ms,
        "s": spec.market_id,
        "p": change,
        "P": pct,
        "w": avg,
        "x": fp(t.prev_close),
        "c": fp(t.last),
        "Q": fq(t.last_qty),
        "b": fp(bid[0]),
        "B": fq(bid[1]),
        "a": fp(ask[0]),
        "A": fq(ask[1]),
        "o": fp(t.open),
        "h": fp(t.high),
        "l": fp(t.low),
        "v": fq(t.volume),
        "q": F8(t.quote),
        "O": t.open_time,
        "C": t.close_time,
        "F": t.first_id,
        "L": t.last_id,
        "n": t.count,
    }


def mini_ticker_event(spec: SymbolSpec, t: Ticker24h, event_ms: int) -> dict:
    """A ``<symbol>@miniTicker`` (24hrMiniTicker) stream event."""
    fp, fq = formatter(spec.price_decimals), formatter(spec.qty_decimals)
    return {
        "e": "24hrMiniTicker",
        "E": event_ms,
        "s": spec.market_id,
        "c": fp(t.last),
        "o": fp(t.open),
        "h": fp(t.high),
        "l": fp(t.low),
        "v": fq(t.volume),
        "q": F8(t.quote),
    }


def symbol_info(spec: SymbolSpec, trading: bool) -> dict:
    """One ``symbols`` entry of ``GET /api/v3/exchangeInfo``, with the filters orders obey."""
    return {
        "symbol": spec.market_id,
        "status": "TRADING" if trading else "BREAK",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(ORDER_TYPES),
        "icebergAllowed": True,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [f.info() for f in symbol_filters(spec)],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }
