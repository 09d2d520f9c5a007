"""Order flow through the exchange adapter: trade streams and history, the local order book,
tickers. Typed results, as for candles.

:class:`OrderFlowClient` extends an :class:`~tradeflow.exchange.ccxt_client.ExchangeClient`
(whose :meth:`call` maps ccxt's errors and retries) with the order-flow calls, using the ccxt
exchange object the client hands out; only the client's module imports ccxt.

Trade ids. A series' trades are numbered by the exchange. On Binance there are two numberings:
individual trades (the ``@trade`` stream, ``historicalTrades``, which ccxt sends only with an API
key) and aggregated trades (one per taker order and price: ``@aggTrade``, ``aggTrades``, public).
``aggregated=True`` (the default) streams and pages aggregated trades, so a recorder can fill
any hole over REST without a key; ``False`` uses individual trades and needs an API key for the
history. The two numberings are never mixed in one series.

The local order book is ccxt.pro's: a REST snapshot plus the diff stream, checked update id by
update id. A gap raises inside ccxt, which drops the book and resubscribes; here that is counted
in :attr:`OrderFlowClient.resyncs` and the watch is repeated, so callers see a consistent book.
ccxt.pro builds each book through the exchange's ``order_book()`` factory, so a faster book
class plugs in there (in the client's module) without touching this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pandas as pd

from tradeflow.exchange import parse
from tradeflow.exchange import types as t
from tradeflow.exchange.book import Before, LocalBook
from tradeflow.exchange.depth_stream import DirectDepthStream
from tradeflow.exchange.direct_ws import direct_stream_url
from tradeflow.exchange.trade_stream import DirectTradeStream

TRADES_CACHE = 20_000  # trades ccxt.pro keeps between two reads of a stream (it drops older)
_HOUR_MS = 3_600_000
# Binance's ccxt methods of paging by id, per market type (spot, USDⓈ-M, COIN-M).
_API = {"linear": "fapiPublic", "inverse": "dapiPublic"}


class OrderFlowClient:
    """Order-flow calls on one exchange client; ``client.exchange`` is its ccxt object."""

    def __init__(self, client: Any, *, aggregated: bool = True, book_limit: int = 1000,
                 book_updates_ms: int = 100, trades_cache: int = TRADES_CACHE,
                 direct_trades: bool = False, direct_book: bool = False) -> None:
        self.client = client
        self.aggregated = aggregated
        # Binance spot trade streams read off the websocket by DirectTradeStream, not parsed
        # trade by trade by ccxt.pro (the same frames, a fraction of the CPU)
        self.direct_trades = direct_trades
        self._direct: dict[str, DirectTradeStream | None] = {}
        self._trades_cache = trades_cache
        # Binance spot diff-depth streams read off the websocket by DirectDepthStream into a
        # LocalBook (watch_local_book), not decoded and applied through ccxt.pro
        self.direct_book = direct_book
        self._depth: dict[str, DirectDepthStream | None] = {}
        self.book_limit = book_limit
        self.book_updates_ms = book_updates_ms
        # Binance's diff stream every 100 ms or 1000 ms (ccxt's watchOrderBookRate)
        self._book_params = {"watchOrderBookRate": str(book_updates_ms)} \
            if str(client.exchange.id).startswith("binance") else {}
        self.resyncs: dict[str, int] = {}
        # websocket connections reopened: ccxt.pro reconnects on the next watch call after a
        # drop, without an error when no call was waiting at that moment
        self.reconnects = 0
        self._connections: dict[str, int] = {}
        ex = client.exchange
        # A busy stream read in bursts must not overflow ccxt's cache: a trade dropped there
        # is a hole the REST catch-up has to fill.
        ex.options["tradesLimit"] = max(int(ex.options.get("tradesLimit") or 0), trades_cache)

    @property
    def _ex(self) -> Any:
        return self.client.exchange

    async def close(self) -> None:
        """Close the trade streams this client opened itself (ccxt's close with the client)."""
        for stream in (*self._direct.values(), *self._depth.values()):
            if stream is not None:
                await stream.close()
        self._direct.clear()
        self._depth.clear()

    def _count_connections(self) -> None:
        for url, ws in list((getattr(self._ex, "clients", None) or {}).items()):
            known = self._connections.get(url)
            if known != id(ws):
                if known is not None:
                    self.reconnects += 1
                self._connections[url] = id(ws)

    # -- streams ---------------------------------------------------------------------------
    async def watch_trades(self, symbol: str) -> pd.DataFrame:
        """The trades received since the last call, as a frame (id, ts, price, amount, side).

        No retry: the caller owns reconnection and the REST catch-up of what a drop missed.
        Duplicated or reordered messages pass through as received.
        """
        name = "aggTrade" if self.aggregated else "trade"
        direct = self._direct_stream(symbol, name) if self.direct_trades else None
        if direct is not None:
            known = direct.connections
            try:
                return await direct.next()
            finally:  # a connection opened again after a drop
                self.reconnects += max(0, direct.connections - max(known, 1))
        params = {"name": name}
        rows = await self.client.call(self._ex.watch_trades, symbol, None, None, params,
                                      retry=False, stream=True)
        self._count_connections()
        return parse.trades_frame(rows)

    def _direct_stream(self, symbol: str, name: str) -> DirectTradeStream | None:
        if symbol not in self._direct:
            url = direct_stream_url(self._ex, symbol, name)
            self._direct[symbol] = None if url is None else DirectTradeStream(
                url, name, limit=self._trades_cache)
        return self._direct[symbol]

    async def watch_order_book(self, symbol: str, depth: int | None = None) -> t.OrderBook:
        """The local book after its next update: the top ``depth`` levels (all when None).

        A sequence gap is counted in ``resyncs[symbol]`` and the book is rebuilt from a new
        snapshot before returning; a second gap in a row raises :class:`BookResync`.
        """
        watch = self._ex.watch_order_book
        try:
            raw = await self.client.call(watch, symbol, self.book_limit, self._book_params,
                                         retry=False, stream=True)
        except t.BookResync:
            self.resyncs[symbol] = self.resyncs.get(symbol, 0) + 1
            raw = await self.client.call(watch, symbol, self.book_limit, self._book_params,
                                         retry=False, stream=True)
        self._count_connections()
        return parse.order_book(symbol, raw, depth)

    def has_local_book(self, symbol: str) -> bool:
        """Whether :meth:`watch_local_book` serves ``symbol`` (``direct_book`` on Binance spot)."""
        return self.direct_book and self._depth_stream(symbol) is not None

    async def watch_local_book(self, symbol: str, before: Before | None = None) -> LocalBook:
        """The whole local book of ``symbol`` after its next diffs, read off the diff-depth
        stream directly (:meth:`has_local_book` must hold). ``before(book, diff)`` is called
        just before each diff is applied. The book is live: it changes on the next call.

        A hole in the update ids is counted in ``resyncs[symbol]`` and the book rebuilt from a
        new snapshot; a dropped connection raises a retryable error (call again).
        """
        stream = self._depth_stream(symbol)
        if stream is None:
            raise ValueError(f"{symbol}: no direct depth stream on {self._ex.id}")
        known = stream.connections
        try:
            return await stream.next(before)
        finally:
            self.reconnects += max(0, stream.connections - max(known, 1))
            if stream.resyncs:
                self.resyncs[symbol] = stream.resyncs

    def _depth_stream(self, symbol: str) -> DirectDepthStream | None:
        if symbol not in self._depth:
            name = "depth@100ms" if self.book_updates_ms == 100 else "depth"
            url = direct_stream_url(self._ex, symbol, name)
            self._depth[symbol] = None if url is None else DirectDepthStream(
                url, lambda: self._book_snapshot(symbol), symbol=symbol)
        return self._depth[symbol]

    async def _book_snapshot(self, symbol: str) -> dict[str, Any]:
        """Binance's ``GET /api/v3/depth`` body of ``symbol`` (``lastUpdateId``, bids, asks)."""
        market_id = self._ex.market(symbol)["id"]
        return await self.client.call(self._ex.publicGetDepth,  # type: ignore[no-any-return]
                                      {"symbol": market_id, "limit": self.book_limit})

    async def watch_ticker(self, symbol: str) -> t.Ticker:
        """The next 24h ticker (last price, best bid/ask and their sizes)."""
        # ccxt's binance watches the mini ticker by default, which has no bid or ask
        params = {"name": "ticker"} if str(self._ex.id).startswith("binance") else {}
        raw = await self.client.call(self._ex.watch_ticker, symbol, params, retry=False,
                                     stream=True)
        self._count_connections()
        return parse.ticker(raw)

    async def watch_bids_asks(self, symbols: list[str]) -> dict[str, t.Ticker]:
        """The next best bid/ask changes (book tickers) of ``symbols``, by symbol."""
        raw = await self.client.call(self._ex.watch_bids_asks, symbols, retry=False,
                                     stream=True)
        self._count_connections()
        return {s: parse.ticker(v) for s, v in raw.items()}

    # -- history ---------------------------------------------------------------------------
    async def fetch_trades_from_id(self, symbol: str, from_id: int,
                                   limit: int = 1000) -> pd.DataFrame:
        """One page of trades with ids from ``from_id`` on, ascending (retried)."""
        await self.client.load_markets()
        market = self._ex.market(symbol)
        api = _API.get("linear" if market.get("linear") else "inverse" if market.get("inverse")
                       else "spot", "public")
        method = api + ("GetAggTrades" if self.aggregated else "GetHistoricalTrades")
        params = {"fetchTradesMethod": method, "fromId": int(from_id)}

        async def page() -> pd.DataFrame:
            return parse.trades_frame(await self._ex.fetch_trades(symbol, None, limit, params))

        return await self.client.call(page)

    async def first_trade_id(self, symbol: str, since: int) -> int | None:
        """The id of the first trade at or after ``since`` (ms), None when none exists yet."""
        await self.client.load_markets()

        async def first() -> int | None:
            rows = await self._ex.fetch_trades(symbol, since, 1)
            if not rows:
                return None
            if self.aggregated:
                return int(rows[0]["id"])
            # an aggregated trade names the individual trades it holds
            return int(rows[0]["info"].get("f", rows[0]["id"]))

        return await self.client.call(first)

    async def trade_pages(self, symbol: str, from_id: int, *, to_id: int | None = None,
                          until: int | None = None,
                          limit: int = 1000) -> AsyncIterator[pd.DataFrame]:
        """Pages of trades by id from ``from_id`` up to ``to_id`` and/or time ``until`` (both
        inclusive; neither: up to the newest), each ascending and never overlapping."""
        cursor = int(from_id)
        while True:
            raw = await self.fetch_trades_from_id(symbol, cursor, limit)
            raw = raw[raw["id"] >= cursor]
            if raw.empty:
                return
            keep = pd.Series(True, index=raw.index)
            if to_id is not None:
                keep &= raw["id"] <= to_id
            if until is not None:
                keep &= raw["ts"] <= until
            page = raw[keep]
            if not page.empty:
                yield page.reset_index(drop=True)
            # a bound cut the page, or a short page was the newest the exchange has
            if len(page) < len(raw) or len(raw) < limit:
                return
            cursor = int(raw["id"].iloc[-1]) + 1

    async def fetch_trades_between(self, symbol: str, since: int, until: int,
                                   limit: int = 1000) -> AsyncIterator[pd.DataFrame]:
        """Pages of the trades with ``since <= ts <= until``, by id."""
        first = None
        # Binance looks for the first trade within the hour after a time: step hour by hour
        # through a quiet stretch.
        while first is None and since <= until:
            first = await self.first_trade_id(symbol, since)
            since += _HOUR_MS
        if first is None:
            return
        async for page in self.trade_pages(symbol, first, until=until, limit=limit):
            yield page
