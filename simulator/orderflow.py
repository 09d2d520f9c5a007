"""Binance JSON payloads of order flow: trades, aggTrades, the book and its diffs, avgPrice.

Field for field as Binance's spot REST API and market streams send them (see the examples in
``tests/fixtures/binance/``): prices and quantities are decimal strings formatted from integers,
ids and times JSON integers.
"""

from __future__ import annotations

from typing import Any

from simulator.history import AggRows, TradeRows
from simulator.market import QUOTE_DECIMALS, SymbolSpec
from simulator.payloads import F8, formatter

Levels = list[tuple[int, int]]


def quote_of(spec: SymbolSpec, price: int, qty: int) -> str:
    """``price * qty`` as a quote-asset decimal (exact: ticks times lots fit 8 decimals)."""
    return F8(price * qty * 10 ** (QUOTE_DECIMALS - spec.price_decimals - spec.qty_decimals))


def _trade_cols(rows: TradeRows) -> Any:
    return zip(rows.ids.tolist(), rows.times.tolist(), rows.prices.tolist(), rows.qty.tolist(),
               rows.buyer_maker.tolist(), strict=True)  # fmt: skip


def _agg_cols(rows: AggRows) -> Any:
    return zip(rows.ids.tolist(), rows.first.tolist(), rows.last.tolist(), rows.times.tolist(),
               rows.prices.tolist(), rows.qty.tolist(), rows.buyer_maker.tolist(),
               strict=True)  # fmt: skip


def trades_rest(spec: SymbolSpec, rows: TradeRows) -> list[dict]:
    """``GET /api/v3/trades`` and ``/api/v3/historicalTrades`` entries."""
    fp, fq = formatter(spec.price_decimals), formatter(spec.qty_decimals)
    return [
        {"id": i, "price": fp(p), "qty": fq(q), "quoteQty": quote_of(spec, p, q), "time": t,
         "isBuyerMaker": m, "isBestMatch": True}
        for i, t, p, q, m in _trade_cols(rows)
    ]  # fmt: skip


def agg_trades_rest(spec: SymbolSpec, rows: AggRows) -> list[dict]:
    """``GET /api/v3/aggTrades`` entries: one per taker order and price, trade ids f..l."""
    fp, fq = formatter(spec.price_decimals), formatter(spec.qty_decimals)
    return [
        {"a": a, "p": fp(p), "q": fq(q), "f": f, "l": last, "T": t, "m": m, "M": True}
        for a, f, last, t, p, q, m in _agg_cols(rows)
    ]


def trade_events(spec: SymbolSpec, rows: TradeRows, event_ms: int) -> list[dict]:
    """``<symbol>@trade`` stream events."""
    fp, fq, sym = formatter(spec.price_decimals), formatter(spec.qty_decimals), spec.market_id
    return [
        {"e": "trade", "E": event_ms, "s": sym, "t": i, "p": fp(p), "q": fq(q), "T": t, "m": m,
         "M": True}
        for i, t, p, q, m in _trade_cols(rows)
    ]  # fmt: skip


def agg_trade_events(spec: SymbolSpec, rows: AggRows, event_ms: int) -> list[dict]:
    """``<symbol>@aggTrade`` stream events."""
    fp, fq, sym = formatter(spec.price_decimals), formatter(spec.qty_decimals), spec.market_id
    return [
        {"e": "aggTrade", "E": event_ms, "s": sym, "a": a, "p": fp(p), "q": fq(q), "f": f,
         "l": last, "T": t, "m": m, "M": True}
        for a, f, last, t, p, q, m in _agg_cols(rows)
    ]  # fmt: skip


def _levels(spec: SymbolSpec, levels: Levels) -> list[list[str]]:
    fp, fq = formatter(spec.price_decimals), formatter(spec.qty_decimals)
    return [[fp(p), fq(q)] for p, q in levels]


def depth_rest(spec: SymbolSpec, bids: Levels, asks: Levels, update_id: int) -> dict:
    """The ``GET /api/v3/depth`` body, also the ``<symbol>@depth<N>`` partial book event."""
    return {"lastUpdateId": update_id, "bids": _levels(spec, bids), "asks": _levels(spec, asks)}


def depth_event(
    spec: SymbolSpec, first: int, last: int, bids: Levels, asks: Levels, event_ms: int
) -> dict:
    """A ``<symbol>@depth`` / ``@depth@100ms`` diff event (quantity 0: the level is gone)."""
    return {"e": "depthUpdate", "E": event_ms, "s": spec.market_id, "U": first, "u": last,
            "b": _levels(spec, bids), "a": _levels(spec, asks)}  # fmt: skip


def book_ticker(spec: SymbolSpec, bid: tuple[int, int], ask: tuple[int, int]) -> dict:
    """A ``GET /api/v3/ticker/bookTicker`` entry."""
    fp, fq = formatter(spec.price_decimals), formatter(spec.qty_decimals)
    return {"symbol": spec.market_id, "bidPrice": fp(bid[0]), "bidQty": fq(bid[1]),
            "askPrice": fp(ask[0]), "askQty": fq(ask[1])}  # fmt: skip


def book_ticker_event(
    spec: SymbolSpec, update_id: int, bid: tuple[int, int], ask: tuple[int, int]
) -> dict:
    """A ``<symbol>@bookTicker`` event."""
    fp, fq = formatter(spec.price_decimals), formatter(spec.qty_decimals)
    return {"u": update_id, "s": spec.market_id, "b": fp(bid[0]), "B": fq(bid[1]),
            "a": fp(ask[0]), "A": fq(ask[1])}  # fmt: skip


def avg_price(price: int, last_trade_ms: int, minutes: int = 5) -> dict:
    """The ``GET /api/v3/avgPrice`` body (``price`` in 1e-8 quote units)."""
    return {"mins": minutes, "price": F8(price), "closeTime": last_trade_ms}


def avg_price_event(spec: SymbolSpec, price: int, last_trade_ms: int, event_ms: int) -> dict:
    """A ``<symbol>@avgPrice`` event."""
    return {"e": "avgPrice", "E": event_ms, "s": spec.market_id, "i": "5m", "w": F8(price),
            "T": last_trade_ms}  # fmt: skip
