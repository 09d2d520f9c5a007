"""ccxt's unified structures (plain dicts and lists) as tradeflow's typed records.

Pure conversions with no ccxt import: the adapter (:mod:`tradeflow.exchange.ccxt_client`)
hands each response to one of these, so nothing above it ever sees a ccxt dict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tradeflow.exchange import types as t


def ohlcv_frame(rows: Any) -> pd.DataFrame:
    """ccxt OHLCV rows (6 columns, or 8 with quote volume and trades) as a typed frame."""
    try:
        arr = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise t.BadResponse(f"OHLCV response is not numeric rows: {str(rows)[:80]!r}") from None
    if arr.size == 0:
        arr = arr.reshape(0, 6)
    if arr.ndim != 2 or arr.shape[1] < 6:
        raise t.BadResponse(f"OHLCV response has shape {arr.shape}, expected rows of 6+ numbers")
    if not np.isfinite(arr[:, :5]).all() or (arr[:, 0] <= 0).any():
        raise t.BadResponse("OHLCV response has missing times or prices (a garbled body?)")
    if arr.shape[1] < 8:
        arr = np.hstack([arr, np.full((arr.shape[0], 8 - arr.shape[1]), np.nan)])
    return pd.DataFrame(
        {
            "open_time": arr[:, 0].astype(np.int64),
            "open": arr[:, 1],
            "high": arr[:, 2],
            "low": arr[:, 3],
            "close": arr[:, 4],
            "volume": arr[:, 5],
            "quote_volume": arr[:, 6],
            "trades": pd.array(arr[:, 7], dtype="Int64"),
        }
    )


def market(m: dict[str, Any]) -> t.Market:
    limits = m.get("limits") or {}
    precision = m.get("precision") or {}
    return t.Market(
        symbol=m["symbol"],
        base=m["base"],
        quote=m["quote"],
        active=bool(m.get("active", True)),
        amount_step=precision.get("amount"),
        price_step=precision.get("price"),
        min_amount=(limits.get("amount") or {}).get("min"),
        min_cost=(limits.get("cost") or {}).get("min"),
    )


def ticker(raw: dict[str, Any]) -> t.Ticker:
    last = raw["last"] if raw.get("last") is not None else raw.get("close")
    info = raw.get("info")
    update = info.get("u") if isinstance(info, dict) else None
    return t.Ticker(
        symbol=raw["symbol"],
        timestamp=int(raw.get("timestamp") or 0),
        # a book ticker carries only the best bid and ask: no last price
        last=float("nan") if last is None else float(last),
        bid=raw.get("bid"),
        ask=raw.get("ask"),
        high=raw.get("high"),
        low=raw.get("low"),
        base_volume=raw.get("baseVolume"),
        quote_volume=raw.get("quoteVolume"),
        bid_volume=raw.get("bidVolume"),
        ask_volume=raw.get("askVolume"),
        update_id=int(update) if isinstance(update, int | str) and str(update).isdigit() else None,
    )


def trades_frame(rows: Any) -> pd.DataFrame:
    """ccxt trades (unified dicts) as a frame of :data:`~tradeflow.exchange.types.
    TRADE_FRAME_COLUMNS`, in the order given; the side is the taker's."""
    try:
        ids = np.fromiter((int(r["id"]) for r in rows), dtype=np.int64, count=len(rows))
        ts = np.fromiter((r["timestamp"] for r in rows), dtype=np.int64, count=len(rows))
        price = np.fromiter((r["price"] for r in rows), dtype=np.float64, count=len(rows))
        amount = np.fromiter((r["amount"] for r in rows), dtype=np.float64, count=len(rows))
    except (TypeError, ValueError, KeyError) as exc:
        raise t.BadResponse(f"trades response has a malformed trade: {exc}") from None
    side = [r.get("side") for r in rows]
    return pd.DataFrame({"id": ids, "ts": ts, "price": price, "amount": amount,
                         "side": pd.array(side, dtype="str")})


def order_book(symbol: str, raw: Any, depth: int | None = None) -> t.OrderBook:
    """A ccxt order book (or ccxt.pro's local book) as a typed book of its top ``depth``
    levels per side (all when None)."""
    bids, asks = raw["bids"], raw["asks"]
    if depth is not None:
        bids, asks = bids[:depth], asks[:depth]
    nonce = raw.get("nonce")
    return t.OrderBook(
        symbol=symbol,
        timestamp=raw.get("timestamp"),
        bids=tuple((float(level[0]), float(level[1])) for level in bids),
        asks=tuple((float(level[0]), float(level[1])) for level in asks),
        update_id=int(nonce) if nonce is not None else None,
    )


def trade(raw: dict[str, Any]) -> t.Trade:
    fee = raw.get("fee") or {}
    return t.Trade(
        symbol=raw["symbol"],
        id=str(raw.get("id")),
        timestamp=int(raw["timestamp"]),
        price=float(raw["price"]),
        amount=float(raw["amount"]),
        side=raw.get("side"),
        order_id=raw.get("order"),
        fee_cost=fee.get("cost"),
        fee_currency=fee.get("currency"),
    )


def order(raw: dict[str, Any], client_order_id: str | None = None) -> t.Order:
    fee = raw.get("fee") or {}
    return t.Order(
        id=str(raw["id"]),
        # ours when known: a venue may hold it in its own spelling (venues.venue_client_id)
        client_order_id=client_order_id or raw.get("clientOrderId"),
        symbol=raw["symbol"],
        side=raw["side"],
        type=raw["type"],
        amount=float(raw.get("amount") or 0.0),
        price=raw.get("price"),
        filled=float(raw.get("filled") or 0.0),
        average=raw.get("average"),
        status=str(raw.get("status")),
        timestamp=raw.get("timestamp"),
        fee_cost=float(fee.get("cost") or 0.0),
        fee_currency=fee.get("currency"),
    )
