"""Trade history over REST into the store (``tradeflow backfill --trades``): by id or by time.

Pages are fetched by id (Binance's ``fromId``; a time window first finds the first id at its
start) and each is written as it arrives, so an interrupted backfill keeps what it fetched and
a second run fetches only what is missing: the part of the range the store already holds
without a hole is skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tradeflow.exchange.orderflow import OrderFlowClient
from tradeflow.market.orderflow_store import OrderFlowStore


@dataclass(frozen=True, slots=True)
class TradeBackfill:
    """What a trade backfill of one series did."""

    symbol: str
    fetched: int
    stored: int
    first_id: int | None
    last_id: int | None

    def line(self) -> str:
        if self.first_id is None:
            return f"{self.symbol}: no trades in the window"
        if self.last_id is None:
            return f"{self.symbol}: nothing new (the store holds every trade up to the newest)"
        return (f"{self.symbol}: fetched {self.fetched} trades (ids {self.first_id}.."
                f"{self.last_id}), {self.stored} new in the store")


async def backfill_trades(client: Any, store: OrderFlowStore, symbol: str, *,
                          since: int | None = None, until: int | None = None,
                          from_id: int | None = None, aggregated: bool = True,
                          progress: Callable[[int], None] | None = None) -> TradeBackfill:
    """Fetch the trades of ``symbol`` from id ``from_id`` or time ``since`` up to ``until``
    (ms, inclusive; None: the newest) and store them; returns the counts."""
    flow = OrderFlowClient(client, aggregated=aggregated)
    exchange = str(client.id)
    start = from_id
    if start is None:
        if since is None:
            raise ValueError("backfill_trades needs since or from_id")
        upper = until if until is not None else await client.fetch_time()
        while start is None and since <= upper:  # the first trade within each next hour
            start = await flow.first_trade_id(symbol, since)
            since += 3_600_000
        if start is None:
            return TradeBackfill(symbol, 0, 0, None, None)
    start = await asyncio.to_thread(_skip_stored, store, exchange, symbol, start)
    fetched = stored = 0
    first = last = None
    async for page in flow.trade_pages(symbol, start, until=until):
        stored += await asyncio.to_thread(store.write_trades, page, exchange=exchange,
                                          symbol=symbol)
        fetched += len(page)
        first = int(page["id"].iloc[0]) if first is None else first
        last = int(page["id"].iloc[-1])
        if progress is not None:
            progress(len(page))
    return TradeBackfill(symbol, fetched, stored, first if first is not None else start, last)


def _skip_stored(store: OrderFlowStore, exchange: str, symbol: str, start: int) -> int:
    """Where to start: after the stored ids when they hold ``start`` without a hole."""
    bounds = store.trade_bounds(exchange, symbol)
    if bounds is None or not bounds.first_id <= start <= bounds.last_id:
        return start
    if store.trade_holes(exchange, symbol):
        return start
    return bounds.last_id + 1
