"""OKX v5 JSON bodies built from venue data, field for field as OKX sends them.

Every number is a string (prices, sizes, times, ids), trimmed as OKX prints them ("31684.5",
not Binance's "31684.50000000"); every REST answer is the envelope ``{"code": "0", "msg": "",
"data": [...]}``. Candle rows are ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``
(spot: ``vol`` in base, ``volCcy`` and ``volCcyQuote`` in quote; ``confirm`` "1" once final).
"""

from __future__ import annotations

import zlib

from simulator.candles import Candles
from simulator.market import MINUTE_MS, QUOTE_DECIMALS, SymbolSpec
from simulator.venue import Ticker24h, Venue

Levels = list[tuple[int, int]]
HOUR_MS = 60 * MINUTE_MS


def inst_id(spec: SymbolSpec) -> str:
    """OKX's instrument id: ``BTC-USDT`` for BTC/USDT."""
    return f"{spec.base}-{spec.quote}"


def num(units: int, decimals: int) -> str:
    """``units`` counted in ``10**-decimals`` as OKX prints it: no trailing zeros."""
    if decimals == 0:
        return str(units)
    sign, units = ("-", -units) if units < 0 else ("", units)
    whole, frac = divmod(units, 10**decimals)
    digits = f"{frac:0{decimals}d}".rstrip("0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def envelope(data: list) -> dict:
    """The success body of every OKX REST endpoint."""
    return {"code": "0", "msg": "", "data": data}


def instrument(spec: SymbolSpec, listed_ms: int, live: bool) -> dict:
    """One ``GET /api/v5/public/instruments?instType=SPOT`` entry."""
    return {
        "alias": "", "baseCcy": spec.base, "category": "1", "ctMult": "", "ctType": "",
        "ctVal": "", "ctValCcy": "", "expTime": "", "instFamily": "", "instId": inst_id(spec),
        "instType": "SPOT", "lever": "", "listTime": str(listed_ms),
        "lotSz": num(1, spec.qty_decimals), "maxIcebergSz": "9999999999",
        "maxLmtAmt": "20000000", "maxLmtSz": "9999999999", "maxMktAmt": "1000000",
        "maxMktSz": "1000000", "maxStopSz": "1000000", "maxTriggerSz": "9999999999",
        "maxTwapSz": "9999999999", "minSz": num(1, spec.qty_decimals), "optType": "",
        "quoteCcy": spec.quote, "settleCcy": "", "state": "live" if live else "preopen",
        "stk": "", "tickSz": num(1, spec.price_decimals), "uly": "",
    }  # fmt: skip


def candle_rows(c: Candles, newest_first: bool = True) -> list[list[str]]:
    """Candle rows as ``/market/candles`` and the ``candle<bar>`` channel send them."""
    pd, qd = c.price_decimals, c.qty_decimals
    rows = [
        [str(int(c.open_time[i])), num(int(c.open[i]), pd), num(int(c.high[i]), pd),
         num(int(c.low[i]), pd), num(int(c.close[i]), pd), num(int(c.volume[i]), qd),
         num(int(c.quote[i]), QUOTE_DECIMALS), num(int(c.quote[i]), QUOTE_DECIMALS),
         "1" if c.closed[i] else "0"]
        for i in range(len(c))
    ]  # fmt: skip
    return rows[::-1] if newest_first else rows


def _start_of_day_open(venue: Venue, symbol: str, now: int, offset_ms: int) -> int:
    """Opening price of the day that starts at 00:00 UTC + ``offset_ms`` (OKX's sodUtc0/8)."""
    day = 24 * HOUR_MS
    start = (now + offset_ms) // day * day - offset_ms
    c = venue.klines(symbol, "1m", start=start, end=now, limit=1, now_ms=now)
    return int(c.open[0]) if len(c) else venue.last_price(symbol, now)


def ticker(venue: Venue, spec: SymbolSpec, t: Ticker24h, now: int) -> dict:
    """A ``/market/ticker`` entry and the ``tickers`` channel's data (24 h rolling window)."""
    pd, qd = spec.price_decimals, spec.qty_decimals
    bids, asks, _ = venue.book(spec.symbol, 1, now)
    return {
        "instType": "SPOT", "instId": inst_id(spec), "last": num(t.last, pd),
        "lastSz": num(t.last_qty, qd), "askPx": num(asks[0][0], pd),
        "askSz": num(asks[0][1], qd), "bidPx": num(bids[0][0], pd), "bidSz": num(bids[0][1], qd),
        "open24h": num(t.open, pd), "high24h": num(t.high, pd), "low24h": num(t.low, pd),
        "volCcy24h": num(t.quote, QUOTE_DECIMALS), "vol24h": num(t.volume, qd), "ts": str(now),
        "sodUtc0": num(_start_of_day_open(venue, spec.symbol, now, 0), pd),
        "sodUtc8": num(_start_of_day_open(venue, spec.symbol, now, 8 * HOUR_MS), pd),
    }  # fmt: skip


def trade(spec: SymbolSpec, trade_id: int, ts: int, price: int, qty: int,
          buyer_maker: bool) -> dict:
    """A public trade (``/market/trades`` and the ``trades`` channel): the taker's side."""
    return {"instId": inst_id(spec), "side": "sell" if buyer_maker else "buy",
            "sz": num(qty, spec.qty_decimals), "px": num(price, spec.price_decimals),
            "tradeId": str(trade_id), "ts": str(ts)}  # fmt: skip


def levels(spec: SymbolSpec, side: Levels) -> list[list[str]]:
    """Book levels ``[price, size, "0", orders]`` (size "0": the level is gone)."""
    pd, qd = spec.price_decimals, spec.qty_decimals
    return [[num(p, pd), num(q, qd), "0", "1" if q else "0"] for p, q in side]


def checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX's book checksum: CRC32 (signed) of the top 25 bids and asks, interleaved."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    value = zlib.crc32(":".join(parts).encode())
    return value - 2**32 if value >= 2**31 else value


def book(spec: SymbolSpec, bids: Levels, asks: Levels, ts: int) -> dict:
    """A ``/market/books`` entry: best first, sizes in base."""
    return {"asks": levels(spec, asks), "bids": levels(spec, bids), "ts": str(ts)}
