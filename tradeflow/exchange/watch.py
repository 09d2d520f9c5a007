"""The exchange calls behind the market-data API (:mod:`tradeflow.marketdata`).

:class:`MarketWatch` gives each channel (candles, trades, ticker, book) three calls on one
:class:`~tradeflow.exchange.ccxt_client.ExchangeClient`: ``watch`` (the next websocket update,
through ccxt.pro; a REST poll every ``poll_s`` where the exchange has no websocket), ``fetch``
(REST, used to catch up after a reconnect) and ``unwatch`` (unsubscribe on the exchange, where
ccxt offers it). Results are the adapter's typed values; trades go through
:class:`~tradeflow.exchange.orderflow.OrderFlowClient` (aggregated trades on Binance, so the
catch-up pages by id without an API key). Like the order-flow client it uses the ccxt object
the client hands out and never imports ccxt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pandas as pd

from tradeflow.exchange import parse
from tradeflow.exchange import types as t
from tradeflow.exchange.orderflow import OrderFlowClient

log = logging.getLogger(__name__)
WATCH_CHANNELS = ("candles", "trades", "ticker", "book")
# ccxt's unsubscribe methods by channel
_UNWATCH = {"candles": "un_watch_ohlcv", "trades": "un_watch_trades",
            "ticker": "un_watch_ticker", "book": "un_watch_order_book"}


class MarketWatch:
    """Watch, fetch and unwatch the four market-data channels of one exchange client."""

    def __init__(self, client: Any, *, timeframe: str = "1m", book_depth: int = 20,
                 use_websocket: bool | None = None, poll_s: float = 1.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.client = client
        self.flow = OrderFlowClient(client)
        self.timeframe = timeframe
        self.book_depth = book_depth
        self.use_websocket = client.has_websocket if use_websocket is None else use_websocket
        self.poll_s = poll_s
        # Binance numbers (aggregated) trades consecutively: a hole can be fetched by id
        self.trades_by_id = self.exchange_id.startswith("binance")
        self._sleep = sleep

    @property
    def exchange_id(self) -> str:
        return str(self.client.id)

    async def watch(self, channel: str, symbol: str) -> Any:
        """The next update of a channel: list[StreamCandle], a trades frame (id, ts, price,
        amount, side), a Ticker or an OrderBook (top ``book_depth`` levels)."""
        if not self.use_websocket:
            await self._sleep(self.poll_s)
            return await self.fetch(channel, symbol)
        if channel == "candles":
            return await self.client.watch_ohlcv(symbol, self.timeframe)
        if channel == "trades":
            return await self.flow.watch_trades(symbol)
        if channel == "ticker":
            return await self.flow.watch_ticker(symbol)
        if channel == "book":
            return await self.flow.watch_order_book(symbol, self.book_depth)
        raise ValueError(f"channel {channel!r}: must be one of {', '.join(WATCH_CHANNELS)}")

    async def fetch(self, channel: str, symbol: str, since: int | None = None) -> Any:
        """The same value over REST (retried). ``since``: candles from this open time (ms),
        trades from this trade id; ignored for ticker and book, which are snapshots."""
        if channel == "candles":
            frame = await self.client.fetch_ohlcv(symbol, self.timeframe, since)
            return [t.StreamCandle(symbol, self.timeframe, int(r.open_time), float(r.open),
                                   float(r.high), float(r.low), float(r.close), float(r.volume))
                    for r in frame.itertuples(index=False)]
        if channel == "trades":
            if since is not None:
                return await self.flow.fetch_trades_from_id(symbol, since)
            return await self._recent_trades(symbol)
        if channel == "ticker":
            return await self.client.fetch_ticker(symbol)
        if channel == "book":
            return await self.client.fetch_order_book(symbol, self.book_depth)
        raise ValueError(f"channel {channel!r}: must be one of {', '.join(WATCH_CHANNELS)}")

    async def catch_up(self, channel: str, symbol: str,
                       since: int | None) -> AsyncIterator[Any]:
        """What a reconnect may have missed, over REST: candles from open time ``since``,
        trades by id from ``since`` up to the newest (Binance pages by id; elsewhere the
        recent trades), a fresh ticker or book."""
        if channel == "trades" and since is not None and self.trades_by_id:
            async for page in self.flow.trade_pages(symbol, since):
                yield page
            return
        yield await self.fetch(channel, symbol, since if channel == "candles" else None)

    async def missed_trades(self, symbol: str, first_id: int,
                            last_id: int) -> AsyncIterator[pd.DataFrame]:
        """Trades with ids ``first_id..last_id`` over REST: the hole between the catch-up and
        the first message of a new subscription (only where trades page by id: Binance)."""
        if self.trades_by_id and last_id >= first_id:
            async for page in self.flow.trade_pages(symbol, first_id, to_id=last_id):
                yield page

    async def _recent_trades(self, symbol: str, limit: int = 100) -> pd.DataFrame:
        ex = self.client.exchange

        async def page() -> pd.DataFrame:
            return parse.trades_frame(await ex.fetch_trades(symbol, None, limit))

        return await self.client.call(page)

    async def unwatch(self, channel: str, symbol: str) -> bool:
        """Unsubscribe on the exchange; False when ccxt cannot (the data is then ignored)."""
        ex = self.client.exchange
        method = getattr(ex, _UNWATCH[channel], None)
        if not self.use_websocket or method is None:
            return False
        args: tuple[Any, ...] = (symbol,)
        binance = self.exchange_id.startswith("binance")
        if channel == "candles":
            args = (symbol, self.timeframe)
        elif channel == "trades" and binance:
            args = (symbol, {"name": "aggTrade" if self.flow.aggregated else "trade"})
        elif channel == "ticker" and binance:
            args = (symbol, {"name": "ticker"})
        try:
            await self.client.call(method, *args, retry=False, stream=True)
        except t.ExchangeError as exc:  # the subscription dies with the socket anyway
            log.debug("%s: unwatch %s %s failed: %s", self.exchange_id, channel, symbol, exc)
            return False
        return True

    async def reset(self) -> None:
        """Close every websocket so the next watch connects afresh (a silent stream)."""
        await self.client.reset_streams()
